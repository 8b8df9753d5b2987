/*
 * front.c — the protocol-neutral request front (contract in front.h): intake checks in one
 * order for every wing, the admission gate around the scheduler, deadline-aware admission
 * (sched/admit.h) before tokenization, outcome → class, ranking.
 *
 * Order of the intake checks (so the same bad input gets the same first complaint on every
 * path): ready → documents present → --max-docs → max_length → query → deadline
 * admission → --max-in-flight.
 */
#include "edge/front.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

int rr_problem_set(rr_problem *p, rr_fail f, const char *fmt, ...)
{
    p->fail = f;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof p->msg, fmt, ap);
    va_end(ap);
    return 0;
}

const char *rr_fail_name(rr_fail f)
{
    static const char *const names[RR_FAIL_COUNT] = {
        "none",       "malformed",   "invalid",  "empty",     "too_many",  "too_long", "too_big",
        "overloaded", "unavailable", "deadline", "cancelled", "tokenizer", "backend",  "internal",
    };
    return (unsigned)f < RR_FAIL_COUNT ? names[f] : "unknown";
}

int rr_front_ready(rr_server *srv, rr_problem *p)
{
    if (atomic_load(&srv->ready)) return 1;
    return rr_problem_set(p, RR_FAIL_UNAVAILABLE, "the model is still loading");
}

int rr_front_query(rr_text q, const char *what, rr_problem *p)
{
    if (q.len == 0) return rr_problem_set(p, RR_FAIL_INVALID, "%s is empty", what);
    if (rr_utf8_check(q.p, q.len) != q.len)
        return rr_problem_set(p, RR_FAIL_INVALID, "%s is not valid UTF-8", what);
    return 1;
}

/* The gate (edge.h): entered before the scheduler is touched, left at submit or abort. */
static int gate_enter(rr_server *srv)
{
    atomic_fetch_add(&srv->admitting, 1);
    if (!atomic_load(&srv->gate_closed)) return 1;
    atomic_fetch_sub(&srv->admitting, 1);
    return 0;
}

static void gate_leave(rr_server *srv)
{
    atomic_fetch_sub(&srv->admitting, 1);
}

static int chunked(const rr_server *srv, const rr_intake *in)
{
    return in->long_docs == RR_LONG_CHUNK ||
           (in->long_docs == RR_LONG_DEFAULT && srv->cfg.chunk_default);
}

int rr_front_options(rr_server *srv, const rr_intake *in, rr_problem *p)
{
    int model_max = srv->info->max_length;
    int sp = rr_tokenizer_pair_specials(rr_model_tokenizer(srv->model));
    if (in->max_length != 0 &&
        (in->max_length < (uint64_t)sp || in->max_length > (uint64_t)model_max))
        return rr_problem_set(p, RR_FAIL_INVALID,
                              "max_length %llu is outside %d ... %d (the model's max length)",
                              (unsigned long long)in->max_length, sp, model_max);
    if (in->max_doc_tokens > INT32_MAX)
        return rr_problem_set(p, RR_FAIL_INVALID, "max_tokens_per_doc %llu is over %d",
                              (unsigned long long)in->max_doc_tokens, INT32_MAX);
    if (chunked(srv, in)) {
        if (in->max_chunks > (uint64_t)srv->cfg.max_chunks_per_doc)
            return rr_problem_set(p, RR_FAIL_INVALID,
                                  "max_chunks_per_doc %llu is over the limit of %d "
                                  "(--max-chunks-per-doc)",
                                  (unsigned long long)in->max_chunks, srv->cfg.max_chunks_per_doc);
        if (in->max_length == (uint64_t)sp)
            return rr_problem_set(p, RR_FAIL_INVALID,
                                  "chunking needs max_length %d or more (room for one token)",
                                  sp + 1);
        if ((unsigned)in->chunk_score > RR_CHUNK_MEAN)
            return rr_problem_set(p, RR_FAIL_INVALID, "chunk_score %d is not max, first or mean",
                                  in->chunk_score);
        if (in->overlap > INT32_MAX)
            return rr_problem_set(p, RR_FAIL_INVALID, "chunk_overlap %lld is over %d",
                                  (long long)in->overlap, INT32_MAX);
    }
    return rr_front_query(in->query, "query", p);
}

rr_sched_req *rr_front_begin(rr_server *srv, const rr_intake *in, rr_problem *p)
{
    if (!rr_front_ready(srv, p)) return NULL;
    const char *field = in->docs_field ? in->docs_field : "documents";
    if (in->n_docs == 0) {
        rr_problem_set(p, RR_FAIL_EMPTY, "%s is empty", field);
        return NULL;
    }
    if (in->n_docs > (uint64_t)srv->cfg.max_docs) {
        rr_problem_set(p, RR_FAIL_TOO_MANY, "%llu %s, over the limit of %d (--max-docs)",
                       (unsigned long long)in->n_docs, field, srv->cfg.max_docs);
        return NULL;
    }
    if (!rr_front_options(srv, in, p)) return NULL;
    int chunk = chunked(srv, in);
    uint64_t per_doc = in->max_chunks ? in->max_chunks : (uint64_t)srv->cfg.max_chunks_per_doc;
    if (chunk && in->n_docs * per_doc > (uint64_t)srv->cfg.max_chunks_per_request) {
        rr_problem_set(p, RR_FAIL_TOO_MANY,
                       "%llu %s × %llu windows each is over the limit of %d windows "
                       "(--max-chunks-per-request)",
                       (unsigned long long)in->n_docs, field, (unsigned long long)per_doc,
                       srv->cfg.max_chunks_per_request);
        return NULL;
    }
    if (!gate_enter(srv)) {
        rr_problem_set(p, RR_FAIL_UNAVAILABLE, "server is shutting down");
        return NULL;
    }
    /* Deadline-aware admission (sched/admit.h), before tokenization: the work queued alone
     * outlasts the deadline → DEADLINE now, not after waiting for it. */
    if (!rr_admit_check(rr_sched_admit(srv->sched), RR_ADMIT_INTAKE, in->deadline_ns, 0,
                        rr_now_ns(), p->msg, sizeof p->msg)) {
        gate_leave(srv);
        p->fail = RR_FAIL_DEADLINE;
        return NULL;
    }
    rr_sched_req *r = rr_sched_acquire(srv->sched);
    if (!r) {
        gate_leave(srv);
        rr_problem_set(p, RR_FAIL_OVERLOADED, "too many requests in flight (--max-in-flight %d)",
                       srv->cfg.max_in_flight);
        return NULL;
    }
    rr_error err;
    if (rr_sched_reserve(r, (int)in->n_docs, &err) != RR_OK) {
        rr_sched_release(srv->sched, r);
        gate_leave(srv);
        rr_problem_set(p, RR_FAIL_OVERLOADED, "%s", err.msg);
        return NULL;
    }
    r->query = in->query;
    r->n_docs = (int)in->n_docs;
    r->docs_field = field;
    r->max_length = in->max_length ? (int)in->max_length : srv->info->max_length;
    r->truncate = in->truncate != 0;
    r->keep_last = in->keep_last != 0;
    r->deadline_ns = in->deadline_ns;
    r->max_doc_tokens = (int)in->max_doc_tokens;
    r->chunk = chunk;
    r->max_chunks = chunk ? (int)per_doc : 1;
    r->overlap = in->overlap < 0 ? -1 : (int)in->overlap;
    r->chunk_score = in->chunk_score;
    return r;
}

int rr_front_chunked(const rr_sched_req *r)
{
    return r->chunk;
}

void rr_front_window_of(const rr_sched_req *r, int i, rr_front_window *w)
{
    int f = r->doc_first[i], b = r->best[i];
    const rr_window *x = &r->win[f + b];
    int c0 = (int)rr_utf8_chars(r->docs[i].p, (size_t)x->byte_start);
    *w = (rr_front_window){.index = b,
                           .scored = r->doc_first[i + 1] - f,
                           .possible = r->n_possible[i],
                           .token_start = x->tok_start,
                           .token_end = x->tok_end,
                           .char_start = c0,
                           .char_end =
                               c0 + (int)rr_utf8_chars(r->docs[i].p + x->byte_start,
                                                       (size_t)(x->byte_end - x->byte_start))};
}

int rr_front_doc(rr_sched_req *r, int i, rr_text text, rr_text id, rr_problem *p)
{
    if (id.len && rr_utf8_check(id.p, id.len) != id.len)
        return rr_problem_set(p, RR_FAIL_INVALID, "%s[%d].id is not valid UTF-8", r->docs_field, i);
    r->docs[i] = text.p ? text : (rr_text){"", 0};
    return 1;
}

void rr_front_submit(rr_server *srv, rr_sched_req *r, void (*done)(rr_sched_req *), void *user)
{
    r->done = done;
    r->user = user;
    rr_sched_submit(srv->sched, r); /* done may run before this returns */
    gate_leave(srv);
}

void rr_front_abort(rr_server *srv, rr_sched_req *r)
{
    rr_sched_release(srv->sched, r);
    gate_leave(srv);
}

void rr_front_release(rr_server *srv, rr_sched_req *r)
{
    rr_sched_release(srv->sched, r);
}

int rr_front_outcome(const rr_sched_req *r, rr_problem *p)
{
    switch (r->outcome) {
    case RR_SCHED_DONE:
        return 1;
    case RR_SCHED_EXPIRED: /* err.msg: refused at admission after tokenization (admit.h) */
        return rr_problem_set(p, RR_FAIL_DEADLINE, "%s",
                              r->err.msg[0] ? r->err.msg
                                            : "the deadline passed before scoring finished");
    case RR_SCHED_CANCELLED:
        return rr_problem_set(p, RR_FAIL_CANCELLED, "cancelled by the client");
    case RR_SCHED_SHUTDOWN:
        return rr_problem_set(p, RR_FAIL_UNAVAILABLE, "server is shutting down");
    case RR_SCHED_FAILED:
        break;
    }
    rr_fail f;
    switch (r->err.status) {
    case RR_E_UTF8:
    case RR_E_INVALID:
        f = RR_FAIL_INVALID;
        break;
    case RR_E_TOO_LONG:
        f = RR_FAIL_TOO_LONG;
        break;
    case RR_E_NOMEM:
        f = RR_FAIL_OVERLOADED;
        break;
    case RR_E_DEVICE:
        f = RR_FAIL_BACKEND;
        break;
    default:
        f = RR_FAIL_TOKENIZER;
        break;
    }
    return rr_problem_set(p, f, "%s", r->err.msg);
}

int rr_front_top(uint64_t top_n, int n)
{
    return top_n == 0 || top_n >= (uint64_t)n ? n : (int)top_n;
}

int rr_front_rank_logits(const float *logits, int n, rr_ranked *out, rr_problem *p)
{
    for (int i = 0; i < n; i++)
        if (isnan(logits[i]))
            return rr_problem_set(p, RR_FAIL_BACKEND, "the score of document %d is NaN", i);
    rr_rank(logits, n, out);
    return 1;
}

int rr_front_rank(rr_sched_req *r, size_t extra, const rr_ranked **items, void **extra_out,
                  rr_problem *p)
{
    size_t n = (size_t)r->n_docs;
    size_t at = (n * sizeof(rr_ranked) + 15) & ~(size_t)15;
    char *mem = rr_sched_scratch(r, at + extra);
    if (!mem)
        return rr_problem_set(p, RR_FAIL_OVERLOADED, "out of memory ranking %d documents",
                              r->n_docs);
    if (!rr_front_rank_logits(r->logits, r->n_docs, (rr_ranked *)mem, p)) return 0;
    *items = (const rr_ranked *)mem;
    if (extra_out) *extra_out = mem + at;
    return 1;
}
