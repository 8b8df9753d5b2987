/*
 * ops_cpu.c — the fp32 CPU reference ops declared in ops.h, one function per op.
 *
 * Numerics follow PyTorch's eval-mode BERT (spec §4): embeddings summed as
 * (word + type) + position, LayerNorm with biased variance and eps inside the sqrt (its
 * statistics accumulated in double so the reference is not the noisy side of a comparison),
 * exact-erf GELU and max-subtracted softmax (both through a vectorizable exp, see exp_vec:
 * libm's scalar erff/expf were 20% of the forward time), GEMMs through OpenBLAS. Every row is
 * computed by the same instruction sequence whatever its neighbours, so a pair's result does not
 * depend on the rest of its batch (the GEMMs are the only part we do not control; see
 * tests/engine/test_batch_invariance.c for the measured bound).
 *
 * Threading: attention splits (sequence, head) work items over n_threads OpenMP threads;
 * the other element-wise ops use the OpenMP default team, which the CPU engine sets to its
 * thread count before each forward. Stack VLAs hold per-row scratch (a row of attention
 * scores, one hidden vector of the head) because ops must not allocate.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <string.h>

#include "engine/gemm_cpu.h"
#include "engine/ops.h"

/* Hot kernels are compiled three times — baseline x86-64, AVX2+FMA, x86-64-v4 (AVX-512) — and
 * picked per call from rr_cpu_caps_get(), the choice the GEMM kernels make (gemm_cpu.h), so
 * RERANK_CPU_ISA=avx2 moves the whole engine to its AVX2 code. That matters for bitwise
 * comparisons between a process under valgrind (no AVX-512) and a native one: the vector
 * width changes the order of these kernels' reductions (softmax sums, LayerNorm moments),
 * so their last bits differ between widths. (GCC's target_clones picked at load time, out of
 * the tests' reach.) Measured (bench/cpu/compare.py quick, 2 threads, Zen 4), adding the
 * AVX-512 variant: ORT fused ÷ rerankd at 512-token pairs 1.01× → 1.11×, K = 10 1.07× → 1.17×. */
#define RR_BODY static inline __attribute__((always_inline))
#if defined(__x86_64__) && defined(__GNUC__)
#define RR_VARIANTS(name, params, args)                                                            \
    __attribute__((target("arch=x86-64-v4"))) static void name##_v4 params                         \
    {                                                                                              \
        name##_body args;                                                                          \
    }                                                                                              \
    __attribute__((target("avx2,fma"))) static void name##_v3 params                               \
    {                                                                                              \
        name##_body args;                                                                          \
    }                                                                                              \
    static void name##_v0 params                                                                   \
    {                                                                                              \
        name##_body args;                                                                          \
    }                                                                                              \
    static void name params                                                                        \
    {                                                                                              \
        const rr_cpu_isa isa = rr_cpu_caps_get().isa;                                              \
        if (isa == RR_ISA_AVX512)                                                                  \
            name##_v4 args;                                                                        \
        else if (isa == RR_ISA_AVX2)                                                               \
            name##_v3 args;                                                                        \
        else                                                                                       \
            name##_v0 args;                                                                        \
    }
#else
#define RR_VARIANTS(name, params, args)                                                            \
    static void name params                                                                        \
    {                                                                                              \
        name##_body args;                                                                          \
    }
#endif

/* Below this many elements an OpenMP team costs more than it saves. */
#define RR_OMP_MIN_ELEMS 32768

/* y = LayerNorm(x) over d values; y may alias x. */
RR_BODY void layer_norm_row_body(const float *x, const float *gamma, const float *beta, float eps,
                                 int d, float *y)
{
    double sum = 0.0, sq = 0.0;
    for (int i = 0; i < d; i++)
        sum += x[i];
    double mean = sum / d;
    for (int i = 0; i < d; i++) {
        double c = x[i] - mean;
        sq += c * c;
    }
    double rstd = 1.0 / sqrt(sq / d + (double)eps);
    for (int i = 0; i < d; i++)
        y[i] = (float)((x[i] - mean) * rstd) * gamma[i] + beta[i];
}
RR_VARIANTS(layer_norm_row,
            (const float *x, const float *gamma, const float *beta, float eps, int d, float *y),
            (x, gamma, beta, eps, d, y))

/* e^x to ~2 ulp, written so loops over it vectorize (libm's expf does not): x = n·ln2 + r
 * with |r| ≤ ln2/2 (Cody–Waite split of ln2), e^r by its degree-7 Taylor polynomial
 * (truncation < 6e-9 relative), 2^n through the exponent bits. Inputs are clamped to
 * [−87, 88]; e^−87 ≈ 1.6e-38 stands in for anything smaller (it only ever meets sums ≥ 1). */
static inline float exp_vec(float x)
{
    x = x < -87.0f ? -87.0f : x; /* two unconditional selects: if-converted, vectorized */
    x = x > 88.0f ? 88.0f : x;
    const float shifter = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693145751953125f - n * 1.42860682030941723e-6f;
    float p =
        1.0f +
        r * (1.0f +
             r * (0.5f +
                  r * (1.0f / 6 +
                       r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* GELU(v) = v·Φ(v) = ½·v·(1 + erf(v/√2)), the exact-erf form (not the tanh approximation).
 * erfc(|x|) comes from Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7, below fp32 resolution of
 * 1 + erf), the approximation PyTorch's vectorized CPU GELU also uses; taking erfc directly
 * keeps the negative tail accurate instead of cancelling 1 − erf. Measured against double
 * erf in tests/engine/test_ops.c. */
static inline float gelu_erf(float v)
{
    float ax = fabsf(v) * 0.70710678118654752440f;
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly =
        t * (0.254829592f +
             t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float erfc = poly * exp_vec(-ax * ax);
    return 0.5f * v * (v < 0.0f ? erfc : 2.0f - erfc);
}

void rr_embed_ln_cpu(const int32_t *tokens, const int32_t *type_ids, const int32_t *positions,
                     const int32_t *cu_seqlens, int n_seq, int n_tok, const float *word,
                     const float *pos, const float *type, const float *gamma, const float *beta,
                     float eps, int d, float *out)
{
#pragma omp parallel for schedule(static) if ((long)n_tok * d >= RR_OMP_MIN_ELEMS)
    for (int t = 0; t < n_tok; t++) {
        /* The sequence holding t: the last s with cu_seqlens[s] <= t. */
        int lo = 0, hi = n_seq - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (cu_seqlens[mid] <= t)
                lo = mid;
            else
                hi = mid - 1;
        }
        int p = positions ? positions[t] : t - cu_seqlens[lo];
        const float *w = word + (size_t)tokens[t] * d, *ty = type + (size_t)type_ids[t] * d;
        const float *ps = pos + (size_t)p * d;
        float *o = out + (size_t)t * d;
        for (int i = 0; i < d; i++)
            o[i] = (w[i] + ty[i]) + ps[i];
        layer_norm_row(o, gamma, beta, eps, d, o);
    }
}

void rr_linear_cpu(const float *x, const float *w, const float *bias, int n_tok, int n_in,
                   int n_out, float *y)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_tok, n_out, n_in, 1.0f, x, n_in, w, n_in,
                0.0f, y, n_out);
    if (!bias) return;
#pragma omp parallel for schedule(static) if ((long)n_tok * n_out >= RR_OMP_MIN_ELEMS)
    for (int t = 0; t < n_tok; t++) {
        float *r = y + (size_t)t * n_out;
        for (int i = 0; i < n_out; i++)
            r[i] += bias[i];
    }
}

void rr_bias_residual_ln_cpu(float *x, const float *bias, const float *residual, const float *gamma,
                             const float *beta, float eps, int n_tok, int d)
{
#pragma omp parallel for schedule(static) if ((long)n_tok * d >= RR_OMP_MIN_ELEMS)
    for (int t = 0; t < n_tok; t++) {
        float *r = x + (size_t)t * d;
        const float *res = residual + (size_t)t * d;
        for (int i = 0; i < d; i++)
            r[i] = (r[i] + bias[i]) + res[i];
        layer_norm_row(r, gamma, beta, eps, d, r);
    }
}

RR_BODY void bias_gelu_row_body(float *r, const float *bias, int d)
{
#pragma omp simd
    for (int i = 0; i < d; i++)
        r[i] = gelu_erf(r[i] + bias[i]);
}
RR_VARIANTS(bias_gelu_row, (float *r, const float *bias, int d), (r, bias, d))

void rr_bias_gelu_cpu(float *x, const float *bias, int n_tok, int d)
{
#pragma omp parallel for schedule(static) if ((long)n_tok * d >= RR_OMP_MIN_ELEMS)
    for (int t = 0; t < n_tok; t++)
        bias_gelu_row(x + (size_t)t * d, bias, d);
}

/* Attention of one head over one sequence for the query rows q[0..RR_QB) (stride ld),
 * writing o[r] (stride ldo). kt is the head's keys transposed, [d_head][len]: the scores of
 * a 16-key chunk for the four rows then accumulate in 4×16 registers over c, with one
 * contiguous key load per c and no horizontal sums. Against four dot products per key
 * (the previous version) attention went from 17% to 11.5% of the engine's perf profile and
 * the engine bench from 3.53–3.85 s to 3.34–3.49 s (bench/cpu, 128 pairs, 2 threads,
 * interleaved runs). The context loop keeps 4×16 accumulators too; both keep constant
 * trip counts on full chunks, or GCC spills the sums to the stack. A row's result does not
 * depend on the other rows of its block, and every sum runs in a fixed order (c ascending,
 * j ascending), so a pair's scores do not depend on its batch. p is scratch for RR_QB × len
 * scores. */
#define RR_QB 4
#define RR_CW 16
#define RR_KT_MAX ((size_t)64 * 512)

/* Context columns c0 .. c0+cw (cw ≤ RR_CW) of the four rows: o[r] = Σ_j p_r[j] v[j]. Inlined
 * with cw = RR_CW for full chunks, where the constant trip count keeps the sums in registers. */
static inline __attribute__((always_inline)) void
ctx_chunk(const float *p, int len, const float *v0, size_t ld, int c0, int cw, float *o, size_t ldo)
{
    float acc[RR_QB][RR_CW] = {{0.0f}};
    for (int j = 0; j < len; j++) {
        const float *v = v0 + (size_t)j * ld + c0;
        const float w0 = p[j], w1 = p[len + j], w2 = p[2 * len + j], w3 = p[3 * len + j];
#pragma omp simd
        for (int c = 0; c < cw; c++) {
            acc[0][c] += w0 * v[c];
            acc[1][c] += w1 * v[c];
            acc[2][c] += w2 * v[c];
            acc[3][c] += w3 * v[c];
        }
    }
    for (int r = 0; r < RR_QB; r++)
        for (int c = 0; c < cw; c++)
            o[(size_t)r * ldo + c0 + c] = acc[r][c];
}
RR_BODY void attend_block_body(const float *q, const float *kt, const float *v0, size_t ld, int len,
                               int d_head, float scale, float *p, float *o, size_t ldo)
{
    const float *q0 = q, *q1 = q + ld, *q2 = q + 2 * ld, *q3 = q + 3 * ld;
    float *p0 = p, *p1 = p + len, *p2 = p + 2 * len, *p3 = p + 3 * len;
    int j0 = 0;
    /* Full 16-key chunks: constant trip counts, so the 4×16 sums stay in registers. */
    for (; j0 + RR_CW <= len; j0 += RR_CW) {
        float a0[RR_CW] = {0}, a1[RR_CW] = {0}, a2[RR_CW] = {0}, a3[RR_CW] = {0};
        for (int c = 0; c < d_head; c++) {
            const float *k = kt + (size_t)c * len + j0;
            const float b0 = q0[c], b1 = q1[c], b2 = q2[c], b3 = q3[c];
#pragma omp simd
            for (int j = 0; j < RR_CW; j++) {
                a0[j] += b0 * k[j];
                a1[j] += b1 * k[j];
                a2[j] += b2 * k[j];
                a3[j] += b3 * k[j];
            }
        }
        for (int j = 0; j < RR_CW; j++) {
            p0[j0 + j] = a0[j] * scale;
            p1[j0 + j] = a1[j] * scale;
            p2[j0 + j] = a2[j] * scale;
            p3[j0 + j] = a3[j] * scale;
        }
    }
    /* The last keys: the same sums in the same order, one key at a time. */
    for (; j0 < len; j0++) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        for (int c = 0; c < d_head; c++) {
            const float k = kt[(size_t)c * len + j0];
            a0 += q0[c] * k;
            a1 += q1[c] * k;
            a2 += q2[c] * k;
            a3 += q3[c] * k;
        }
        p0[j0] = a0 * scale;
        p1[j0] = a1 * scale;
        p2[j0] = a2 * scale;
        p3[j0] = a3 * scale;
    }
    for (int r = 0; r < RR_QB; r++) {
        float *pr = p + (size_t)r * len, mx = -INFINITY, sum = 0.0f;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < len; j++)
            mx = pr[j] > mx ? pr[j] : mx;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < len; j++)
            sum += (pr[j] = exp_vec(pr[j] - mx));
        const float inv = 1.0f / sum;
        for (int j = 0; j < len; j++)
            pr[j] *= inv;
    }
    for (int c0 = 0; c0 < d_head; c0 += RR_CW) {
        if (d_head - c0 >= RR_CW)
            ctx_chunk(p, len, v0, ld, c0, RR_CW, o, ldo);
        else
            ctx_chunk(p, len, v0, ld, c0, d_head - c0, o, ldo);
    }
}
RR_VARIANTS(attend_block,
            (const float *q, const float *kt, const float *v0, size_t ld, int len, int d_head,
             float scale, float *p, float *o, size_t ldo),
            (q, kt, v0, ld, len, d_head, scale, p, o, ldo))

/* One query row (sequence tails and the last layer's [CLS] rows), keys read in place: a
 * single row does not pay back a transpose. */
RR_BODY void attend_row_body(const float *q, const float *k0, const float *v0, size_t ld, int len,
                             int d_head, float scale, float *p, float *o)
{
    float mx = -INFINITY, sum = 0.0f;
    for (int j = 0; j < len; j++) {
        const float *k = k0 + (size_t)j * ld;
        float a = 0.0f;
#pragma omp simd reduction(+ : a)
        for (int c = 0; c < d_head; c++)
            a += q[c] * k[c];
        p[j] = a * scale;
        mx = p[j] > mx ? p[j] : mx;
    }
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < len; j++)
        sum += (p[j] = exp_vec(p[j] - mx));
    const float inv = 1.0f / sum;
    for (int c = 0; c < d_head; c++)
        o[c] = 0.0f;
    for (int j = 0; j < len; j++) {
        const float *v = v0 + (size_t)j * ld;
        const float w = p[j] * inv;
#pragma omp simd
        for (int c = 0; c < d_head; c++)
            o[c] += w * v[c];
    }
}
RR_VARIANTS(attend_row,
            (const float *q, const float *k0, const float *v0, size_t ld, int len, int d_head,
             float scale, float *p, float *o),
            (q, k0, v0, ld, len, d_head, scale, p, o))

void rr_attention_cpu(const float *qkv, const int32_t *cu_seqlens, int n_seq, int n_head,
                      int d_head, const int32_t *q_rows, float *ctx, int n_threads,
                      float *kt_scratch, size_t kt_cap)
{
    const int d_model = n_head * d_head;
    const size_t ld = 3 * (size_t)d_model;
    const float scale = 1.0f / sqrtf((float)d_head);

#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads > 0 ? n_threads : 1)
    for (int item = 0; item < n_seq * n_head; item++) {
        const int s = item / n_head, h = item % n_head;
        const int start = cu_seqlens[s], len = cu_seqlens[s + 1] - start;
        const float *k0 = qkv + (size_t)start * ld + d_model + (size_t)h * d_head;
        const float *v0 = k0 + d_model;
        float p[RR_QB * len];

        if (q_rows) {
            attend_row(qkv + (size_t)q_rows[s] * ld + (size_t)h * d_head, k0, v0, ld, len, d_head,
                       scale, p, ctx + (size_t)s * d_model + (size_t)h * d_head);
            continue;
        }
        int r = start;
        const size_t kt_n = (size_t)d_head * len;
        if (len >= RR_QB && (kt_n <= RR_KT_MAX || kt_n <= kt_cap)) {
            /* The keys transposed once per (sequence, head): on the thread's stack up to
             * RR_KT_MAX floats (64 × 512 for BERT-base), beyond that in the caller's scratch
             * (kt_cap floats per thread; the CPU engine sizes it for its longest sequence,
             * 8192 × 64 for bge-reranker-v2-m3). A sequence longer than both takes the
             * one-row path. Which path a sequence takes depends on its length and the
             * engine's fixed scratch only, so batch invariance holds either way. */
            float kt_stack[kt_n <= RR_KT_MAX ? kt_n : 1];
            float *kt =
                kt_n <= RR_KT_MAX ? kt_stack : kt_scratch + (size_t)omp_get_thread_num() * kt_cap;
            for (int j = 0; j < len; j++)
                for (int c = 0; c < d_head; c++)
                    kt[(size_t)c * len + j] = k0[(size_t)j * ld + c];
            for (; r + RR_QB <= start + len; r += RR_QB)
                attend_block(qkv + (size_t)r * ld + (size_t)h * d_head, kt, v0, ld, len, d_head,
                             scale, p, ctx + (size_t)r * d_model + (size_t)h * d_head,
                             (size_t)d_model);
        }
        for (; r < start + len; r++)
            attend_row(qkv + (size_t)r * ld + (size_t)h * d_head, k0, v0, ld, len, d_head, scale, p,
                       ctx + (size_t)r * d_model + (size_t)h * d_head);
    }
}

void rr_head_cpu(const float *hidden, const int32_t *cu_seqlens, int n_seq, int cls_rows_packed,
                 int d_model, int n_labels, const float *dense_w, const float *dense_b,
                 const float *out_w, const float *out_b, int electra, float *logits)
{
    for (int s = 0; s < n_seq; s++) {
        const float *x = hidden + (size_t)(cls_rows_packed ? s : cu_seqlens[s]) * d_model;
        float h[d_model];
        for (int i = 0; i < d_model; i++) {
            const float *w = dense_w + (size_t)i * d_model;
            double acc = 0.0;
            for (int k = 0; k < d_model; k++)
                acc += (double)w[k] * x[k];
            float v = (float)acc + dense_b[i];
            h[i] = electra ? gelu_erf(v) : tanhf(v);
        }
        for (int l = 0; l < n_labels; l++) {
            const float *w = out_w + (size_t)l * d_model;
            double acc = 0.0;
            for (int k = 0; k < d_model; k++)
                acc += (double)w[k] * h[k];
            logits[(size_t)s * n_labels + l] = (float)acc + out_b[l];
        }
    }
}
