/*
 * test_gemm.c — the packed GEMM of the CPU engine (src/engine/gemm_cpu.h) on every kernel path
 * this CPU runs (generic C, AVX2, AVX-512, VNNI, AVX512-BF16), over awkward shapes: 1 row,
 * rows not a multiple of the micro-tile (6 / 12) or of the row tile (96), columns not a
 * multiple of 16 or 32, n_in not a multiple of the bf16 pair or the int8 quad, and x / y row
 * strides wider than the matrix.
 *
 * Checked:
 *   - f32: every path equals the generic path bit for bit, and the generic path is within
 *     4·n_in·ε·Σ|x·w| of a double dot product (one FMA chain: each step rounds once);
 *   - int8: every path equals the generic path bit for bit (integer sums are exact), and each
 *     output is within the quantization bound of the double product:
 *     error ≤ sx·Σ|w| + (sw/2)·Σ|x| + n·sx·sw/2 (+ f32 rounding), sx = (max − min)/255 of the
 *     row with 0 in the range (an element may clamp at 255: up to sx, not sx/2), sw = max|w|/127;
 *   - bf16 (AVX512-BF16 only): within (2⁻⁸·Σ|x·w|)·2 + 4·n_in·ε·Σ|x·w| of the double product;
 *   - a row's result does not depend on how many rows the call has or the thread count: the
 *     rows computed alone equal the rows computed together, bit for bit;
 *   - packing refuses f16 (RR_E_UNSUPPORTED).
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "engine/gemm_cpu.h"
#include "test.h"
#include "util/util.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void check_shape(int m, int n_out, int n_in, rr_dtype dt, rr_cpu_caps top)
{
    const size_t ldx = (size_t)n_in + 3, ldy = (size_t)n_out + 5;
    float *x = rr_malloc(sizeof(float) * ldx * m), *w = rr_malloc(sizeof(float) * n_out * n_in);
    float *bias = rr_malloc(sizeof(float) * n_out);
    float *ref = rr_malloc(sizeof(float) * ldy * m), *got = rr_malloc(sizeof(float) * ldy * m);
    float *one = rr_malloc(sizeof(float) * ldy);
    void *scratch = rr_malloc_aligned(64, rr_gemm_scratch_bytes(dt, m, n_in) + 64);
    for (size_t i = 0; i < ldx * m; i++)
        x[i] = frand() * (i % 7 == 0 ? 4.0f : 1.0f);
    for (int i = 0; i < n_out * n_in; i++)
        w[i] = frand() * 0.1f;
    for (int i = 0; i < n_out; i++)
        bias[i] = frand();
    rr_packed p;
    rr_error err = {0};
    CHECK_MSG(rr_pack_weights(w, n_out, n_in, dt, &p, &err) == RR_OK, "%s", err.msg);

    /* the reference path: generic for f32 / int8; bf16 has one path only */
    rr_cpu_caps gen = {RR_ISA_GENERIC, 0, 0};
    if (dt == RR_DTYPE_BF16) gen = top;
    memset(ref, 0, sizeof(float) * ldy * m);
    rr_gemm_packed_caps(x, ldx, m, &p, bias, ref, ldy, scratch, 1, gen);

    /* against double */
    double worst = 0.0;
    int bad = 0;
    for (int r = 0; r < m; r++) {
        double lo_x = 0.0, hi_x = 0.0;
        for (int k = 0; k < n_in; k++) {
            lo_x = fmin(lo_x, x[r * ldx + k]);
            hi_x = fmax(hi_x, x[r * ldx + k]);
        }
        for (int c = 0; c < n_out; c++) {
            double dot = bias[c], mag = fabs(bias[c]), sw_abs = 0.0, sx_abs = 0.0, amax_w = 0.0;
            for (int k = 0; k < n_in; k++) {
                double xv = x[r * ldx + k], wv = w[(size_t)c * n_in + k];
                dot += xv * wv;
                mag += fabs(xv * wv);
                sw_abs += fabs(wv);
                sx_abs += fabs(xv);
                amax_w = fmax(amax_w, fabs(wv));
            }
            double tol = 4.0 * n_in * FLT_EPSILON * mag + 1e-6;
            if (dt == RR_DTYPE_BF16) tol += 2.0 * 0.00390625 * mag;
            if (dt == RR_DTYPE_INT8) {
                double sx = (hi_x - lo_x) / 255.0, sw = amax_w / 127.0;
                tol += sx * sw_abs * 1.0001 + sw / 2 * sx_abs * 1.0001 + n_in * sx * sw / 2;
            }
            double d = fabs(ref[r * ldy + c] - dot);
            if (d > worst) worst = d;
            bad += !(d <= tol);
        }
    }
    CHECK_MSG(bad == 0, "%s m=%d n_out=%d n_in=%d: %d outputs past the bound (worst %.3g)",
              rr_dtype_name(dt), m, n_out, n_in, bad, worst);

    /* every path this CPU runs, bitwise equal to the reference, on 2 threads */
    rr_cpu_caps paths[4];
    int n_paths = 0;
    if (dt != RR_DTYPE_BF16) {
        if (top.isa >= RR_ISA_AVX2) paths[n_paths++] = (rr_cpu_caps){RR_ISA_AVX2, 0, 0};
        if (top.isa >= RR_ISA_AVX512) paths[n_paths++] = (rr_cpu_caps){RR_ISA_AVX512, 0, 0};
        if (top.vnni) paths[n_paths++] = (rr_cpu_caps){RR_ISA_AVX512, 1, 0};
    } else {
        paths[n_paths++] = top;
    }
    for (int i = 0; i < n_paths; i++) {
        memset(got, 0, sizeof(float) * ldy * m);
        rr_gemm_packed_caps(x, ldx, m, &p, bias, got, ldy, scratch, 2, paths[i]);
        int differ = 0;
        for (int r = 0; r < m; r++)
            differ += memcmp(got + r * ldy, ref + r * ldy, n_out * 4) != 0;
        CHECK_MSG(differ == 0, "%s %s%s m=%d n_out=%d n_in=%d: %d rows differ from the reference",
                  rr_dtype_name(dt), rr_cpu_isa_name(paths[i].isa), paths[i].vnni ? "+vnni" : "", m,
                  n_out, n_in, differ);
        /* one row alone (the last: the tile tail) */
        rr_gemm_packed_caps(x + (size_t)(m - 1) * ldx, ldx, 1, &p, bias, one, ldy, scratch, 1,
                            paths[i]);
        CHECK_MSG(memcmp(one, ref + (size_t)(m - 1) * ldy, n_out * 4) == 0,
                  "%s %s m=%d: the last row alone differs from the row in the call",
                  rr_dtype_name(dt), rr_cpu_isa_name(paths[i].isa), m);
    }
    rr_packed_free(&p);
    rr_free(x);
    rr_free(w);
    rr_free(bias);
    rr_free(ref);
    rr_free(got);
    rr_free(one);
    rr_free(scratch);
}

int main(void)
{
    const rr_cpu_caps top = rr_cpu_caps_get();
    printf("CPU: %s%s%s\n", rr_cpu_isa_name(top.isa), top.vnni ? " +vnni" : "",
           top.bf16 ? " +bf16" : "");
    static const int shapes[][3] = {{1, 16, 16},     {1, 1, 1},     {5, 17, 3},     {6, 32, 64},
                                    {13, 40, 37},    {12, 48, 384}, {25, 384, 384}, {97, 70, 130},
                                    {200, 33, 1536}, {7, 1152, 384}};
    const rr_dtype dts[] = {RR_DTYPE_F32, RR_DTYPE_INT8, RR_DTYPE_BF16};
    for (size_t d = 0; d < 3; d++) {
        if (dts[d] == RR_DTYPE_BF16 && !top.bf16) {
            printf("bf16: skipped (no AVX512-BF16 on this CPU)\n");
            continue;
        }
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            check_shape(shapes[i][0], shapes[i][1], shapes[i][2], dts[d], top);
    }
    rr_packed p;
    float w1 = 1.0f;
    CHECK(rr_pack_weights(&w1, 1, 1, RR_DTYPE_F16, &p, NULL) == RR_E_UNSUPPORTED);
    return test_summary("test_gemm");
}
