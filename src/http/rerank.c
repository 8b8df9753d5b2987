/*
 * rerank.c — the HTTP/JSON reranking API on the --http-port listener, for clients that
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
 *                     {"query", "documents": [string | object], "top_n"?,
 *                      "return_documents"?, "rank_fields"?, "max_chunks_per_doc"?,
 *                      "max_tokens_per_doc"?, "model"? (ignored)}
 *                     → {"id", "model", "results": [{"index", "relevance_score",
 *                        "document"?, "window"?}], "usage": {"total_tokens"},
 *                        "meta": {"api_version", "tokens"}}
 *                     An object document is ranked on its "text", or with rank_fields
 *                     on those fields joined as "name: value" lines in that order (the
 *                     YAML form Cohere recommends for structured documents); it is echoed
 *                     as sent. A body with max_chunks_per_doc and no long_documents is
 *                     chunked (Cohere chunks).
 *
 * Both shapes take rerankd's long-document fields (README "Long documents"):
 * "long_documents" ("truncate" | "chunk"), "max_chunks_per_doc", "chunk_overlap",
 * "chunk_score" ("max" | "first" | "mean"), "max_tokens_per_doc"; a chunked answer gives
 * each result its "window": {"index", "scored", "possible", "token_start", "token_end",
 * "char_start", "char_end"}.
 *
 * Scores: "score"/"relevance_score" is sigmoid(logit); TEI's raw_scores gives the logit.
 * Errors are JSON {"error", "error_type"} with the status of the front's class (the table
 * in status_of, README "Errors"). Timings go out as TEI's headers (x-total-time,
 * x-tokenization-time, x-queue-time, x-inference-time in ms; x-compute-tokens). A request
 * may carry its own deadline, `x-request-timeout: <seconds>` (default --http-timeout).
 *
 * Flow: the body is gathered per connection (up to --max-message-bytes), measured in one
 * pass (rr_json_scan: an array over --max-docs is refused before parsing), parsed with
 * jansson (strings keep their lengths: "\u0000" is a character, as on gRPC; invalid UTF-8,
 * lone surrogates and duplicate keys are refused, as serde does for TEI), and its strings
 * are handed to the front in place. The connection is suspended and watched for a hang-up;
 * the thread that completes the request renders the JSON and resumes it. Unlike the gRPC
 * path this one allocates per request (the body, jansson's tree, the response): JSON
 * clients pay for JSON.
 */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/wing.h"
#include "util/strbuf.h"
#include "util/util.h"

/* Deepest nesting a body may have (ours are 3 deep); far below jansson's recursion. */
#define MAX_DEPTH 32

struct rr_http_req {
    rr_http *h;
    struct MHD_Connection *conn;
    int route; /* 0: /rerank, 1: /v1/rerank, 2: /v2/rerank */
    char *body;
    size_t len, cap;
    int too_big, submitted;
    int refused; /* no or a wrong API key: the body is dropped and 401 answered */
    uint64_t t_start;
    double timeout; /* s, from x-request-timeout or --http-timeout; 0 none; < 0 invalid */

    json_t *json;    /* the parsed body: the texts point into it */
    rr_http_opts o;  /* shape and answer options */
    rr_sched_req *r; /* in the scheduler */
    int slot;        /* the disconnect watcher's, or -1 */

    /* The answer, set before the connection is resumed. */
    unsigned status;
    char *resp; /* rr_malloc'd */
    size_t resp_len;
    uint64_t tokenize_ns, queue_ns, infer_ns;
    long tokens;
};

/* ---- answers ------------------------------------------------------------------------------ */

/* The status and TEI error_type of a front class (TEI's router/src/http/server.rs where TEI
 * has the case: Validation 413 (TEI answers too many texts and too-long inputs with it),
 * Empty 400, Overloaded 429, Unhealthy 503, Backend 424, Tokenizer 422; JSON that does not
 * parse 400 and JSON of the wrong shape 422, as axum's extractor answers them). */
static void status_of(rr_fail f, unsigned *status, const char **type)
{
    static const struct {
        unsigned status;
        const char *type;
    } t[RR_FAIL_COUNT] = {
        [RR_FAIL_NONE] = {200, ""},
        [RR_FAIL_MALFORMED] = {400, "Validation"},
        [RR_FAIL_INVALID] = {422, "Validation"},
        [RR_FAIL_EMPTY] = {400, "Empty"},
        [RR_FAIL_TOO_MANY] = {413, "Validation"},
        [RR_FAIL_TOO_LONG] = {413, "Validation"},
        [RR_FAIL_TOO_BIG] = {413, "Validation"},
        [RR_FAIL_OVERLOADED] = {429, "Overloaded"},
        [RR_FAIL_UNAVAILABLE] = {503, "Unhealthy"},
        [RR_FAIL_DEADLINE] = {503, "Timeout"},
        [RR_FAIL_CANCELLED] = {499, "Cancelled"},
        [RR_FAIL_TOKENIZER] = {422, "Tokenizer"},
        [RR_FAIL_BACKEND] = {424, "Backend"},
        [RR_FAIL_INTERNAL] = {500, "Backend"},
    };
    unsigned i = (unsigned)f < RR_FAIL_COUNT ? (unsigned)f : RR_FAIL_INTERNAL;
    *status = t[i].status;
    *type = t[i].type;
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

static void set_problem(rr_http_req *q, const rr_problem *p)
{
    unsigned status;
    const char *type;
    status_of(p->fail, &status, &type);
    rr_strbuf o = {0};
    rr_strbuf_printf(&o, "{\"error\":");
    rr_json_put_string(&o, p->msg, strlen(p->msg));
    rr_strbuf_printf(&o, ",\"error_type\":\"%s\"}", type);
    set_answer(q, status, &o);
}

/* Fails the request with a class and message; returns 0 for `return fail(...)`. */
static int fail(rr_http_req *q, rr_fail f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(rr_http_req *q, rr_fail f, const char *fmt, ...)
{
    rr_problem p = {.fail = f};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p.msg, sizeof p.msg, fmt, ap);
    va_end(ap);
    set_problem(q, &p);
    return 0;
}

/* ---- the response, built by the thread that completes the request ----------------------- */

static void put_window(rr_strbuf *o, const rr_sched_req *r, int i)
{
    rr_front_window w;
    rr_front_window_of(r, i, &w);
    rr_strbuf_printf(o,
                     ",\"window\":{\"index\":%d,\"scored\":%d,\"possible\":%d,\"token_start\":%d,"
                     "\"token_end\":%d,\"char_start\":%d,\"char_end\":%d}",
                     w.index, w.scored, w.possible, w.token_start, w.token_end, w.char_start,
                     w.char_end);
}

/* The document as the client sent it: a string's text, or an object as JSON. */
static void put_document(rr_strbuf *o, const rr_http_req *q, const rr_sched_req *r, int i)
{
    const json_t *list = json_object_get(q->json, "documents");
    const json_t *d = list ? json_array_get(list, (size_t)i) : NULL;
    if (d && json_is_object(d)) {
        char *txt = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!txt) {
            o->oom = 1;
            return;
        }
        rr_strbuf_printf(o, ",\"document\":%s", txt);
        free(txt);
        return;
    }
    rr_text t = r->docs[i];
    rr_strbuf_printf(o, ",\"document\":{\"text\":");
    rr_json_put_string(o, t.p, t.len);
    rr_strbuf_printf(o, "}");
}

static void render(rr_http_req *q, rr_sched_req *r)
{
    rr_problem p;
    const rr_ranked *items;
    if (!rr_front_rank(r, 0, &items, NULL, &p)) {
        set_problem(q, &p);
        return;
    }
    int top = rr_front_top(q->o.top_n, r->n_docs);
    rr_strbuf o = {0};
    if (q->o.shape == RR_HTTP_TEI) {
        rr_strbuf_printf(&o, "[");
        for (int k = 0; k < top; k++) {
            float score = q->o.raw_scores ? items[k].logit : rr_sigmoid(items[k].logit);
            rr_strbuf_printf(&o, "%s{\"index\":%d,\"score\":%.9g", k ? "," : "", items[k].index,
                             score);
            if (q->o.return_text) {
                rr_text t = r->docs[items[k].index];
                rr_strbuf_printf(&o, ",\"text\":");
                rr_json_put_string(&o, t.p, t.len);
            }
            if (rr_front_chunked(r)) put_window(&o, r, items[k].index);
            rr_strbuf_printf(&o, "}");
        }
        rr_strbuf_printf(&o, "]");
    } else {
        const char *model = q->h->srv->cfg.model_dir;
        /* Cohere's "id" names the answer; the request's start time and address are unique
         * enough within one server's logs. */
        rr_strbuf_printf(&o,
                         "{\"id\":\"%016llx-%012llx\",\"model\":", (unsigned long long)q->t_start,
                         (unsigned long long)((uintptr_t)q & 0xFFFFFFFFFFFFull));
        rr_json_put_string(&o, model, strlen(model));
        rr_strbuf_printf(&o, ",\"results\":[");
        for (int k = 0; k < top; k++) {
            rr_strbuf_printf(&o, "%s{\"index\":%d,\"relevance_score\":%.9g", k ? "," : "",
                             items[k].index, rr_sigmoid(items[k].logit));
            if (q->o.return_text) put_document(&o, q, r, items[k].index);
            if (rr_front_chunked(r)) put_window(&o, r, items[k].index);
            rr_strbuf_printf(&o, "}");
        }
        rr_strbuf_printf(&o,
                         "],\"usage\":{\"total_tokens\":%ld},\"meta\":{\"api_version\":{"
                         "\"version\":\"%s\"},\"tokens\":{\"input_tokens\":%ld}}}",
                         r->total_tokens, q->route == 2 ? "2" : "1", r->total_tokens);
    }
    set_answer(q, MHD_HTTP_OK, &o);
}

static void request_done(rr_sched_req *r)
{
    rr_http_req *q = r->user;
    rr_http_unwatch(q->h, q->slot); /* from here the watcher cannot reach q */
    q->slot = -1;
    q->tokenize_ns = r->tokenize_ns, q->queue_ns = r->queue_ns, q->infer_ns = r->infer_ns;
    q->tokens = r->total_tokens;
    rr_problem p;
    if (rr_front_outcome(r, &p))
        render(q, r);
    else
        set_problem(q, &p);
    q->r = NULL;
    rr_front_release(q->h->srv, r);
    MHD_resume_connection(q->conn); /* thread-safe with MHD_ALLOW_SUSPEND_RESUME */
}

/* ---- parsing and validation ------------------------------------------------------------ */

static int get_bool(const json_t *j, const char *key, int def, int *out, rr_problem *p)
{
    const json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 1;
    }
    if (!json_is_boolean(v))
        return rr_problem_set(p, RR_FAIL_INVALID, "\"%s\" must be a boolean", key);
    *out = json_is_true(v);
    return 1;
}

static rr_text jtext(const json_t *s)
{
    return (rr_text){json_string_value(s), json_string_length(s)};
}

/* An optional integer field in lo ... hi: *out untouched when absent or null. */
static int get_int(const json_t *j, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   int *present, rr_problem *p)
{
    const json_t *v = json_object_get(j, key);
    if (present) *present = 0;
    if (!v || json_is_null(v)) return 1;
    double x = json_is_integer(v) ? (double)json_integer_value(v)
               : json_is_real(v)  ? json_real_value(v)
                                  : NAN;
    if (!(x >= (double)lo && x <= (double)hi && x == floor(x)))
        return rr_problem_set(p, RR_FAIL_INVALID, "\"%s\" must be an integer in %lld ... %lld", key,
                              (long long)lo, (long long)hi);
    *out = json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)x;
    if (present) *present = 1;
    return 1;
}

/* One of a few words (case-insensitive); *out the index, untouched when absent or null. */
static int get_word(const json_t *j, const char *key, const char *const *words, int n, int *out,
                    rr_problem *p)
{
    const json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) return 1;
    for (int i = 0; json_is_string(v) && i < n; i++)
        if (strcasecmp(json_string_value(v), words[i]) == 0 &&
            strlen(words[i]) == json_string_length(v)) {
            *out = i;
            return 1;
        }
    char list[128] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"",
                 i == 0       ? ""
                 : i == n - 1 ? " or "
                              : ", ",
                 words[i]);
    return rr_problem_set(p, RR_FAIL_INVALID, "\"%s\" must be %s", key, list);
}

/* The long-document fields, the same on both shapes (the front checks them against the
 * server's limits). */
static int long_options(const json_t *j, rr_http_shape shape, rr_intake *in, rr_problem *p)
{
    static const char *const modes[] = {"truncate", "chunk"};
    static const char *const scores[] = {"max", "first", "mean"};
    int mode = -1, has_chunks = 0;
    int64_t v = 0;
    in->overlap = -1;
    if (!get_word(j, "long_documents", modes, 2, &mode, p) ||
        !get_word(j, "chunk_score", scores, 3, &in->chunk_score, p))
        return 0;
    if (!get_int(j, "max_chunks_per_doc", 1, INT32_MAX, &v, &has_chunks, p)) return 0;
    in->max_chunks = has_chunks ? (uint64_t)v : 0;
    v = -1;
    if (!get_int(j, "chunk_overlap", 0, INT32_MAX, &v, NULL, p)) return 0;
    in->overlap = v;
    v = 0;
    if (!get_int(j, "max_tokens_per_doc", 1, INT32_MAX, &v, NULL, p)) return 0;
    in->max_doc_tokens = (uint64_t)v;
    in->long_docs = mode == 0   ? RR_LONG_TRUNCATE
                    : mode == 1 ? RR_LONG_CHUNK
                    /* Cohere chunks: asking how many chunks is asking to chunk */
                    : shape == RR_HTTP_COHERE && has_chunks ? RR_LONG_CHUNK
                                                            : RR_LONG_DEFAULT;
    return 1;
}

/* The options of either shape into the intake and the answer's options. */
static int options(const json_t *j, rr_http_opts *o, rr_intake *in, rr_problem *p)
{
    in->truncate = 1;
    if (!long_options(j, o->shape, in, p)) return 0;
    if (o->shape == RR_HTTP_TEI) {
        if (!get_bool(j, "raw_scores", 0, &o->raw_scores, p) ||
            !get_bool(j, "return_text", 0, &o->return_text, p) ||
            !get_bool(j, "truncate", 1, &in->truncate, p))
            return 0;
        const json_t *dir = json_object_get(j, "truncation_direction");
        if (dir && !json_is_null(dir)) {
            if (json_is_string(dir) && strcasecmp(json_string_value(dir), "left") == 0)
                in->keep_last = 1;
            else if (!json_is_string(dir) || strcasecmp(json_string_value(dir), "right") != 0)
                return rr_problem_set(p, RR_FAIL_INVALID,
                                      "\"truncation_direction\" must be \"right\" or \"left\"");
        }
        return 1;
    }
    if (!get_bool(j, "return_documents", 0, &o->return_text, p)) return 0;
    const json_t *top = json_object_get(j, "top_n");
    if (top && !json_is_null(top)) {
        /* Any top_n from 1 up means "at most that many"; larger than the documents is all. */
        if (json_is_integer(top) && json_integer_value(top) >= 1)
            o->top_n = (uint64_t)json_integer_value(top);
        else if (json_is_real(top) && json_real_value(top) >= 1 &&
                 json_real_value(top) == floor(json_real_value(top)))
            o->top_n = json_real_value(top) >= 1.8e19 ? UINT64_MAX : (uint64_t)json_real_value(top);
        else
            return rr_problem_set(p, RR_FAIL_INVALID, "\"top_n\" must be a positive integer");
    }
    return 1;
}

/* Document i (an object) ranked on `fields`: "name: value" lines in the fields' order, for
 * the fields it has (a missing one is skipped, as Cohere does; one that is not a string
 * is the client's error). Appends the text to `joined`. */
static int join_fields(const json_t *d, const json_t *fields, const char *field, int i,
                       json_t *joined, rr_problem *p)
{
    rr_strbuf b = {0};
    size_t k;
    const json_t *f;
    json_array_foreach(fields, k, f)
    {
        const json_t *v = json_object_getn(d, json_string_value(f), json_string_length(f));
        if (!v || json_is_null(v)) continue;
        if (!json_is_string(v)) {
            rr_free(b.p);
            return rr_problem_set(p, RR_FAIL_INVALID, "%s[%d].%s must be a string (rank_fields)",
                                  field, i, json_string_value(f));
        }
        if (b.len) rr_strbuf_append(&b, "\n", 1);
        rr_strbuf_append(&b, json_string_value(f), json_string_length(f));
        rr_strbuf_append(&b, ": ", 2);
        rr_strbuf_append(&b, json_string_value(v), json_string_length(v));
    }
    json_t *s = b.oom ? NULL : json_stringn_nocheck(b.p ? b.p : "", b.len);
    rr_free(b.p);
    if (!s || json_array_append_new(joined, s) != 0)
        return rr_problem_set(p, RR_FAIL_OVERLOADED, "out of memory joining rank_fields");
    return 1;
}

rr_sched_req *rr_http_admit(rr_server *srv, int route, const char *body, size_t len,
                            uint64_t deadline_ns, json_t **json, rr_http_opts *o, rr_problem *p)
{
    *json = NULL;
    *o = (rr_http_opts){0};
    rr_json_shape sh;
    rr_json_scan(body, len, &sh);
    if (sh.depth > MAX_DEPTH) {
        rr_problem_set(p, RR_FAIL_INVALID, "the body nests %d deep, over %d", sh.depth, MAX_DEPTH);
        return NULL;
    }
    if (sh.top_array > (uint64_t)srv->cfg.max_docs) {
        rr_problem_set(p, RR_FAIL_TOO_MANY, "%llu %s, over the limit of %d (--max-docs)",
                       (unsigned long long)sh.top_array, sh.top_key[0] ? sh.top_key : "elements",
                       srv->cfg.max_docs);
        return NULL;
    }
    uint64_t max_values = 16 * (uint64_t)srv->cfg.max_docs + 1024;
    if (sh.values > max_values) {
        rr_problem_set(p, RR_FAIL_TOO_BIG, "the body holds %llu JSON values, over %llu",
                       (unsigned long long)sh.values, (unsigned long long)max_values);
        return NULL;
    }
    json_error_t je;
    const json_t *j = *json = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!j) {
        rr_problem_set(p, RR_FAIL_MALFORMED, "the body is not valid JSON: %s (line %d, column %d)",
                       je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        rr_problem_set(p, RR_FAIL_INVALID, "the body is not a JSON object");
        return NULL;
    }
    const json_t *query = json_object_get(j, "query");
    const json_t *texts = json_object_get(j, "texts");
    o->shape = route == 0 && texts ? RR_HTTP_TEI : RR_HTTP_COHERE;
    const json_t *list = o->shape == RR_HTTP_TEI ? texts : json_object_get(j, "documents");
    const char *field = o->shape == RR_HTTP_TEI ? "texts" : "documents";
    if (!json_is_string(query)) {
        rr_problem_set(p, RR_FAIL_INVALID, "\"query\" must be a string");
        return NULL;
    }
    if (!json_is_array(list)) {
        rr_problem_set(p, RR_FAIL_INVALID, "\"%s\" must be an array", field);
        return NULL;
    }
    rr_intake in = {.query = jtext(query),
                    .n_docs = json_array_size(list),
                    .docs_field = field,
                    .deadline_ns = deadline_ns};
    if (!options(j, o, &in, p)) return NULL;
    const json_t *fields = o->shape == RR_HTTP_COHERE ? json_object_get(j, "rank_fields") : NULL;
    if (fields && !json_is_null(fields)) {
        size_t k;
        const json_t *f;
        if (!json_is_array(fields) || json_array_size(fields) == 0) {
            rr_problem_set(p, RR_FAIL_INVALID, "\"rank_fields\" must be an array of field names");
            return NULL;
        }
        json_array_foreach(fields, k, f) if (!json_is_string(f) || json_string_length(f) == 0)
        {
            rr_problem_set(p, RR_FAIL_INVALID, "rank_fields[%zu] must be a non-empty string", k);
            return NULL;
        }
    } else {
        fields = NULL;
    }
    /* Joined rank_fields texts live in the parsed tree (freed with it), under a key no
     * JSON text can hold (a NUL), so they share the documents' lifetime. */
    json_t *joined = fields ? json_array() : NULL;
    if (fields && (!joined || json_object_setn_new(*json, "\0joined", 7, joined) != 0)) {
        rr_problem_set(p, RR_FAIL_OVERLOADED, "out of memory joining rank_fields");
        return NULL;
    }
    rr_sched_req *r = rr_front_begin(srv, &in, p);
    for (int i = 0; r && i < r->n_docs; i++) {
        const json_t *d = json_array_get(list, (size_t)i);
        if (o->shape == RR_HTTP_COHERE && json_is_object(d)) {
            if (fields) {
                if (!join_fields(d, fields, field, i, joined, p)) {
                    rr_front_abort(srv, r);
                    return NULL;
                }
                d = json_array_get(joined, json_array_size(joined) - 1);
            } else {
                d = json_object_get(d, "text");
            }
        }
        if (!json_is_string(d)) {
            rr_front_abort(srv, r);
            rr_problem_set(p, RR_FAIL_INVALID, "%s[%d] must be a string%s", field, i,
                           o->shape == RR_HTTP_COHERE ? " or an object with a \"text\" string"
                                                      : "");
            return NULL;
        }
        rr_front_doc(r, i, jtext(d), (rr_text){NULL, 0}, p);
    }
    return r;
}

/* Checks the server's state, admits the body and submits it; on failure sets the answer.
 * Returns 1 when the request went to the scheduler (the connection must be suspended). */
static int start(rr_http_req *q)
{
    rr_server *srv = q->h->srv;
    rr_problem p;
    if (q->refused) {
        rr_strbuf o = {0};
        rr_strbuf_printf(&o, "%s", RR_HTTP_UNAUTHORIZED);
        set_answer(q, MHD_HTTP_UNAUTHORIZED, &o);
        return 0;
    }
    if (q->too_big)
        return fail(q, RR_FAIL_TOO_BIG, "the body is over %d bytes (--max-message-bytes)",
                    srv->cfg.max_message_bytes);
    if (!rr_front_ready(srv, &p)) {
        set_problem(q, &p);
        return 0;
    }
    if (atomic_load(&srv->draining)) return fail(q, RR_FAIL_UNAVAILABLE, "server is shutting down");
    if (q->timeout < 0)
        return fail(q, RR_FAIL_INVALID, "x-request-timeout must be a number of seconds > 0");
    uint64_t deadline = q->timeout > 0 ? rr_now_ns() + (uint64_t)(q->timeout * 1e9) : 0;
    rr_sched_req *r =
        rr_http_admit(srv, q->route, q->body ? q->body : "", q->len, deadline, &q->json, &q->o, &p);
    if (!r) {
        set_problem(q, &p);
        return 0;
    }
    q->r = r;
    q->submitted = 1;
    MHD_suspend_connection(q->conn); /* before submit: done may resume at once */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) rr_http_watch(q->h, r, ci->connect_fd, &q->slot);
    rr_front_submit(srv, r, request_done, q);
    return 1;
}

/* ---- counting --------------------------------------------------------------------------- */

static const unsigned counted[RR_HTTP_CODES - 1] = {200, 400, 401, 413, 422,
                                                    424, 429, 499, 500, 503};

static void count(rr_http *h, int route, unsigned status, uint64_t t_start)
{
    int i = 0;
    while (i < RR_HTTP_CODES - 1 && counted[i] != status)
        i++;
    atomic_fetch_add_explicit(&h->codes[route][i], 1, memory_order_relaxed);
    rr_hist_observe(&h->seconds[route], rr_now_ns() - t_start);
}

void rr_http_rerank_metrics(rr_strbuf *b, void *ctx)
{
    rr_http *h = ctx;
    static const char *const routes[RR_HTTP_ROUTES] = {"/rerank", "/v1/rerank", "/v2/rerank"};
    rr_metrics_header(b, "rerankd_http_requests_total", "counter",
                      "Finished HTTP reranking requests by route and status.");
    for (int r = 0; r < RR_HTTP_ROUTES; r++)
        for (int c = 0; c < RR_HTTP_CODES; c++) {
            char code[8];
            snprintf(code, sizeof code, "%u", c < RR_HTTP_CODES - 1 ? counted[c] : 0);
            rr_strbuf_printf(b, "rerankd_http_requests_total{route=\"%s\",code=\"%s\"} %llu\n",
                             routes[r], c < RR_HTTP_CODES - 1 ? code : "other",
                             (unsigned long long)atomic_load(&h->codes[r][c]));
        }
    rr_metrics_header(b, "rerankd_http_handling_seconds", "histogram",
                      "HTTP reranking request time, first byte of headers to answer queued, by "
                      "route.");
    for (int r = 0; r < RR_HTTP_ROUTES; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\"", routes[r]);
        rr_metrics_hist(b, "rerankd_http_handling_seconds", labels, &h->seconds[r]);
    }
}

void rr_http_rerank_init(rr_http *h)
{
    for (int r = 0; r < RR_HTTP_ROUTES; r++) {
        for (int c = 0; c < RR_HTTP_CODES; c++)
            atomic_init(&h->codes[r][c], 0);
        rr_hist_init(&h->seconds[r], rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    }
}

/* ---- the MHD side ------------------------------------------------------------------------ */

int rr_http_authorized(rr_http *h, struct MHD_Connection *conn)
{
    const char *v =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    return rr_auth_check(&h->srv->auth, RR_AUTH_HTTP, v, v ? strlen(v) : 0);
}

int rr_http_rerank_route(const char *url)
{
    if (strcmp(url, "/rerank") == 0) return 0;
    if (strcmp(url, "/v1/rerank") == 0) return 1;
    if (strcmp(url, "/v2/rerank") == 0) return 2;
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
    enum MHD_Result ret = MHD_queue_response(q->conn, q->status, resp);
    MHD_destroy_response(resp);
    count(q->h, q->route, q->status, q->t_start);
    return ret;
}

/* x-request-timeout (seconds), else --http-timeout; -1 when the header is not a number > 0. */
static double request_timeout(struct MHD_Connection *conn, double dflt)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-request-timeout");
    if (!v) return dflt;
    char *end;
    double s = strtod(v, &end);
    return end != v && !*end && s > 0 && s < 1e9 ? s : -1;
}

int rr_http_rerank(rr_http *h, struct MHD_Connection *conn, int route, const char *upload_data,
                   size_t *upload_data_size, void **con_cls)
{
    rr_server *srv = h->srv;
    rr_http_req *q = *con_cls;
    if (!q) { /* headers only so far */
        if (!(q = rr_calloc(1, sizeof *q))) return MHD_NO;
        q->h = h;
        q->conn = conn;
        q->route = route;
        q->slot = -1;
        q->t_start = rr_now_ns();
        q->timeout = request_timeout(conn, srv->cfg.http_timeout);
        q->refused = !rr_http_authorized(h, conn);
        *con_cls = q;
        return MHD_YES;
    }
    if (*upload_data_size) { /* a piece of the body */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (q->refused) return MHD_YES; /* read and dropped, so the 401 can be sent */
        if (q->too_big || q->len + n > (size_t)srv->cfg.max_message_bytes) {
            q->too_big = 1; /* keep reading (and dropping) so the answer can be sent */
            return MHD_YES;
        }
        size_t cap = rr_grow_cap(q->cap, q->len + n, 16384);
        if (cap != q->cap) {
            if (!rr_realloc_array(&q->body, cap, 1)) {
                q->too_big = 1;
                return MHD_YES;
            }
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload_data, n);
        q->len += n;
        return MHD_YES;
    }
    if (q->submitted && !q->status) return MHD_YES; /* resumed spuriously: not answered yet */
    if (!q->submitted && !q->status && start(q)) return MHD_YES; /* until request_done */
    return send_answer(q);
}

void rr_http_rerank_free(void *con_cls)
{
    rr_http_req *q = con_cls;
    if (!q) return;
    json_decref(q->json);
    rr_free(q->body);
    rr_free(q->resp);
    rr_free(q);
}
