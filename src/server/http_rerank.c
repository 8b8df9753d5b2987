/*
 * http_rerank.c — the HTTP/JSON reranking API on the --http-port listener, for clients that
 * speak JSON rather than gRPC. Two request shapes, so either family of clients switches
 * without code changes:
 *
 *   POST /rerank      text-embeddings-inference's shape:
 *                     {"query", "texts": [..], "raw_scores"?, "return_text"?, "truncate"?,
 *                      "truncation_direction"? ("right"|"left")}
 *                     → [{"index", "score", "text"?}, ...] by score, descending.
 *                     A body with "documents" instead of "texts" is read as the shape below.
 *   POST /v1/rerank, POST /v2/rerank
 *                     the Cohere/Jina shape (also vLLM's, llama.cpp's):
 *                     {"query", "documents": [string | {"text"}], "top_n"?,
 *                      "return_documents"?, "model"? (ignored)}
 *                     → {"model", "results": [{"index", "relevance_score",
 *                        "document"?: {"text"}}], "usage": {"total_tokens"}}
 *
 * Scores: "score"/"relevance_score" is sigmoid(logit); TEI's raw_scores gives the logit.
 * Errors are JSON {"error", "error_type"} as TEI sends them: 413 too many texts or a body
 * over --max-message-bytes, 422 invalid input (named), 429 --max-in-flight reached, 503
 * loading or draining. Timings go out as TEI's headers (x-total-time, x-tokenization-time,
 * x-queue-time, x-inference-time in ms; x-compute-tokens).
 *
 * Flow: the body is gathered per connection, parsed with cJSON, and its strings are handed
 * to the scheduler in place; the connection is suspended, and the thread that completes
 * the request (engine thread or tokenizer worker) renders the JSON and resumes it. Unlike
 * the gRPC path this one allocates per request (the body, cJSON's tree, the response):
 * JSON clients pay for JSON.
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server.h"
#include "util/strbuf.h"
#include "util/util.h"

typedef enum shape { SHAPE_TEI, SHAPE_COHERE } shape;

struct rr_http_req {
    rr_server *srv;
    struct MHD_Connection *conn;
    int route; /* 0: /rerank, 1: /v1|v2/rerank */
    char *body;
    size_t len, cap;
    int too_big, submitted;
    uint64_t t_start;

    cJSON *json;
    shape shape;
    int raw_scores, return_text, top_n;
    rr_sched_req *r;

    /* The answer, set before the connection is resumed. */
    unsigned status;
    char *resp; /* rr_malloc'd */
    size_t resp_len;
    uint64_t tokenize_ns, queue_ns, infer_ns;
    long tokens;
};

/* A JSON string literal (quotes included). Input is valid UTF-8 (it came from cJSON or
 * from the tokenizer-validated texts); control characters are escaped. */
static void put_json_string(rr_strbuf *o, const char *s)
{
    rr_strbuf_printf(o, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c && !o->oom; c++) {
        switch (*c) {
        case '"':
            rr_strbuf_printf(o, "\\\"");
            break;
        case '\\':
            rr_strbuf_printf(o, "\\\\");
            break;
        case '\n':
            rr_strbuf_printf(o, "\\n");
            break;
        case '\r':
            rr_strbuf_printf(o, "\\r");
            break;
        case '\t':
            rr_strbuf_printf(o, "\\t");
            break;
        default:
            if (*c < 0x20)
                rr_strbuf_printf(o, "\\u%04x", *c);
            else
                rr_strbuf_printf(o, "%c", *c);
        }
    }
    rr_strbuf_printf(o, "\"");
}

/* Takes o's text as the answer (an empty 500 when building it ran out of memory). */
static void set_answer(rr_http_req *q, unsigned status, rr_strbuf *o)
{
    if (o->oom) {
        rr_free(o->p);
        *o = (rr_strbuf){0};
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
    rr_free(q->resp);
    q->resp = o->p;
    q->resp_len = o->len;
    q->status = status;
}

static void set_error(rr_http_req *q, unsigned status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_error(rr_http_req *q, unsigned status, const char *type, const char *fmt, ...)
{
    char msg[RR_ERROR_MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rr_strbuf o = {0};
    rr_strbuf_printf(&o, "{\"error\":");
    put_json_string(&o, msg);
    rr_strbuf_printf(&o, ",\"error_type\":\"%s\"}", type);
    set_answer(q, status, &o);
}

/* ---- the response, built by the thread that completes the request ----------------------- */

static void render(rr_http_req *q, rr_sched_req *r)
{
    const int n = r->n_docs;
    rr_rank_item *items = rr_sched_scratch(r, (size_t)n * sizeof *items);
    if (!items) {
        set_error(q, MHD_HTTP_TOO_MANY_REQUESTS, "Overloaded", "out of memory ranking %d texts", n);
        return;
    }
    rr_rank_sort(r->logits, n, items);
    int top = q->top_n > 0 && q->top_n < n ? q->top_n : n;
    rr_strbuf o = {0};
    if (q->shape == SHAPE_TEI) {
        rr_strbuf_printf(&o, "[");
        for (int k = 0; k < top; k++) {
            float score = q->raw_scores ? items[k].logit : rr_sigmoid(items[k].logit);
            rr_strbuf_printf(&o, "%s{\"index\":%d,\"score\":%.9g", k ? "," : "", items[k].index, score);
            if (q->return_text) {
                rr_strbuf_printf(&o, ",\"text\":");
                put_json_string(&o, r->docs[items[k].index]);
            }
            rr_strbuf_printf(&o, "}");
        }
        rr_strbuf_printf(&o, "]");
    } else {
        rr_strbuf_printf(&o, "{\"model\":");
        put_json_string(&o, q->srv->cfg.model_dir);
        rr_strbuf_printf(&o, ",\"results\":[");
        for (int k = 0; k < top; k++) {
            rr_strbuf_printf(&o, "%s{\"index\":%d,\"relevance_score\":%.9g", k ? "," : "", items[k].index,
                rr_sigmoid(items[k].logit));
            if (q->return_text) {
                rr_strbuf_printf(&o, ",\"document\":{\"text\":");
                put_json_string(&o, r->docs[items[k].index]);
                rr_strbuf_printf(&o, "}");
            }
            rr_strbuf_printf(&o, "}");
        }
        rr_strbuf_printf(&o, "],\"usage\":{\"total_tokens\":%ld}}", r->total_tokens);
    }
    set_answer(q, MHD_HTTP_OK, &o);
}

static void request_done(rr_sched_req *r)
{
    rr_http_req *q = r->user;
    rr_server *srv = q->srv;
    q->tokenize_ns = r->tokenize_ns, q->queue_ns = r->queue_ns, q->infer_ns = r->infer_ns;
    q->tokens = r->total_tokens;
    switch (r->outcome) {
    case RR_SCHED_DONE:
        render(q, r);
        break;
    case RR_SCHED_FAILED:
        if (r->err.status == RR_E_NOMEM)
            set_error(q, MHD_HTTP_TOO_MANY_REQUESTS, "Overloaded", "%s", r->err.msg);
        else if (r->err.status == RR_E_UTF8 || r->err.status == RR_E_TOO_LONG ||
                 r->err.status == RR_E_INVALID)
            set_error(q, MHD_HTTP_UNPROCESSABLE_CONTENT, "Validation", "%s", r->err.msg);
        else
            set_error(q, MHD_HTTP_FAILED_DEPENDENCY, "Backend", "%s", r->err.msg);
        break;
    case RR_SCHED_SHUTDOWN:
        set_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "Unhealthy", "server is shutting down");
        break;
    default:
        set_error(q, MHD_HTTP_REQUEST_TIMEOUT, "Backend", "the request expired or was cancelled");
        break;
    }
    q->r = NULL;
    rr_sched_release(srv->sched, r);
    MHD_resume_connection(q->conn); /* thread-safe with MHD_ALLOW_SUSPEND_RESUME */
}

/* ---- parsing and validation ------------------------------------------------------------ */

static int get_bool(const cJSON *o, const char *key, int def, int *out_v)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out_v = def;
        return 1;
    }
    if (!cJSON_IsBool(v)) return 0;
    *out_v = cJSON_IsTrue(v);
    return 1;
}

/* Parses the body and submits the request; on failure sets the error answer. Returns 1 when
 * the request went to the scheduler (the connection must be suspended). */
static int start(rr_http_req *q)
{
    rr_server *srv = q->srv;
    if (q->too_big) {
        set_error(q, MHD_HTTP_CONTENT_TOO_LARGE, "Validation",
                  "the body is over %d bytes (--max-message-bytes)", srv->cfg.max_message_bytes);
        return 0;
    }
    if (!atomic_load(&srv->ready) || atomic_load(&srv->shutting_down)) {
        set_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "Unhealthy",
                  atomic_load(&srv->ready) ? "server is shutting down"
                                           : "the model is still loading");
        return 0;
    }
    q->json = cJSON_ParseWithLength(q->body ? q->body : "", q->len);
    const cJSON *j = q->json;
    if (!j || !cJSON_IsObject(j)) {
        set_error(q, MHD_HTTP_UNPROCESSABLE_CONTENT, "Validation", "the body is not a JSON object");
        return 0;
    }
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(j, "query");
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(j, "texts");
    const cJSON *docs = cJSON_GetObjectItemCaseSensitive(j, "documents");
    q->shape = q->route == 0 && texts ? SHAPE_TEI : SHAPE_COHERE;
    const cJSON *list = q->shape == SHAPE_TEI ? texts : docs;
    const char *list_name = q->shape == SHAPE_TEI ? "texts" : "documents";
    if (!cJSON_IsString(query) || !query->valuestring[0]) {
        set_error(q, MHD_HTTP_UNPROCESSABLE_CONTENT, "Validation",
                  "\"query\" must be a non-empty string");
        return 0;
    }
    if (!cJSON_IsArray(list)) {
        set_error(q, MHD_HTTP_UNPROCESSABLE_CONTENT, "Validation", "\"%s\" must be an array",
                  list_name);
        return 0;
    }
    int n = cJSON_GetArraySize(list);
    if (n == 0) {
        set_error(q, MHD_HTTP_UNPROCESSABLE_CONTENT, "Validation", "\"%s\" is empty", list_name);
        return 0;
    }
    if (n > srv->cfg.max_docs) {
        set_error(q, MHD_HTTP_CONTENT_TOO_LARGE, "Validation",
                  "batch size %d > maximum allowed batch size %d", n, srv->cfg.max_docs);
        return 0;
    }
    int truncate = 1, keep_last = 0, ok = 1;
    q->top_n = 0;
    if (q->shape == SHAPE_TEI) {
        ok = get_bool(j, "raw_scores", 0, &q->raw_scores) &&
             get_bool(j, "return_text", 0, &q->return_text) &&
             get_bool(j, "truncate", 1, &truncate);
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(j, "truncation_direction");
        if (ok && dir && !cJSON_IsNull(dir)) {
            if (cJSON_IsString(dir) && strcasecmp(dir->valuestring, "left") == 0)
                keep_last = 1;
            else if (!cJSON_IsString(dir) || strcasecmp(dir->valuestring, "right") != 0)
                ok = 0;
        }
    } else {
        ok = get_bool(j, "return_documents", 0, &q->return_text);
        const cJSON *top = cJSON_GetObjectItemCaseSensitive(j, "top_n");
        if (ok && top && !cJSON_IsNull(top)) {
            if (!cJSON_IsNumber(top) || top->valuedouble < 1 ||
                top->valuedouble != (double)(int)top->valuedouble)
                ok = 0;
            else
                q->top_n = (int)top->valuedouble;
        }
    }
    if (!ok) {
        set_error(q, MHD_HTTP_UNPROCESSABLE_CONTENT, "Validation",
                  q->shape == SHAPE_TEI
                      ? "raw_scores, return_text and truncate must be booleans, "
                        "truncation_direction \"right\" or \"left\""
                      : "return_documents must be a boolean, top_n a positive integer");
        return 0;
    }
    rr_sched_req *r = rr_sched_acquire(srv->sched);
    if (!r) {
        set_error(q, MHD_HTTP_TOO_MANY_REQUESTS, "Overloaded",
                  "too many requests in flight (--max-in-flight %d)", srv->cfg.max_in_flight);
        return 0;
    }
    rr_error err;
    if (rr_sched_reserve(r, n, &err) != RR_OK) {
        rr_sched_release(srv->sched, r);
        set_error(q, MHD_HTTP_TOO_MANY_REQUESTS, "Overloaded", "%s", err.msg);
        return 0;
    }
    int i = 0;
    for (const cJSON *d = list->child; d; d = d->next, i++) {
        const cJSON *t = d;
        if (q->shape == SHAPE_COHERE && cJSON_IsObject(d))
            t = cJSON_GetObjectItemCaseSensitive(d, "text");
        if (!cJSON_IsString(t)) {
            rr_sched_release(srv->sched, r);
            set_error(q, MHD_HTTP_UNPROCESSABLE_CONTENT, "Validation", "%s[%d] must be a string%s",
                      list_name, i,
                      q->shape == SHAPE_COHERE ? " or an object with a \"text\" string" : "");
            return 0;
        }
        r->docs[i] = t->valuestring;
        r->doc_lens[i] = strlen(t->valuestring);
    }
    r->query = query->valuestring;
    r->query_len = strlen(query->valuestring);
    r->n_docs = n;
    r->truncate = truncate;
    r->keep_last = keep_last;
    r->user = q;
    r->done = request_done;
    q->r = r;
    q->submitted = 1;
    MHD_suspend_connection(q->conn); /* before submit: done may resume at once */
    rr_sched_submit(srv->sched, r);
    return 1;
}

/* ---- the MHD side ------------------------------------------------------------------------ */

int rr_http_rerank_route(const char *url)
{
    if (strcmp(url, "/rerank") == 0) return 0;
    if (strcmp(url, "/v1/rerank") == 0 || strcmp(url, "/v2/rerank") == 0) return 1;
    return -1;
}

static enum MHD_Result send_answer(rr_http_req *q)
{
    struct MHD_Response *resp =
        q->resp ? MHD_create_response_from_buffer_with_free_callback(q->resp_len, q->resp, rr_free)
                : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO; /* q->resp is freed with q */
    q->resp = NULL;           /* the response owns it */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    char v[32];
    snprintf(v, sizeof v, "%.3f", (rr_now_ns() - q->t_start) / 1e6);
    MHD_add_response_header(resp, "x-total-time", v);
    if (q->status == MHD_HTTP_OK) {
        snprintf(v, sizeof v, "%.3f", q->tokenize_ns / 1e6);
        MHD_add_response_header(resp, "x-tokenization-time", v);
        snprintf(v, sizeof v, "%.3f", q->queue_ns / 1e6);
        MHD_add_response_header(resp, "x-queue-time", v);
        snprintf(v, sizeof v, "%.3f", q->infer_ns / 1e6);
        MHD_add_response_header(resp, "x-inference-time", v);
        snprintf(v, sizeof v, "%ld", q->tokens);
        MHD_add_response_header(resp, "x-compute-tokens", v);
    }
    unsigned status = q->status;
    enum MHD_Result ret = MHD_queue_response(q->conn, status, resp);
    MHD_destroy_response(resp);
    int code_i = 0;
    static const unsigned codes[RR_HTTP_CODES] = {200, 413, 422, 429, 503, 0};
    while (code_i < RR_HTTP_CODES - 1 && codes[code_i] != status)
        code_i++;
    atomic_fetch_add_explicit(&q->srv->http_codes[q->route][code_i], 1, memory_order_relaxed);
    rr_hist_observe(&q->srv->http_seconds[q->route], rr_now_ns() - q->t_start);
    return ret;
}

int rr_http_rerank(rr_server *srv, struct MHD_Connection *conn, int route, const char *upload_data,
                   size_t *upload_data_size, void **con_cls)
{
    rr_http_req *q = *con_cls;
    if (!q) { /* headers only so far */
        if (!(q = rr_calloc(1, sizeof *q))) return MHD_NO;
        q->srv = srv;
        q->conn = conn;
        q->route = route;
        q->t_start = rr_now_ns();
        *con_cls = q;
        return MHD_YES;
    }
    if (*upload_data_size) { /* a piece of the body */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (q->too_big || q->len + n > (size_t)srv->cfg.max_message_bytes) {
            q->too_big = 1; /* keep reading (and dropping) so the answer can be sent */
            return MHD_YES;
        }
        if (q->len + n > q->cap) {
            size_t cap = q->cap ? q->cap : 16384;
            while (cap < q->len + n)
                cap *= 2;
            char *p = rr_realloc(q->body, cap);
            if (!p) {
                q->too_big = 1;
                return MHD_YES;
            }
            q->body = p;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload_data, n);
        q->len += n;
        return MHD_YES;
    }
    if (q->submitted && !q->status) return MHD_YES; /* resumed spuriously: not answered yet */
    if (!q->submitted && !q->status) {
        /* Counted while between the drain check and the submit, so the scheduler is not
         * freed under it (main.c waits for zero). */
        atomic_fetch_add(&srv->http_starting, 1);
        int suspended = start(q);
        atomic_fetch_sub(&srv->http_starting, 1);
        if (suspended) return MHD_YES; /* until request_done resumes it */
    }
    return send_answer(q);
}

void rr_http_rerank_free(void *con_cls)
{
    rr_http_req *q = con_cls;
    if (!q) return;
    cJSON_Delete(q->json);
    rr_free(q->body);
    rr_free(q->resp);
    rr_free(q);
}
