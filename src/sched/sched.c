/*
 * sched.c — request pool, tokenizer workers, token-budget batcher and the engine thread
 * (contract in sched.h).
 *
 * Locking: one mutex guards the pool's free list, the tokenize queue and the ready queue.
 * A request is touched by one thread at a time: the caller until submit, then one worker,
 * then the engine thread, then the caller again from `done` on. Only `cancelled` is shared
 * (atomic).
 */
#define _POSIX_C_SOURCE 200809L
#include "sched.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

/* Requests made ready for PREFILL_DOCS documents of about 64 tokens each at start. */
#define PREFILL_REQUESTS 16
#define PREFILL_DOCS 64

typedef struct part {
    rr_sched_req *r;
    int first, count;
} part;

struct rr_sched {
    const rr_tokenizer *tok;
    rr_engine *engine;
    int max_batch_tokens;
    int model_max_length;
    int max_chunks; /* per document, at most (rr_sched_opts) */
    int dbuf_len;   /* a worker's document buffer: model_max_length or the windows' reach */

    pthread_mutex_t mu;
    pthread_cond_t tok_cv, ready_cv;
    int stop;
    rr_sched_req *pool; /* [max_in_flight] */
    rr_sched_req *free_list;
    int n_live;
    rr_sched_req *tok_head, *tok_tail;     /* waiting for a tokenizer worker */
    rr_sched_req *ready_head, *ready_tail; /* tokenized, waiting for the engine */

    int n_workers;
    pthread_t *workers;
    int32_t *worker_buf; /* per worker: query ids [model_max_length], document ids [dbuf_len]
                        and their offsets [2 * dbuf_len] */
    pthread_t engine_thread;
    int engine_started;

    rr_sched_stats stats;
    rr_admit admit; /* deadline-aware admission: queued tokens, cost per token (admit.h) */

    /* Engine batch, allocated once. */
    int32_t *b_ids, *b_types, *b_cu;
    float *b_logits;
    part *parts;
};

static void push(rr_sched_req **head, rr_sched_req **tail, rr_sched_req *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static rr_sched_req *pop(rr_sched_req **head, rr_sched_req **tail)
{
    rr_sched_req *r = *head;
    if (r) {
        *head = r->next;
        if (!*head) *tail = NULL;
        r->next = NULL;
    }
    return r;
}

/* Each document's logit from its pairs' (one pair each unless chunked). */
static void combine(rr_sched_req *r)
{
    for (int i = 0; i < r->n_docs; i++) {
        int f = r->doc_first[i], n = r->doc_first[i + 1] - f;
        if (!r->chunk) {
            r->logits[i] = r->pair_logits[f];
            r->best[i] = 0;
        } else {
            r->logits[i] = rr_chunk_combine(r->pair_logits + f, n, r->chunk_score, &r->best[i]);
        }
    }
}

/* Records the request's statistics, then hands it back through `done`. */
static void finish(rr_sched *s, rr_sched_req *r, rr_sched_outcome o)
{
    rr_sched_stats *st = &s->stats;
    r->outcome = o;
    if (o == RR_SCHED_DONE) combine(r);
    rr_hist_observe(&st->request_seconds, rr_now_ns() - r->t_submit);
    rr_hist_observe(&st->request_pairs, (uint64_t)r->n_docs);
    atomic_fetch_add_explicit(&st->outcomes[o], 1, memory_order_relaxed);
    if (o == RR_SCHED_DONE) {
        rr_hist_observe(&st->tokenize_seconds, r->tokenize_ns);
        rr_hist_observe(&st->queue_seconds, r->queue_ns);
        rr_hist_observe(&st->infer_seconds, r->infer_ns);
        atomic_fetch_add_explicit(&st->pairs, (uint64_t)r->n_pairs, memory_order_relaxed);
        atomic_fetch_add_explicit(&st->tokens, (uint64_t)r->total_tokens, memory_order_relaxed);
    }
    r->done(r);
}

const rr_sched_stats *rr_sched_stats_get(const rr_sched *s)
{
    return &s->stats;
}

/* Why this request should not be computed any more, or DONE when it should. */
static rr_sched_outcome dropped(const rr_sched_req *r, uint64_t now)
{
    if (atomic_load(&r->cancelled)) return RR_SCHED_CANCELLED;
    if (r->deadline_ns && now >= r->deadline_ns) return RR_SCHED_EXPIRED;
    return RR_SCHED_DONE;
}

/* Room for `need` pairs (high-water mark, like the tokens). */
static int grow_pairs(rr_sched_req *r, int need)
{
    size_t cap = rr_grow_cap((size_t)r->cap_pairs, (size_t)need, 64);
    if (cap == (size_t)r->cap_pairs) return 1;
    if (cap > INT_MAX || !rr_realloc_array(&r->win, cap, sizeof *r->win) ||
        !rr_realloc_array(&r->pair_logits, cap, sizeof *r->pair_logits))
        return 0;
    r->cap_pairs = (int)cap;
    return 1;
}

static int grow_tokens(rr_sched_req *r, long need)
{
    size_t cap = rr_grow_cap((size_t)r->cap_tok, (size_t)need, 4096);
    if (cap == (size_t)r->cap_tok) return 1;
    if (!rr_realloc_array(&r->ids, cap, sizeof *r->ids) ||
        !rr_realloc_array(&r->type_ids, cap, sizeof *r->type_ids))
        return 0;
    r->cap_tok = (long)cap;
    return 1;
}

/* Pair i's options: the request's, or its own (pair_flags). */
static rr_pair_opts pair_opts(const rr_sched_req *r, int i)
{
    rr_pair_opts o = {.max_length = r->max_length,
                      .truncate = r->truncate,
                      .keep_last = r->keep_last,
                      .max_doc_tokens = r->max_doc_tokens,
                      .chunk = r->chunk,
                      .max_chunks = r->max_chunks,
                      .overlap = r->overlap,
                      .chunk_score = r->chunk_score};
    if (r->pair_flags) {
        o.truncate = (r->pair_flags[i] & RR_PAIR_TRUNCATE) != 0;
        o.keep_last = (r->pair_flags[i] & RR_PAIR_KEEP_LAST) != 0;
    }
    return o;
}

/* Tokenizes each query once (a run of pairs sharing the same query text and options
 * reuses its encoding) and each document once, building every pair (every window, when
 * chunked). Returns RR_OK or fills r->err. */
static rr_status tokenize(rr_sched *s, rr_sched_req *r, int32_t *qbuf, int32_t *dbuf,
                          int32_t *doffs)
{
    rr_chunk_plan plan;
    int np = 0;
    rr_side q = {0};
    rr_text qt = {NULL, 0};
    rr_pair_opts qo = {0};
    long off = 0;
    rr_status st;
    for (int i = 0; i < r->n_docs; i++) {
        rr_text want = r->queries ? r->queries[i] : r->query;
        rr_pair_opts o = pair_opts(r, i);
        if (i == 0 || o.keep_last != qo.keep_last || want.len != qt.len ||
            (want.p != qt.p && memcmp(want.p, qt.p, want.len) != 0)) {
            if ((st = rr_query_encode(s->tok, want.p, want.len, &o, qbuf, &q, &r->err)) != RR_OK)
                return st;
            if (i == 0) r->query_tokens = q.total;
            qt = want;
            qo = o;
        }
        int most = r->chunk ? r->max_chunks : 1;
        if (!grow_tokens(r, off + (long)most * r->max_length) || !grow_pairs(r, np + most))
            return rr_set_error(&r->err, RR_E_NOMEM, "out of memory for %d documents", r->n_docs);
        r->doc_first[i] = np;
        if (r->chunk) {
            st = rr_doc_windows(s->tok, &q, r->docs[i].p, r->docs[i].len, &o, r->docs_field, i,
                                dbuf, doffs, s->dbuf_len, r->ids + off, r->type_ids + off,
                                r->win + np, &plan, &r->err);
            if (st != RR_OK) return st;
            for (int k = 0; k < plan.n_windows; k++)
                r->win[np + k].off += off;
            r->n_possible[i] = plan.n_possible;
            np += plan.n_windows;
            off = r->win[np - 1].off + r->win[np - 1].len;
        } else {
            int len = 0;
            st = rr_pair_encode(s->tok, &q, r->docs[i].p, r->docs[i].len, &o, r->docs_field, i,
                                dbuf, r->ids + off, r->type_ids + off, &len, &r->err);
            if (st != RR_OK) return st;
            r->win[np++] = (rr_window){off, len, 0, 0, 0, 0};
            r->n_possible[i] = 1;
            off += len;
        }
    }
    r->doc_first[r->n_docs] = np;
    r->n_pairs = np;
    r->total_tokens = off;
    return RR_OK;
}

static void *worker_main(void *arg)
{
    rr_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    int id = 0;
    while (id < s->n_workers && !pthread_equal(s->workers[id], pthread_self()))
        id++;
    pthread_mutex_unlock(&s->mu);
    int32_t *qbuf = s->worker_buf + (size_t)id * (size_t)(s->model_max_length + 3 * s->dbuf_len);
    int32_t *dbuf = qbuf + s->model_max_length, *doffs = dbuf + s->dbuf_len;

    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->tok_head && !s->stop)
            pthread_cond_wait(&s->tok_cv, &s->mu);
        rr_sched_req *r = pop(&s->tok_head, &s->tok_tail);
        if (r) atomic_fetch_sub(&s->stats.queued_tokenize, 1);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (!r) break;
        if (stop) {
            finish(s, r, RR_SCHED_SHUTDOWN);
            continue;
        }
        rr_sched_outcome o = dropped(r, rr_now_ns());
        if (o != RR_SCHED_DONE) {
            finish(s, r, o);
            continue;
        }
        uint64_t t0 = rr_now_ns();
        rr_status st = tokenize(s, r, qbuf, dbuf, doffs);
        uint64_t t1 = rr_now_ns();
        r->tokenize_ns = t1 - t0;
        if (st != RR_OK) {
            finish(s, r, RR_SCHED_FAILED);
            continue;
        }
        /* Admission (admit.h): its deadline cannot be met behind the queue → refused now. */
        if (!rr_admit_check(&s->admit, RR_ADMIT_TOKENIZED, r->deadline_ns, r->total_tokens, t1,
                            r->err.msg, sizeof r->err.msg)) {
            finish(s, r, RR_SCHED_EXPIRED);
            continue;
        }
        r->t_ready = t1;
        pthread_mutex_lock(&s->mu);
        push(&s->ready_head, &s->ready_tail, r);
        rr_admit_enqueue(&s->admit, r->total_tokens, r->deadline_ns); /* admission */
        atomic_fetch_add(&s->stats.queued_engine, 1);
        pthread_cond_signal(&s->ready_cv);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

static long remaining_tokens(const rr_sched_req *r)
{
    return r->next_pair < r->n_pairs ? r->total_tokens - r->win[r->next_pair].off : 0;
}

/* Under s->mu: takes every cancelled or expired request out of the ready queue (all of it,
 * not just the head: a request behind a long one is answered at the next batch, not after
 * the long one). Pairs of a dropped request already in an earlier batch were scattered
 * already: only the engine thread consumes the queue, so none is in flight now. */
static void drop_ready(rr_sched *s, uint64_t now, rr_sched_req **drop)
{
    rr_sched_req **pp = &s->ready_head, *prev = NULL;
    while (*pp) {
        rr_sched_req *r = *pp;
        rr_sched_outcome o = dropped(r, now);
        if (o == RR_SCHED_DONE) {
            prev = r;
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        if (s->ready_tail == r) s->ready_tail = prev;
        atomic_fetch_sub(&s->stats.queued_engine, 1);
        rr_admit_drop(&s->admit, remaining_tokens(r)); /* admission: tokens leave unscored */
        r->outcome = o;
        r->next = *drop;
        *drop = r;
    }
}

/* Under s->mu: fills the batch from the ready queue; requests to drop go to *drop. */
static int form_batch(rr_sched *s, int *n_tok_out, int *n_parts_out, rr_sched_req **drop)
{
    int n_seq = 0, n_tok = 0, n_parts = 0, budget = s->max_batch_tokens;
    uint64_t now = rr_now_ns();
    s->b_cu[0] = 0;
    drop_ready(s, now, drop);
    while (s->ready_head) {
        rr_sched_req *r = s->ready_head;
        long rem = remaining_tokens(r);
        /* Keep a request's pairs together: start it in the next batch when it would fit
         * whole in an empty one but not in what is left of this one. */
        if (n_tok > 0 && rem > budget - n_tok && rem <= budget) break;
        int first = r->next_pair;
        while (r->next_pair < r->n_pairs && n_tok + r->win[r->next_pair].len <= budget) {
            int len = r->win[r->next_pair].len;
            long off = r->win[r->next_pair].off;
            memcpy(s->b_ids + n_tok, r->ids + off, (size_t)len * sizeof(int32_t));
            memcpy(s->b_types + n_tok, r->type_ids + off, (size_t)len * sizeof(int32_t));
            n_tok += len;
            s->b_cu[++n_seq] = n_tok;
            r->next_pair++;
        }
        if (r->next_pair > first) {
            s->parts[n_parts++] = (part){r, first, r->next_pair - first};
            if (!r->started) {
                r->started = 1;
                r->queue_ns = now - r->t_ready;
            }
        }
        if (r->next_pair < r->n_pairs) break; /* budget full */
        pop(&s->ready_head, &s->ready_tail);
        atomic_fetch_sub(&s->stats.queued_engine, 1);
    }
    *n_tok_out = n_tok;
    *n_parts_out = n_parts;
    return n_seq;
}

/* Calls done on a list of requests (outside the lock: done may take call locks). */
static void run_done(rr_sched *s, rr_sched_req *list)
{
    while (list) {
        rr_sched_req *r = list;
        list = r->next;
        finish(s, r, r->outcome);
    }
}

static void *engine_main(void *arg)
{
    rr_sched *s = arg;
    for (;;) {
        rr_sched_req *drop = NULL;
        int n_tok = 0, n_parts = 0;
        pthread_mutex_lock(&s->mu);
        while (!s->ready_head && !s->stop)
            pthread_cond_wait(&s->ready_cv, &s->mu);
        if (s->stop) {
            rr_sched_req *r;
            while ((r = pop(&s->ready_head, &s->ready_tail))) {
                atomic_fetch_sub(&s->stats.queued_engine, 1);
                rr_admit_drop(&s->admit, remaining_tokens(r)); /* admission: unscored */
                r->outcome = RR_SCHED_SHUTDOWN;
                r->next = drop;
                drop = r;
            }
            pthread_mutex_unlock(&s->mu);
            run_done(s, drop);
            break;
        }
        int n_seq = form_batch(s, &n_tok, &n_parts, &drop);
        pthread_mutex_unlock(&s->mu);
        run_done(s, drop);
        if (n_seq == 0) continue;

        rr_batch b = {.n_seq = n_seq,
                      .n_tok = n_tok,
                      .tokens = s->b_ids,
                      .type_ids = s->b_types,
                      .cu_seqlens = s->b_cu};
        uint64_t t0 = rr_now_ns();
        rr_admit_batch_begin(&s->admit, n_tok, t0); /* admission: queued → in flight */
        rr_status st = rr_engine_forward(s->engine, &b, s->b_logits);
        uint64_t dt = rr_now_ns() - t0;
        rr_admit_batch_end(&s->admit, n_tok, dt, st == RR_OK); /* admission: learns the cost */
        rr_hist_observe(&s->stats.batch_tokens, (uint64_t)n_tok);
        rr_hist_observe(&s->stats.batch_pairs, (uint64_t)n_seq);
        rr_hist_observe(&s->stats.forward_seconds, dt);
        if (st != RR_OK) atomic_fetch_add(&s->stats.forward_failures, 1);
        int seq = 0;
        for (int p = 0; p < n_parts; p++) {
            rr_sched_req *r = s->parts[p].r;
            r->infer_ns += dt;
            for (int j = 0; j < s->parts[p].count; j++)
                r->pair_logits[s->parts[p].first + j] = s->b_logits[seq + j];
            seq += s->parts[p].count;
            r->n_scored += s->parts[p].count;
            if (st != RR_OK) {
                /* A request appears at most once per batch and earlier batches succeeded
                 * (or it would be finished already): fail it exactly once, here, taking
                 * its unbatched rest out of the ready queue first. */
                rr_set_error(&r->err, RR_E_DEVICE,
                             "engine forward failed (%s) on a batch of %d pairs",
                             rr_status_name(st), n_seq);
                if (r->next_pair < r->n_pairs) {
                    pthread_mutex_lock(&s->mu);
                    rr_sched_req **pp = &s->ready_head, *prev = NULL;
                    while (*pp && *pp != r) {
                        prev = *pp;
                        pp = &(*pp)->next;
                    }
                    if (*pp) {
                        *pp = r->next;
                        atomic_fetch_sub(&s->stats.queued_engine, 1);
                        rr_admit_drop(&s->admit, remaining_tokens(r)); /* admission */
                        if (s->ready_tail == r) s->ready_tail = prev;
                    }
                    pthread_mutex_unlock(&s->mu);
                }
                finish(s, r, RR_SCHED_FAILED);
            } else if (r->n_scored == r->n_pairs) {
                finish(s, r, RR_SCHED_DONE);
            }
        }
    }
    return NULL;
}

rr_status rr_sched_init(const rr_model *m, rr_engine *e, const rr_sched_opts *o, rr_sched **out,
                        rr_error *err)
{
    rr_status st = RR_E_NOMEM;
    *out = NULL;
    if (o->max_in_flight < 1)
        return rr_set_error(err, RR_E_INVALID, "scheduler: max_in_flight must be >= 1");
    rr_sched *s = rr_calloc(1, sizeof *s);
    if (!s) return rr_set_error(err, RR_E_NOMEM, "out of memory creating the scheduler");
    s->tok = rr_model_tokenizer(m);
    s->engine = e;
    s->max_batch_tokens = rr_engine_max_batch_tokens(e);
    s->model_max_length = rr_model_get_info(m)->max_length;
    s->max_chunks = o->max_chunks > 0 ? o->max_chunks : 1;
    {
        rr_pair_opts most = {.max_length = s->model_max_length, .max_chunks = s->max_chunks};
        int reach = rr_chunk_doc_cap(rr_tokenizer_pair_specials(s->tok), &most);
        s->dbuf_len = reach > s->model_max_length ? reach : s->model_max_length;
    }
    rr_admit_init(&s->admit, s->max_batch_tokens, o->admission_control);
    /* s->n_workers counts the workers started, so a failure before them joins none. */
    int n_workers = o->tokenizer_workers > 0 ? o->tokenizer_workers : rr_cpu_count();
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->tok_cv, NULL);
    pthread_cond_init(&s->ready_cv, NULL);
    rr_sched_stats *ss = &s->stats;
    rr_hist_init(&ss->request_seconds, rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    rr_hist_init(&ss->tokenize_seconds, rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    rr_hist_init(&ss->queue_seconds, rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    rr_hist_init(&ss->infer_seconds, rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    rr_hist_init(&ss->forward_seconds, rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    rr_hist_init(&ss->request_pairs, rr_hist_sizes, rr_hist_sizes_n, 1);
    rr_hist_init(&ss->batch_tokens, rr_hist_sizes, rr_hist_sizes_n, 1);
    rr_hist_init(&ss->batch_pairs, rr_hist_sizes, rr_hist_sizes_n, 1);

    s->pool = rr_calloc((size_t)o->max_in_flight, sizeof *s->pool);
    s->workers = rr_calloc((size_t)n_workers, sizeof *s->workers);
    s->worker_buf = rr_malloc((size_t)n_workers * (size_t)(s->model_max_length + 3 * s->dbuf_len) *
                              sizeof(int32_t));
    size_t bt = (size_t)s->max_batch_tokens;
    s->b_ids = rr_malloc(bt * sizeof(int32_t));
    s->b_types = rr_malloc(bt * sizeof(int32_t));
    s->b_cu = rr_malloc((bt + 1) * sizeof(int32_t));
    s->b_logits = rr_malloc(bt * sizeof(float) * (size_t)rr_model_get_info(m)->n_labels);
    s->parts = rr_malloc(bt * sizeof(part));
    if (!s->pool || !s->workers || !s->worker_buf || !s->b_ids || !s->b_types || !s->b_cu ||
        !s->b_logits || !s->parts) {
        rr_set_error(err, RR_E_NOMEM, "out of memory allocating the scheduler's buffers");
        goto fail;
    }
    for (int i = o->max_in_flight - 1; i >= 0; i--) {
        s->pool[i].next = s->free_list;
        s->free_list = &s->pool[i];
    }
    /* The requests a light load reuses (the top of the LIFO) get room for a typical request
     * now: which one a request gets depends on timing, and a steady load must not
     * allocate. */
    for (int i = 0; i < o->max_in_flight && i < PREFILL_REQUESTS; i++) {
        rr_sched_req *r = &s->pool[i];
        if (rr_sched_reserve(r, PREFILL_DOCS, err) != RR_OK || !grow_pairs(r, PREFILL_DOCS) ||
            !grow_tokens(r, (long)PREFILL_DOCS * 64) || !rr_sched_scratch(r, 16384)) {
            st = rr_set_error(err, RR_E_NOMEM, "out of memory prefilling the request pool");
            goto fail;
        }
    }
    if (pthread_create(&s->engine_thread, NULL, engine_main, s) != 0) {
        st = rr_set_error(err, RR_E_NOMEM, "cannot start the engine thread");
        goto fail;
    }
    s->engine_started = 1;
    pthread_mutex_lock(&s->mu); /* workers look up their index under the lock */
    for (int i = 0; i < n_workers; i++, s->n_workers = i) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0) {
            pthread_mutex_unlock(&s->mu);
            st = rr_set_error(err, RR_E_NOMEM, "cannot start tokenizer worker %d", i);
            goto fail;
        }
    }
    pthread_mutex_unlock(&s->mu);
    *out = s;
    return RR_OK;
fail:
    rr_sched_free(s);
    return st;
}

void rr_sched_free(rr_sched *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->tok_cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    /* Workers are gone, so nothing more enters the ready queue. */
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->ready_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->engine_started) pthread_join(s->engine_thread, NULL);
    if (s->pool) {
        /* All requests are back in the pool (contract), so every slot can be freed. */
        for (rr_sched_req *r = s->free_list; r; r = r->next) {
            rr_free(r->docs);
            rr_free(r->logits);
            rr_free(r->ids);
            rr_free(r->type_ids);
            rr_free(r->win);
            rr_free(r->pair_logits);
            rr_free(r->doc_first);
            rr_free(r->best);
            rr_free(r->n_possible);
            rr_free(r->scratch);
        }
    }
    rr_free(s->pool);
    rr_free(s->workers);
    rr_free(s->worker_buf);
    rr_free(s->b_ids);
    rr_free(s->b_types);
    rr_free(s->b_cu);
    rr_free(s->b_logits);
    rr_free(s->parts);
    pthread_cond_destroy(&s->tok_cv);
    pthread_cond_destroy(&s->ready_cv);
    pthread_mutex_destroy(&s->mu);
    rr_free(s);
}

rr_sched_req *rr_sched_acquire(rr_sched *s)
{
    pthread_mutex_lock(&s->mu);
    rr_sched_req *r = s->free_list;
    if (r) {
        s->free_list = r->next;
        s->n_live++;
    }
    pthread_mutex_unlock(&s->mu);
    if (!r) return NULL;
    r->query = (rr_text){"", 0};
    r->n_docs = 0;
    r->queries = NULL;
    r->pair_flags = NULL;
    r->docs_field = "documents";
    r->max_length = s->model_max_length;
    r->truncate = 1;
    r->keep_last = 0;
    r->max_doc_tokens = 0;
    r->chunk = 0;
    r->max_chunks = 1;
    r->overlap = -1;
    r->chunk_score = RR_CHUNK_MAX;
    r->deadline_ns = 0;
    atomic_store(&r->cancelled, 0);
    r->done = NULL;
    r->user = NULL;
    r->outcome = RR_SCHED_DONE;
    r->err.status = RR_OK;
    r->err.msg[0] = 0;
    r->query_tokens = 0;
    r->total_tokens = 0;
    r->n_pairs = 0;
    r->t_submit = r->tokenize_ns = r->queue_ns = r->infer_ns = r->t_ready = 0;
    r->next_pair = r->n_scored = r->started = 0;
    r->next = NULL;
    return r;
}

rr_status rr_sched_reserve(rr_sched_req *r, int n_docs, rr_error *err)
{
    size_t cap = rr_grow_cap((size_t)r->cap_docs, (size_t)(n_docs > 0 ? n_docs : 0), 16);
    if (cap == (size_t)r->cap_docs) return RR_OK;
    if (cap > INT_MAX || !rr_realloc_array(&r->docs, cap, sizeof *r->docs) ||
        !rr_realloc_array(&r->logits, cap, sizeof *r->logits) ||
        !rr_realloc_array(&r->doc_first, cap + 1, sizeof *r->doc_first) ||
        !rr_realloc_array(&r->best, cap, sizeof *r->best) ||
        !rr_realloc_array(&r->n_possible, cap, sizeof *r->n_possible))
        return rr_set_error(err, RR_E_NOMEM, "out of memory reserving %d documents", n_docs);
    r->cap_docs = (int)cap;
    return RR_OK;
}

void *rr_sched_scratch(rr_sched_req *r, size_t bytes)
{
    if (bytes <= r->scratch_cap) return r->scratch;
    void *p = rr_realloc(r->scratch, bytes);
    if (!p) return NULL;
    r->scratch = p;
    r->scratch_cap = bytes;
    return p;
}

void rr_sched_submit(rr_sched *s, rr_sched_req *r)
{
    r->t_submit = rr_now_ns();
    pthread_mutex_lock(&s->mu);
    if (s->stop) {
        pthread_mutex_unlock(&s->mu);
        finish(s, r, RR_SCHED_SHUTDOWN);
        return;
    }
    push(&s->tok_head, &s->tok_tail, r);
    atomic_fetch_add(&s->stats.queued_tokenize, 1);
    pthread_cond_signal(&s->tok_cv);
    pthread_mutex_unlock(&s->mu);
}

void rr_sched_release(rr_sched *s, rr_sched_req *r)
{
    pthread_mutex_lock(&s->mu);
    r->next = s->free_list;
    s->free_list = r;
    s->n_live--;
    pthread_mutex_unlock(&s->mu);
}

rr_admit *rr_sched_admit(rr_sched *s)
{
    return &s->admit;
}

int rr_sched_live(rr_sched *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n_live;
    pthread_mutex_unlock(&s->mu);
    return n;
}
