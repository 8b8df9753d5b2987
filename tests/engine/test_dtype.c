/*
 * test_dtype.c — the quality of the CPU engine's reduced precisions (--dtype int8, bf16)
 * against its f32 reference and HF's fp32 logits, on the golden pairs of every model folder
 * present (tests/golden/<model>/pairs.jsonl: 9 passages per query for the BERT models, up to
 * 5 for XLM-R). Measured per model and asserted against the bounds the README states:
 *
 *   dtype  max |Δlogit| vs f32   mean Kendall τ-b per query   top-3 agreement
 *   int8   ≤ 1.2                 ≥ 0.88                        ≥ 0.85
 *   bf16   ≤ 0.2                 ≥ 0.92                        ≥ 0.93
 *
 * Measured here (Zen 4, AVX-512 VNNI/BF16), worst model of the four: int8 0.76 (minilm-l6-bert,
 * logits spread σ 2.5), τ 0.914 (xlmr-small), top-3 0.905; bf16 0.116, τ 0.971, top-3 0.989
 * (xlmr-small). With RERANK_CPU_ISA=avx2 (an AVX2 machine's kernels) int8 τ 0.912. τ counts
 * queries of 3 or more passages: xlmr-small's one 2-passage query (f32 logits 0.099 apart)
 * flips on the AVX2 kernels, and its τ of −1 alone took that model's mean to 0.70.
 * The int8 activations are asymmetric u8 per row: symmetric int8 measured 1.51 / τ 0.89 (the
 * GELU outputs feeding FF2 waste the negative half); keeping FF2 in f32 gained little (0.58 /
 * τ 0.94 on minilm-l6-bert, worse on ELECTRA) for a third of the int8 speed-up.
 *
 * Top-3 agreement: |top-3 by the dtype ∩ top-3 by f32| / 3, averaged over queries with more
 * than 3 passages. With 8 queries (xlmr-small) one more flipped pair moves the mean τ by
 * 0.025: the bounds keep that margin. The numbers measured are printed and quoted in the
 * README. int8 is the same on every x86-64 (its sums are exact integers; only the f32 parts
 * around them vary in the last bits); bf16 runs only where AVX512-BF16 exists and reports
 * "skipped" elsewhere. Under RR_TEST_QUICK only tiny-bert-random and xlmr-small, every pair.
 * Skips (77) when no model folder with golden pairs exists.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <sys/stat.h>

#include "golden.h"
#include "rerank.h"
#include "test.h"

#define BATCH_TOKENS 16384

typedef struct bound {
    rr_dtype dt;
    double max_dlogit, min_tau, min_top3;
} bound;

static const bound bounds[] = {{RR_DTYPE_INT8, 1.2, 0.88, 0.85}, {RR_DTYPE_BF16, 0.2, 0.92, 0.93}};

/* Scores every pair with e, in packed batches. */
static void score(rr_engine *e, const golden_pair *p, int n, float *logits)
{
    int32_t *tok = malloc(BATCH_TOKENS * sizeof *tok), *ty = malloc(BATCH_TOKENS * sizeof *ty);
    int32_t *cu = malloc((BATCH_TOKENS + 1) * sizeof *cu);
    int first = 0, n_seq = 0;
    cu[0] = 0;
    for (int i = 0; i <= n; i++) {
        if (i == n || cu[n_seq] + p[i].n > BATCH_TOKENS) {
            rr_batch b = {.n_seq = n_seq,
                          .n_tok = cu[n_seq],
                          .tokens = tok,
                          .type_ids = ty,
                          .cu_seqlens = cu};
            if (n_seq) CHECK(rr_engine_forward(e, &b, logits + first) == RR_OK);
            first += n_seq;
            n_seq = 0;
            if (i == n) break;
        }
        memcpy(tok + cu[n_seq], p[i].ids, (size_t)p[i].n * sizeof *tok);
        memcpy(ty + cu[n_seq], p[i].type_ids, (size_t)p[i].n * sizeof *ty);
        cu[n_seq + 1] = cu[n_seq] + p[i].n;
        n_seq++;
    }
    free(tok);
    free(ty);
    free(cu);
}

/* Kendall τ-b of a[] and b[] over n items. */
static double kendall(const float *a, const float *b, int n)
{
    long conc = 0, disc = 0, ta = 0, tb = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double da = (double)a[i] - a[j], db = (double)b[i] - b[j];
            if (da == 0 && db == 0) continue;
            if (da == 0)
                ta++;
            else if (db == 0)
                tb++;
            else if ((da > 0) == (db > 0))
                conc++;
            else
                disc++;
        }
    double den = sqrt((double)(conc + disc + ta) * (double)(conc + disc + tb));
    return den > 0 ? (double)(conc - disc) / den : 1.0;
}

/* |top-k of a ∩ top-k of b| / k. */
static double top_agree(const float *a, const float *b, int n, int k)
{
    int in_a[64] = {0}, common = 0;
    for (int r = 0; r < k; r++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!in_a[i] && (best < 0 || a[i] > a[best])) best = i;
        in_a[best] = 1;
    }
    int in_b[64] = {0};
    for (int r = 0; r < k; r++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!in_b[i] && (best < 0 || b[i] > b[best])) best = i;
        in_b[best] = 1;
        common += in_a[best];
    }
    return (double)common / k;
}

static int check_model(const char *name)
{
    char dir[1024];
    struct stat sb;
    snprintf(dir, sizeof dir, "%s/%s", RR_MODELS_DIR, name);
    if (stat(dir, &sb) != 0) return 0;
    golden_pair *p = NULL;
    int n_all = golden_pairs(name, &p);
    if (n_all <= 0) return 0;
    /* Always every pair, also under RR_TEST_QUICK: the bounds are means over queries, and a
     * third of xlmr-small's 8 queries measured bf16 τ 0.933 (one flip in a 5-passage query). */
    int n = n_all;
    rr_model *m = NULL;
    rr_error err = {0};
    CHECK_MSG(rr_model_load(dir, &m, &err) == RR_OK, "%s", err.msg);
    float *ref = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    rr_engine *e = NULL;
    rr_engine_opts o = {.device = -1, .max_batch_tokens = BATCH_TOKENS, .n_threads = 2};
    CHECK(rr_engine_init(m, &o, &e, &err) == RR_OK);
    score(e, p, n, ref);
    rr_engine_free(e);
    for (size_t bi = 0; bi < sizeof bounds / sizeof bounds[0]; bi++) {
        const bound *bd = &bounds[bi];
        o.dtype = bd->dt;
        e = NULL;
        rr_status s = rr_engine_init(m, &o, &e, &err);
        if (bd->dt == RR_DTYPE_BF16 && s == RR_E_UNSUPPORTED) {
            printf("%s bf16: skipped (%s)\n", name, err.msg);
            continue;
        }
        CHECK_MSG(s == RR_OK, "%s %s: %s", name, rr_dtype_name(bd->dt), err.msg);
        if (s != RR_OK) continue;
        score(e, p, n, got);
        rr_engine_free(e);
        double worst = 0.0, worst_hf = 0.0, tau_sum = 0.0, top_sum = 0.0, tau_min = 1.0;
        int n_q = 0, n_top = 0;
        for (int i = 0; i < n; i++) {
            worst = fmax(worst, fabs((double)got[i] - ref[i]));
            worst_hf = fmax(worst_hf, fabs((double)got[i] - p[i].logit));
        }
        for (int i = 0; i < n;) {
            int j = i;
            while (j < n && p[j].qid == p[i].qid)
                j++;
            if (j - i >= 3 && j - i <= 64) { /* a 2-passage τ is one pair's sign, ±1 */
                double t = kendall(got + i, ref + i, j - i);
                tau_sum += t;
                tau_min = fmin(tau_min, t);
                n_q++;
                if (j - i > 3) top_sum += top_agree(got + i, ref + i, j - i, 3), n_top++;
            }
            i = j;
        }
        const double tau = n_q ? tau_sum / n_q : 1.0, top = n_top ? top_sum / n_top : 1.0;
        printf("%s %s: %d pairs, %d queries: max |dlogit| vs f32 %.4f (vs HF fp32 %.4f), "
               "Kendall tau-b mean %.4f (min %.3f), top-3 agreement %.4f\n",
               name, rr_dtype_name(bd->dt), n, n_q, worst, worst_hf, tau, tau_min, top);
        CHECK_MSG(worst <= bd->max_dlogit, "%s %s: max |dlogit| %.4f over the bound %.2f", name,
                  rr_dtype_name(bd->dt), worst, bd->max_dlogit);
        CHECK_MSG(tau >= bd->min_tau, "%s %s: mean tau %.4f under the bound %.2f", name,
                  rr_dtype_name(bd->dt), tau, bd->min_tau);
        CHECK_MSG(top >= bd->min_top3, "%s %s: top-3 agreement %.4f under the bound %.2f", name,
                  rr_dtype_name(bd->dt), top, bd->min_top3);
    }
    free(ref);
    free(got);
    rr_model_free(m);
    golden_pairs_free(p, n_all);
    return 1;
}

int main(void)
{
    static const char *const names[] = {"minilm-l6-bert", "minilm-l6-electra", "tiny-bert-random",
                                        "xlmr-small"};
    int ran = 0;
    /* RR_TEST_QUICK (the sanitizer build, 14 min for all four there): the two small models,
     * each still with all its pairs, so the bounds keep their meaning. */
    const char *q = getenv("RR_TEST_QUICK");
    const int quick = q && *q && strcmp(q, "0") != 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!quick || strcmp(names[i], "tiny-bert-random") == 0 ||
            strcmp(names[i], "xlmr-small") == 0)
            ran += check_model(names[i]);
    if (!ran) return test_skip("test_dtype", "no model folder with golden pairs");
    return test_summary("test_dtype");
}
