/*
 * test_cuda_kernels.c — every CUDA kernel against its CPU reference op (src/engine/ops.h)
 * on fresh random inputs, in fp16 and bf16.
 *
 * Inputs are drawn in fp32, rounded to the device type, and the CPU reference is fed the
 * SAME rounded values, so what is measured is the kernel's own error: its fp32 arithmetic
 * and the final rounding of its output to fp16/bf16. Tolerances (|gpu − cpu| ≤ atol +
 * rtol·|cpu|) are stated per op and precision in `tol` below; fp16 has an 11-bit and bf16
 * an 8-bit significand, so bf16 bounds are about 8× looser. Shapes: 1 token, lengths not
 * divisible by the attention tile (64) or the key block (32), 512, uneven packed sequences,
 * d_head 32 and 64, attention over all rows and over [CLS] rows only, and a tile grid larger
 * than the tile count (as a CUDA graph bucket launches it); row widths 384, 768, 100, 256,
 * 312 and 1024, so every values-per-lane variant of the LayerNorm kernels runs, and the head
 * at 384, 768, 256 and 1024 (its shared-memory bound).
 * The seed is printed; RR_TEST_SEED=<n> reruns a failure. RR_TEST_QUICK=1 keeps two length
 * sets and the first size of each op (for compute-sanitizer). RR_TEST_ONLY=<op>[,<op>...]
 * runs only those ops (embed_ln, linear, bias_residual_ln, bias_gelu, attention, head): the
 * mutation driver (tests/cuda/host/mutants.sh) uses it to run one op over all its shapes.
 * Without a device: exit 77.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>

#include "engine/ops.h"
#include "kernels.h"
#include "test.h"

static uint64_t rng;
static int quick; /* RR_TEST_QUICK: a small subset of shapes */

/* In quick mode: only the length sets "7" and the uneven one, and the first size of a list. */
static int skip_set(int si)
{
    return quick && si != 1 && si != 6; /* sets[1] = {7}, sets[6] = uneven */
}

static int skip_size(int i)
{
    return quick && i > 0;
}

static float frand(float lo, float hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (float)((rng >> 11) * (1.0 / 9007199254740992.0));
}

static const char *dt_name(rr_dtype dt)
{
    return dt == RR_DTYPE_BF16 ? "bf16" : "fp16";
}

typedef struct tol {
    float atol, rtol;
} tol;

/* Per op: {fp16, bf16}. */
static const tol tol_ln[2] = {{2e-3f, 2e-3f}, {1.6e-2f, 8e-3f}};
static const tol tol_linear[2] = {{2e-3f, 2e-3f}, {1.6e-2f, 8e-3f}};
static const tol tol_gelu[2] = {{1e-3f, 1e-3f}, {8e-3f, 8e-3f}};
static const tol tol_attn[2] = {{4e-3f, 4e-3f}, {3e-2f, 1.6e-2f}};
static const tol tol_head[2] = {{1e-4f, 1e-4f}, {1e-4f, 1e-4f}}; /* fp32 out, same inputs */

/* RR_TEST_ONLY: is `op` among the comma-separated names (all ops when unset)? */
static int want(const char *op)
{
    const char *only = getenv("RR_TEST_ONLY");
    if (!only) return 1;
    const size_t n = strlen(op);
    for (const char *p = only; (p = strstr(p, op)) != NULL; p += n)
        if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

static int ti(rr_dtype dt)
{
    return dt == RR_DTYPE_BF16;
}

/* Device copy of n values drawn in [lo, hi), rounded to dt (or fp32 when dt is F32); the
 * rounded values are written to host[] for the CPU reference. */
static void *dev_rand(float *host, size_t n, float lo, float hi, rr_dtype dt)
{
    for (size_t i = 0; i < n; i++)
        host[i] = frand(lo, hi);
    size_t es = rr_cuda_dtype_size(dt);
    void *tmp = malloc(n * es), *dev = NULL;
    rr_cuda_from_f32(host, tmp, n, dt);
    rr_cuda_to_f32(tmp, host, n, dt);
    if (cudaMalloc(&dev, n * es) != cudaSuccess) abort();
    if (cudaMemcpy(dev, tmp, n * es, cudaMemcpyHostToDevice) != cudaSuccess) abort();
    free(tmp);
    return dev;
}

static void *dev_copy(const void *src, size_t bytes)
{
    void *dev = NULL;
    if (cudaMalloc(&dev, bytes) != cudaSuccess) abort();
    if (cudaMemcpy(dev, src, bytes, cudaMemcpyHostToDevice) != cudaSuccess) abort();
    return dev;
}

static void dev_read(float *out, const void *dev, size_t n, rr_dtype dt)
{
    size_t es = rr_cuda_dtype_size(dt);
    void *tmp = malloc(n * es);
    if (cudaMemcpy(tmp, dev, n * es, cudaMemcpyDeviceToHost) != cudaSuccess) abort();
    rr_cuda_to_f32(tmp, out, n, dt);
    free(tmp);
}

/* Compares and reports the worst element; one CHECK per call. */
static void compare(const char *what, const float *gpu, const float *ref, size_t n, tol t)
{
    double worst = 0, worst_excess = -1;
    size_t at = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(gpu[i])) finite = 0;
        double diff = fabs((double)gpu[i] - ref[i]);
        double excess = diff - (t.atol + t.rtol * fabs(ref[i]));
        if (diff > worst) worst = diff;
        if (excess > worst_excess) worst_excess = excess, at = i;
    }
    CHECK_MSG(finite && worst_excess <= 0,
              "%s: max |diff| %.3g; worst element %zu: gpu %.6g cpu %.6g (atol %g rtol %g)", what,
              worst, at, gpu[at], ref[at], t.atol, t.rtol);
    printf("  %-58s max|diff| %.3g\n", what, worst);
}

static int build_cu(const int *lens, int n_seq, int32_t *cu)
{
    cu[0] = 0;
    for (int s = 0; s < n_seq; s++)
        cu[s + 1] = cu[s] + lens[s];
    return cu[n_seq];
}

/* Sequence-length sets used by the row and attention tests. */
static const int set_1[] = {1};
static const int set_7[] = {7};
static const int set_64[] = {64};
static const int set_65[] = {65};
static const int set_100[] = {100};
static const int set_512[] = {512};
static const int set_uneven[] = {3, 130, 1, 64, 77, 200, 33};
static const struct {
    const int *lens;
    int n;
    const char *name;
} sets[] = {
    {set_1, 1, "1"},
    {set_7, 1, "7"},
    {set_64, 1, "64"},
    {set_65, 1, "65"},
    {set_100, 1, "100"},
    {set_512, 1, "512"},
    {set_uneven, 7, "3,130,1,64,77,200,33"},
};
#define N_SETS ((int)(sizeof sets / sizeof sets[0]))

static void test_embed_ln(rr_dtype dt)
{
    /* NV 12, 24, 4, 8, 12 with two lanes masked (TinyBERT 312), 32 (BERT-large 1024). */
    const int dims[] = {384, 768, 100, 256, 312, 1024};
    const int vocab = 97, max_pos = 512, n_types = 2;
    for (int di = 0; di < 6; di++) {
        for (int si = 0; si < N_SETS; si++) {
            if (skip_size(di) || skip_set(si)) continue;
            const int d = dims[di], n_seq = sets[si].n;
            int32_t cu[16];
            const int n_tok = build_cu(sets[si].lens, n_seq, cu);
            int32_t *tok = malloc(n_tok * sizeof *tok), *typ = malloc(n_tok * sizeof *typ);
            rr_tok3 *t3 = malloc(n_tok * sizeof *t3);
            for (int s = 0; s < n_seq; s++)
                for (int t = cu[s]; t < cu[s + 1]; t++) {
                    tok[t] = (int32_t)(frand(0, 1) * vocab) % vocab;
                    typ[t] = t - cu[s] > (cu[s + 1] - cu[s]) / 3;
                    t3[t] = (rr_tok3){tok[t], typ[t], t - cu[s]};
                }
            float *word = malloc((size_t)vocab * d * 4), *pos = malloc((size_t)max_pos * d * 4);
            float *type = malloc((size_t)n_types * d * 4), *g = malloc(d * 4), *b = malloc(d * 4);
            float *ref = malloc((size_t)n_tok * d * 4), *got = malloc((size_t)n_tok * d * 4);
            void *word_d = dev_rand(word, (size_t)vocab * d, -1, 1, dt);
            void *pos_d = dev_rand(pos, (size_t)max_pos * d, -0.5f, 0.5f, dt);
            void *type_d = dev_rand(type, (size_t)n_types * d, -0.3f, 0.3f, dt);
            float *g_d = dev_rand(g, d, 0.5f, 1.5f, RR_DTYPE_F32);
            float *b_d = dev_rand(b, d, -0.5f, 0.5f, RR_DTYPE_F32);
            void *t3_d = dev_copy(t3, n_tok * sizeof *t3), *out_d = NULL;
            cudaMalloc(&out_d, (size_t)n_tok * d * rr_cuda_dtype_size(dt));
            rr_embed_ln_cpu(tok, typ, NULL, cu, n_seq, n_tok, word, pos, type, g, b, 1e-12f, d,
                            ref);
            CHECK(rr_embed_ln_cuda(t3_d, n_tok, word_d, pos_d, type_d, g_d, b_d, 1e-12f, d, out_d,
                                   dt, 0) == cudaSuccess);
            CHECK(cudaDeviceSynchronize() == cudaSuccess);
            dev_read(got, out_d, (size_t)n_tok * d, dt);
            char what[128];
            snprintf(what, sizeof what, "embed_ln %s d=%d lens={%s}", dt_name(dt), d,
                     sets[si].name);
            compare(what, got, ref, (size_t)n_tok * d, tol_ln[ti(dt)]);
            cudaFree(word_d), cudaFree(pos_d), cudaFree(type_d), cudaFree(g_d), cudaFree(b_d);
            cudaFree(t3_d), cudaFree(out_d);
            free(tok), free(typ), free(t3), free(word), free(pos), free(type), free(g), free(b);
            free(ref), free(got);
        }
    }
}

/* rr_linear_cuda against rr_linear_cpu, and its batch invariance: with the plan's one
 * algorithm (split-K 1) for every row count, rows 0 … r-1 of a product over the first r
 * rows of x must be the same bits as those rows of the product over all n rows. */
static void test_linear(rr_dtype dt, cublasLtHandle_t lt, void *ws, size_t ws_bytes)
{
    const int rows[] = {1, 77, 512};
    const int shapes[][2] = {{384, 1152}, {1536, 384}, {768, 2}};
    for (int ri = 0; ri < 3; ri++) {
        for (int si = 0; si < 3; si++) {
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                if (skip_size(ri) || skip_size(si)) continue;
                const int n = rows[ri], k = shapes[si][0], m = shapes[si][1];
                const float ws_scale = 1.0f / sqrtf((float)k);
                const size_t es = rr_cuda_dtype_size(dt);
                rr_linear_plan plan;
                CHECK(rr_linear_plan_init(&plan, lt, k, m, with_bias, 512, dt, ws, ws_bytes) ==
                      cudaSuccess);
                float *x = malloc((size_t)n * k * 4), *w = malloc((size_t)m * k * 4);
                float *b = malloc(m * 4), *ref = malloc((size_t)n * m * 4);
                float *got = malloc((size_t)n * m * 4), *part = malloc((size_t)n * m * 4);
                void *x_d = dev_rand(x, (size_t)n * k, -1, 1, dt);
                void *w_d = dev_rand(w, (size_t)m * k, -ws_scale, ws_scale, dt);
                void *b_d = dev_rand(b, m, -0.5f, 0.5f, dt), *y_d = NULL, *y2_d = NULL;
                cudaMalloc(&y_d, (size_t)n * m * es);
                cudaMalloc(&y2_d, (size_t)n * m * es);
                rr_linear_cpu(x, w, with_bias ? b : NULL, n, k, m, ref);
                CHECK(rr_linear_cuda(&plan, x_d, w_d, with_bias ? b_d : NULL, n, y_d, 0) ==
                      cudaSuccess);
                CHECK(cudaDeviceSynchronize() == cudaSuccess);
                dev_read(got, y_d, (size_t)n * m, dt);
                char what[128];
                snprintf(what, sizeof what, "linear %s %dx%d->%d%s", dt_name(dt), n, k, m,
                         with_bias ? " +bias" : "");
                compare(what, got, ref, (size_t)n * m, tol_linear[ti(dt)]);
                for (int r = 1; r < n; r = r * 3 + 2) {
                    cudaMemset(y2_d, 0xff, (size_t)n * m * es);
                    CHECK(rr_linear_cuda(&plan, x_d, w_d, with_bias ? b_d : NULL, r, y2_d, 0) ==
                          cudaSuccess);
                    CHECK(cudaDeviceSynchronize() == cudaSuccess);
                    dev_read(part, y2_d, (size_t)r * m, dt);
                    CHECK_MSG(memcmp(part, got, (size_t)r * m * sizeof(float)) == 0,
                              "%s: the first %d rows alone differ from the same rows of %d "
                              "(batch invariance)",
                              what, r, n);
                }
                cudaFree(x_d), cudaFree(w_d), cudaFree(b_d), cudaFree(y_d), cudaFree(y2_d);
                free(x), free(w), free(b), free(ref), free(got), free(part);
                rr_linear_plan_free(&plan);
            }
        }
    }
}

static void test_bias_residual_ln(rr_dtype dt)
{
    const int rows[] = {1, 77, 512}, dims[] = {384, 768, 100, 256, 312, 1024};
    for (int ri = 0; ri < 3; ri++) {
        for (int di = 0; di < 6; di++) {
            if (skip_size(di)) continue;
            const int n = rows[ri], d = dims[di];
            const size_t nd = (size_t)n * d;
            float *x = malloc(nd * 4), *res = malloc(nd * 4), *got = malloc(nd * 4);
            float *b = malloc(d * 4), *g = malloc(d * 4), *be = malloc(d * 4);
            void *x_d = dev_rand(x, nd, -3, 3, dt), *res_d = dev_rand(res, nd, -2, 2, dt);
            float *b_d = dev_rand(b, d, -0.5f, 0.5f, RR_DTYPE_F32);
            float *g_d = dev_rand(g, d, 0.5f, 1.5f, RR_DTYPE_F32);
            float *be_d = dev_rand(be, d, -0.5f, 0.5f, RR_DTYPE_F32);
            rr_bias_residual_ln_cpu(x, b, res, g, be, 1e-12f, n, d);
            CHECK(rr_bias_residual_ln_cuda(x_d, b_d, res_d, g_d, be_d, 1e-12f, n, d, dt, 0) ==
                  cudaSuccess);
            CHECK(cudaDeviceSynchronize() == cudaSuccess);
            dev_read(got, x_d, nd, dt);
            char what[128];
            snprintf(what, sizeof what, "bias_residual_ln %s n_tok=%d d=%d", dt_name(dt), n, d);
            compare(what, got, x, nd, tol_ln[ti(dt)]);
            cudaFree(x_d), cudaFree(res_d), cudaFree(b_d), cudaFree(g_d), cudaFree(be_d);
            free(x), free(res), free(got), free(b), free(g), free(be);
        }
    }
}

static void test_bias_gelu(rr_dtype dt)
{
    const int rows[] = {1, 77, 300}, dims[] = {1536, 100};
    for (int ri = 0; ri < 3; ri++) {
        for (int di = 0; di < 2; di++) {
            if (skip_size(di)) continue;
            const int n = rows[ri], d = dims[di];
            const size_t nd = (size_t)n * d;
            float *x = malloc(nd * 4), *got = malloc(nd * 4), *b = malloc(d * 4);
            void *x_d = dev_rand(x, nd, -4, 4, dt);
            float *b_d = dev_rand(b, d, -1, 1, RR_DTYPE_F32);
            rr_bias_gelu_cpu(x, b, n, d);
            CHECK(rr_bias_gelu_cuda(x_d, b_d, n, d, dt, 0) == cudaSuccess);
            CHECK(cudaDeviceSynchronize() == cudaSuccess);
            dev_read(got, x_d, nd, dt);
            char what[128];
            snprintf(what, sizeof what, "bias_gelu %s n_tok=%d d=%d", dt_name(dt), n, d);
            compare(what, got, x, nd, tol_gelu[ti(dt)]);
            cudaFree(x_d), cudaFree(b_d);
            free(x), free(got), free(b);
        }
    }
}

static void test_attention(rr_dtype dt)
{
    const int heads[][2] = {{12, 32}, {4, 64}, {12, 64}}; /* (n_head, d_head) */
    for (int hi = 0; hi < 3; hi++) {
        for (int si = 0; si < N_SETS; si++) {
            for (int cls = 0; cls < 2; cls++) {
                if (skip_set(si) || (quick && hi == 2)) continue;
                const int n_head = heads[hi][0], dh = heads[hi][1], d = n_head * dh;
                const int n_seq = sets[si].n;
                int32_t cu[16], q_rows[16];
                const int n_tok = build_cu(sets[si].lens, n_seq, cu);
                for (int s = 0; s < n_seq; s++)
                    q_rows[s] = cu[s];
                const size_t nq = (size_t)n_tok * 3 * d;
                const int n_out = cls ? n_seq : n_tok;
                float *qkv = malloc(nq * 4), *bias = malloc(3 * d * 4);
                float *ref = malloc((size_t)n_out * d * 4), *got = malloc((size_t)n_out * d * 4);
                void *qkv_d = dev_rand(qkv, nq, -1, 1, dt);
                float *b_d = dev_rand(bias, 3 * d, -0.5f, 0.5f, RR_DTYPE_F32);
                /* The kernel adds the bias in fp32 and rounds to dt: so does the reference. */
                void *tmp = malloc(nq * rr_cuda_dtype_size(dt));
                for (size_t i = 0; i < nq; i++)
                    qkv[i] += bias[i % (3 * d)];
                rr_cuda_from_f32(qkv, tmp, nq, dt);
                rr_cuda_to_f32(tmp, qkv, nq, dt);
                free(tmp);
                rr_attn_tile tiles[64];
                const int n_tiles = rr_attention_tiles(cu, n_seq, cls, tiles, 64);
                CHECK(n_tiles > 0);
                const int max_tiles = n_tiles + 5; /* grid above the count, as in a graph */
                void *tiles_d = dev_copy(tiles, n_tiles * sizeof *tiles);
                int32_t *cnt_d = dev_copy(&n_tiles, sizeof n_tiles);
                /* ctx between GUARD guard rows on each side, all filled with 0xff bytes (NaN
                 * in fp16 and bf16): a row the kernel forgets stays NaN, a stray write shows
                 * in the guards. */
                enum { GUARD = 64 };
                const size_t tsz = rr_cuda_dtype_size(dt), row_b = (size_t)d * tsz;
                const size_t all_b = ((size_t)n_out + 2 * GUARD) * row_b;
                char *base_d = NULL;
                CHECK(cudaMalloc((void **)&base_d, all_b) == cudaSuccess);
                CHECK(cudaMemset(base_d, 0xff, all_b) == cudaSuccess);
                void *ctx_d = base_d + GUARD * row_b;
                rr_attention_cpu(qkv, cu, n_seq, n_head, dh, cls ? q_rows : NULL, ref, 1, NULL, 0);
                CHECK(rr_attention_cuda(qkv_d, b_d, tiles_d, cnt_d, max_tiles, n_head, dh, ctx_d,
                                        dt, 0) == cudaSuccess);
                CHECK(cudaDeviceSynchronize() == cudaSuccess);
                dev_read(got, ctx_d, (size_t)n_out * d, dt);
                {
                    unsigned char *h = malloc(all_b);
                    CHECK(cudaMemcpy(h, base_d, all_b, cudaMemcpyDeviceToHost) == cudaSuccess);
                    size_t bad = 0;
                    for (size_t i = 0; i < GUARD * row_b; i++)
                        bad += (h[i] != 0xff) + (h[all_b - 1 - i] != 0xff);
                    CHECK_MSG(bad == 0, "attention wrote %zu bytes into the guard rows", bad);
                    free(h);
                }
                char what[128];
                snprintf(what, sizeof what, "attention %s %dx%d lens={%s}%s", dt_name(dt), n_head,
                         dh, sets[si].name, cls ? " cls-only" : "");
                compare(what, got, ref, (size_t)n_out * d, tol_attn[ti(dt)]);
                cudaFree(qkv_d), cudaFree(b_d), cudaFree(tiles_d), cudaFree(cnt_d);
                cudaFree(base_d);
                free(qkv), free(bias), free(ref), free(got);
            }
        }
    }
}

static void test_head_and_gather(rr_dtype dt)
{
    /* 100: the head's 2-byte path (d % 8 != 0); the others its 16-byte path */
    const int seqs[] = {1, 5, 64}, dims[] = {384, 768, 256, 1024, 100}, labels[] = {1, 3};
    for (int a = 0; a < 3; a++)
        for (int di = 0; di < 5; di++)
            for (int li = 0; li < 2; li++)
                for (int electra = 0; electra < 2; electra++) {
                    if (skip_size(di)) continue;
                    const int n = seqs[a], d = dims[di], nl = labels[li];
                    const float ws = 1.0f / sqrtf((float)d);
                    float *hid = malloc((size_t)n * d * 4), *dw = malloc((size_t)d * d * 4);
                    float *db = malloc(d * 4), *ow = malloc((size_t)nl * d * 4);
                    float *ob = malloc(nl * 4), *ref = malloc(n * nl * 4),
                          *got = malloc(n * nl * 4);
                    void *hid_d = dev_rand(hid, (size_t)n * d, -1, 1, dt);
                    void *dw_d = dev_rand(dw, (size_t)d * d, -ws, ws, dt);
                    float *db_d = dev_rand(db, d, -0.2f, 0.2f, RR_DTYPE_F32);
                    void *ow_d = dev_rand(ow, (size_t)nl * d, -ws, ws, dt);
                    float *ob_d = dev_rand(ob, nl, -0.2f, 0.2f, RR_DTYPE_F32), *lg_d = NULL;
                    float *hw_d = NULL; /* the head's scratch */
                    cudaMalloc((void **)&lg_d, n * nl * 4);
                    cudaMalloc((void **)&hw_d, (size_t)n * d * 4);
                    int32_t cu[65];
                    for (int s = 0; s <= n; s++)
                        cu[s] = s;
                    rr_head_cpu(hid, cu, n, 1, d, nl, dw, db, ow, ob, electra, ref);
                    CHECK(rr_head_cuda(hid_d, n, d, nl, dw_d, db_d, ow_d, ob_d, electra, lg_d, hw_d,
                                       dt, 0) == cudaSuccess);
                    CHECK(cudaDeviceSynchronize() == cudaSuccess);
                    CHECK(cudaMemcpy(got, lg_d, n * nl * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
                    char what[128];
                    snprintf(what, sizeof what, "head %s n_seq=%d d=%d labels=%d %s", dt_name(dt),
                             n, d, nl, electra ? "electra" : "bert");
                    compare(what, got, ref, (size_t)n * nl, tol_head[ti(dt)]);
                    cudaFree(hid_d), cudaFree(dw_d), cudaFree(db_d), cudaFree(ow_d);
                    cudaFree(ob_d), cudaFree(lg_d), cudaFree(hw_d);
                    free(hid), free(dw), free(db), free(ow), free(ob), free(ref), free(got);
                }

    /* gather: exact copy of the selected rows. */
    const int n_in = 300, d = 384, n_rows = 7;
    int32_t rows[7] = {0, 299, 5, 5, 128, 64, 1};
    float *in = malloc((size_t)n_in * d * 4), *got = malloc((size_t)n_rows * d * 4);
    float *ref = malloc((size_t)n_rows * d * 4);
    void *in_d = dev_rand(in, (size_t)n_in * d, -1, 1, dt), *out_d = NULL;
    int32_t *rows_d = dev_copy(rows, sizeof rows);
    cudaMalloc(&out_d, (size_t)n_rows * d * rr_cuda_dtype_size(dt));
    for (int s = 0; s < n_rows; s++)
        memcpy(ref + (size_t)s * d, in + (size_t)rows[s] * d, d * 4);
    CHECK(rr_gather_rows_cuda(in_d, rows_d, n_rows, d, out_d, dt, 0) == cudaSuccess);
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    dev_read(got, out_d, (size_t)n_rows * d, dt);
    CHECK_MSG(memcmp(got, ref, (size_t)n_rows * d * 4) == 0, "gather %s not exact", dt_name(dt));
    cudaFree(in_d), cudaFree(rows_d), cudaFree(out_d);
    free(in), free(got), free(ref);
}

/* Preconditions are checked before anything is launched. */
static void test_preconditions(void)
{
    int32_t one = 1;
    CHECK(rr_attention_cuda(&one, NULL, (const rr_attn_tile *)&one, &one, 1, 1, 48, &one + 1,
                            RR_DTYPE_F16, 0) == cudaErrorInvalidValue);
    CHECK(rr_embed_ln_cuda(NULL, 1, &one, &one, &one, NULL, NULL, 0, 8, &one, RR_DTYPE_F16, 0) ==
          cudaErrorInvalidValue);
    CHECK(rr_bias_gelu_cuda(&one, (const float *)&one, 1, 1, RR_DTYPE_F32, 0) ==
          cudaErrorInvalidValue);
}

int main(void)
{
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev < 1)
        return test_skip("test_cuda_kernels", "no CUDA device");
    quick = getenv("RR_TEST_QUICK") != NULL;
    const char *env = getenv("RR_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    rng = seed * 2654435761u + 88172645463325252ull;
    printf("test_cuda_kernels: seed %llu (RR_TEST_SEED to repeat)\n", (unsigned long long)seed);

    cublasLtHandle_t lt;
    void *lt_ws = NULL;
    const size_t lt_ws_bytes = (size_t)32 << 20;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS ||
        cudaMalloc(&lt_ws, lt_ws_bytes) != cudaSuccess) {
        fprintf(stderr, "cublasLtCreate / workspace failed\n");
        return 1;
    }
    test_preconditions();
    const rr_dtype dts[] = {RR_DTYPE_F16, RR_DTYPE_BF16};
    for (int i = 0; i < 2; i++) {
        if (want("embed_ln")) test_embed_ln(dts[i]);
        if (want("linear")) test_linear(dts[i], lt, lt_ws, lt_ws_bytes);
        if (want("bias_residual_ln")) test_bias_residual_ln(dts[i]);
        if (want("bias_gelu")) test_bias_gelu(dts[i]);
        if (want("attention")) test_attention(dts[i]);
        if (want("head")) test_head_and_gather(dts[i]);
    }
    cublasLtDestroy(lt);
    cudaFree(lt_ws);
    return test_summary("test_cuda_kernels");
}
