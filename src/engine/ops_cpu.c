/*
 * ops_cpu.c — the fp32 CPU reference ops declared in ops.h, one function per op.
 *
 * Numerics follow PyTorch's eval-mode BERT (spec §4): embeddings summed as
 * (word + type) + position, LayerNorm with biased variance and eps inside the sqrt (its
 * statistics accumulated in double so the reference is not the noisy side of a comparison),
 * exact erf GELU, max-subtracted softmax, GEMMs through OpenBLAS. Every row is computed by
 * the same instruction sequence whatever its neighbours, so a pair's result does not depend
 * on the rest of its batch (the GEMMs are the only part we do not control; see
 * tests/engine/test_batch_invariance.c for the measured bound).
 *
 * Threading: attention splits (sequence, head) work items over n_threads OpenMP threads;
 * the other element-wise ops use the OpenMP default team, which the CPU engine sets to its
 * thread count before each forward. Stack VLAs hold per-row scratch (a row of attention
 * scores, one hidden vector of the head) because ops must not allocate.
 */
#include <cblas.h>
#include <math.h>
#include <stddef.h>

#include "engine/ops.h"

/* Below this many elements an OpenMP team costs more than it saves. */
#define RR_OMP_MIN_ELEMS 32768

/* y = LayerNorm(x) over d values; y may alias x. */
static void layer_norm_row(const float *x, const float *gamma, const float *beta, float eps,
                           int d, float *y)
{
    double sum = 0.0, sq = 0.0;
    for (int i = 0; i < d; i++) sum += x[i];
    double mean = sum / d;
    for (int i = 0; i < d; i++) {
        double c = x[i] - mean;
        sq += c * c;
    }
    double rstd = 1.0 / sqrt(sq / d + (double)eps);
    for (int i = 0; i < d; i++) y[i] = (float)((x[i] - mean) * rstd) * gamma[i] + beta[i];
}

static float gelu_erf(float v)
{
    return v * 0.5f * (1.0f + erff(v * 0.70710678118654752440f));
}

void rr_embed_ln_cpu(const int32_t *tokens, const int32_t *type_ids, const int32_t *cu_seqlens,
                     int n_seq, int n_tok, const float *word, const float *pos, const float *type,
                     const float *gamma, const float *beta, float eps, int d, float *out)
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
        int p = t - cu_seqlens[lo];
        const float *w = word + (size_t)tokens[t] * d, *ty = type + (size_t)type_ids[t] * d;
        const float *ps = pos + (size_t)p * d;
        float *o = out + (size_t)t * d;
        for (int i = 0; i < d; i++) o[i] = (w[i] + ty[i]) + ps[i];
        layer_norm_row(o, gamma, beta, eps, d, o);
    }
}

void rr_linear_cpu(const float *x, const float *w, const float *bias, int n_tok, int n_in,
                   int n_out, float *y)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_tok, n_out, n_in, 1.0f, x, n_in, w,
                n_in, 0.0f, y, n_out);
    if (!bias) return;
#pragma omp parallel for schedule(static) if ((long)n_tok * n_out >= RR_OMP_MIN_ELEMS)
    for (int t = 0; t < n_tok; t++) {
        float *r = y + (size_t)t * n_out;
        for (int i = 0; i < n_out; i++) r[i] += bias[i];
    }
}

void rr_bias_residual_ln_cpu(float *x, const float *bias, const float *residual,
                             const float *gamma, const float *beta, float eps, int n_tok, int d)
{
#pragma omp parallel for schedule(static) if ((long)n_tok * d >= RR_OMP_MIN_ELEMS)
    for (int t = 0; t < n_tok; t++) {
        float *r = x + (size_t)t * d;
        const float *res = residual + (size_t)t * d;
        for (int i = 0; i < d; i++) r[i] = (r[i] + bias[i]) + res[i];
        layer_norm_row(r, gamma, beta, eps, d, r);
    }
}

void rr_bias_gelu_cpu(float *x, const float *bias, int n_tok, int d)
{
#pragma omp parallel for schedule(static) if ((long)n_tok * d >= RR_OMP_MIN_ELEMS)
    for (int t = 0; t < n_tok; t++) {
        float *r = x + (size_t)t * d;
        for (int i = 0; i < d; i++) r[i] = gelu_erf(r[i] + bias[i]);
    }
}

void rr_attention_cpu(const float *qkv, const int32_t *cu_seqlens, int n_seq, int n_head,
                      int d_head, const int32_t *q_rows, float *ctx, int n_threads)
{
    const int d_model = n_head * d_head;
    const size_t ld = 3 * (size_t)d_model;
    const float scale = 1.0f / sqrtf((float)d_head);

#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads > 0 ? n_threads : 1)
    for (int item = 0; item < n_seq * n_head; item++) {
        const int s = item / n_head, h = item % n_head;
        const int start = cu_seqlens[s], len = cu_seqlens[s + 1] - start;
        const int r0 = q_rows ? q_rows[s] : start, r1 = q_rows ? q_rows[s] + 1 : start + len;
        const float *k0 = qkv + (size_t)start * ld + d_model + (size_t)h * d_head;
        const float *v0 = k0 + d_model;
        float p[len];

        for (int r = r0; r < r1; r++) {
            const float *q = qkv + (size_t)r * ld + (size_t)h * d_head;
            float *o = ctx + (size_t)(q_rows ? s : r) * d_model + (size_t)h * d_head;
            float mx = -INFINITY;
            for (int j = 0; j < len; j++) {
                const float *k = k0 + (size_t)j * ld;
                float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                for (int c = 0; c < d_head; c++) acc += q[c] * k[c];
                p[j] = acc * scale;
                mx = p[j] > mx ? p[j] : mx;
            }
            float sum = 0.0f;
            for (int j = 0; j < len; j++) {
                p[j] = expf(p[j] - mx);
                sum += p[j];
            }
            const float inv = 1.0f / sum;
            for (int c = 0; c < d_head; c++) o[c] = 0.0f;
            for (int j = 0; j < len; j++) {
                const float *v = v0 + (size_t)j * ld;
                const float pj = p[j] * inv;
                for (int c = 0; c < d_head; c++) o[c] += pj * v[c];
            }
        }
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
            for (int k = 0; k < d_model; k++) acc += (double)w[k] * x[k];
            float v = (float)acc + dense_b[i];
            h[i] = electra ? gelu_erf(v) : tanhf(v);
        }
        for (int l = 0; l < n_labels; l++) {
            const float *w = out_w + (size_t)l * d_model;
            double acc = 0.0;
            for (int k = 0; k < d_model; k++) acc += (double)w[k] * h[k];
            logits[(size_t)s * n_labels + l] = (float)acc + out_b[l];
        }
    }
}
