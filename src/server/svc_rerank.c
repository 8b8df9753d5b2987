/*
 * svc_rerank.c — rerank.v1.Reranker: unary Rerank, bidirectional RerankStream and Info,
 * plus the helpers the TEI service shares (ranking, status mapping, scratch layout).
 *
 * A scoring call acquires a pooled scheduler request (RESOURCE_EXHAUSTED when
 * --max-in-flight are live), points it at the texts of the unpacked protobuf message (no
 * copy) and submits it; the response is built and sent by whichever thread completes the
 * request (the engine thread, or a tokenizer worker for a request that failed early), in
 * response buffers laid out in the request's reusable scratch memory.
 */
#include <stdlib.h>
#include <string.h>

#include "rerank/v1/rerank.pb-c.h"
#include "server.h"
#include "util/util.h"

/* Per-query cap on documents in one stream (the final ranking keeps all of them). */
#define STREAM_DOCS_PER_MAX_DOCS 100
/* Stream messages decoded but not yet scored; reading pauses beyond this. */
#define STREAM_PENDING 4
/* Decoded messages alive at once: the pending ones, the open and the batch being scored. */
#define STREAM_SLOTS (STREAM_PENDING + 2)
/* What a pooled stream state keeps between streams; more is freed on reset. */
#define STREAM_KEEP_BYTES ((size_t)1 << 20)
#define STREAM_KEEP_DOCS 16384

static int rank_cmp(const void *a, const void *b)
{
    const rr_rank_item *x = a, *y = b;
    if (x->logit > y->logit) return -1;
    if (x->logit < y->logit) return 1;
    return (x->index > y->index) - (x->index < y->index);
}

void rr_rank_sort(const float *logits, int n, rr_rank_item *items)
{
    for (int i = 0; i < n; i++) items[i] = (rr_rank_item){logits[i], i};
    qsort(items, (size_t)n, sizeof *items, rank_cmp);
}

int rr_svc_ready(rr_call *c)
{
    if (atomic_load(&c->srv->ready)) return 1;
    rr_call_finish(c, GRPC_STATUS_UNAVAILABLE, "the model is still loading");
    return 0;
}

void rr_svc_fail(rr_call *c, rr_sched_outcome outcome, const rr_error *err)
{
    switch (outcome) {
    case RR_SCHED_FAILED:
        if (err->status == RR_E_UTF8 || err->status == RR_E_TOO_LONG || err->status == RR_E_INVALID)
            rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "%s", err->msg);
        else if (err->status == RR_E_NOMEM)
            rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s", err->msg);
        else
            rr_call_finish(c, GRPC_STATUS_INTERNAL, "%s", err->msg);
        break;
    case RR_SCHED_EXPIRED:
        rr_call_finish(c, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline expired before scoring");
        break;
    case RR_SCHED_CANCELLED: rr_call_finish(c, GRPC_STATUS_CANCELLED, "cancelled"); break;
    case RR_SCHED_SHUTDOWN: rr_call_finish(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down"); break;
    case RR_SCHED_DONE: rr_call_finish(c, GRPC_STATUS_INTERNAL, "no failure"); break;
    }
}

size_t rr_scratch_take(size_t *off, size_t count, size_t size)
{
    size_t at = (*off + 15) & ~(size_t)15;
    *off = at + count * size;
    return at;
}

/* Validates Truncation into the scheduler's fields; 0 (call finished) when invalid. */
static int parse_truncation(rr_call *c, const Rerank__V1__Truncation *t, rr_sched_req *r)
{
    int model_max = c->srv->info->max_length;
    r->max_length = model_max;
    r->truncate = 1;
    r->keep_last = 0;
    if (!t) return 1;
    if (t->max_length != 0 && (t->max_length < 3 || t->max_length > (uint32_t)model_max)) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT,
                       "truncation.max_length %u is outside 3 ... %d (the model's max length)",
                       t->max_length, model_max);
        return 0;
    }
    if (t->max_length) r->max_length = (int)t->max_length;
    r->truncate = !t->disabled;
    r->keep_last = t->direction == RERANK__V1__TRUNCATION_DIRECTION__TRUNCATION_DIRECTION_LEFT;
    return 1;
}

/* Acquires a scheduler request for n documents; NULL (call finished) when over a limit. */
static rr_sched_req *acquire(rr_call *c, int n)
{
    rr_sched_req *r = rr_sched_acquire(c->srv->sched);
    if (!r) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
                       "too many requests in flight (--max-in-flight %d)", c->srv->cfg.max_in_flight);
        return NULL;
    }
    rr_error err;
    if (rr_sched_reserve(r, n, &err) != RR_OK) {
        rr_sched_release(c->srv->sched, r);
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s", err.msg);
        return NULL;
    }
    r->deadline_ns = rr_call_deadline_ns(c);
    r->user = c;
    return r;
}

static void submit(rr_call *c, rr_sched_req *r)
{
    c->req = r;
    rr_call_ref(c); /* held by the scheduler until done */
    rr_sched_submit(c->srv->sched, r);
}

static void fill_stats(Rerank__V1__Stats *s, const rr_sched_req *r, uint64_t t_start)
{
    s->query_tokens = (uint32_t)r->query_tokens;
    s->total_tokens = (uint32_t)r->total_tokens;
    s->tokenization_ns = r->tokenize_ns;
    s->queue_ns = r->queue_ns;
    s->inference_ns = r->infer_ns;
    s->total_ns = rr_now_ns() - t_start;
}

/* ---- unary Rerank ------------------------------------------------------------------- */

/* Sends a built response or the failure of a finished request. The scheduler slot is
 * released first, so a client that got its answer can immediately use the slot again. */
static void reply(rr_call *c, rr_sched_req *r, grpc_byte_buffer *bb)
{
    rr_sched_outcome outcome = r->outcome;
    rr_error err = r->err;
    rr_sched_release(c->srv->sched, r);
    if (bb) {
        rr_call_send(c, bb);
        rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
    } else if (outcome != RR_SCHED_DONE) {
        rr_svc_fail(c, outcome, &err);
    } else {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory building the response");
    }
}

static void rerank_done(rr_sched_req *r)
{
    rr_call *c = r->user;
    pthread_mutex_lock(&c->mu);
    c->req = NULL;
    const Rerank__V1__RerankRequest *m = c->svc;
    grpc_byte_buffer *bb = NULL;
    if (r->outcome == RR_SCHED_DONE) {
        int n = r->n_docs;
        int top = m->top_n && (int)m->top_n < n ? (int)m->top_n : n;
        size_t off = 0;
        size_t o_items = rr_scratch_take(&off, (size_t)n, sizeof(rr_rank_item));
        size_t o_res = rr_scratch_take(&off, (size_t)top, sizeof(Rerank__V1__RerankResult));
        size_t o_ptr = rr_scratch_take(&off, (size_t)top, sizeof(Rerank__V1__RerankResult *));
        char *mem = rr_sched_scratch(r, off);
        if (mem) {
            rr_rank_item *items = (rr_rank_item *)(mem + o_items);
            Rerank__V1__RerankResult *res = (Rerank__V1__RerankResult *)(mem + o_res);
            Rerank__V1__RerankResult **ptr = (Rerank__V1__RerankResult **)(mem + o_ptr);
            rr_rank_sort(r->logits, n, items);
            for (int k = 0; k < top; k++) {
                const Rerank__V1__Document *d = m->documents[items[k].index];
                rerank__v1__rerank_result__init(&res[k]);
                res[k].index = (uint32_t)items[k].index;
                res[k].id = d->id;
                res[k].logit = items[k].logit;
                res[k].score = rr_sigmoid(items[k].logit);
                if (m->return_documents) res[k].document = d->text;
                ptr[k] = &res[k];
            }
            Rerank__V1__Stats stats = RERANK__V1__STATS__INIT;
            fill_stats(&stats, r, c->t_start);
            Rerank__V1__RerankResponse resp = RERANK__V1__RERANK_RESPONSE__INIT;
            resp.n_results = (size_t)top;
            resp.results = ptr;
            resp.stats = &stats;
            bb = rr_pack(&resp.base);
        }
    }
    reply(c, r, bb);
    pthread_mutex_unlock(&c->mu);
    rr_call_unref(c);
}

void rr_svc_rerank(rr_call *c)
{
    if (!rr_svc_ready(c)) return;
    Rerank__V1__RerankRequest *m =
        (Rerank__V1__RerankRequest *)rr_unpack(&rerank__v1__rerank_request__descriptor, c->payload, rr_call_arena(c));
    if (!m) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed RerankRequest");
        return;
    }
    c->svc = m; /* in c->arena: lives as long as the call */
    int n = (int)m->n_documents;
    if (!m->query[0]) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "query is empty");
        return;
    }
    if (n == 0) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "documents is empty");
        return;
    }
    if (m->n_documents > (size_t)c->srv->cfg.max_docs) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "%zu documents, over the limit of %d (--max-docs)",
                       m->n_documents, c->srv->cfg.max_docs);
        return;
    }
    rr_sched_req *r = acquire(c, n);
    if (!r) return;
    if (!parse_truncation(c, m->truncation, r)) {
        rr_sched_release(c->srv->sched, r);
        return;
    }
    r->query = m->query;
    r->query_len = strlen(m->query);
    r->n_docs = n;
    for (int i = 0; i < n; i++) {
        r->docs[i] = m->documents[i]->text;
        r->doc_lens[i] = strlen(m->documents[i]->text);
    }
    r->done = rerank_done;
    submit(c, r);
}

/* ---- Info --------------------------------------------------------------------------- */

void rr_svc_info(rr_call *c)
{
    if (!rr_svc_ready(c)) return;
    rr_server *srv = c->srv;
    Rerank__V1__InfoResponse resp = RERANK__V1__INFO_RESPONSE__INIT;
    resp.version = RR_SERVER_VERSION;
    resp.model_id = (char *)srv->cfg.model_dir;
    resp.architecture = (char *)srv->info->arch_name;
    resp.max_length = (uint32_t)srv->info->max_length;
    resp.dtype = strncmp(srv->device_desc, "cpu", 3) == 0 ? "F32" : "F16";
    resp.device = srv->device_desc;
    resp.weights_dtype = (char *)srv->info->weights_dtype;
    resp.max_batch_tokens = (uint32_t)srv->cfg.max_batch_tokens;
    resp.max_documents = (uint32_t)srv->cfg.max_docs;
    resp.max_message_bytes = (uint32_t)srv->cfg.max_message_bytes;
    resp.max_in_flight = (uint32_t)srv->cfg.max_in_flight;
    resp.tokenizer_workers = (uint32_t)srv->cfg.tokenizer_workers;
    rr_call_send(c, rr_pack(&resp.base));
    rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
}

/* ---- bidirectional RerankStream ----------------------------------------------------- */

typedef struct stream_state {
    void *next; /* free-list link (srv->streams[0]) */
    /* Each decoded message lives in its own arena (from the server's list) until released. */
    struct {
        Rerank__V1__RerankStreamRequest *m;
        rr_arena *a;
    } slot[STREAM_SLOTS];
    Rerank__V1__RerankStreamRequest *pending[STREAM_PENDING];
    int p_head, p_n;
    Rerank__V1__RerankStreamRequest *open; /* the current query's open message */
    Rerank__V1__RerankStreamRequest *cur;  /* the batch being scored */
    rr_sched_req tmpl;                     /* truncation settings of the open */
    uint32_t batch_index, docs_seen;
    /* Everything seen since the open, for the final ranking. Strings live in `arena`. */
    float *logit;
    size_t *id_off, *text_off;
    int cap;
    char *arena;
    size_t arena_len, arena_cap;
    void *scratch;
    size_t scratch_cap;
} stream_state;

static Rerank__V1__RerankStreamRequest *msg_unpack(rr_call *c, stream_state *st, grpc_byte_buffer *bb)
{
    for (int i = 0; i < STREAM_SLOTS; i++) {
        if (st->slot[i].m) continue;
        rr_arena *a = rr_arena_get(c->srv);
        st->slot[i].m = (Rerank__V1__RerankStreamRequest *)rr_unpack(&rerank__v1__rerank_stream_request__descriptor,
                                                                    bb, a);
        if (st->slot[i].m) st->slot[i].a = a;
        else rr_arena_put(c->srv, a);
        return st->slot[i].m;
    }
    return NULL; /* unreachable: at most STREAM_SLOTS messages are alive */
}

static void msg_release(rr_call *c, stream_state *st, Rerank__V1__RerankStreamRequest *m)
{
    for (int i = 0; i < STREAM_SLOTS; i++)
        if (st->slot[i].m == m) {
            rr_arena_put(c->srv, st->slot[i].a);
            st->slot[i].m = NULL;
            st->slot[i].a = NULL;
            return;
        }
}

void rr_stream_state_destroy(void *p)
{
    stream_state *st = p;
    rr_free(st->logit);
    rr_free(st->id_off);
    rr_free(st->text_off);
    rr_free(st->arena);
    rr_free(st->scratch);
    rr_free(st);
}

/* The call is over: release its messages and keep the buffers for the next stream
 * (within STREAM_KEEP_*) in the server's list. */
static void stream_free(rr_call *c)
{
    stream_state *st = c->svc;
    if (!st) return;
    for (int i = 0; i < STREAM_SLOTS; i++) {
        rr_arena_put(c->srv, st->slot[i].a);
        st->slot[i].m = NULL;
        st->slot[i].a = NULL;
    }
    st->p_head = st->p_n = 0;
    st->open = st->cur = NULL;
    st->batch_index = st->docs_seen = 0;
    st->arena_len = 0;
    if (st->cap > STREAM_KEEP_DOCS) {
        rr_free(st->logit), rr_free(st->id_off), rr_free(st->text_off);
        st->logit = NULL, st->id_off = st->text_off = NULL, st->cap = 0;
    }
    if (st->arena_cap > STREAM_KEEP_BYTES) rr_free(st->arena), st->arena = NULL, st->arena_cap = 0;
    if (st->scratch_cap > STREAM_KEEP_BYTES) rr_free(st->scratch), st->scratch = NULL, st->scratch_cap = 0;
    if (!rr_free_list_push(&c->srv->streams[0], st)) rr_stream_state_destroy(st);
    c->svc = NULL;
}

static void *stream_scratch(stream_state *st, size_t bytes)
{
    if (bytes > st->scratch_cap) {
        void *p = rr_realloc(st->scratch, bytes);
        if (!p) return NULL;
        st->scratch = p;
        st->scratch_cap = bytes;
    }
    return st->scratch;
}

/* Appends a NUL-terminated copy of s to the arena; (size_t)-1 when out of memory. */
static size_t arena_put(stream_state *st, const char *s)
{
    size_t n = strlen(s) + 1;
    if (st->arena_len + n > st->arena_cap) {
        size_t cap = st->arena_cap ? st->arena_cap : 4096;
        while (cap < st->arena_len + n) cap *= 2;
        char *p = rr_realloc(st->arena, cap);
        if (!p) return (size_t)-1;
        st->arena = p;
        st->arena_cap = cap;
    }
    memcpy(st->arena + st->arena_len, s, n);
    st->arena_len += n;
    return st->arena_len - n;
}

static int accum_reserve(stream_state *st, int n)
{
    if (n <= st->cap) return 1;
    int cap = st->cap ? st->cap : 64;
    while (cap < n) cap *= 2;
    void *p;
    if (!(p = rr_realloc(st->logit, (size_t)cap * sizeof *st->logit))) return 0;
    st->logit = p;
    if (!(p = rr_realloc(st->id_off, (size_t)cap * sizeof *st->id_off))) return 0;
    st->id_off = p;
    if (!(p = rr_realloc(st->text_off, (size_t)cap * sizeof *st->text_off))) return 0;
    st->text_off = p;
    st->cap = cap;
    return 1;
}

/* Queues the FinalRanking of the current query (under c->mu). */
static void emit_final(rr_call *c, stream_state *st)
{
    const Rerank__V1__StreamOpen *o = st->open->open;
    int n = (int)st->docs_seen;
    int top = o->top_n && (int)o->top_n < n ? (int)o->top_n : n;
    size_t off = 0;
    size_t o_items = rr_scratch_take(&off, (size_t)n, sizeof(rr_rank_item));
    size_t o_res = rr_scratch_take(&off, (size_t)top, sizeof(Rerank__V1__RerankResult));
    size_t o_ptr = rr_scratch_take(&off, (size_t)top, sizeof(Rerank__V1__RerankResult *));
    char *mem = stream_scratch(st, off + 16);
    if (!mem) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory ranking %d documents", n);
        return;
    }
    rr_rank_item *items = (rr_rank_item *)(mem + o_items);
    Rerank__V1__RerankResult *res = (Rerank__V1__RerankResult *)(mem + o_res);
    Rerank__V1__RerankResult **ptr = (Rerank__V1__RerankResult **)(mem + o_ptr);
    rr_rank_sort(st->logit, n, items);
    for (int k = 0; k < top; k++) {
        int i = items[k].index;
        rerank__v1__rerank_result__init(&res[k]);
        res[k].index = (uint32_t)i;
        res[k].id = st->arena + st->id_off[i];
        res[k].logit = items[k].logit;
        res[k].score = rr_sigmoid(items[k].logit);
        if (o->return_documents) res[k].document = st->arena + st->text_off[i];
        ptr[k] = &res[k];
    }
    Rerank__V1__FinalRanking fin = RERANK__V1__FINAL_RANKING__INIT;
    fin.n_results = (size_t)top;
    fin.results = ptr;
    fin.documents_seen = st->docs_seen;
    fin.batches_seen = st->batch_index;
    Rerank__V1__RerankStreamResponse resp = RERANK__V1__RERANK_STREAM_RESPONSE__INIT;
    resp.kind_case = RERANK__V1__RERANK_STREAM_RESPONSE__KIND_FINAL;
    resp.final = &fin;
    rr_call_send(c, rr_pack(&resp.base));
}

static int finished(const rr_call *c)
{
    return c->status_pending || c->status_started || c->dead;
}

static void stream_batch_done(rr_sched_req *r);

/* Under c->mu: handle decoded messages in order while no batch is being scored and there is
 * room to answer. Scoring is one batch at a time per stream (responses stay in order);
 * receiving continues meanwhile, so batch i+1 arrives while batch i is scored. */
static void stream_process(rr_call *c)
{
    stream_state *st = c->svc;
    rr_server *srv = c->srv;
    while (!c->req && st->p_n && c->out_n < RR_OUTQ - 2 && !finished(c)) {
        Rerank__V1__RerankStreamRequest *m = st->pending[st->p_head];
        st->p_head = (st->p_head + 1) % STREAM_PENDING;
        st->p_n--;
        if (m->kind_case == RERANK__V1__RERANK_STREAM_REQUEST__KIND_OPEN) {
            if (st->open) {
                emit_final(c, st);
                msg_release(c, st, st->open);
            }
            st->open = m;
            st->batch_index = st->docs_seen = 0;
            st->arena_len = 0;
            if (!m->open->query[0]) {
                rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "open.query is empty");
                return;
            }
            if (!parse_truncation(c, m->open->truncation, &st->tmpl)) return;
            continue;
        }
        if (m->kind_case != RERANK__V1__RERANK_STREAM_REQUEST__KIND_BATCH) {
            msg_release(c, st, m);
            rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "a RerankStreamRequest carries neither open nor batch");
            return;
        }
        if (!st->open) {
            msg_release(c, st, m);
            rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "a batch arrived before the open message");
            return;
        }
        int n = (int)m->batch->n_documents;
        long limit = (long)srv->cfg.max_docs * STREAM_DOCS_PER_MAX_DOCS;
        if (n > srv->cfg.max_docs || (long)st->docs_seen + n > limit) {
            msg_release(c, st, m);
            rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
                           "batch %u: %d documents (limits: %d per batch, %ld per query)",
                           st->batch_index, n, srv->cfg.max_docs, limit);
            return;
        }
        if (n == 0) { /* nothing to score: answer at once */
            Rerank__V1__BatchScores bs = RERANK__V1__BATCH_SCORES__INIT;
            bs.batch_index = st->batch_index++;
            Rerank__V1__RerankStreamResponse resp = RERANK__V1__RERANK_STREAM_RESPONSE__INIT;
            resp.kind_case = RERANK__V1__RERANK_STREAM_RESPONSE__KIND_BATCH;
            resp.batch = &bs;
            rr_call_send(c, rr_pack(&resp.base));
            msg_release(c, st, m);
            continue;
        }
        rr_sched_req *r = acquire(c, n);
        if (!r) {
            msg_release(c, st, m);
            return;
        }
        r->max_length = st->tmpl.max_length;
        r->truncate = st->tmpl.truncate;
        r->keep_last = st->tmpl.keep_last;
        r->query = st->open->open->query;
        r->query_len = strlen(r->query);
        r->n_docs = n;
        for (int i = 0; i < n; i++) {
            r->docs[i] = m->batch->documents[i]->text;
            r->doc_lens[i] = strlen(m->batch->documents[i]->text);
        }
        r->done = stream_batch_done;
        st->cur = m;
        submit(c, r);
    }
}

static void stream_maybe_finish(rr_call *c)
{
    stream_state *st = c->svc;
    if (!c->read_done || c->req || st->p_n || finished(c)) return;
    if (st->open) emit_final(c, st);
    rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
}

static void stream_resume_recv(rr_call *c)
{
    stream_state *st = c->svc;
    if (c->recv_paused && st->p_n < STREAM_PENDING && !finished(c)) rr_call_recv(c);
}

static void stream_batch_done(rr_sched_req *r)
{
    rr_call *c = r->user;
    rr_server *srv = c->srv;
    pthread_mutex_lock(&c->mu);
    stream_state *st = c->svc;
    Rerank__V1__RerankStreamRequest *m = st->cur;
    st->cur = NULL;
    c->req = NULL;
    grpc_byte_buffer *bb = NULL;
    if (r->outcome != RR_SCHED_DONE) {
        rr_svc_fail(c, r->outcome, &r->err);
    } else if (!accum_reserve(st, (int)st->docs_seen + r->n_docs)) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory keeping %u documents",
                       st->docs_seen + (uint32_t)r->n_docs);
    } else {
        int n = r->n_docs, ok = 1;
        int ret_docs = st->open->open->return_documents;
        size_t off = 0;
        size_t o_res = rr_scratch_take(&off, (size_t)n, sizeof(Rerank__V1__RerankResult));
        size_t o_ptr = rr_scratch_take(&off, (size_t)n, sizeof(Rerank__V1__RerankResult *));
        char *mem = rr_sched_scratch(r, off);
        for (int i = 0; i < n && ok; i++) {
            const Rerank__V1__Document *d = m->batch->documents[i];
            int g = (int)st->docs_seen + i;
            st->logit[g] = r->logits[i];
            st->id_off[g] = arena_put(st, d->id);
            st->text_off[g] = ret_docs ? arena_put(st, d->text) : st->id_off[g] + strlen(d->id);
            ok = st->id_off[g] != (size_t)-1 && st->text_off[g] != (size_t)-1;
        }
        if (!mem || !ok) {
            rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory for batch %u", st->batch_index);
        } else {
            Rerank__V1__RerankResult *res = (Rerank__V1__RerankResult *)(mem + o_res);
            Rerank__V1__RerankResult **ptr = (Rerank__V1__RerankResult **)(mem + o_ptr);
            for (int i = 0; i < n; i++) {
                const Rerank__V1__Document *d = m->batch->documents[i];
                rerank__v1__rerank_result__init(&res[i]);
                res[i].index = st->docs_seen + (uint32_t)i;
                res[i].id = d->id;
                res[i].logit = r->logits[i];
                res[i].score = rr_sigmoid(r->logits[i]);
                if (ret_docs) res[i].document = d->text;
                ptr[i] = &res[i];
            }
            Rerank__V1__Stats stats = RERANK__V1__STATS__INIT;
            fill_stats(&stats, r, r->t_submit);
            Rerank__V1__BatchScores bs = RERANK__V1__BATCH_SCORES__INIT;
            bs.batch_index = st->batch_index++;
            bs.n_results = (size_t)n;
            bs.results = ptr;
            bs.stats = &stats;
            Rerank__V1__RerankStreamResponse resp = RERANK__V1__RERANK_STREAM_RESPONSE__INIT;
            resp.kind_case = RERANK__V1__RERANK_STREAM_RESPONSE__KIND_BATCH;
            resp.batch = &bs;
            bb = rr_pack(&resp.base);
            st->docs_seen += (uint32_t)n;
        }
    }
    msg_release(c, st, m);
    rr_sched_release(srv->sched, r);
    if (bb) rr_call_send(c, bb);
    stream_process(c);
    stream_resume_recv(c);
    stream_maybe_finish(c);
    pthread_mutex_unlock(&c->mu);
    rr_call_unref(c);
}

static void stream_recv(rr_call *c, int ok)
{
    stream_state *st = c->svc;
    if (!ok || !c->payload) {
        if (ok && !grpc_call_failed_before_recv_message(c->call)) {
            c->read_done = 1; /* a real half-close */
            stream_maybe_finish(c);
        } else {
            c->dead = 1; /* cancelled: a NULL message is not a half-close (fact 9) */
            if (c->req) atomic_store(&c->req->cancelled, 1);
        }
        return;
    }
    Rerank__V1__RerankStreamRequest *m = msg_unpack(c, st, c->payload);
    if (!m) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed RerankStreamRequest");
        return;
    }
    st->pending[(st->p_head + st->p_n) % STREAM_PENDING] = m;
    st->p_n++;
    stream_process(c);
    if (st->p_n < STREAM_PENDING) rr_call_recv(c);
    else c->recv_paused = 1;
}

static void stream_sent(rr_call *c)
{
    stream_process(c);
    stream_resume_recv(c);
    stream_maybe_finish(c);
}

void *rr_stream_state_new(void)
{
    /* Room for a typical query's documents up front, so a stream state made at start-up
     * (rr_call_pools_init) serves ordinary streams without growing. */
    stream_state *st = rr_calloc(1, sizeof *st);
    if (!st) return NULL;
    if (!accum_reserve(st, 256) || !stream_scratch(st, 32768) || arena_put(st, "") == (size_t)-1) {
        rr_stream_state_destroy(st);
        return NULL;
    }
    st->arena_len = 0;
    return st;
}

void rr_svc_rerank_stream(rr_call *c)
{
    if (!rr_svc_ready(c)) return;
    stream_state *st = rr_free_list_pop(&c->srv->streams[0]); /* reset by stream_free */
    if (!st && !(st = rr_stream_state_new())) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory for a stream");
        return;
    }
    c->svc = st;
    c->svc_free = stream_free;
    c->on_recv = stream_recv;
    c->on_sent = stream_sent;
    rr_call_recv(c);
}
