/*
 * test_chunk.c — long documents scored in windows, against Hugging Face
 * (tests/golden/minilm-l6-bert/windows.jsonl, written by tests/golden/make_windows.py from
 * the fast tokenizer's ids and transformers' logits, with its own reading of the rule in
 * rerank.h). For every golden document and option set (max_length 64/128/512, overlap
 * default/0/16/over half a window, max_chunks cutting or not, max_doc_tokens, a query over
 * half the pair kept from either end, a document that fits one pair):
 *   - rr_doc_windows gives the same plan (q_keep, window, stride, n_possible), the same
 *     windows (token spans, and character spans from the tokenizer's offsets) and the same
 *     pair ids, token types rebuilt from the template;
 *   - every window's logit from the CPU engine is within 1e-4 of HF's (the golden bound);
 *   - rr_chunk_combine: max/first/mean of the engine's logits within 1e-4 of the same over
 *     HF's, and the best window is HF's best unless two windows are within 2e-4;
 *   - rr_score_query with chunk gives the combined logit of the windows scored one by one,
 *     bit for bit (batch invariance), for every rule (max also with a budget of one
 *     512-token window per batch).
 * Quick mode (RR_TEST_QUICK, the sanitizer builds): the max_length 64/128 documents, the
 * one that fits and the 5k one with default options.
 * And the plan's arithmetic on edge cases (a document that fits, max_length 4, huge
 * overlap, n_possible when windows divide evenly), and the errors: max_length 3,
 * max_chunks 0, a short document buffer, invalid UTF-8 naming the document.
 * Skips (77) without the golden file or the model folder.
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rerank.h"
#include "test.h"

#define MODEL "minilm-l6-bert"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) p[n] = 0, *len = (size_t)n;
    return p;
}

static int item_int(const cJSON *j, const char *k)
{
    return (int)cJSON_GetObjectItem(j, k)->valuedouble;
}

/* Scores pairs one at a time: the reference for the bitwise checks. */
static float score_one(rr_engine *e, const int32_t *ids, const int32_t *types, int n)
{
    int32_t cu[2] = {0, n};
    rr_batch b = {.n_seq = 1, .n_tok = n, .tokens = ids, .type_ids = types, .cu_seqlens = cu};
    float lg = NAN;
    CHECK(rr_engine_forward(e, &b, &lg) == RR_OK);
    return lg;
}

/* Code points in s[0 .. n). */
static int code_points(const char *s, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static double worst_logit, worst_combined;
static int n_windows_checked;

static void check_case(rr_engine *e, rr_engine *e_small, const rr_model *m, const cJSON *c)
{
    const rr_tokenizer *tok = rr_model_tokenizer(m);
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const char *query = cJSON_GetObjectItem(c, "query")->valuestring;
    const char *doc = cJSON_GetObjectItem(c, "doc")->valuestring;
    rr_pair_opts o = {.max_length = item_int(c, "max_length"),
                      .truncate = 1,
                      .keep_last = cJSON_IsTrue(cJSON_GetObjectItem(c, "keep_last")),
                      .max_doc_tokens = item_int(c, "max_doc_tokens"),
                      .chunk = 1,
                      .max_chunks = item_int(c, "max_chunks"),
                      .overlap = item_int(c, "overlap")};
    const cJSON *gw = cJSON_GetObjectItem(c, "windows");
    int n_gold = cJSON_GetArraySize(gw), ml = o.max_length, mc = o.max_chunks;
    int dcap = rr_chunk_doc_cap(3, &o);
    int32_t *qbuf = malloc((size_t)ml * sizeof *qbuf), *dbuf = malloc((size_t)dcap * sizeof *dbuf);
    int32_t *ids = malloc((size_t)mc * ml * sizeof *ids),
            *types = malloc((size_t)mc * ml * sizeof *types);
    rr_window *win = malloc((size_t)mc * sizeof *win);
    float *lg = malloc((size_t)mc * sizeof *lg), *hf = malloc((size_t)mc * sizeof *hf);
    rr_error err = {0};
    rr_side q;
    rr_chunk_plan p;
    CHECK_MSG(rr_query_encode(tok, query, strlen(query), &o, qbuf, &q, &err) == RR_OK, "%s",
              err.msg);
    int32_t *offs = malloc(2 * (size_t)dcap * sizeof *offs);
    rr_status st = rr_doc_windows(tok, &q, doc, strlen(doc), &o, "documents", 0, dbuf, offs, dcap,
                                  ids, types, win, &p, &err);
    CHECK_MSG(st == RR_OK, "%s: %s", name, err.msg);
    if (st != RR_OK) goto out;
    CHECK_MSG(p.q_keep == item_int(c, "q_keep") && p.window == item_int(c, "window") &&
                  p.stride == item_int(c, "stride") && p.n_possible == item_int(c, "n_possible") &&
                  p.n_windows == n_gold,
              "%s: plan q_keep %d window %d stride %d windows %d/%d vs HF %d %d %d %d/%d", name,
              p.q_keep, p.window, p.stride, p.n_windows, p.n_possible, item_int(c, "q_keep"),
              item_int(c, "window"), item_int(c, "stride"), n_gold, item_int(c, "n_possible"));
    if (p.n_windows != n_gold) goto out;
    for (int k = 0; k < n_gold; k++) {
        const cJSON *w = cJSON_GetArrayItem(gw, k);
        const cJSON *gids = cJSON_GetObjectItem(w, "input_ids");
        int n = cJSON_GetArraySize(gids), same = n == win[k].len, first_sep = -1;
        for (int t = 0; same && t < n; t++) {
            same = ids[win[k].off + t] == (int32_t)cJSON_GetArrayItem(gids, t)->valuedouble;
            if (first_sep < 0 && ids[win[k].off + t] == rr_tokenizer_sep_id(tok)) first_sep = t;
            same = same && types[win[k].off + t] == (first_sep >= 0 && t > first_sep);
        }
        int c0 = code_points(doc, win[k].byte_start), c1 = code_points(doc, win[k].byte_end);
        CHECK_MSG(c0 == item_int(w, "char_start") && c1 == item_int(w, "char_end"),
                  "%s: window %d characters [%d, %d) vs HF [%d, %d)", name, k, c0, c1,
                  item_int(w, "char_start"), item_int(w, "char_end"));
        CHECK_MSG(same && win[k].tok_start == item_int(w, "tok_start") &&
                      win[k].tok_end == item_int(w, "tok_end"),
                  "%s: window %d differs (%d tokens [%d, %d) vs HF %d [%d, %d))", name, k,
                  win[k].len, win[k].tok_start, win[k].tok_end, n, item_int(w, "tok_start"),
                  item_int(w, "tok_end"));
        lg[k] = score_one(e, ids + win[k].off, types + win[k].off, win[k].len);
        hf[k] = (float)cJSON_GetObjectItem(w, "logit")->valuedouble;
        double d = fabs((double)lg[k] - hf[k]);
        if (d > worst_logit) worst_logit = d;
        CHECK_MSG(d <= 1e-4, "%s: window %d logit %.7g vs HF %.7g", name, k, lg[k], hf[k]);
        n_windows_checked++;
    }
    for (int rule = RR_CHUNK_MAX; rule <= RR_CHUNK_MEAN; rule++) {
        int b_ours, b_hf;
        float ours = rr_chunk_combine(lg, n_gold, rule, &b_ours);
        float theirs = rr_chunk_combine(hf, n_gold, rule, &b_hf);
        double d = fabs((double)ours - theirs);
        if (d > worst_combined) worst_combined = d;
        CHECK_MSG(d <= 1e-4, "%s: rule %d combined %.7g vs HF %.7g", name, rule, ours, theirs);
        CHECK_MSG(b_ours == b_hf || fabs((double)hf[b_ours] - hf[b_hf]) <= 2e-4,
                  "%s: best window %d vs HF's %d", name, b_ours, b_hf);
        /* rr_score_query: the same windows packed with a neighbour document, and with a
         * budget of one window per batch: bitwise the one-by-one combination */
        const char *docs[2] = {"a short neighbour", doc};
        size_t lens[2] = {strlen(docs[0]), strlen(doc)};
        o.chunk_score = rule;
        float got[2];
        for (int pass = 0; pass < (rule == RR_CHUNK_MAX ? 2 : 1); pass++) {
            rr_engine *en = pass ? e_small : e;
            CHECK_MSG(rr_score_query(en, m, query, strlen(query), docs, lens, 2, &o, got, &err) ==
                          RR_OK,
                      "%s", err.msg);
            CHECK_MSG(memcmp(&got[1], &ours, sizeof ours) == 0,
                      "%s: rr_score_query rule %d pass %d: %.9g vs %.9g", name, rule, pass, got[1],
                      ours);
        }
    }
out:
    free(qbuf), free(dbuf), free(offs), free(ids), free(types), free(win), free(lg), free(hf);
}

static void check_plan_edges(const rr_model *m)
{
    rr_chunk_plan p;
    rr_pair_opts o = {.max_length = 16, .chunk = 1, .max_chunks = 100, .overlap = -1};
    rr_chunk_plan_make(3, 3, 10, &o, &p); /* 3 + 10 + 3 = 16: fits */
    CHECK(p.n_windows == 1 && p.n_possible == 1 && p.q_keep == 3 && p.window == 10);
    rr_chunk_plan_make(3, 3, 11, &o, &p); /* over by one: q keeps 3 (room 6), windows of 10 */
    CHECK_MSG(p.q_keep == 3 && p.window == 10 && p.stride == 9 && p.n_possible == 2,
              "q_keep %d window %d stride %d n %d", p.q_keep, p.window, p.stride, p.n_possible);
    rr_chunk_plan_make(3, 30, 2, &o, &p); /* long query, short document: query gets 11 */
    CHECK(p.q_keep == 11 && p.window == 2 && p.n_possible == 1);
    rr_chunk_plan_make(3, 30, 100, &o, &p); /* both long: query gets half (6), windows of 7 */
    CHECK(p.q_keep == 6 && p.window == 7 && p.stride == 7 && p.n_possible == 15);
    o.overlap = 1000; /* clamped to half a window */
    rr_chunk_plan_make(3, 0, 100, &o, &p);
    CHECK_MSG(p.window == 13 && p.stride == 7 && p.n_possible == 14, "window %d stride %d n %d",
              p.window, p.stride, p.n_possible);
    o.overlap = 0;
    rr_chunk_plan_make(3, 0, 26, &o, &p); /* two windows of 13 exactly */
    CHECK(p.n_possible == 2 && p.n_windows == 2);
    o.max_chunks = 1;
    rr_chunk_plan_make(3, 0, 27, &o, &p);
    CHECK(p.n_possible == 3 && p.n_windows == 1);
    o.max_length = 4;
    o.max_chunks = 1000;
    rr_chunk_plan_make(3, 5, 9, &o, &p); /* one token per window */
    CHECK(p.q_keep == 0 && p.window == 1 && p.stride == 1 && p.n_possible == 9);
    o = (rr_pair_opts){.max_length = 16, .chunk = 1, .max_chunks = 4, .max_doc_tokens = 20};
    rr_chunk_plan_make(3, 0, 1000, &o, &p);
    CHECK(p.d_tokens == 20 && p.n_possible == 2);
    CHECK(rr_chunk_doc_cap(3, &o) == 20);
    o.max_doc_tokens = 0;
    CHECK(rr_chunk_doc_cap(3, &o) == 4 * 13);

    /* errors */
    const rr_tokenizer *tok = rr_model_tokenizer(m);
    int32_t qb[16], db[64], ids[64], types[64];
    rr_window win[4];
    rr_error err = {0};
    rr_side q;
    o = (rr_pair_opts){.max_length = 16, .chunk = 1, .max_chunks = 4, .overlap = -1};
    CHECK(rr_query_encode(tok, "query", 5, &o, qb, &q, &err) == RR_OK);
    CHECK(rr_doc_windows(tok, &q, "d \xc3\x28", 4, &o, "texts", 7, db, NULL, 64, ids, types, win,
                         &p, &err) == RR_E_UTF8);
    CHECK_MSG(strcmp(err.msg, "texts[7] is not valid UTF-8") == 0, "%s", err.msg);
    CHECK(rr_doc_windows(tok, &q, "d", 1, &o, "texts", 0, db, NULL, 10, ids, types, win, &p,
                         &err) == RR_E_INVALID);
    o.max_chunks = 0;
    CHECK(rr_doc_windows(tok, &q, "d", 1, &o, "texts", 0, db, NULL, 64, ids, types, win, &p,
                         &err) == RR_E_INVALID);
    o.max_chunks = 4;
    o.max_length = 3;
    CHECK(rr_doc_windows(tok, &q, "d", 1, &o, "texts", 0, db, NULL, 64, ids, types, win, &p,
                         &err) == RR_E_INVALID);
    CHECK_MSG(strstr(err.msg, "max_length 4") != NULL, "%s", err.msg);
    /* combine: NaN is never hidden; mean; first */
    float l[3] = {1.0f, NAN, 3.0f};
    int best;
    CHECK(isnan(rr_chunk_combine(l, 3, RR_CHUNK_MAX, &best)) && best == 1);
    float l2[3] = {1.0f, 5.0f, 5.0f};
    CHECK(rr_chunk_combine(l2, 3, RR_CHUNK_MAX, &best) == 5.0f && best == 1);
    CHECK(rr_chunk_combine(l2, 3, RR_CHUNK_FIRST, &best) == 1.0f);
    CHECK(fabsf(rr_chunk_combine(l2, 3, RR_CHUNK_MEAN, &best) - 11.0f / 3) < 1e-6f);
}

int main(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/golden/%s/windows.jsonl", RR_SOURCE_DIR, MODEL);
    size_t len = 0;
    char *text = read_all(path, &len);
    if (!text) return test_skip("test_chunk", "no tests/golden/" MODEL "/windows.jsonl");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", RR_MODELS_DIR, MODEL);
    rr_model *m = NULL;
    rr_error err = {0};
    if (rr_model_load(dir, &m, &err) != RR_OK) {
        free(text);
        return test_skip("test_chunk", "no model folder (scripts/make_models.py)");
    }
    rr_engine_opts eo = {.device = -1, .max_batch_tokens = 4096, .n_threads = 0};
    rr_engine *e = NULL, *e_small = NULL;
    CHECK_MSG(rr_engine_init(m, &eo, &e, &err) == RR_OK, "%s", err.msg);
    eo.max_batch_tokens = 512; /* one 512-token window per batch */
    CHECK_MSG(rr_engine_init(m, &eo, &e_small, &err) == RR_OK, "%s", err.msg);
    int n_cases = 0;
    const char *qv = getenv("RR_TEST_QUICK");
    int quick = qv && *qv && strcmp(qv, "0") != 0;
    for (char *line = strtok(text, "\n"); e && e_small && line; line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        CHECK(c != NULL);
        if (!c) continue;
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        if (quick && name[0] != 'm' && strcmp(name, "fits_one_window") != 0 &&
            strcmp(name, "5k_default") != 0) {
            cJSON_Delete(c);
            continue;
        }
        check_case(e, e_small, m, c);
        n_cases++;
        cJSON_Delete(c);
    }
    CHECK(n_cases >= (quick ? 8 : 18));
    check_plan_edges(m);
    printf("test_chunk: %d documents, %d windows; max |logit - HF| %.3g, combined %.3g\n", n_cases,
           n_windows_checked, worst_logit, worst_combined);
    rr_engine_free(e);
    rr_engine_free(e_small);
    rr_model_free(m);
    free(text);
    return test_summary("test_chunk");
}
