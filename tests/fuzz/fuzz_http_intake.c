/*
 * fuzz_http_intake.c — the HTTP wing's JSON reranking bodies, from arbitrary bytes: the
 * pre-parse scan (rr_json_scan), jansson's parse and the shape checks of both request
 * shapes (rr_http_admit), admitted by the front with a real scheduler on the tiny test
 * model (models/tiny-bert-random: skipped without it) and given back unscored; and the
 * JSON string writer (rr_json_put_string) on the same bytes.
 *
 * Input: byte 0 picks the route (mod 3: /rerank, /v1/rerank, /v2/rerank); the rest is the body.
 *
 * Invariants, for every input:
 *   - an admitted request has 1 ... --max-docs documents, each one of the body's strings
 *     with its length (a "\u0000" inside kept), a non-empty UTF-8 query, max_length 3 ...
 *     the model's; the TEI shape only on /rerank with "texts";
 *   - a refusal is MALFORMED, INVALID, EMPTY, TOO_MANY, TOO_BIG or OVERLOADED with a
 *     message; TOO_MANY only when the scan saw a top-level array over --max-docs;
 *   - no request stays acquired;
 *   - rr_json_put_string of the bytes is one JSON string that jansson parses back to the
 *     same bytes when they are UTF-8 (U+FFFD for each invalid byte otherwise).
 */
#include <jansson.h>

#include "fuzz.h"
#include "fuzz_server.h"
#include "http/wing.h"
#include "util/strbuf.h"
#include "util/util.h"

#define MAX_DOCS 64

static rr_server srv;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_tiny_server(&srv, "fuzz_http_intake", MAX_DOCS);
    return 0;
}

static void check_string_writer(const char *s, size_t n)
{
    rr_strbuf o = {0};
    rr_json_put_string(&o, s, n);
    FUZZ_CHECK(!o.oom && o.p, "out of memory writing %zu bytes", n);
    json_error_t je;
    json_t *j = json_loadb(o.p, o.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    FUZZ_CHECK(j && json_is_string(j), "the written string does not parse: %s", je.text);
    if (rr_utf8_check(s, n) == n)
        FUZZ_CHECK(json_string_length(j) == n && memcmp(json_string_value(j), s, n) == 0,
                   "valid UTF-8 did not round-trip");
    json_decref(j);
    rr_free(o.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int route = data[0] % 3;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    check_string_writer(body, len);

    rr_json_shape sh;
    rr_json_scan(body, len, &sh);
    FUZZ_CHECK(sh.depth >= 0 && sh.top_array <= sh.values, "scan: depth %d, array %llu of %llu",
               sh.depth, (unsigned long long)sh.top_array, (unsigned long long)sh.values);
    json_t *json = NULL;
    rr_http_opts o;
    rr_problem p = {0};
    rr_sched_req *r = rr_http_admit(&srv, route, body, len, 99, &json, &o, &p);
    if (!r) {
        FUZZ_CHECK(p.fail == RR_FAIL_MALFORMED || p.fail == RR_FAIL_INVALID ||
                       p.fail == RR_FAIL_EMPTY || p.fail == RR_FAIL_TOO_MANY ||
                       p.fail == RR_FAIL_TOO_BIG || p.fail == RR_FAIL_OVERLOADED,
                   "refused as %s: %s", rr_fail_name(p.fail), p.msg);
        FUZZ_CHECK(p.msg[0], "a refusal without a message");
        if (p.fail == RR_FAIL_TOO_MANY)
            FUZZ_CHECK(sh.top_array > MAX_DOCS, "TOO_MANY but the largest array has %llu",
                       (unsigned long long)sh.top_array);
    } else {
        FUZZ_CHECK(json && json_is_object(json), "admitted without a parsed object");
        const json_t *list = json_object_get(json, o.shape == RR_HTTP_TEI ? "texts" : "documents");
        FUZZ_CHECK(o.shape == RR_HTTP_COHERE || (route == 0 && json_object_get(json, "texts")),
                   "TEI shape on route %d", route);
        FUZZ_CHECK(json_is_array(list) && json_array_size(list) == (size_t)r->n_docs &&
                       r->n_docs >= 1 && r->n_docs <= MAX_DOCS,
                   "%d documents admitted", r->n_docs);
        /* rank_fields: object documents are ranked on their joined fields, kept in order in
         * the tree under "\0joined" (rerank.c) */
        const json_t *joined = json_object_getn(json, "\0joined", 7);
        size_t n_obj = 0;
        for (int i = 0; i < r->n_docs; i++) {
            const json_t *d = json_array_get(list, (size_t)i);
            if (json_is_object(d))
                d = joined ? json_array_get(joined, n_obj++) : json_object_get(d, "text");
            FUZZ_CHECK(json_is_string(d) && json_string_length(d) == r->docs[i].len &&
                           json_string_value(d) == r->docs[i].p,
                       "document %d is not the body's string", i);
        }
        FUZZ_CHECK(r->query.len > 0 && rr_utf8_check(r->query.p, r->query.len) == r->query.len,
                   "query admitted empty or not UTF-8");
        FUZZ_CHECK(
            r->max_length >= 3 && r->max_length <= srv.info->max_length && r->deadline_ns == 99,
            "max_length %d, deadline %llu", r->max_length, (unsigned long long)r->deadline_ns);
        FUZZ_CHECK(!r->chunk || (r->max_chunks >= 1 && r->max_chunks <= 8 &&
                                 r->n_docs * r->max_chunks <= 64 && r->chunk_score >= 0 &&
                                 r->chunk_score <= RR_CHUNK_MEAN && r->max_length >= 4),
                   "chunked with %d windows of %d documents, rule %d, max_length %d", r->max_chunks,
                   r->n_docs, r->chunk_score, r->max_length);
        int top = rr_front_top(o.top_n, r->n_docs);
        FUZZ_CHECK(top >= 1 && top <= r->n_docs, "top %d of %d", top, r->n_docs);
        rr_front_abort(&srv, r);
    }
    json_decref(json);
    FUZZ_CHECK(rr_sched_live(srv.sched) == 0, "%d requests left acquired",
               rr_sched_live(srv.sched));
    return 0;
}
