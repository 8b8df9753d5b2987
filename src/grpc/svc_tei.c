/*
 * svc_tei.c — the TEI-compatible services: tei.v1.Rerank (unary Rerank and client-streaming
 * RerankStream) and tei.v1.Info, with text-embeddings-inference's semantics (its
 * router/src/grpc/server.rs): ranks sorted by descending score; score = sigmoid(logit)
 * unless raw_scores; text only when return_text; truncate=false makes an over-long pair
 * INVALID_ARGUMENT; metadata.compute_chars counts code points, the query once per text.
 *
 * RerankStream: every message is a pair of its own — its query, text, truncate and
 * truncation_direction — and raw_scores/return_text come from the first message, as in
 * TEI. The pairs are scored as one scheduler request after the client half-closes (pairs
 * that share a query share its tokenization); index i is message i. Metadata times are the
 * request's stage times (TEI reports per-candidate averages; every candidate of one request
 * shares them here).
 */
#include <stdio.h>
#include <string.h>

#include "grpc/wing.h"
#include "tei/v1/tei.pb-c.h"
#include "util/util.h"

typedef struct tei_opts {
    int raw_scores, return_text;
    uint64_t chars;
} tei_opts;

/* TEI's truncation_direction (an open enum on the wire: anything else is refused). */
static int direction(Tei__V1__TruncationDirection d, int *keep_last, rr_problem *p)
{
    if (d != TEI__V1__TRUNCATION_DIRECTION__TRUNCATION_DIRECTION_RIGHT &&
        d != TEI__V1__TRUNCATION_DIRECTION__TRUNCATION_DIRECTION_LEFT)
        return rr_problem_set(p, RR_FAIL_INVALID,
                              "truncation_direction %d is neither RIGHT (0) nor LEFT (1)", (int)d);
    *keep_last = d == TEI__V1__TRUNCATION_DIRECTION__TRUNCATION_DIRECTION_LEFT;
    return 1;
}

/* Builds, queues and finishes the TEI response for a completed request (under c->mu),
 * releasing the request before the send. texts[i] are the documents' texts. */
static void tei_respond(rr_call *c, rr_sched_req *r, const tei_opts *o)
{
    rr_problem p;
    grpc_byte_buffer *bb = NULL;
    const rr_ranked *items;
    void *mem;
    int n = r->n_docs;
    if (rr_front_outcome(r, &p) &&
        rr_front_rank(r, (size_t)n * (sizeof(Tei__V1__Rank) + sizeof(Tei__V1__Rank *)), &items,
                      &mem, &p)) {
        Tei__V1__Rank *ranks = mem;
        Tei__V1__Rank **ptr = (Tei__V1__Rank **)(ranks + n);
        for (int k = 0; k < n; k++) { /* sigmoid is monotone: ranked by logit = by score */
            tei__v1__rank__init(&ranks[k]);
            ranks[k].index = (uint32_t)items[k].index;
            ranks[k].score = o->raw_scores ? items[k].logit : rr_sigmoid(items[k].logit);
            if (o->return_text) {
                rr_text t = r->docs[items[k].index];
                ranks[k]._text_case = TEI__V1__RANK___TEXT_TEXT;
                ranks[k].text = (ProtobufCBinaryData){t.len, (uint8_t *)t.p};
            }
            ptr[k] = &ranks[k];
        }
        Tei__V1__Metadata md = TEI__V1__METADATA__INIT;
        md.compute_chars = (uint32_t)o->chars;
        md.compute_tokens = (uint32_t)r->total_tokens;
        md.tokenization_time_ns = r->tokenize_ns;
        md.queue_time_ns = r->queue_ns;
        md.inference_time_ns = r->infer_ns;
        md.total_time_ns = rr_now_ns() - c->t_start;
        Tei__V1__RerankResponse resp = TEI__V1__RERANK_RESPONSE__INIT;
        resp.n_ranks = (size_t)n;
        resp.ranks = ptr;
        resp.metadata = &md;
        bb = rr_pack(&resp.base);
    }
    rr_front_release(c->srv, r);
    if (bb) {
        rr_call_send(c, bb);
        rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
    } else {
        rr_call_fail(c, &p);
    }
}

/* ---- unary -------------------------------------------------------------------------- */

static const uint32_t request_texts[] = {2}; /* RerankRequest.texts */

rr_sched_req *rr_tei_admit(rr_server *srv, const Tei__V1__RerankRequest *m, uint64_t deadline_ns,
                           rr_problem *p)
{
    rr_intake in = {.query = rr_bin_text(m->query),
                    .n_docs = m->n_texts,
                    .docs_field = "texts",
                    .truncate = m->truncate,
                    .deadline_ns = deadline_ns};
    if (!direction(m->truncation_direction, &in.keep_last, p)) return NULL;
    rr_sched_req *r = rr_front_begin(srv, &in, p);
    for (int i = 0; r && i < r->n_docs; i++)
        rr_front_doc(r, i, rr_bin_text(m->texts[i]), (rr_text){NULL, 0}, p);
    return r;
}

int rr_tei_stream_message(const Tei__V1__RerankStreamRequest *m, int index, uint8_t *flags,
                          rr_problem *p)
{
    char what[64];
    int keep_last = 0;
    snprintf(what, sizeof what, "the query of message %d", index);
    if (!direction(m->truncation_direction, &keep_last, p)) {
        char msg[RR_ERROR_MSG_CAP];
        snprintf(msg, sizeof msg, "%s", p->msg);
        return rr_problem_set(p, p->fail, "message %d: %s", index, msg);
    }
    if (!rr_front_query(rr_bin_text(m->query), what, p)) return 0;
    *flags = (m->truncate ? RR_PAIR_TRUNCATE : 0) | (keep_last ? RR_PAIR_KEEP_LAST : 0);
    return 1;
}

static void tei_rerank_done(rr_sched_req *r)
{
    rr_call *c = r->user;
    pthread_mutex_lock(&c->mu);
    c->req = NULL;
    const Tei__V1__RerankRequest *m = c->svc;
    tei_opts o = {m->raw_scores, m->return_text, 0};
    uint64_t qc = rr_utf8_chars((const char *)m->query.data, m->query.len);
    for (size_t i = 0; i < m->n_texts; i++)
        o.chars += qc + rr_utf8_chars((const char *)m->texts[i].data, m->texts[i].len);
    tei_respond(c, r, &o);
    pthread_mutex_unlock(&c->mu);
    rr_call_unref(c);
}

void rr_svc_tei_rerank(rr_call *c)
{
    if (!rr_call_ready(c)) return;
    rr_problem p;
    rr_wire_limit lim = {request_texts, 1, (uint64_t)c->srv->cfg.max_docs, "texts"};
    Tei__V1__RerankRequest *m =
        (Tei__V1__RerankRequest *)rr_decode(&tei__v1__rerank_request__descriptor, c->payload,
                                            rr_call_arena(c), &lim, "RerankRequest", &p);
    rr_sched_req *r = m ? rr_tei_admit(c->srv, m, rr_call_deadline_ns(c), &p) : NULL;
    if (!r) {
        rr_call_fail(c, &p);
        return;
    }
    c->svc = m; /* in c->arena: lives as long as the call */
    rr_call_submit(c, r, tei_rerank_done);
}

/* ---- client-streaming RerankStream -------------------------------------------------- */

/* What a pooled stream state keeps between streams; more is freed on reset. */
#define TEI_KEEP_BYTES ((size_t)1 << 20)
#define TEI_KEEP_TEXTS 16384

typedef struct span {
    size_t off, len;
} span;

typedef struct tei_stream {
    void *next;    /* free-list link (g->streams[1]) */
    rr_arena *msg; /* each message is decoded here, then reset */
    int n, cap;
    int raw_scores, return_text; /* from the first message */
    uint64_t chars;
    span *text, *query;       /* [cap]: each message's, in `arena` (equal queries share a span) */
    uint8_t *flags;           /* [cap]: RR_PAIR_* of each message */
    rr_text *texts, *queries; /* [cap]: the spans as texts, once the arena stops moving */
    char *arena;
    size_t arena_len, arena_cap;
} tei_stream;

static void tei_stream_destroy(void *p)
{
    tei_stream *s = p;
    rr_free(s->text);
    rr_free(s->query);
    rr_free(s->flags);
    rr_free(s->texts);
    rr_free(s->queries);
    rr_free(s->arena);
    rr_free(s);
}

/* The call is over: keep the buffers for the next stream in the wing's list. */
static void tei_stream_free(rr_call *c)
{
    tei_stream *s = c->svc;
    if (!s) return;
    rr_arena_put(c->g, s->msg);
    s->msg = NULL;
    s->n = 0;
    s->arena_len = s->chars = 0;
    if (s->cap > TEI_KEEP_TEXTS) {
        rr_free(s->text), rr_free(s->query), rr_free(s->flags), rr_free(s->texts),
            rr_free(s->queries);
        s->text = s->query = NULL, s->flags = NULL, s->texts = s->queries = NULL, s->cap = 0;
    }
    if (s->arena_cap > TEI_KEEP_BYTES) rr_free(s->arena), s->arena = NULL, s->arena_cap = 0;
    if (!rr_free_list_push(&c->g->streams[1], s)) tei_stream_destroy(s);
    c->svc = NULL;
}

/* Makes room for n messages and `bytes` of text; 0 when out of memory. */
static int tei_reserve(tei_stream *s, int n, size_t bytes)
{
    size_t cap = rr_grow_cap(s->arena_cap, bytes, 4096);
    if (cap != s->arena_cap) {
        if (!rr_realloc_array(&s->arena, cap, 1)) return 0;
        s->arena_cap = cap;
    }
    cap = rr_grow_cap((size_t)s->cap, (size_t)n, 64);
    if (cap != (size_t)s->cap) {
        if (!rr_realloc_array(&s->text, cap, sizeof *s->text) ||
            !rr_realloc_array(&s->query, cap, sizeof *s->query) ||
            !rr_realloc_array(&s->flags, cap, sizeof *s->flags) ||
            !rr_realloc_array(&s->texts, cap, sizeof *s->texts) ||
            !rr_realloc_array(&s->queries, cap, sizeof *s->queries))
            return 0;
        s->cap = (int)cap;
    }
    return 1;
}

static int put(tei_stream *s, ProtobufCBinaryData b, span *out)
{
    if (!tei_reserve(s, s->n + 1, s->arena_len + b.len + 1)) return 0;
    if (b.len) memcpy(s->arena + s->arena_len, b.data, b.len);
    *out = (span){s->arena_len, b.len};
    s->arena_len += b.len;
    return 1;
}

/* Keeps one message's pair; 0 when out of memory. */
static int tei_stream_add(tei_stream *s, const Tei__V1__RerankStreamRequest *m, uint8_t flags)
{
    if (!tei_reserve(s, s->n + 1, s->arena_len)) return 0;
    int i = s->n;
    const span *prev = i ? &s->query[i - 1] : NULL;
    if (prev && prev->len == m->query.len &&
        (m->query.len == 0 || memcmp(s->arena + prev->off, m->query.data, m->query.len) == 0))
        s->query[i] = *prev; /* the usual stream: one query, many texts */
    else if (!put(s, m->query, &s->query[i]))
        return 0;
    if (!put(s, m->text, &s->text[i])) return 0;
    s->flags[i] = flags;
    s->chars += rr_utf8_chars((const char *)m->query.data, m->query.len) +
                rr_utf8_chars((const char *)m->text.data, m->text.len);
    s->n++;
    return 1;
}

static void tei_stream_done(rr_sched_req *r)
{
    rr_call *c = r->user;
    pthread_mutex_lock(&c->mu);
    c->req = NULL;
    tei_stream *s = c->svc;
    tei_opts o = {s->raw_scores, s->return_text, s->chars};
    tei_respond(c, r, &o);
    pthread_mutex_unlock(&c->mu);
    rr_call_unref(c);
}

/* After the half-close: every message's pair, as one request. */
static void tei_stream_submit(rr_call *c, tei_stream *s)
{
    rr_problem p;
    for (int i = 0; i < s->n; i++) { /* the arena no longer moves */
        s->texts[i] = (rr_text){s->arena + s->text[i].off, s->text[i].len};
        s->queries[i] = (rr_text){s->arena + s->query[i].off, s->query[i].len};
    }
    rr_intake in = {.query = s->n ? s->queries[0] : (rr_text){NULL, 0},
                    .n_docs = (uint64_t)s->n,
                    .docs_field = "texts",
                    .truncate = s->n && (s->flags[0] & RR_PAIR_TRUNCATE),
                    .keep_last = s->n && (s->flags[0] & RR_PAIR_KEEP_LAST),
                    .deadline_ns = rr_call_deadline_ns(c)};
    rr_sched_req *r = rr_front_begin(c->srv, &in, &p);
    if (!r) {
        rr_call_fail(c, &p);
        return;
    }
    for (int i = 0; i < s->n; i++)
        rr_front_doc(r, i, s->texts[i], (rr_text){NULL, 0}, &p);
    r->queries = s->queries;
    r->pair_flags = s->flags;
    rr_call_submit(c, r, tei_stream_done);
}

static void tei_stream_recv(rr_call *c, int ok)
{
    tei_stream *s = c->svc;
    if (!ok || !c->payload) {
        if (!ok || grpc_call_failed_before_recv_message(c->call)) {
            c->dead = 1; /* cancelled (fact 9) */
            return;
        }
        c->read_done = 1;
        tei_stream_submit(c, s);
        return;
    }
    rr_problem p;
    uint8_t flags = 0;
    Tei__V1__RerankStreamRequest *m = (Tei__V1__RerankStreamRequest *)rr_decode(
        &tei__v1__rerank_stream_request__descriptor, c->payload, s->msg, NULL,
        "RerankStreamRequest", &p);
    if (!m || !rr_tei_stream_message(m, s->n, &flags, &p)) {
        rr_call_fail(c, &p);
        return;
    }
    if (s->n >= c->srv->cfg.max_docs) {
        rr_problem_set(&p, RR_FAIL_TOO_MANY, "more than %d texts in one stream (--max-docs)",
                       c->srv->cfg.max_docs);
        rr_call_fail(c, &p);
        return;
    }
    if (s->n == 0) {
        s->raw_scores = m->raw_scores;
        s->return_text = m->return_text;
    }
    if (!tei_stream_add(s, m, flags)) {
        rr_problem_set(&p, RR_FAIL_OVERLOADED, "out of memory at text %d", s->n);
        rr_call_fail(c, &p);
        return;
    }
    rr_arena_reset(s->msg);
    rr_call_recv(c);
}

/* Room for a typical stream up front (64 texts, 16 KiB of text), so a state made at start
 * serves ordinary streams without growing: which pooled state a stream gets depends on
 * timing, and a steady load must not allocate. */
static void *tei_stream_new(void)
{
    tei_stream *s = rr_calloc(1, sizeof *s);
    if (s && !tei_reserve(s, 64, 16384)) {
        tei_stream_destroy(s);
        return NULL;
    }
    return s;
}

void rr_svc_tei_rerank_stream(rr_call *c)
{
    if (!rr_call_ready(c)) return;
    tei_stream *s = rr_free_list_pop(&c->g->streams[1]); /* reset by tei_stream_free */
    if (!s && !(s = tei_stream_new())) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory for a stream");
        return;
    }
    if (!(s->msg = rr_arena_get(c->g))) {
        tei_stream_destroy(s);
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory for a stream");
        return;
    }
    c->svc = s;
    c->svc_free = tei_stream_free;
    c->on_recv = tei_stream_recv;
    rr_call_recv(c);
}

/* ---- Info --------------------------------------------------------------------------- */

void rr_svc_tei_info(rr_call *c)
{
    if (!rr_call_ready(c)) return;
    rr_server *srv = c->srv;
    Tei__V1__InfoResponse resp;
    tei__v1__info_response__init(&resp); /* the _INIT macro's {0} for a bytes oneof warns */
    resp.version = rr_bin(RR_SERVER_VERSION);
    resp.model_id = rr_bin(srv->cfg.model_dir);
    rr_dtype dt = rr_engine_dtype(srv->engine);
    resp.model_dtype = rr_bin(dt == RR_DTYPE_F32    ? "float32"
                              : dt == RR_DTYPE_BF16 ? "bfloat16"
                              : dt == RR_DTYPE_INT8 ? "int8"
                                                    : "float16");
    resp.model_type = TEI__V1__MODEL_TYPE__MODEL_TYPE_RERANKER;
    resp.max_concurrent_requests = (uint32_t)srv->cfg.max_in_flight;
    resp.max_input_length = (uint32_t)srv->info->max_length;
    resp.max_batch_tokens = (uint32_t)rr_engine_max_batch_tokens(srv->engine);
    resp.max_client_batch_size = (uint32_t)srv->cfg.max_docs;
    resp.tokenization_workers = (uint32_t)srv->cfg.tokenizer_workers;
    rr_call_send(c, rr_pack(&resp.base));
    rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
}

int rr_svc_tei_init(rr_grpc *g)
{
    for (int k = 0; k < 16; k++) { /* empty until first used: TEI streams are rare */
        void *st = tei_stream_new();
        if (!st) return 0;
        if (!rr_free_list_push(&g->streams[1], st)) tei_stream_destroy(st);
    }
    return 1;
}

void rr_svc_tei_free(rr_grpc *g)
{
    void *st;
    while ((st = rr_free_list_pop(&g->streams[1])))
        tei_stream_destroy(st);
}
