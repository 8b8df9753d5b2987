/*
 * svc_tei.c — the TEI-compatible services: tei.v1.Rerank (unary Rerank and client-streaming
 * RerankStream) and tei.v1.Info, with text-embeddings-inference's semantics: ranks sorted by
 * descending score, score = sigmoid(logit) unless raw_scores, text only when return_text,
 * truncate=false makes an over-long pair INVALID_ARGUMENT. RerankStream takes one text per
 * message, uses the first message's query and options (TEI honours only the first
 * raw_scores/return_text), and answers once after the client half-closes. Metadata times
 * are the request's stage times (TEI reports per-candidate averages; every candidate of one
 * request shares them here).
 */
#include <string.h>

#include "server.h"
#include "tei/v1/tei.pb-c.h"
#include "util/util.h"

typedef struct tei_opts {
    int raw_scores, return_text;
    size_t chars;
} tei_opts;

/* Builds, queues and finishes the TEI response for a completed request (under c->mu),
 * releasing the request before the send. texts[i] are the documents' texts. */
static void tei_respond(rr_call *c, rr_sched_req *r, const char *const *texts, const tei_opts *o)
{
    if (r->outcome != RR_SCHED_DONE) {
        rr_sched_outcome outcome = r->outcome;
        rr_error err = r->err;
        rr_sched_release(c->srv->sched, r);
        rr_svc_fail(c, outcome, &err);
        return;
    }
    int n = r->n_docs;
    size_t off = 0;
    size_t o_items = rr_scratch_take(&off, (size_t)n, sizeof(rr_rank_item));
    size_t o_res = rr_scratch_take(&off, (size_t)n, sizeof(Tei__V1__Rank));
    size_t o_ptr = rr_scratch_take(&off, (size_t)n, sizeof(Tei__V1__Rank *));
    char *mem = rr_sched_scratch(r, off);
    if (!mem) {
        rr_sched_release(c->srv->sched, r);
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory for %d results", n);
        return;
    }
    rr_rank_item *items = (rr_rank_item *)(mem + o_items);
    Tei__V1__Rank *ranks = (Tei__V1__Rank *)(mem + o_res);
    Tei__V1__Rank **ptr = (Tei__V1__Rank **)(mem + o_ptr);
    rr_rank_sort(r->logits, n, items); /* sigmoid is monotone: same order as by score */
    for (int k = 0; k < n; k++) {
        tei__v1__rank__init(&ranks[k]);
        ranks[k].index = (uint32_t)items[k].index;
        ranks[k].score = o->raw_scores ? items[k].logit : rr_sigmoid(items[k].logit);
        if (o->return_text) {
            ranks[k]._text_case = TEI__V1__RANK___TEXT_TEXT;
            ranks[k].text = (char *)texts[items[k].index];
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
    grpc_byte_buffer *bb = rr_pack(&resp.base);
    rr_sched_release(c->srv->sched, r);
    rr_call_send(c, bb);
    rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
}

/* Common request set-up; NULL (call finished) on a limit. */
static rr_sched_req *tei_acquire(rr_call *c, int n, int truncate, int left)
{
    rr_server *srv = c->srv;
    if (n == 0) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "texts is empty");
        return NULL;
    }
    if (n > srv->cfg.max_docs) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "%d texts, over the limit of %d (--max-docs)",
                       n, srv->cfg.max_docs);
        return NULL;
    }
    rr_sched_req *r = rr_sched_acquire(srv->sched);
    if (!r) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many requests in flight (--max-in-flight %d)",
                       srv->cfg.max_in_flight);
        return NULL;
    }
    rr_error err;
    if (rr_sched_reserve(r, n, &err) != RR_OK) {
        rr_sched_release(srv->sched, r);
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s", err.msg);
        return NULL;
    }
    r->max_length = srv->info->max_length;
    r->truncate = truncate;
    r->keep_last = left;
    r->deadline_ns = rr_call_deadline_ns(c);
    r->n_docs = n;
    r->user = c;
    return r;
}

static void tei_submit(rr_call *c, rr_sched_req *r)
{
    c->req = r;
    rr_call_ref(c);
    rr_sched_submit(c->srv->sched, r);
}

/* ---- unary -------------------------------------------------------------------------- */

static void tei_rerank_done(rr_sched_req *r)
{
    rr_call *c = r->user;
    pthread_mutex_lock(&c->mu);
    c->req = NULL;
    const Tei__V1__RerankRequest *m = c->svc;
    tei_opts o = {m->raw_scores, m->return_text, strlen(m->query)};
    for (size_t i = 0; i < m->n_texts; i++) o.chars += strlen(m->texts[i]);
    tei_respond(c, r, (const char *const *)m->texts, &o);
    pthread_mutex_unlock(&c->mu);
    rr_call_unref(c);
}

void rr_svc_tei_rerank(rr_call *c)
{
    if (!rr_svc_ready(c)) return;
    Tei__V1__RerankRequest *m =
        (Tei__V1__RerankRequest *)rr_unpack(&tei__v1__rerank_request__descriptor, c->payload, rr_call_arena(c));
    if (!m) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed RerankRequest");
        return;
    }
    c->svc = m; /* in c->arena: lives as long as the call */
    if (!m->query[0]) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "query is empty");
        return;
    }
    rr_sched_req *r = tei_acquire(c, (int)(m->n_texts < 0x7fffffff ? m->n_texts : 0x7fffffff), m->truncate,
                                  m->truncation_direction == TEI__V1__TRUNCATION_DIRECTION__TRUNCATION_DIRECTION_LEFT);
    if (!r) return;
    r->query = m->query;
    r->query_len = strlen(m->query);
    for (int i = 0; i < r->n_docs; i++) {
        r->docs[i] = m->texts[i];
        r->doc_lens[i] = strlen(m->texts[i]);
    }
    r->done = tei_rerank_done;
    tei_submit(c, r);
}

/* ---- client-streaming RerankStream -------------------------------------------------- */

/* What a pooled stream state keeps between streams; more is freed on reset. */
#define TEI_KEEP_BYTES ((size_t)1 << 20)
#define TEI_KEEP_TEXTS 16384

typedef struct tei_stream {
    void *next;                          /* free-list link (srv->streams[1]) */
    Tei__V1__RerankStreamRequest *first; /* query and options, in the call's arena */
    rr_arena *msg;                       /* every later message, reset after each */
    int n, cap;
    size_t *off;   /* text offsets into arena */
    const char **texts;
    char *arena;
    size_t arena_len, arena_cap, chars;
} tei_stream;

void rr_tei_stream_destroy(void *p)
{
    tei_stream *s = p;
    rr_free(s->off);
    rr_free(s->texts);
    rr_free(s->arena);
    rr_free(s);
}

/* The call is over: keep the buffers for the next stream in the server's list. */
static void tei_stream_free(rr_call *c)
{
    tei_stream *s = c->svc;
    if (!s) return;
    s->first = NULL; /* in the call's arena, reset with the call */
    rr_arena_put(c->srv, s->msg);
    s->msg = NULL;
    s->n = 0;
    s->arena_len = s->chars = 0;
    if (s->cap > TEI_KEEP_TEXTS) {
        rr_free(s->off), rr_free(s->texts);
        s->off = NULL, s->texts = NULL, s->cap = 0;
    }
    if (s->arena_cap > TEI_KEEP_BYTES) rr_free(s->arena), s->arena = NULL, s->arena_cap = 0;
    if (!rr_free_list_push(&c->srv->streams[1], s)) rr_tei_stream_destroy(s);
    c->svc = NULL;
}

static int tei_stream_add(tei_stream *s, const char *text)
{
    size_t len = strlen(text) + 1;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        size_t *p = rr_realloc(s->off, (size_t)cap * sizeof *p);
        if (!p) return 0;
        s->off = p;
        const char **t = rr_realloc(s->texts, (size_t)cap * sizeof *t);
        if (!t) return 0;
        s->texts = t;
        s->cap = cap;
    }
    if (s->arena_len + len > s->arena_cap) {
        size_t cap = s->arena_cap ? s->arena_cap : 4096;
        while (cap < s->arena_len + len) cap *= 2;
        char *a = rr_realloc(s->arena, cap);
        if (!a) return 0;
        s->arena = a;
        s->arena_cap = cap;
    }
    memcpy(s->arena + s->arena_len, text, len);
    s->off[s->n++] = s->arena_len;
    s->arena_len += len;
    s->chars += len - 1;
    return 1;
}

static void tei_stream_done(rr_sched_req *r)
{
    rr_call *c = r->user;
    pthread_mutex_lock(&c->mu);
    c->req = NULL;
    tei_stream *s = c->svc;
    tei_opts o = {s->first->raw_scores, s->first->return_text, strlen(s->first->query) + s->chars};
    tei_respond(c, r, s->texts, &o);
    pthread_mutex_unlock(&c->mu);
    rr_call_unref(c);
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
        if (!s->first) {
            rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "the stream carried no texts");
            return;
        }
        rr_sched_req *r = tei_acquire(c, s->n, s->first->truncate,
                                      s->first->truncation_direction ==
                                          TEI__V1__TRUNCATION_DIRECTION__TRUNCATION_DIRECTION_LEFT);
        if (!r) return;
        r->query = s->first->query;
        r->query_len = strlen(s->first->query);
        for (int i = 0; i < s->n; i++) {
            s->texts[i] = s->arena + s->off[i]; /* the arena no longer moves */
            r->docs[i] = s->texts[i];
            r->doc_lens[i] = strlen(s->texts[i]);
        }
        r->done = tei_stream_done;
        tei_submit(c, r);
        return;
    }
    Tei__V1__RerankStreamRequest *m = (Tei__V1__RerankStreamRequest *)rr_unpack(
        &tei__v1__rerank_stream_request__descriptor, c->payload, s->first ? s->msg : rr_call_arena(c));
    if (!m) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed RerankStreamRequest (message %d)", s->n);
        return;
    }
    if (s->n >= c->srv->cfg.max_docs) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "more than %d texts in one stream (--max-docs)",
                       c->srv->cfg.max_docs);
        return;
    }
    if (!s->first && !m->query[0]) {
        rr_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "query is empty");
        return;
    }
    if (!tei_stream_add(s, m->text)) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory at text %d", s->n);
        return;
    }
    if (!s->first) s->first = m;
    else rr_arena_reset(s->msg);
    rr_call_recv(c);
}

void *rr_tei_stream_new(void)
{
    tei_stream *s = rr_calloc(1, sizeof *s); /* grows on first use; streams of TEI are rare */
    return s;
}

void rr_svc_tei_rerank_stream(rr_call *c)
{
    if (!rr_svc_ready(c)) return;
    tei_stream *s = rr_free_list_pop(&c->srv->streams[1]); /* reset by tei_stream_free */
    if (!s && !(s = rr_tei_stream_new())) {
        rr_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory for a stream");
        return;
    }
    if (!(s->msg = rr_arena_get(c->srv))) {
        rr_tei_stream_destroy(s);
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
    if (!rr_svc_ready(c)) return;
    rr_server *srv = c->srv;
    Tei__V1__InfoResponse resp = TEI__V1__INFO_RESPONSE__INIT;
    resp.version = RR_SERVER_VERSION;
    resp.model_id = (char *)srv->cfg.model_dir;
    resp.model_dtype = strncmp(srv->device_desc, "cpu", 3) == 0 ? "float32" : "float16";
    resp.model_type = TEI__V1__MODEL_TYPE__MODEL_TYPE_RERANKER;
    resp.max_concurrent_requests = (uint32_t)srv->cfg.max_in_flight;
    resp.max_input_length = (uint32_t)srv->info->max_length;
    resp.max_batch_tokens = (uint32_t)srv->cfg.max_batch_tokens;
    resp.max_client_batch_size = (uint32_t)srv->cfg.max_docs;
    resp.tokenization_workers = (uint32_t)srv->cfg.tokenizer_workers;
    rr_call_send(c, rr_pack(&resp.base));
    rr_call_finish(c, GRPC_STATUS_OK, "%s", "");
}
