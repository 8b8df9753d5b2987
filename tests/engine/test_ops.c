/*
 * test_ops.c — every CPU op of ops.h against an independent naive double-precision
 * implementation written here, on fresh random inputs (fixed seeds) and awkward shapes:
 * 1 token, lengths not divisible by 8/16, a 512-token sequence, uneven packed sequences,
 * d_head 32 and 64, attention restricted to q_rows.
 *
 * Tolerances (fp32 op vs double reference):
 *   element-wise and LayerNorm outputs: |got − ref| ≤ 1e-5 · (1 + |ref|);
 *   dot-product outputs (linear, attention, head): |got − ref| ≤ 1e-5 · (1 + Σ|terms|), the
 *   sum of absolute products being the condition number of the dot product (fp32 rounding
 *   grows like √K · 6e-8 of it; 1e-5 leaves margin for K up to 1536 with blocked sgemm).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/ops.h"
#include "test.h"
#include "util/util.h"

static uint64_t rng_state;

static double urand(void) /* uniform in [-1, 1) (splitmix64) */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static float *rand_vec(size_t n, double scale)
{
    float *v = rr_malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(urand() * scale);
    return v;
}

static double max_err; /* worst |got − ref| / allowed over one check group, for the log */

static int close_to(double got, double ref, double scale)
{
    double allowed = 1e-5 * (1.0 + scale);
    double e = fabs(got - ref) / allowed;
    if (e > max_err) max_err = e;
    return fabs(got - ref) <= allowed;
}

static void ln_ref(const double *x, const float *g, const float *b, double eps, int d, double *y)
{
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < d; i++)
        mean += x[i];
    mean /= d;
    for (int i = 0; i < d; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= d;
    for (int i = 0; i < d; i++)
        y[i] = (x[i] - mean) / sqrt(var + eps) * g[i] + b[i];
}

static double gelu_ref(double v)
{
    return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
}

/* Packed batches used by the sequence-aware ops. */
static const int shapes[][6] = {
    {1, 1}, {1, 7}, {3, 13, 1, 29}, {1, 512}, {4, 100, 3, 250, 17}, {5, 2, 31, 1, 64, 9},
};

static int build_cu(const int *shape, int32_t *cu)
{
    cu[0] = 0;
    for (int s = 0; s < shape[0]; s++)
        cu[s + 1] = cu[s] + shape[s + 1];
    return cu[shape[0]];
}

static void test_embed(void)
{
    const int vocab = 50, n_pos = 512, n_type = 2, d = 67;
    float *word = rand_vec((size_t)vocab * d, 1), *pos = rand_vec((size_t)n_pos * d, 1);
    float *type = rand_vec((size_t)n_type * d, 1), *g = rand_vec(d, 1), *b = rand_vec(d, 1);
    int32_t cu[8];
    max_err = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int n = build_cu(shapes[k], cu), n_seq = shapes[k][0];
        int32_t *tok = rr_malloc(n * sizeof *tok), *ty = rr_malloc(n * sizeof *ty);
        for (int t = 0; t < n; t++) {
            tok[t] = (int32_t)((urand() + 1) * 0.5 * vocab);
            ty[t] = urand() > 0 ? 1 : 0;
        }
        float *out = rr_malloc((size_t)n * d * sizeof *out);
        rr_embed_ln_cpu(tok, ty, NULL, cu, n_seq, n, word, pos, type, g, b, 1e-12f, d, out);
        double x[67], y[67];
        int bad = 0;
        for (int s = 0; s < n_seq; s++) {
            for (int t = cu[s]; t < cu[s + 1]; t++) {
                for (int i = 0; i < d; i++)
                    x[i] = (double)word[tok[t] * d + i] + type[ty[t] * d + i] +
                           pos[(t - cu[s]) * d + i];
                ln_ref(x, g, b, 1e-12, d, y);
                for (int i = 0; i < d; i++)
                    bad += !close_to(out[(size_t)t * d + i], y[i], fabs(y[i]));
            }
        }
        CHECK_MSG(bad == 0, "embed_ln shape %zu: %d elements off", k, bad);
        rr_free(tok);
        rr_free(ty);
        rr_free(out);
    }
    printf("embed_ln: worst error %.3f of tolerance\n", max_err);
    rr_free(word);
    rr_free(pos);
    rr_free(type);
    rr_free(g);
    rr_free(b);
}

static void test_linear(void)
{
    static const int dims[][3] = {{1, 384, 384},    {7, 32, 17},  {100, 384, 1536},
                                  {513, 1536, 384}, {33, 129, 1}, {16, 64, 1152}};
    max_err = 0;
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        int n = dims[k][0], n_in = dims[k][1], n_out = dims[k][2];
        float *x = rand_vec((size_t)n * n_in, 1), *w = rand_vec((size_t)n_out * n_in, 0.1);
        float *bias = rand_vec(n_out, 1), *y = rr_malloc((size_t)n * n_out * sizeof *y);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            rr_linear_cpu(x, w, with_bias ? bias : NULL, n, n_in, n_out, y);
            int bad = 0;
            for (int t = 0; t < n; t++) {
                for (int o = 0; o < n_out; o++) {
                    double acc = with_bias ? bias[o] : 0.0, mag = fabs(acc);
                    for (int i = 0; i < n_in; i++) {
                        double p = (double)x[(size_t)t * n_in + i] * w[(size_t)o * n_in + i];
                        acc += p;
                        mag += fabs(p);
                    }
                    bad += !close_to(y[(size_t)t * n_out + o], acc, mag);
                }
            }
            CHECK_MSG(bad == 0, "linear %dx%d->%d bias %d: %d elements off", n, n_in, n_out,
                      with_bias, bad);
        }
        rr_free(x);
        rr_free(w);
        rr_free(bias);
        rr_free(y);
    }
    printf("linear: worst error %.3f of tolerance\n", max_err);
}

static void test_elementwise(void)
{
    static const int dims[][2] = {{1, 384}, {7, 13}, {100, 1536}, {513, 384}};
    max_err = 0;
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        int n = dims[k][0], d = dims[k][1];
        size_t nd = (size_t)n * d;
        float *x = rand_vec(nd, 4), *res = rand_vec(nd, 4), *bias = rand_vec(d, 1);
        float *g = rand_vec(d, 1), *b = rand_vec(d, 1), *y = rr_malloc(nd * sizeof *y);
        double *row = rr_malloc((size_t)d * sizeof *row), *ref = rr_malloc((size_t)d * sizeof *ref);

        memcpy(y, x, nd * sizeof *y);
        rr_bias_residual_ln_cpu(y, bias, res, g, b, 1e-12f, n, d);
        int bad = 0;
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < d; i++)
                row[i] = (double)x[(size_t)t * d + i] + bias[i] + res[(size_t)t * d + i];
            ln_ref(row, g, b, 1e-12, d, ref);
            for (int i = 0; i < d; i++)
                bad += !close_to(y[(size_t)t * d + i], ref[i], fabs(ref[i]));
        }
        CHECK_MSG(bad == 0, "bias_residual_ln %dx%d: %d elements off", n, d, bad);

        memcpy(y, x, nd * sizeof *y);
        rr_bias_gelu_cpu(y, bias, n, d);
        bad = 0;
        for (size_t i = 0; i < nd; i++) {
            double r = gelu_ref((double)x[i] + bias[i % (size_t)d]);
            bad += !close_to(y[i], r, fabs(r));
        }
        CHECK_MSG(bad == 0, "bias_gelu %dx%d: %d elements off", n, d, bad);
        rr_free(x);
        rr_free(res);
        rr_free(bias);
        rr_free(g);
        rr_free(b);
        rr_free(y);
        rr_free(row);
        rr_free(ref);
    }
    printf("bias_residual_ln, bias_gelu: worst error %.3f of tolerance\n", max_err);
}

/* Naive double attention for one query row r of sequence s, head h → out[d_head]. */
/* GELU over a dense sweep of [-20, 20]: the erf approximation and its tails. */
static void test_gelu_sweep(void)
{
    const int n = 40001;
    float *x = rr_malloc(n * sizeof *x), zero[1] = {0.0f};
    double worst = 0.0;
    for (int i = 0; i < n; i++)
        x[i] = (float)(-20.0 + i * 0.001);
    float *y = rr_malloc(n * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    for (int i = 0; i < n; i++)
        rr_bias_gelu_cpu(y + i, zero, 1, 1);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        double r = gelu_ref(x[i]), e = fabs(y[i] - r);
        /* erf to 1.5e-7 absolute (A&S 7.1.26) plus ~3e-7 from evaluating it in fp32, scaled
         * by ½|x|, plus rounding of the result */
        if (e > worst) worst = e;
        bad += e > 5e-7 * 0.5 * fabs(x[i]) + 2.4e-7 * fabs(r) + 1e-30;
    }
    CHECK_MSG(bad == 0, "gelu sweep: %d values off (worst %.3g)", bad, worst);
    printf("gelu sweep [-20, 20]: max |gelu - gelu_erf(double)| = %.3g\n", worst);
    rr_free(x);
    rr_free(y);
}

static void attn_ref(const float *qkv, const int32_t *cu, int s, int r, int h, int n_head,
                     int d_head, double *out, double *mag)
{
    int d = n_head * d_head, start = cu[s], len = cu[s + 1] - start;
    size_t ld = 3 * (size_t)d;
    double p[512], mx = -INFINITY, sum = 0.0;
    for (int j = 0; j < len; j++) {
        double acc = 0.0;
        for (int c = 0; c < d_head; c++)
            acc +=
                (double)qkv[r * ld + h * d_head + c] * qkv[(start + j) * ld + d + h * d_head + c];
        p[j] = acc / sqrt((double)d_head);
        if (p[j] > mx) mx = p[j];
    }
    for (int j = 0; j < len; j++)
        sum += (p[j] = exp(p[j] - mx));
    for (int c = 0; c < d_head; c++) {
        out[c] = mag[c] = 0.0;
        for (int j = 0; j < len; j++) {
            double v = qkv[(start + j) * ld + 2 * d + h * d_head + c];
            out[c] += p[j] / sum * v;
            mag[c] += fabs(p[j] / sum * v);
        }
    }
}

static void test_attention(void)
{
    static const int heads[][2] = {{12, 32}, {2, 64}, {3, 64}};
    int32_t cu[8], q_rows[8];
    max_err = 0;
    for (size_t hk = 0; hk < sizeof heads / sizeof heads[0]; hk++) {
        int n_head = heads[hk][0], d_head = heads[hk][1], d = n_head * d_head;
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            int n = build_cu(shapes[k], cu), n_seq = shapes[k][0];
            /* Scale 3 gives peaked softmaxes, not just near-uniform ones. */
            float *qkv = rand_vec((size_t)n * 3 * d, 3.0);
            float *ctx = rr_malloc((size_t)n * d * sizeof *ctx);
            double out[64], mag[64];
            for (int mode = 0; mode < 3; mode++) {
                /* mode 0: every row; 1: q_rows = [CLS] rows; 2: q_rows = last row of each seq */
                for (int s = 0; s < n_seq; s++)
                    q_rows[s] = mode == 1 ? cu[s] : cu[s + 1] - 1;
                rr_attention_cpu(qkv, cu, n_seq, n_head, d_head, mode ? q_rows : NULL, ctx, 2, NULL,
                                 0);
                int bad = 0;
                for (int s = 0; s < n_seq; s++) {
                    int r0 = mode ? q_rows[s] : cu[s], r1 = mode ? q_rows[s] + 1 : cu[s + 1];
                    for (int r = r0; r < r1; r++) {
                        int orow = mode ? s : r;
                        for (int h = 0; h < n_head; h++) {
                            attn_ref(qkv, cu, s, r, h, n_head, d_head, out, mag);
                            for (int c = 0; c < d_head; c++)
                                bad += !close_to(ctx[(size_t)orow * d + h * d_head + c], out[c],
                                                 mag[c]);
                        }
                    }
                }
                CHECK_MSG(bad == 0, "attention heads %dx%d shape %zu mode %d: %d elements off",
                          n_head, d_head, k, mode, bad);
            }
            rr_free(qkv);
            rr_free(ctx);
        }
    }
    printf("attention: worst error %.3f of tolerance\n", max_err);
}

static void test_head(void)
{
    const int d = 96, n_labels = 3;
    int32_t cu[8];
    max_err = 0;
    for (int electra = 0; electra < 2; electra++) {
        for (int packed = 0; packed < 2; packed++) {
            int n = build_cu(shapes[4], cu), n_seq = shapes[4][0];
            float *hid = rand_vec((size_t)n * d, 2), *dw = rand_vec((size_t)d * d, 0.2);
            float *db = rand_vec(d, 1), *ow = rand_vec((size_t)n_labels * d, 0.5);
            float *ob = rand_vec(n_labels, 1), logits[16];
            rr_head_cpu(hid, cu, n_seq, packed, d, n_labels, dw, db, ow, ob, electra, logits);
            int bad = 0;
            for (int s = 0; s < n_seq; s++) {
                const float *x = hid + (size_t)(packed ? s : cu[s]) * d;
                double h[96];
                for (int i = 0; i < d; i++) {
                    double acc = db[i];
                    for (int k = 0; k < d; k++)
                        acc += (double)dw[i * d + k] * x[k];
                    h[i] = electra ? gelu_ref(acc) : tanh(acc);
                }
                for (int l = 0; l < n_labels; l++) {
                    double acc = ob[l], mag = fabs(ob[l]);
                    for (int k = 0; k < d; k++) {
                        acc += ow[l * d + k] * h[k];
                        mag += fabs(ow[l * d + k] * h[k]);
                    }
                    bad += !close_to(logits[s * n_labels + l], acc, mag);
                }
            }
            CHECK_MSG(bad == 0, "head electra %d packed %d: %d logits off", electra, packed, bad);
            rr_free(hid);
            rr_free(dw);
            rr_free(db);
            rr_free(ow);
            rr_free(ob);
        }
    }
    printf("head: worst error %.3f of tolerance\n", max_err);
}

int main(void)
{
    rng_state = 20261128;
    test_embed();
    test_linear();
    test_elementwise();
    test_gelu_sweep();
    test_attention();
    test_head();
    return test_summary("test_ops");
}
