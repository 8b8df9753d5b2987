/*
 * test_golden.c — the CPU engine against HF transformers fp32 through the golden files: for
 * every tests/golden/<model>/ whose model folder exists, the fixture's input_ids /
 * token_type_ids (not our tokenizer) go through rr_engine_forward in packed batches and must
 * give max |logit − golden| ≤ 1e-4 over all pairs and the same ranking per qid; layers.json is
 * compared layer by layer (the first layer over tolerance is named). Skips (77) when there is
 * no golden file with a model folder.
 *
 * Ranking: pairs whose golden logits differ by more than 2e-4 (twice the logit tolerance) must
 * keep their order; closer pairs are ties at fp32 precision.
 * Layers: |h − golden| ≤ 1e-4·(1 + |golden|) per element (LayerNorm outputs are O(1); HF's
 * own CPU runs differ at ~1e-6).
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

#include "engine/engine_cpu.h"
#include "golden.h"
#include "model/model.h"
#include "test.h"

#define BATCH_TOKENS 16384 /* ≥ the longest sequence of every model (xlmr-long: 8192) */

static void check_pairs(const char *name, rr_engine *e, golden_pair *p, int n)
{
    int32_t *tok = malloc(BATCH_TOKENS * sizeof *tok), *ty = malloc(BATCH_TOKENS * sizeof *ty);
    int32_t *cu = malloc((BATCH_TOKENS + 1) * sizeof *cu);
    float *logits = malloc((size_t)n * sizeof *logits);
    int first = 0, n_seq = 0;
    cu[0] = 0;
    for (int i = 0; i <= n; i++) {
        if (i == n || cu[n_seq] + p[i].n > BATCH_TOKENS) {
            rr_batch b = {.n_seq = n_seq,
                          .n_tok = cu[n_seq],
                          .tokens = tok,
                          .type_ids = ty,
                          .cu_seqlens = cu};
            CHECK(rr_engine_forward(e, &b, logits + first) == RR_OK);
            first += n_seq;
            n_seq = 0;
            if (i == n) break;
        }
        memcpy(tok + cu[n_seq], p[i].ids, (size_t)p[i].n * sizeof *tok);
        memcpy(ty + cu[n_seq], p[i].type_ids, (size_t)p[i].n * sizeof *ty);
        cu[n_seq + 1] = cu[n_seq] + p[i].n;
        n_seq++;
    }
    double worst = 0.0;
    int worst_i = 0, over = 0, flips = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs(logits[i] - p[i].logit);
        if (d > worst) worst = d, worst_i = i;
        over += d > 1e-4;
        for (int j = 0; j < n; j++)
            if (p[j].qid == p[i].qid && p[i].logit > p[j].logit + 2e-4 && !(logits[i] > logits[j]))
                flips++;
    }
    CHECK_MSG(over == 0, "%s: %d of %d logits off by > 1e-4 (worst %.3g at pair %d)", name, over, n,
              worst, worst_i);
    CHECK_MSG(flips == 0, "%s: %d ranking inversions within a qid", name, flips);
    printf("%s: %d pairs, max |logit - golden| = %.3g (pair %d, %d tokens), ranking %s\n", name, n,
           worst, worst_i, p[worst_i].n, flips ? "DIFFERS" : "identical");
    free(tok);
    free(ty);
    free(cu);
    free(logits);
}

static void check_layers(const char *name, const rr_model *m, rr_engine *e)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/layers.json", golden_dir(), name);
    FILE *f = fopen(path, "rb");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    text[fread(text, 1, (size_t)len, f)] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(text);
    free(text);
    CHECK(j != NULL);
    if (!j) return;

    const rr_model_info *in = rr_model_get_info(m);
    int n, nt;
    int32_t *ids = json_ints(cJSON_GetObjectItem(j, "input_ids"), &n);
    int32_t *ty = json_ints(cJSON_GetObjectItem(j, "token_type_ids"), &nt);
    int32_t cu[2] = {0, n};
    size_t block = (size_t)n * in->d_model;
    float *hidden = malloc((in->n_layer + 1) * block * sizeof *hidden);
    float *lg_full = malloc((size_t)in->n_labels * sizeof *lg_full);
    float *lg = malloc((size_t)in->n_labels * sizeof *lg);
    rr_batch b = {.n_seq = 1, .n_tok = n, .tokens = ids, .type_ids = ty, .cu_seqlens = cu};
    CHECK(rr_engine_cpu_forward_hidden(e, &b, lg_full, hidden) == RR_OK);
    CHECK(rr_engine_forward(e, &b, lg) == RR_OK);

    const cJSON *layers = cJSON_GetObjectItem(j, "hidden");
    CHECK(cJSON_GetArraySize(layers) == in->n_layer + 1);
    int first_bad = -1;
    for (int l = 0; l <= in->n_layer && l < cJSON_GetArraySize(layers); l++) {
        const cJSON *row = cJSON_GetArrayItem(layers, l), *it;
        CHECK((size_t)cJSON_GetArraySize(row) == block);
        double worst = 0.0;
        int over = 0;
        size_t k = 0;
        cJSON_ArrayForEach(it, row)
        {
            if (k >= block) break;
            double ref = it->valuedouble, d = fabs(hidden[(size_t)l * block + k] - ref);
            if (d > worst) worst = d;
            over += d > 1e-4 * (1.0 + fabs(ref));
            k++;
        }
        if (over && first_bad < 0) first_bad = l;
        printf("%s: %s %d: max |h - golden| = %.3g%s\n", name, l ? "layer" : "embeddings", l, worst,
               over ? "  OVER TOLERANCE" : "");
    }
    CHECK_MSG(first_bad < 0, "%s: first layer over tolerance: %d (0 = embeddings)", name,
              first_bad);
    /* The [CLS]-only last layer of the production path is exact up to GEMM shape effects. */
    for (int l = 0; l < in->n_labels; l++)
        CHECK_MSG(fabsf(lg[l] - lg_full[l]) <= 1e-5f * (1 + fabsf(lg_full[l])),
                  "%s: CLS-only last layer %g vs full %g", name, lg[l], lg_full[l]);
    printf("%s: CLS-only last layer vs full last layer: |dlogit| = %.3g\n", name,
           fabs(lg[0] - lg_full[0]));
    free(ids);
    free(ty);
    free(hidden);
    free(lg_full);
    free(lg);
    cJSON_Delete(j);
}

int main(void)
{
    DIR *d = opendir(golden_dir());
    struct dirent *de;
    int ran = 0;
    if (!d) return test_skip("test_golden", "no golden folder (tests/golden/make_golden.py)");
    while ((de = readdir(d))) {
        char mdir[1024];
        struct stat sb;
        golden_pair *p;
        if (de->d_name[0] == '.') continue;
        snprintf(mdir, sizeof mdir, "%s/%s", RR_MODELS_DIR, de->d_name);
        if (stat(mdir, &sb) != 0) continue;
        int n = golden_pairs(de->d_name, &p);
        if (n == 0) continue;
        rr_model *m = NULL;
        rr_engine *e = NULL;
        rr_error err = {0};
        rr_engine_opts o = {.device = -1, .max_batch_tokens = BATCH_TOKENS, .n_threads = 0};
        CHECK_MSG(rr_model_load(mdir, &m, &err) == RR_OK, "%s: %s", mdir, err.msg);
        if (m) CHECK_MSG(rr_engine_init(m, &o, &e, &err) == RR_OK, "%s", err.msg);
        if (e) {
            check_pairs(de->d_name, e, p, golden_quick(p, n));
            check_layers(de->d_name, m, e);
            ran++;
        }
        rr_engine_free(e);
        rr_model_free(m);
        golden_pairs_free(p, n);
    }
    closedir(d);
    if (!ran) return test_skip("test_golden", "no golden pairs with a model folder");
    return test_summary("test_golden");
}
