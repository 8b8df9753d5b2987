/*
 * test_sched.c — the scheduler (src/sched/) without gRPC: requests larger than the token
 * budget are split across batches and still get every logit; several requests packed
 * together score as they do alone (within the CPU engine's last-bit variation across batch
 * shapes); cancelled and expired requests are dropped before compute with the right outcome;
 * invalid UTF-8 and over-long pairs fail naming the document index (in the caller's words:
 * "texts[2]"); pairs with queries and truncation of their own (TEI streams) score as
 * rr_score_query scores each query; the token budget is the engine's; the pool limits live
 * requests. Reference logits: rr_score_query on the same model.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <string.h>

#include "sched/sched.h"
#include "test.h"
#include "util/util.h"

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n_done;
} waiter;

static waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void on_done(rr_sched_req *r)
{
    (void)r;
    pthread_mutex_lock(&w.mu);
    w.n_done++;
    pthread_cond_broadcast(&w.cv);
    pthread_mutex_unlock(&w.mu);
}

static void wait_for(int n)
{
    pthread_mutex_lock(&w.mu);
    while (w.n_done < n)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
}

#define N_LONG 30

int main(void)
{
    const char *dir = RR_MODELS_DIR "/tiny-bert-random";
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return test_skip("test_sched", "models/tiny-bert-random missing (scripts/make_models.py)");
    fclose(f);

    rr_model *m = NULL;
    rr_engine *e = NULL, *e_ref = NULL;
    rr_sched *s = NULL;
    rr_error err = {0};
    CHECK(rr_model_load(dir, &m, &err) == RR_OK);
    /* A budget of 600 tokens: the long request (30 pairs of ~150 tokens) needs 8 batches. */
    rr_engine_opts eo = {.device = -1, .max_batch_tokens = 600, .n_threads = 1};
    CHECK(rr_engine_init(m, &eo, &e, &err) == RR_OK);
    rr_engine_opts eo_ref = {.device = -1, .max_batch_tokens = 16384, .n_threads = 1};
    CHECK(rr_engine_init(m, &eo_ref, &e_ref, &err) == RR_OK);
    rr_sched_opts so = {.max_in_flight = 4, .tokenizer_workers = 2}; /* budget: the engine's */
    CHECK(rr_sched_init(m, e, &so, &s, &err) == RR_OK);
    if (!m || !e || !e_ref || !s) {
        fprintf(stderr, "set-up failed: %s\n", err.msg);
        return 1;
    }

    static char longdoc[4096];
    longdoc[0] = 0;
    for (int i = 0; i < 12; i++)
        strcat(longdoc, "The tides follow the moon around the earth every day. ");
    const char *query = "what moves the tides";
    const char *docs[N_LONG];
    size_t lens[N_LONG];
    for (int i = 0; i < N_LONG; i++) {
        docs[i] =
            i % 3 == 0 ? longdoc : (i % 3 == 1 ? "The moon pulls the ocean." : "Cats sleep a lot.");
        lens[i] = strlen(docs[i]);
    }
    float ref[N_LONG];
    rr_score_opts sco = {.max_length = 0, .truncate = 1, .keep_last = 0};
    CHECK(rr_score_query(e_ref, m, query, strlen(query), docs, lens, N_LONG, &sco, ref, &err) ==
          RR_OK);

    /* Four live requests at once: long (split), short, cancelled, expired. */
    rr_sched_req *r[5];
    for (int i = 0; i < 4; i++) {
        r[i] = rr_sched_acquire(s);
        CHECK(r[i] != NULL);
    }
    r[4] = rr_sched_acquire(s);
    CHECK_MSG(r[4] == NULL, "a 5th request with max_in_flight 4");
    int ns[4] = {N_LONG, 2, 3, 3};
    for (int i = 0; i < 4; i++) {
        CHECK(rr_sched_reserve(r[i], ns[i], &err) == RR_OK);
        r[i]->query = (rr_text){query, strlen(query)};
        r[i]->n_docs = ns[i];
        for (int j = 0; j < ns[i]; j++)
            r[i]->docs[j] = (rr_text){docs[j], lens[j]};
        r[i]->done = on_done;
    }
    atomic_store(&r[2]->cancelled, 1);
    r[3]->deadline_ns = 1; /* long past */
    for (int i = 0; i < 4; i++)
        rr_sched_submit(s, r[i]);
    wait_for(4);
    CHECK(r[0]->outcome == RR_SCHED_DONE && r[1]->outcome == RR_SCHED_DONE);
    CHECK_MSG(r[2]->outcome == RR_SCHED_CANCELLED && r[2]->infer_ns == 0, "cancelled: outcome %d",
              r[2]->outcome);
    CHECK_MSG(r[3]->outcome == RR_SCHED_EXPIRED && r[3]->infer_ns == 0, "expired: outcome %d",
              r[3]->outcome);
    float worst = 0;
    for (int i = 0; i < N_LONG; i++) {
        float d = fabsf(r[0]->logits[i] - ref[i]);
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst <= 1e-5f * (1 + fabsf(ref[0])), "split request: max |diff| %g", worst);
    for (int i = 0; i < 2; i++)
        CHECK_MSG(fabsf(r[1]->logits[i] - ref[i]) <= 1e-5f, "short request doc %d", i);
    CHECK_MSG(r[0]->total_tokens > 600, "the long request exceeds one batch (%ld tokens)",
              r[0]->total_tokens);
    for (int i = 0; i < 4; i++)
        rr_sched_release(s, r[i]);

    /* Failures name the document index. */
    rr_sched_req *b = rr_sched_acquire(s);
    const char *bad[3] = {"fine", "also fine", "\xff\xfe broken"};
    CHECK(rr_sched_reserve(b, 3, &err) == RR_OK);
    b->query = (rr_text){query, strlen(query)};
    b->n_docs = 3;
    b->docs_field = "texts";
    for (int j = 0; j < 3; j++)
        b->docs[j] = (rr_text){bad[j], strlen(bad[j])};
    b->done = on_done;
    rr_sched_submit(s, b);
    wait_for(5);
    CHECK_MSG(b->outcome == RR_SCHED_FAILED && b->err.status == RR_E_UTF8 &&
                  strstr(b->err.msg, "texts[2]"),
              "utf8: %d %s", b->outcome, b->err.msg);
    rr_sched_release(s, b);

    b = rr_sched_acquire(s);
    CHECK(rr_sched_reserve(b, 2, &err) == RR_OK);
    b->query = (rr_text){query, strlen(query)};
    b->n_docs = 2;
    b->docs[0] = (rr_text){"short", 5};
    b->docs[1] = (rr_text){longdoc, strlen(longdoc)};
    b->max_length = 64;
    b->truncate = 0;
    b->done = on_done;
    rr_sched_submit(s, b);
    wait_for(6);
    CHECK_MSG(b->outcome == RR_SCHED_FAILED && b->err.status == RR_E_TOO_LONG &&
                  strstr(b->err.msg, "documents[1]"),
              "too long: %d %s", b->outcome, b->err.msg);
    rr_sched_release(s, b);

    /* Pairs with their own queries and options (a TEI stream): alternating queries, each
     * pair's truncation its own; every logit is rr_score_query's for its own query, bit for
     * bit (the CPU engine is batch invariant). A NUL inside a text is a character. */
    const char *qs[2] = {"what moves the tides", "do cats sleep"};
    const char *pdocs[4] = {"The moon pulls the ocean.", "Cats sleep a lot.", longdoc, "a\0b cats"};
    size_t plens[4] = {strlen(pdocs[0]), strlen(pdocs[1]), strlen(longdoc), 9};
    rr_text pq[4];
    uint8_t pf[4];
    float want[4];
    b = rr_sched_acquire(s);
    CHECK(rr_sched_reserve(b, 4, &err) == RR_OK);
    b->query = (rr_text){qs[0], strlen(qs[0])};
    b->n_docs = 4;
    for (int j = 0; j < 4; j++) {
        pq[j] = (rr_text){qs[j % 2], strlen(qs[j % 2])};
        pf[j] = RR_PAIR_TRUNCATE | (j == 2 ? RR_PAIR_KEEP_LAST : 0);
        b->docs[j] = (rr_text){pdocs[j], plens[j]};
        rr_score_opts o1 = {.max_length = 48, .truncate = 1, .keep_last = j == 2};
        float one;
        CHECK(rr_score_query(e_ref, m, qs[j % 2], strlen(qs[j % 2]), &pdocs[j], &plens[j], 1, &o1,
                             &one, &err) == RR_OK);
        want[j] = one;
    }
    b->queries = pq;
    b->pair_flags = pf;
    b->max_length = 48;
    b->done = on_done;
    rr_sched_submit(s, b);
    wait_for(7);
    CHECK_MSG(b->outcome == RR_SCHED_DONE, "per-pair queries: outcome %d %s", b->outcome,
              b->err.msg);
    for (int j = 0; j < 4; j++)
        CHECK_MSG(b->logits[j] == want[j], "per-pair query, pair %d: %.9g vs %.9g", j, b->logits[j],
                  want[j]);
    CHECK_MSG(b->query_tokens > 0, "query_tokens %d", b->query_tokens);
    rr_sched_release(s, b);
    CHECK(rr_sched_live(s) == 0);

    rr_sched_free(s);
    rr_engine_free(e);
    rr_engine_free(e_ref);
    rr_model_free(m);
    return test_summary("test_sched");
}
