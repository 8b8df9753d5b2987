/*
 * test_cuda_model.c — the whole model, CUDA engine vs CPU engine (the fp32 reference).
 *
 * Inputs: the golden pairs of tests/golden/minilm-l6-bert/pairs.jsonl (HF-tokenized, grouped
 * by qid) when present, else seeded random pairs (16-token query, 20…200-token passage, 10
 * passages per query) — the comparison needs only the CPU engine, not the golden logits,
 * which are reported when present. For each model present in RR_MODELS_DIR:
 *   - fp16: max |cuda − cpu| over all pairs ≤ 2e-2 (issue 4), and the same top-10 ranking per
 *     query up to ties at fp16 resolution: a rank may differ only between pairs whose CPU
 *     logits are within twice the measured max |cuda − cpu| (counted and printed);
 *   - bf16: the max difference is printed and held to a sanity bound of 0.25 (a CPU
 *     emulation of the engine's rounding, bench/gpu/emulate/precision.py, predicts ~0.06;
 *     a broken bf16 path is off by whole units);
 *   - batch invariance (fp16): every pair of the first 64 alone (a graph bucket) vs inside a
 *     64-pair batch, in reverse order, and inside a >64-pair batch (the eager path); the
 *     bound reached is printed and held to 2e-2 (cuBLAS may choose another algorithm for
 *     another M, so bitwise equality is not promised; the count of bitwise-equal pairs is
 *     printed);
 *   - graph buckets with several sequences (fp16): batches of 2, 3, 7, 16, 31 and 64 pairs
 *     capped at 4096 tokens, so they replay captured graphs with padded tails, each vs the
 *     CPU (2e-2) and replayed again after an eager batch left stale rows (bitwise equal).
 * Models: minilm-l6-bert (d_head 32), minilm-l6-electra, tiny-bert-random (d_head 64), and
 * minilm-l6-bert-h6 when present (the same weights read as 6 heads of 64, which
 * bench/gpu/gpu-check.sh makes on the device: a d_head-64 model at no extra carry size), and
 * xlmr-long (XLM-R: positions from pad + 1, 2 layers, pairs up to 8192 tokens) when present.
 * Without a device: exit 77; without any model: exit 77.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cuda_runtime_api.h>

#include "rerank.h"
#include "test.h"

#define MAX_PAIRS 4096

/* test_cuda_model_host (built with RR_CUDA_HOST_EMULATION, label "cuda"): this file against
 * the engine's own source run on the CPU through the fake CUDA runtime and cuBLAS of
 * tests/cuda/host, some 10^4 times slower than a device. So there: a 512-token workspace
 * (graph buckets 128…512 tokens × 1…64 sequences, which keeps the warm-up forwards at
 * create small; every batch then fits a bucket, so the eager path runs only in those
 * warm-ups), tiny-bert-random only, and a subset of its golden pairs (below: HOST_PAIRS
 * short ones and one of 512 tokens; RR_TEST_QUICK=1, the sanitizer stage: 8 short ones
 * and two of the six graph-sweep batch sizes); every check below is the same. */
#ifdef RR_CUDA_HOST_EMULATION
#define MAX_TOKENS 512
#define HOST_PAIRS(quick) ((quick) ? 8 : 16)
#else
#define MAX_TOKENS 16384
#endif
/* Batches of the graph-bucket sweep stay within the largest bucket. */
#define GRAPH_TOKENS (MAX_TOKENS < 4096 ? MAX_TOKENS : 4096)

typedef struct pair {
    int qid, n;
    int32_t *ids, *types;
    float golden; /* NAN when not from the golden file */
} pair;

typedef struct pairs {
    pair p[MAX_PAIRS];
    int n;
} pairs;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static int read_int_array(const cJSON *a, int32_t **out)
{
    int n = cJSON_GetArraySize(a);
    *out = malloc((n > 0 ? n : 1) * sizeof **out);
    for (int i = 0; i < n; i++)
        (*out)[i] = (int32_t)cJSON_GetArrayItem(a, i)->valuedouble;
    return n;
}

/* Golden pairs, or 0 when the file is absent. */
static int load_golden(const char *path, pairs *ps)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    static char line[1 << 20];
    while (ps->n < MAX_PAIRS && fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        if (!o) continue;
        pair *p = &ps->p[ps->n];
        const cJSON *ids = cJSON_GetObjectItem(o, "input_ids");
        const cJSON *tt = cJSON_GetObjectItem(o, "token_type_ids");
        const cJSON *qid = cJSON_GetObjectItem(o, "qid"), *lg = cJSON_GetObjectItem(o, "logit");
        if (cJSON_IsArray(ids) && cJSON_IsArray(tt) && cJSON_IsNumber(qid)) {
            p->n = read_int_array(ids, &p->ids);
            int nt = read_int_array(tt, &p->types);
            p->qid = qid->valueint;
            p->golden = cJSON_IsNumber(lg) ? (float)lg->valuedouble : NAN;
            if (nt == p->n && p->n >= 1)
                ps->n++;
            else
                free(p->ids), free(p->types);
        }
        cJSON_Delete(o);
    }
    fclose(f);
    return ps->n;
}

/* Seeded random pairs: [CLS] q(16) [SEP] d(20…200) [SEP], 10 docs per query. */
static void make_random(const rr_model *m, pairs *ps, int n_pairs)
{
    const rr_tokenizer *t = rr_model_tokenizer(m);
    const int vocab = rr_model_get_info(m)->vocab_size;
    const int32_t cls = rr_tokenizer_cls_id(t), sep = rr_tokenizer_sep_id(t);
    int32_t q[16] = {0}; /* set on i == 0; initialised for -O3 -Wmaybe-uninitialized */
    for (int i = 0; i < n_pairs && ps->n < MAX_PAIRS; i++) {
        if (i % 10 == 0)
            for (int k = 0; k < 16; k++)
                q[k] = 1000 + (int32_t)(rnd() % (uint32_t)(vocab - 1000));
        int nd = 20 + (int)(rnd() % 181), n = 16 + nd + 3;
        pair *p = &ps->p[ps->n++];
        p->qid = i / 10, p->n = n, p->golden = NAN;
        p->ids = malloc(n * sizeof *p->ids), p->types = malloc(n * sizeof *p->types);
        int k = 0;
        p->ids[k] = cls, p->types[k++] = 0;
        for (int j = 0; j < 16; j++)
            p->ids[k] = q[j], p->types[k++] = 0;
        p->ids[k] = sep, p->types[k++] = 0;
        for (int j = 0; j < nd; j++)
            p->ids[k] = 1000 + (int32_t)(rnd() % (uint32_t)(vocab - 1000)), p->types[k++] = 1;
        p->ids[k] = sep, p->types[k++] = 1;
    }
}

static void free_pairs(pairs *ps)
{
    for (int i = 0; i < ps->n; i++)
        free(ps->p[i].ids), free(ps->p[i].types);
    ps->n = 0;
}

/* Scores pairs idx[0..n-1] in batches of at most `per_batch` pairs (and max_tokens). */
static rr_status score(rr_engine *e, const pairs *ps, const int *idx, int n, int per_batch,
                       int max_tokens, float *out)
{
    int32_t *tok = malloc(max_tokens * sizeof *tok), *typ = malloc(max_tokens * sizeof *typ);
    int32_t *cu = malloc((per_batch + 1) * sizeof *cu);
    float *lg = malloc(per_batch * sizeof *lg);
    rr_status st = RR_OK;
    for (int i = 0; i < n && st == RR_OK;) {
        int ns = 0, nt = 0;
        cu[0] = 0;
        while (i + ns < n && ns < per_batch && nt + ps->p[idx[i + ns]].n <= max_tokens) {
            const pair *p = &ps->p[idx[i + ns]];
            memcpy(tok + nt, p->ids, p->n * sizeof *tok);
            memcpy(typ + nt, p->types, p->n * sizeof *typ);
            nt += p->n;
            cu[++ns] = nt;
        }
        rr_batch b = {ns, nt, tok, typ, cu};
        st = rr_engine_forward(e, &b, lg);
        for (int s = 0; s < ns; s++)
            out[i + s] = lg[s]; /* n_labels 1 for every test model */
        i += ns;
    }
    free(tok), free(typ), free(cu), free(lg);
    return st;
}

static float max_abs_diff(const float *a, const float *b, int n, int *bitwise)
{
    float m = 0;
    int same = 0;
    for (int i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
        same += memcmp(&a[i], &b[i], sizeof(float)) == 0;
    }
    if (bitwise) *bitwise = same;
    return m;
}

static const float *g_key;
static int by_key_desc(const void *x, const void *y)
{
    float a = g_key[*(const int *)x], b = g_key[*(const int *)y];
    return a < b ? 1 : a > b ? -1 : *(const int *)x - *(const int *)y;
}

/* Same top-10 per qid, up to ties at the engine's resolution: rank r may hold a different
 * pair only when the CPU logits of the two pairs are within tie_eps (twice the largest
 * |cuda - cpu| measured, so only an order the measured error can explain is excused; the
 * golden set has adjacent gaps of ~1e-3, well inside fp16's reach). Returns the number of
 * such positions, which is printed. */
static int check_top10(const pairs *ps, const float *cpu, const float *gpu, const char *model,
                       float tie_eps)
{
    int ties = 0, bad_q = 0, n_q = 0;
    int *a = malloc(ps->n * sizeof *a), *b = malloc(ps->n * sizeof *b);
    for (int start = 0; start < ps->n;) {
        int end = start;
        while (end < ps->n && ps->p[end].qid == ps->p[start].qid)
            end++;
        int n = end - start, k = n < 10 ? n : 10, ok = 1;
        for (int i = 0; i < n; i++)
            a[i] = b[i] = start + i;
        g_key = cpu, qsort(a, n, sizeof *a, by_key_desc);
        g_key = gpu, qsort(b, n, sizeof *b, by_key_desc);
        for (int r = 0; r < k && ok; r++) {
            if (a[r] == b[r]) continue;
            if (fabsf(cpu[a[r]] - cpu[b[r]]) <= tie_eps) {
                ties++;
                continue;
            }
            ok = 0;
        }
        bad_q += !ok, n_q++;
        start = end;
    }
    CHECK_MSG(bad_q == 0, "%s: top-10 differs for %d of %d queries", model, bad_q, n_q);
    printf("  %s: top-10 identical for %d/%d queries (%d positions hold a pair tied within %.3g)\n",
           model, n_q - bad_q, n_q, ties, tie_eps);
    free(a), free(b);
    return ties;
}

static void run_model(const char *name)
{
    char dir[1024], golden[1024];
    snprintf(dir, sizeof dir, "%s/%s", RR_MODELS_DIR, name);
    snprintf(golden, sizeof golden, "%s/tests/golden/%s/pairs.jsonl", RR_SOURCE_DIR, name);
    rr_model *m = NULL;
    rr_error err = {0};
    if (rr_model_load(dir, &m, &err) != RR_OK) {
        printf("  %s: not loaded (%s): skipped\n", name, err.msg);
        return;
    }
    static pairs ps;
    ps.n = 0;
    int from_golden = load_golden(golden, &ps) > 0;
    if (!from_golden) make_random(m, &ps, 200);
#ifdef HOST_PAIRS
    /* The first HOST_PAIRS pairs of at most 256 tokens, in file order, and (not quick) the
     * first longer one: attention's host cost grows with the square of the length. */
    {
        const int quick = getenv("RR_TEST_QUICK") != NULL, keep = HOST_PAIRS(quick);
        int n_short = 0, n_long = 0, kept = 0;
        for (int i = 0; i < ps.n; i++) {
            const int is_short = ps.p[i].n <= 256;
            if (is_short ? n_short < keep : !quick && n_long < 1) {
                n_short += is_short, n_long += !is_short;
                ps.p[kept++] = ps.p[i];
            } else {
                free(ps.p[i].ids), free(ps.p[i].types);
            }
        }
        ps.n = kept;
    }
#endif
    const int n = ps.n, max_tokens = MAX_TOKENS;
    printf("%s: %d pairs (%s)\n", name, n, from_golden ? golden : "seeded random pairs");

    int *idx = malloc(n * sizeof *idx);
    float *cpu = malloc(n * sizeof *cpu), *f16 = malloc(n * sizeof *f16);
    float *bf16 = malloc(n * sizeof *bf16);
    for (int i = 0; i < n; i++)
        idx[i] = i;
    rr_engine *ec = NULL, *eh = NULL, *eb = NULL;
    rr_engine_opts oc = {.device = -1, .max_batch_tokens = max_tokens};
    rr_engine_opts oh = {.device = 0, .max_batch_tokens = max_tokens, .dtype = RR_DTYPE_F16};
    rr_engine_opts ob = {.device = 0, .max_batch_tokens = max_tokens, .dtype = RR_DTYPE_BF16};
    CHECK_MSG(rr_engine_init(m, &oc, &ec, &err) == RR_OK, "%s cpu engine: %s", name, err.msg);
    CHECK_MSG(rr_engine_init(m, &oh, &eh, &err) == RR_OK, "%s cuda fp16: %s", name, err.msg);
    CHECK_MSG(rr_engine_init(m, &ob, &eb, &err) == RR_OK, "%s cuda bf16: %s", name, err.msg);
    if (!ec || !eh || !eb) goto done;
    printf("  engines: %s | %s | %s\n", rr_engine_describe(ec), rr_engine_describe(eh),
           rr_engine_describe(eb));

    CHECK(score(ec, &ps, idx, n, 64, max_tokens, cpu) == RR_OK);
    CHECK(score(eh, &ps, idx, n, 64, max_tokens, f16) == RR_OK);
    CHECK(score(eb, &ps, idx, n, 64, max_tokens, bf16) == RR_OK);
    float d16 = max_abs_diff(f16, cpu, n, NULL), db16 = max_abs_diff(bf16, cpu, n, NULL);
    CHECK_MSG(d16 <= 2e-2f, "%s fp16: max |cuda - cpu| %.4g > 2e-2", name, d16);
    CHECK_MSG(db16 <= 0.25f, "%s bf16: max |cuda - cpu| %.4g > 0.25", name, db16);
    printf("  max |cuda - cpu| logit: fp16 %.3g, bf16 %.3g\n", d16, db16);
    if (from_golden) {
        float gd = 0, cd = 0;
        for (int i = 0; i < n; i++) {
            if (isnan(ps.p[i].golden)) continue;
            gd = fmaxf(gd, fabsf(f16[i] - ps.p[i].golden));
            cd = fmaxf(cd, fabsf(cpu[i] - ps.p[i].golden));
        }
        printf("  max |x - HF fp32 golden|: cuda fp16 %.3g, cpu %.3g\n", gd, cd);
    }
    check_top10(&ps, cpu, f16, name, fmaxf(2 * d16, 1e-4f));

    /* Batch invariance on the first 64 pairs. */
    {
        const int k = n < 64 ? n : 64;
        float alone[64], batch[64], rev[64], big[64];
        int rev_idx[64], same = 0;
        for (int i = 0; i < k; i++) {
            CHECK(score(eh, &ps, &idx[i], 1, 1, max_tokens, &alone[i]) == RR_OK);
            rev_idx[i] = k - 1 - i;
        }
        CHECK(score(eh, &ps, idx, k, 64, max_tokens, batch) == RR_OK);
        float tmp[64];
        CHECK(score(eh, &ps, rev_idx, k, 64, max_tokens, tmp) == RR_OK);
        for (int i = 0; i < k; i++)
            rev[k - 1 - i] = tmp[i];
        /* >64 pairs in one batch: the eager path (no graph bucket holds it). */
        float *all = malloc(n * sizeof *all);
        CHECK(score(eh, &ps, idx, n, n, max_tokens, all) == RR_OK);
        memcpy(big, all, k * sizeof *big);
        free(all);
        float b1 = max_abs_diff(alone, batch, k, &same);
        int s2 = 0, s3 = 0;
        float b2 = max_abs_diff(alone, rev, k, &s2), b3 = max_abs_diff(alone, big, k, &s3);
        float worst = fmaxf(b1, fmaxf(b2, b3));
        CHECK_MSG(worst <= 2e-2f, "%s: batch invariance bound %.3g > 2e-2", name, worst);
        printf("  batch invariance fp16 (alone vs 64-batch / reversed / %d-batch): max %.3g / "
               "%.3g / %.3g; bitwise equal %d, %d, %d of %d\n",
               n, b1, b2, b3, same, s2, s3, k);
    }
    /* Graph buckets with several sequences: batches of 2 … 64 pairs kept at ≤ 4096 tokens
     * (the largest bucket), so each replays a captured graph whose tail rows and [CLS] slots
     * are padding; after each, an eager batch of everything (> 64 pairs) leaves stale rows
     * behind in the workspace, and the graph sweep is run again over them. Every logit is
     * held to the CPU's (2e-2) and to the first graph sweep's (the same bucket replayed over
     * stale rows must give the same bits). */
    {
        static const int per[] = {2, 3, 7, 16, 31, 64};
        float *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2),
              *all = malloc(n * sizeof *all);
        for (size_t j = 0; j < sizeof per / sizeof per[0]; j++) {
#ifdef RR_CUDA_HOST_EMULATION
            /* Host quick mode (the sanitizer stage): an odd and the largest batch size. */
            if (getenv("RR_TEST_QUICK") && per[j] != 3 && per[j] != 64) continue;
#endif
            CHECK(score(eh, &ps, idx, n, per[j], GRAPH_TOKENS, g1) == RR_OK);
            CHECK(score(eh, &ps, idx, n, n, max_tokens, all) == RR_OK); /* eager, dirties rows */
            CHECK(score(eh, &ps, idx, n, per[j], GRAPH_TOKENS, g2) == RR_OK);
            int same = 0;
            float dc = max_abs_diff(g1, cpu, n, NULL), dr = max_abs_diff(g1, g2, n, &same);
            CHECK_MSG(dc <= 2e-2f, "%s: graph buckets of %d pairs: max |cuda - cpu| %.3g > 2e-2",
                      name, per[j], dc);
            CHECK_MSG(same == n,
                      "%s: graph buckets of %d pairs: replay over stale rows changed %d "
                      "logits (max %.3g)",
                      name, per[j], n - same, dr);
            printf("  graph buckets, %2d pairs per batch (<= %d tokens): max |cuda - cpu| %.3g, "
                   "replay after an eager batch bitwise equal %d/%d\n",
                   per[j], GRAPH_TOKENS, dc, same, n);
        }
        free(g1), free(g2), free(all);
    }
done:
    rr_engine_free(ec), rr_engine_free(eh), rr_engine_free(eb);
    free(idx), free(cpu), free(f16), free(bf16);
    free_pairs(&ps);
    rr_model_free(m);
}

int main(void)
{
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev < 1)
        return test_skip("test_cuda_model", "no CUDA device");
    char probe[1024];
#ifdef RR_CUDA_HOST_EMULATION
    snprintf(probe, sizeof probe, "%s/tiny-bert-random/config.json", RR_MODELS_DIR);
#else
    snprintf(probe, sizeof probe, "%s/minilm-l6-bert/config.json", RR_MODELS_DIR);
#endif
    FILE *f = fopen(probe, "r");
    if (!f) return test_skip("test_cuda_model", "no test model (run scripts/make_models.py)");
    fclose(f);
#ifdef RR_CUDA_HOST_EMULATION
    run_model("tiny-bert-random");
#else
    run_model("minilm-l6-bert");
    run_model("minilm-l6-electra");
    run_model("tiny-bert-random");
    run_model("minilm-l6-bert-h6");
    run_model("xlmr-long"); /* XLM-R: RoBERTa positions, pairs up to 8192 tokens */
#endif
    return test_summary("test_cuda_model");
}
