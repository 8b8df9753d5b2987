/*
 * test_cuda_host.c — the host-side parts of the CUDA engine, which run without a device (so
 * this test runs in CI): the attention tile list the engine builds for every batch, and the
 * fp32 ↔ fp16/bf16 conversions used to upload the weights.
 *
 * Tiles are checked against their contract (kernels.h), not against a copy of the code:
 * every query row of every sequence covered exactly once, tiles aligned to RR_ATTN_BQ from
 * the sequence start, K/V range = the row's own sequence, the count within n_tok + n_seq
 * (and within the graph bound (n_tok + 63·n_seq)/64 rounded up), -1 when cap is too small,
 * and one [CLS] tile per sequence. Conversions: exactly representable values round-trip
 * bit-exactly, and a random value lands on one of its two neighbours in the target type,
 * the nearer one (ties aside), checked with nextafter-style bit arithmetic.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "test.h"

static uint64_t rng = 0x853c49e6748fea9bull;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static void check_tiles(const int32_t *lens, int n_seq)
{
    int32_t cu[600];
    cu[0] = 0;
    for (int s = 0; s < n_seq; s++)
        cu[s + 1] = cu[s] + lens[s];
    const int n_tok = cu[n_seq];
    rr_attn_tile *t = malloc((size_t)(n_tok + n_seq) * sizeof *t);
    int *seen = calloc((size_t)n_tok, sizeof *seen);
    int n = rr_attention_tiles(cu, n_seq, 0, t, n_tok + n_seq);
    CHECK(n >= n_seq && n <= n_tok + n_seq);
    CHECK(n <= (n_tok + (RR_ATTN_BQ - 1) * n_seq + RR_ATTN_BQ - 1) / RR_ATTN_BQ);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int s = 0;
        while (s < n_seq && cu[s + 1] <= t[i].q_begin)
            s++;
        bad += s == n_seq || t[i].kv_begin != cu[s] || t[i].kv_len != lens[s];
        bad += t[i].q_count < 1 || t[i].q_count > RR_ATTN_BQ || t[i].out_row != t[i].q_begin;
        bad += (t[i].q_begin - cu[s]) % RR_ATTN_BQ != 0 || t[i].q_begin + t[i].q_count > cu[s + 1];
        for (int r = 0; r < t[i].q_count && t[i].q_begin + r < n_tok; r++)
            seen[t[i].q_begin + r]++;
    }
    for (int r = 0; r < n_tok; r++)
        bad += seen[r] != 1;
    CHECK_MSG(bad == 0, "tile list of %d sequences / %d tokens: %d violations", n_seq, n_tok, bad);
    CHECK(n == 1 || rr_attention_tiles(cu, n_seq, 0, t, n - 1) == -1);

    int nc = rr_attention_tiles(cu, n_seq, 1, t, n_seq);
    CHECK(nc == n_seq);
    bad = 0;
    for (int s = 0; s < nc; s++)
        bad += t[s].q_begin != cu[s] || t[s].q_count != 1 || t[s].out_row != s ||
               t[s].kv_begin != cu[s] || t[s].kv_len != lens[s];
    CHECK_MSG(bad == 0, "[CLS] tiles of %d sequences: %d violations", n_seq, bad);
    free(t), free(seen);
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Checks one dtype: round trips and nearest rounding on |x| in [2^-10, 2^10]. */
static void check_conversion(rr_dtype dt)
{
    const char *name = dt == RR_DTYPE_BF16 ? "bf16" : "fp16";
    const int mant = dt == RR_DTYPE_BF16 ? 7 : 10; /* stored significand bits */
    int bad_exact = 0, bad_near = 0;
    uint16_t h;
    float back;
    for (int i = 0; i < 100000; i++) {
        /* A value with at most `mant` significand bits: exactly representable. */
        int e = (int)(rnd() % 21) - 10;
        uint32_t m = rnd() & ((1u << mant) - 1);
        float x = ldexpf(1.0f + (float)m / (float)(1u << mant), e) * (rnd() & 1 ? -1 : 1);
        rr_cuda_from_f32(&x, &h, 1, dt);
        rr_cuda_to_f32(&h, &back, 1, dt);
        bad_exact += bits_of(back) != bits_of(x);

        /* A random fp32: the result is the nearer of the two neighbours. */
        float y = ldexpf(1.0f + (float)(rnd() & 0x7fffff) / 8388608.0f, e);
        uint32_t drop = 23 - mant;
        float lo = float_of(bits_of(y) >> drop << drop);
        float hi = float_of((bits_of(y) >> drop << drop) + (1u << drop));
        rr_cuda_from_f32(&y, &h, 1, dt);
        rr_cuda_to_f32(&h, &back, 1, dt);
        float want = (y - lo < hi - y) ? lo : (y - lo > hi - y) ? hi : back;
        bad_near += back != want;
    }
    CHECK_MSG(bad_exact == 0, "%s: %d representable values did not round-trip", name, bad_exact);
    CHECK_MSG(bad_near == 0, "%s: %d values not rounded to the nearest neighbour", name, bad_near);
    CHECK(rr_cuda_dtype_size(dt) == 2);
}

int main(void)
{
    const int32_t one[] = {1}, l512[] = {512}, l65[] = {65}, l64[] = {64};
    const int32_t uneven[] = {3, 130, 1, 64, 77, 200, 33, 128, 129, 2};
    check_tiles(one, 1);
    check_tiles(l512, 1);
    check_tiles(l65, 1);
    check_tiles(l64, 1);
    check_tiles(uneven, 10);
    int32_t lens[500];
    for (int round = 0; round < 20; round++) {
        int n = 1 + (int)(rnd() % 500);
        for (int s = 0; s < n; s++)
            lens[s] = 1 + (int)(rnd() % 512);
        check_tiles(lens, n);
    }
    check_conversion(RR_DTYPE_F16);
    check_conversion(RR_DTYPE_BF16);
    return test_summary("test_cuda_host");
}
