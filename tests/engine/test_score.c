/*
 * test_score.c — rr_score_query: for a handful of golden queries (tests/golden/<model>/
 * pairs.jsonl), scoring the query against its documents from the TEXTS must give the logits
 * of feeding the golden ids directly, bit for bit: the packing differs, but the CPU engine is
 * batch-invariant to the bit (test_batch_invariance.c), so a difference is a bug in
 * rr_score_query (other ids or type ids, wrong packing), never rounding. Also with an engine
 * whose max_batch_tokens forces one or two pairs per batch. (Run once over every query of all
 * three models, not just the few here: all 1674 logits equal.) And its errors: no documents,
 * invalid UTF-8 in the query or in document i, a pair over max_length with truncation off, a
 * bad max_length. rr_sigmoid against a double computation.
 * Skips (77) without golden pairs and their model folder.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "golden.h"
#include "rerank.h"
#include "test.h"

#define MAX_DOCS 64

static void check_errors(rr_engine *e, const rr_model *m)
{
    rr_error err = {0};
    float lg[4];
    const char *docs[3] = {"fine", "also fine", "bad \xc3\x28 byte"};
    size_t lens[3] = {4, 9, strlen(docs[2])};
    rr_score_opts o = {.max_length = 0, .truncate = 1};

    CHECK(rr_score_query(e, m, "q", 1, docs, lens, 0, &o, lg, &err) == RR_E_INVALID);
    CHECK(strcmp(err.msg, "no documents") == 0);
    CHECK(rr_score_query(e, m, "q", 1, docs, lens, 3, &o, lg, &err) == RR_E_UTF8);
    CHECK_MSG(strstr(err.msg, "documents[2]") != NULL, "%s", err.msg);
    CHECK(rr_score_query(e, m, "q\xff", 2, docs, lens, 2, &o, lg, &err) == RR_E_UTF8);
    CHECK_MSG(strstr(err.msg, "query") != NULL, "%s", err.msg);

    /* Document 1 is 20 words; with max_length 16 and truncation off it is too long. */
    const char *long_docs[2] = {"short", "one two three four five six seven eight nine ten "
                                         "eleven twelve thirteen fourteen fifteen sixteen "
                                         "seventeen eighteen nineteen twenty"};
    size_t long_lens[2] = {5, strlen(long_docs[1])};
    rr_score_opts strict = {.max_length = 16, .truncate = 0};
    CHECK(rr_score_query(e, m, "q", 1, long_docs, long_lens, 2, &strict, lg, &err) ==
          RR_E_TOO_LONG);
    CHECK_MSG(strstr(err.msg, "documents[1]") != NULL, "%s", err.msg);
    strict.truncate = 1;
    CHECK(rr_score_query(e, m, "q", 1, long_docs, long_lens, 2, &strict, lg, &err) == RR_OK);
    rr_score_opts bad_ml = {.max_length = 2, .truncate = 1};
    CHECK(rr_score_query(e, m, "q", 1, docs, lens, 1, &bad_ml, lg, &err) == RR_E_INVALID);
    bad_ml.max_length = rr_model_get_info(m)->max_length + 1;
    CHECK(rr_score_query(e, m, "q", 1, docs, lens, 1, &bad_ml, lg, &err) == RR_E_INVALID);
    printf("errors: no documents, invalid UTF-8 (query, document i), too long, bad max_length\n");
}

static void check_logits(rr_engine *e, const rr_model *m, golden_pair *p, int n, int n_queries)
{
    double worst = 0.0;
    int checked = 0;
    for (int q0 = 0, done = 0; q0 < n && done < n_queries; done++) {
        int q1 = q0;
        while (q1 < n && p[q1].qid == p[q0].qid && q1 - q0 < MAX_DOCS)
            q1++;
        int k = q1 - q0, nul = 0;
        for (int i = q0; i < q1; i++)
            nul |= p[i].has_nul;
        if (nul) { /* strlen() cannot carry U+0000; the tokenizer tests cover it */
            q0 = q1;
            done--;
            continue;
        }
        const char *docs[MAX_DOCS];
        size_t lens[MAX_DOCS];
        float got[MAX_DOCS], direct[MAX_DOCS];
        for (int i = 0; i < k; i++) {
            docs[i] = p[q0 + i].doc;
            lens[i] = strlen(p[q0 + i].doc);
            int32_t cu[2] = {0, p[q0 + i].n};
            rr_batch b = {.n_seq = 1,
                          .n_tok = p[q0 + i].n,
                          .tokens = p[q0 + i].ids,
                          .type_ids = p[q0 + i].type_ids,
                          .cu_seqlens = cu};
            CHECK(rr_engine_forward(e, &b, &direct[i]) == RR_OK);
        }
        rr_error err = {0};
        rr_status s =
            rr_score_query(e, m, p[q0].query, strlen(p[q0].query), docs, lens, k, NULL, got, &err);
        CHECK_MSG(s == RR_OK, "qid %d: %s", p[q0].qid, err.msg);
        for (int i = 0; i < k && s == RR_OK; i++) {
            double d = fabs((double)got[i] - direct[i]);
            if (d > worst) worst = d;
            CHECK_MSG(memcmp(&got[i], &direct[i], sizeof(float)) == 0,
                      "qid %d doc %d: %.9g vs ids %.9g", p[q0].qid, i, got[i], direct[i]);
            checked++;
        }
        q0 = q1;
    }
    printf("rr_score_query vs golden ids: %d pairs, max |diff| = %.3g\n", checked, worst);
}

int main(void)
{
    static const char *const names[] = {"minilm-l6-bert", "tiny-bert-random", "minilm-l6-electra"};
    int ran = 0;

    for (int i = -40; i <= 40; i++) {
        double x = i * 0.5, ref = 1.0 / (1.0 + exp(-x));
        CHECK_MSG(fabs(rr_sigmoid((float)x) - ref) <= 2.4e-7 * ref, /* 2 ulp relative */
                  "sigmoid(%g) = %.9g vs %.9g", x, rr_sigmoid((float)x), ref);
    }
    for (size_t k = 0; k < sizeof names / sizeof names[0] && !ran; k++) {
        char dir[1024];
        struct stat sb;
        golden_pair *p;
        snprintf(dir, sizeof dir, "%s/%s", RR_MODELS_DIR, names[k]);
        if (stat(dir, &sb) != 0) continue;
        int n = golden_pairs(names[k], &p);
        if (n == 0) continue;
        rr_model *m = NULL;
        rr_engine *e = NULL, *e1 = NULL;
        rr_error err = {0};
        CHECK_MSG(rr_model_load(dir, &m, &err) == RR_OK, "%s", err.msg);
        if (!m) break;
        const rr_model_info *in = rr_model_get_info(m);
        rr_engine_opts o = {.device = -1, .max_batch_tokens = 8192};
        /* max_batch_tokens = max_position: most batches hold one or two pairs. */
        rr_engine_opts o1 = {.device = -1, .max_batch_tokens = in->max_position};
        CHECK(rr_engine_init(m, &o, &e, NULL) == RR_OK);
        CHECK(rr_engine_init(m, &o1, &e1, NULL) == RR_OK);
        printf("%s:\n", names[k]);
        const int nq = golden_quick(p, n);
        check_logits(e, m, p, nq, 3);
        check_logits(e1, m, p, nq, 2);
        check_errors(e, m);
        rr_engine_free(e);
        rr_engine_free(e1);
        rr_model_free(m);
        golden_pairs_free(p, n);
        ran = 1;
    }
    if (!ran) return test_skip("test_score", "no golden pairs with a model folder");
    return test_summary("test_score");
}
