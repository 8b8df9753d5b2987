/*
 * svc_rerank.c — rerank.v1.Reranker: unary Rerank, bidirectional RerankStream and Info.
 *
 * A scoring call decodes its message (documents counted on the wire first), turns it into a
 * front intake, and submits; the response is built and sent by whichever thread completes
 * the request (the engine thread, or a tokenizer worker for a request that failed early),
 * in response structures laid out in the request's reusable scratch memory. Texts and ids
 * stay in the decoded message (no copy) and go back out by pointer and length.
 */
#include <math.h>
#include <string.h>

#include "grpc/wing.h"
#include "rerank/v1/rerank.pb-c.h"
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
/* Stream states made at start, so a burst of that many streams finds warm ones. */
#define STREAMS_PREFILL 16

ProtobufCBinaryData rr_bin(const char *s)
{
    return (ProtobufCBinaryData){s ? strlen(s) : 0, (uint8_t *)s};
}

/* Truncation → the intake's options. 0 with INVALID for a direction that is not in the
 * enum (a TEI server panics on those; here it is the client's error). */
static int truncation(const Rerank__V1__Truncation *t, rr_intake *in, rr_problem *p)
{
    in->max_length = 0;
    in->truncate = 1;
    in->keep_last = 0;
    if (!t) return 1;
    if (t->direction != RERANK__V1__TRUNCATION_DIRECTION__TRUNCATION_DIRECTION_RIGHT &&
        t->direction != RERANK__V1__TRUNCATION_DIRECTION__TRUNCATION_DIRECTION_LEFT)
        return rr_problem_set(p, RR_FAIL_INVALID,
                              "truncation.direction %d is neither RIGHT (0) nor LEFT (1)",
                              (int)t->direction);
    in->max_length = t->max_length;
    in->truncate = !t->disabled;
    in->keep_last = t->direction == RERANK__V1__TRUNCATION_DIRECTION__TRUNCATION_DIRECTION_LEFT;
    return 1;
}

/* Chunking and max_tokens_per_doc → the intake (the front checks the ranges). */
static int long_docs(const Rerank__V1__Chunking *ch, uint32_t max_tokens_per_doc, rr_intake *in,
                     rr_problem *p)
{
    in->max_doc_tokens = max_tokens_per_doc;
    in->long_docs = RR_LONG_DEFAULT;
    in->max_chunks = 0;
    in->overlap = -1;
    in->chunk_score = RR_CHUNK_MAX;
    if (!ch) return 1;
    if ((unsigned)ch->mode > RERANK__V1__LONG_DOCUMENTS__LONG_DOCUMENTS_CHUNK)
        return rr_problem_set(
            p, RR_FAIL_INVALID,
            "chunking.mode %d is not SERVER_DEFAULT (0), TRUNCATE (1) or CHUNK (2)", (int)ch->mode);
    if ((unsigned)ch->score > RERANK__V1__CHUNK_SCORE__CHUNK_SCORE_MEAN)
        return rr_problem_set(p, RR_FAIL_INVALID,
                              "chunking.score %d is not MAX (0), FIRST (1) or MEAN (2)",
                              (int)ch->score);
    /* the enums' numbers are the front's (RR_LONG_*, rr_chunk_score) */
    in->long_docs = (int)ch->mode;
    in->max_chunks = ch->max_chunks_per_doc;
    in->overlap =
        ch->_overlap_case == RERANK__V1__CHUNKING___OVERLAP_OVERLAP ? (int64_t)ch->overlap : -1;
    in->chunk_score = (int)ch->score;
    return 1;
}

/* Document i's window into res (chunked requests). */
static void fill_window(Rerank__V1__Window *w, const rr_front_window *fw)
{
    rerank__v1__window__init(w);
    w->index = (uint32_t)fw->index;
    w->scored = (uint32_t)fw->scored;
    w->possible = (uint32_t)fw->possible;
    w->token_start = (uint32_t)fw->token_start;
    w->token_end = (uint32_t)fw->token_end;
    w->char_start = (uint32_t)fw->char_start;
    w->char_end = (uint32_t)fw->char_end;
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

/* A request for documents docs[0 .. n) under the intake, admitted by the front with every
 * document set; NULL with *p (the request is given back on a bad id). */
static rr_sched_req *admit_docs(rr_server *srv, rr_intake *in, Rerank__V1__Document **docs,
                                size_t n, rr_problem *p)
{
    in->n_docs = n;
    rr_sched_req *r = rr_front_begin(srv, in, p);
    if (!r) return NULL;
    for (int i = 0; i < r->n_docs; i++)
        if (!rr_front_doc(r, i, rr_bin_text(docs[i]->text), rr_bin_text(docs[i]->id), p)) {
            rr_front_abort(srv, r);
            return NULL;
        }
    return r;
}

rr_sched_req *rr_rerank_admit(rr_server *srv, const Rerank__V1__RerankRequest *m,
                              uint64_t deadline_ns, rr_problem *p)
{
    rr_intake in = {
        .query = rr_bin_text(m->query), .docs_field = "documents", .deadline_ns = deadline_ns};
    if (!truncation(m->truncation, &in, p) ||
        !long_docs(m->chunking, m->max_tokens_per_doc, &in, p))
        return NULL;
    return admit_docs(srv, &in, m->documents, m->n_documents, p);
}

int rr_rerank_open(rr_server *srv, const Rerank__V1__StreamOpen *o, rr_intake *tmpl, rr_problem *p)
{
    *tmpl = (rr_intake){.query = rr_bin_text(o->query), .docs_field = "documents"};
    return truncation(o->truncation, tmpl, p) &&
           long_docs(o->chunking, o->max_tokens_per_doc, tmpl, p) && rr_front_options(srv, tmpl, p);
}

rr_sched_req *rr_rerank_batch_admit(rr_server *srv, const rr_intake *tmpl,
                                    const Rerank__V1__StreamBatch *b, uint64_t deadline_ns,
                                    rr_problem *p)
{
    rr_intake in = *tmpl;
    in.deadline_ns = deadline_ns;
    return admit_docs(srv, &in, b->documents, b->n_documents, p);
}

/* ---- unary Rerank ------------------------------------------------------------------- */

static const uint32_t request_docs[] = {2}; /* RerankRequest.documents */

static void rerank_done(rr_sched_req *r)
{
    rr_call *c = r->user;
    pthread_mutex_lock(&c->mu);
    c->req = NULL;
    const Rerank__V1__RerankRequest *m = c->svc;
    grpc_byte_buffer *bb = NULL;
    rr_problem p;
    if (rr_front_outcome(r, &p)) {
        int top = rr_front_top(m->top_n, r->n_docs);
        const rr_ranked *items;
        void *mem;
        size_t each = sizeof(Rerank__V1__RerankResult) + sizeof(Rerank__V1__RerankResult *) +
                      sizeof(Rerank__V1__Window);
        if (rr_front_rank(r, (size_t)top * each, &items, &mem, &p)) {
            Rerank__V1__RerankResult *res = mem;
            Rerank__V1__Window *win = (Rerank__V1__Window *)(res + top);
            Rerank__V1__RerankResult **ptr = (Rerank__V1__RerankResult **)(win + top);
            int chunked = rr_front_chunked(r);
            for (int k = 0; k < top; k++) {
                const Rerank__V1__Document *d = m->documents[items[k].index];
                rerank__v1__rerank_result__init(&res[k]);
                res[k].index = (uint32_t)items[k].index;
                res[k].id = d->id;
                res[k].logit = items[k].logit;
                res[k].score = rr_sigmoid(items[k].logit);
                if (m->return_documents) res[k].document = d->text;
                if (chunked) {
                    rr_front_window fw;
                    rr_front_window_of(r, items[k].index, &fw);
                    fill_window(&win[k], &fw);
                    res[k].window = &win[k];
                }
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
    /* The slot goes back first, so a client that got its answer can use it again at once. */
    rr_front_release(c->srv, r);
    if (bb) {
        rr_call_send(c, bb);
        rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
    } else {
        rr_call_fail(c, &p);
    }
    pthread_mutex_unlock(&c->mu);
    rr_call_unref(c);
}

void rr_svc_rerank(rr_call *c)
{
    if (!rr_call_ready(c)) return;
    rr_problem p;
    rr_wire_limit lim = {request_docs, 1, (uint64_t)c->srv->cfg.max_docs, "documents"};
    Rerank__V1__RerankRequest *m =
        (Rerank__V1__RerankRequest *)rr_decode(&rerank__v1__rerank_request__descriptor, c->payload,
                                               rr_call_arena(c), &lim, "RerankRequest", &p);
    rr_sched_req *r = m ? rr_rerank_admit(c->srv, m, rr_call_deadline_ns(c), &p) : NULL;
    if (!r) {
        rr_call_fail(c, &p);
        return;
    }
    c->svc = m; /* in c->arena: lives as long as the call */
    rr_call_submit(c, r, rerank_done);
}

/* ---- Info --------------------------------------------------------------------------- */

void rr_svc_info(rr_call *c)
{
    if (!rr_call_ready(c)) return;
    rr_server *srv = c->srv;
    Rerank__V1__InfoResponse resp = RERANK__V1__INFO_RESPONSE__INIT;
    resp.version = rr_bin(RR_SERVER_VERSION);
    resp.model_id = rr_bin(srv->cfg.model_dir);
    resp.architecture = rr_bin(srv->info->arch_name);
    resp.max_length = (uint32_t)srv->info->max_length;
    resp.dtype = rr_bin(rr_dtype_name(rr_engine_dtype(srv->engine)));
    resp.device = rr_bin(srv->device_desc);
    resp.weights_dtype = rr_bin(srv->info->weights_dtype);
    resp.max_batch_tokens = (uint32_t)rr_engine_max_batch_tokens(srv->engine);
    resp.max_documents = (uint32_t)srv->cfg.max_docs;
    resp.max_message_bytes = (uint32_t)srv->cfg.max_message_bytes;
    resp.max_in_flight = (uint32_t)srv->cfg.max_in_flight;
    resp.tokenizer_workers = (uint32_t)srv->cfg.tokenizer_workers;
    resp.long_documents = rr_bin(srv->cfg.chunk_default ? "chunk" : "truncate");
    resp.max_chunks_per_doc = (uint32_t)srv->cfg.max_chunks_per_doc;
    resp.max_chunks_per_request = (uint32_t)srv->cfg.max_chunks_per_request;
    rr_call_send(c, rr_pack(&resp.base));
    rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
}

/* ---- bidirectional RerankStream ----------------------------------------------------- */

/* Where a kept string sits in the stream's text arena. */
typedef struct span {
    size_t off, len;
} span;

typedef struct stream_state {
    void *next; /* free-list link (g->streams[0]) */
    /* Each decoded message lives in its own arena (from the wing's list) until released. */
    struct {
        Rerank__V1__RerankStreamRequest *m;
        rr_arena *a;
    } slot[STREAM_SLOTS];
    Rerank__V1__RerankStreamRequest *pending[STREAM_PENDING];
    int p_head, p_n;
    Rerank__V1__RerankStreamRequest *open; /* the current query's open message */
    Rerank__V1__RerankStreamRequest *cur;  /* the batch being scored */
    rr_intake tmpl;                        /* query and truncation of the open */
    uint32_t batch_index, docs_seen;
    /* Everything seen since the open, for the final ranking. Strings live in `text`. */
    float *logit;
    span *id, *doc;
    rr_front_window *win; /* chunked streams: each document's winning window */
    int cap;
    char *text;
    size_t text_len, text_cap;
    void *scratch;
    size_t scratch_cap;
} stream_state;

static const uint32_t batch_docs[] = {2, 1}; /* RerankStreamRequest.batch.documents */

static Rerank__V1__RerankStreamRequest *msg_unpack(rr_call *c, stream_state *st,
                                                   grpc_byte_buffer *bb, rr_problem *p)
{
    for (int i = 0; i < STREAM_SLOTS; i++) {
        if (st->slot[i].m) continue;
        rr_wire_limit lim = {batch_docs, 2, (uint64_t)c->srv->cfg.max_docs, "documents"};
        rr_arena *a = rr_arena_get(c->g);
        st->slot[i].m = (Rerank__V1__RerankStreamRequest *)rr_decode(
            &rerank__v1__rerank_stream_request__descriptor, bb, a, &lim, "RerankStreamRequest", p);
        if (st->slot[i].m)
            st->slot[i].a = a;
        else
            rr_arena_put(c->g, a);
        return st->slot[i].m;
    }
    rr_problem_set(p, RR_FAIL_INTERNAL, "no free message slot (a bug)");
    return NULL;
}

static void msg_release(rr_call *c, stream_state *st, Rerank__V1__RerankStreamRequest *m)
{
    for (int i = 0; i < STREAM_SLOTS; i++)
        if (st->slot[i].m == m) {
            rr_arena_put(c->g, st->slot[i].a);
            st->slot[i].m = NULL;
            st->slot[i].a = NULL;
            return;
        }
}

static void stream_state_destroy(void *p)
{
    stream_state *st = p;
    rr_free(st->logit);
    rr_free(st->id);
    rr_free(st->doc);
    rr_free(st->win);
    rr_free(st->text);
    rr_free(st->scratch);
    rr_free(st);
}

/* The call is over: release its messages and keep the buffers for the next stream
 * (within STREAM_KEEP_*) in the wing's list. */
static void stream_free(rr_call *c)
{
    stream_state *st = c->svc;
    if (!st) return;
    for (int i = 0; i < STREAM_SLOTS; i++) {
        rr_arena_put(c->g, st->slot[i].a);
        st->slot[i].m = NULL;
        st->slot[i].a = NULL;
    }
    st->p_head = st->p_n = 0;
    st->open = st->cur = NULL;
    st->batch_index = st->docs_seen = 0;
    st->text_len = 0;
    if (st->cap > STREAM_KEEP_DOCS) {
        rr_free(st->logit), rr_free(st->id), rr_free(st->doc), rr_free(st->win);
        st->logit = NULL, st->id = st->doc = NULL, st->win = NULL, st->cap = 0;
    }
    if (st->text_cap > STREAM_KEEP_BYTES) rr_free(st->text), st->text = NULL, st->text_cap = 0;
    if (st->scratch_cap > STREAM_KEEP_BYTES)
        rr_free(st->scratch), st->scratch = NULL, st->scratch_cap = 0;
    if (!rr_free_list_push(&c->g->streams[0], st)) stream_state_destroy(st);
    c->svc = NULL;
}

static void *stream_scratch(stream_state *st, size_t bytes)
{
    if (bytes > st->scratch_cap) {
        if (!rr_realloc_array(&st->scratch, bytes, 1)) return NULL;
        st->scratch_cap = bytes;
    }
    return st->scratch;
}

/* Appends a copy of b to the text arena; 0 when out of memory. */
static int keep(stream_state *st, ProtobufCBinaryData b, span *out)
{
    size_t cap = rr_grow_cap(st->text_cap, st->text_len + b.len + 1, 4096);
    if (cap != st->text_cap) {
        if (!rr_realloc_array(&st->text, cap, 1)) return 0;
        st->text_cap = cap;
    }
    if (b.len) memcpy(st->text + st->text_len, b.data, b.len);
    *out = (span){st->text_len, b.len};
    st->text_len += b.len;
    return 1;
}

static ProtobufCBinaryData kept(const stream_state *st, span s)
{
    return (ProtobufCBinaryData){s.len, (uint8_t *)st->text + s.off};
}

static int accum_reserve(stream_state *st, int n)
{
    size_t cap = rr_grow_cap((size_t)st->cap, (size_t)n, 64);
    if (cap == (size_t)st->cap) return 1;
    if (!rr_realloc_array(&st->logit, cap, sizeof *st->logit) ||
        !rr_realloc_array(&st->id, cap, sizeof *st->id) ||
        !rr_realloc_array(&st->doc, cap, sizeof *st->doc) ||
        !rr_realloc_array(&st->win, cap, sizeof *st->win))
        return 0;
    st->cap = (int)cap;
    return 1;
}

/* Queues the FinalRanking of the current query (under c->mu). */
static void emit_final(rr_call *c, stream_state *st)
{
    const Rerank__V1__StreamOpen *o = st->open->open;
    int n = (int)st->docs_seen;
    int top = rr_front_top(o->top_n, n);
    size_t at = ((size_t)n * sizeof(rr_ranked) + 15) & ~(size_t)15;
    size_t each = sizeof(Rerank__V1__RerankResult) + sizeof(Rerank__V1__RerankResult *) +
                  sizeof(Rerank__V1__Window);
    char *mem = stream_scratch(st, at + (size_t)top * each + 16);
    rr_problem p;
    if (!mem) {
        rr_problem_set(&p, RR_FAIL_OVERLOADED, "out of memory ranking %d documents", n);
        rr_call_fail(c, &p);
        return;
    }
    rr_ranked *items = (rr_ranked *)mem;
    if (!rr_front_rank_logits(st->logit, n, items, &p)) {
        rr_call_fail(c, &p);
        return;
    }
    Rerank__V1__RerankResult *res = (Rerank__V1__RerankResult *)(mem + at);
    Rerank__V1__Window *win = (Rerank__V1__Window *)(res + top);
    Rerank__V1__RerankResult **ptr = (Rerank__V1__RerankResult **)(win + top);
    int chunked = st->tmpl.long_docs == RR_LONG_CHUNK ||
                  (st->tmpl.long_docs == RR_LONG_DEFAULT && c->srv->cfg.chunk_default);
    for (int k = 0; k < top; k++) {
        int i = items[k].index;
        rerank__v1__rerank_result__init(&res[k]);
        res[k].index = (uint32_t)i;
        res[k].id = kept(st, st->id[i]);
        res[k].logit = items[k].logit;
        res[k].score = rr_sigmoid(items[k].logit);
        if (o->return_documents) res[k].document = kept(st, st->doc[i]);
        if (chunked) {
            fill_window(&win[k], &st->win[i]);
            res[k].window = &win[k];
        }
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

static void stream_batch_done(rr_sched_req *r);

/* An open message: its query and truncation become the template of the batches. */
static int stream_open(rr_call *c, stream_state *st, Rerank__V1__RerankStreamRequest *m)
{
    rr_problem p;
    if (st->open) {
        emit_final(c, st);
        msg_release(c, st, st->open);
    }
    st->open = m;
    st->batch_index = st->docs_seen = 0;
    st->text_len = 0;
    if (!rr_rerank_open(c->srv, m->open, &st->tmpl, &p)) {
        rr_call_fail(c, &p);
        return 0;
    }
    return 1;
}

/* Under c->mu: handle decoded messages in order while no batch is being scored and there is
 * room to answer. Scoring is one batch at a time per stream (responses stay in order);
 * receiving continues meanwhile, so batch i+1 arrives while batch i is scored. */
static void stream_process(rr_call *c)
{
    stream_state *st = c->svc;
    rr_server *srv = c->srv;
    rr_problem p;
    while (!c->req && st->p_n && c->out_n < RR_OUTQ - 2 && !rr_call_finished(c)) {
        Rerank__V1__RerankStreamRequest *m = st->pending[st->p_head];
        st->p_head = (st->p_head + 1) % STREAM_PENDING;
        st->p_n--;
        if (m->kind_case == RERANK__V1__RERANK_STREAM_REQUEST__KIND_OPEN) {
            if (!stream_open(c, st, m)) return;
            continue;
        }
        if (m->kind_case != RERANK__V1__RERANK_STREAM_REQUEST__KIND_BATCH || !st->open) {
            msg_release(c, st, m);
            rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "%s",
                           st->open ? "a RerankStreamRequest carries neither open nor batch"
                                    : "a batch arrived before the open message");
            return;
        }
        size_t n = m->batch->n_documents;
        uint64_t limit = (uint64_t)srv->cfg.max_docs * STREAM_DOCS_PER_MAX_DOCS;
        if ((uint64_t)st->docs_seen + n > limit) {
            msg_release(c, st, m);
            rr_problem_set(&p, RR_FAIL_TOO_MANY,
                           "batch %u: %zu documents after %u, over the limit of %llu per query "
                           "(100 x --max-docs)",
                           st->batch_index, n, st->docs_seen, (unsigned long long)limit);
            rr_call_fail(c, &p);
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
        rr_sched_req *r =
            rr_rerank_batch_admit(srv, &st->tmpl, m->batch, rr_call_deadline_ns(c), &p);
        if (!r) {
            msg_release(c, st, m);
            rr_call_fail(c, &p);
            return;
        }
        st->cur = m;
        rr_call_submit(c, r, stream_batch_done);
    }
}

static void stream_maybe_finish(rr_call *c)
{
    stream_state *st = c->svc;
    if (!c->read_done || c->req || st->p_n || rr_call_finished(c)) return;
    if (st->open) emit_final(c, st);
    rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
}

static void stream_resume_recv(rr_call *c)
{
    stream_state *st = c->svc;
    if (c->recv_paused && st->p_n < STREAM_PENDING && !rr_call_finished(c)) rr_call_recv(c);
}

/* The scored batch's answer, its documents kept for the final ranking; NULL with *p. */
static grpc_byte_buffer *batch_answer(rr_call *c, stream_state *st, rr_sched_req *r,
                                      const Rerank__V1__RerankStreamRequest *m, rr_problem *p)
{
    int n = r->n_docs;
    if (!accum_reserve(st, (int)st->docs_seen + n)) {
        rr_problem_set(p, RR_FAIL_OVERLOADED, "out of memory keeping %u documents",
                       st->docs_seen + (uint32_t)n);
        return NULL;
    }
    int ret_docs = st->open->open->return_documents;
    for (int i = 0; i < n; i++) {
        const Rerank__V1__Document *d = m->batch->documents[i];
        int g = (int)st->docs_seen + i;
        st->logit[g] = r->logits[i];
        if (rr_front_chunked(r)) rr_front_window_of(r, i, &st->win[g]);
        if (!keep(st, d->id, &st->id[g]) ||
            !keep(st, ret_docs ? d->text : (ProtobufCBinaryData){0, NULL}, &st->doc[g])) {
            rr_problem_set(p, RR_FAIL_OVERLOADED, "out of memory for batch %u", st->batch_index);
            return NULL;
        }
    }
    for (int i = 0; i < n; i++) /* the per-batch answer is not ranked: check what it sends */
        if (isnan(r->logits[i])) {
            rr_problem_set(p, RR_FAIL_BACKEND, "the score of document %d is NaN", i);
            return NULL;
        }
    size_t each = sizeof(Rerank__V1__RerankResult) + sizeof(Rerank__V1__RerankResult *) +
                  sizeof(Rerank__V1__Window);
    Rerank__V1__RerankResult *res = rr_sched_scratch(r, (size_t)n * each);
    if (!res) {
        rr_problem_set(p, RR_FAIL_OVERLOADED, "out of memory for batch %u", st->batch_index);
        return NULL;
    }
    Rerank__V1__Window *win = (Rerank__V1__Window *)(res + n);
    Rerank__V1__RerankResult **ptr = (Rerank__V1__RerankResult **)(win + n);
    for (int i = 0; i < n; i++) {
        const Rerank__V1__Document *d = m->batch->documents[i];
        rerank__v1__rerank_result__init(&res[i]);
        res[i].index = st->docs_seen + (uint32_t)i;
        res[i].id = d->id;
        res[i].logit = r->logits[i];
        res[i].score = rr_sigmoid(r->logits[i]);
        if (ret_docs) res[i].document = d->text;
        if (rr_front_chunked(r)) {
            fill_window(&win[i], &st->win[st->docs_seen + (uint32_t)i]);
            res[i].window = &win[i];
        }
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
    st->docs_seen += (uint32_t)n;
    return rr_pack(&resp.base);
}

static void stream_batch_done(rr_sched_req *r)
{
    rr_call *c = r->user;
    pthread_mutex_lock(&c->mu);
    stream_state *st = c->svc;
    Rerank__V1__RerankStreamRequest *m = st->cur;
    st->cur = NULL;
    c->req = NULL;
    rr_problem p;
    grpc_byte_buffer *bb = rr_front_outcome(r, &p) ? batch_answer(c, st, r, m, &p) : NULL;
    msg_release(c, st, m);
    rr_front_release(c->srv, r);
    if (bb)
        rr_call_send(c, bb);
    else
        rr_call_fail(c, &p);
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
    rr_problem p;
    Rerank__V1__RerankStreamRequest *m = msg_unpack(c, st, c->payload, &p);
    if (!m) {
        rr_call_fail(c, &p);
        return;
    }
    st->pending[(st->p_head + st->p_n) % STREAM_PENDING] = m;
    st->p_n++;
    stream_process(c);
    if (st->p_n < STREAM_PENDING)
        rr_call_recv(c);
    else
        c->recv_paused = 1;
}

static void stream_sent(rr_call *c)
{
    stream_process(c);
    stream_resume_recv(c);
    stream_maybe_finish(c);
}

static void *stream_state_new(void)
{
    /* Room for a typical query's documents up front, so a stream state made at start-up
     * (rr_call_pools_init) serves ordinary streams without growing. */
    stream_state *st = rr_calloc(1, sizeof *st);
    span sp;
    if (!st) return NULL;
    if (!accum_reserve(st, 256) || !stream_scratch(st, 32768) ||
        !keep(st, (ProtobufCBinaryData){0, NULL}, &sp)) {
        stream_state_destroy(st);
        return NULL;
    }
    st->text_len = 0;
    return st;
}

void rr_svc_rerank_stream(rr_call *c)
{
    if (!rr_call_ready(c)) return;
    stream_state *st = rr_free_list_pop(&c->g->streams[0]); /* reset by stream_free */
    if (!st && !(st = stream_state_new())) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory for a stream");
        return;
    }
    c->svc = st;
    c->svc_free = stream_free;
    c->on_recv = stream_recv;
    c->on_sent = stream_sent;
    rr_call_recv(c);
}

int rr_svc_rerank_init(rr_grpc *g)
{
    for (int k = 0; k < STREAMS_PREFILL; k++) {
        void *st = stream_state_new();
        if (!st) return 0;
        if (!rr_free_list_push(&g->streams[0], st)) stream_state_destroy(st);
    }
    return 1;
}

void rr_svc_rerank_free(rr_grpc *g)
{
    void *st;
    while ((st = rr_free_list_pop(&g->streams[0])))
        stream_state_destroy(st);
}
