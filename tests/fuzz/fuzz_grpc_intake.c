/*
 * fuzz_grpc_intake.c — every request message the gRPC wing decodes, from arbitrary bytes,
 * through the wing's decoder under its limits (rr_decode: documents counted on the wire
 * before decoding, the arena capped) and the front's intake (rr_rerank_admit,
 * rr_rerank_open + rr_rerank_batch_admit, rr_tei_admit, rr_tei_stream_message), with a real
 * scheduler on the tiny test model (models/tiny-bert-random: skipped without it). Admitted
 * requests are given back unscored.
 *
 * Input: byte 0 picks the message (0 rerank.v1 RerankRequest, 1 RerankStreamRequest,
 * 2 tei.v1 RerankRequest, 3 tei.v1 RerankStreamRequest, 4 HealthCheckRequest,
 * 5 ServerReflectionRequest); the rest is the message's bytes.
 *
 * Invariants, for every input:
 *   - decoding fails only as MALFORMED, TOO_MANY (the wire count over --max-docs: checked
 *     against an independent count here), TOO_BIG or OVERLOADED, with a message;
 *   - an admitted request has 1 ... --max-docs documents, exactly the message's, each
 *     pointing at its message's bytes with their length (U+0000 kept), a non-empty UTF-8
 *     query, max_length 3 ... the model's, the deadline given; a refusal is INVALID,
 *     EMPTY, TOO_MANY or OVERLOADED with a message (never a crash on any top_n, enum or
 *     length); ids are echoed only when they are UTF-8;
 *   - no request stays acquired (rr_sched_live is 0 after each input);
 *   - top_n of any value selects at most the documents (rr_front_top).
 */
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>

#include "fuzz.h"
#include "fuzz_server.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/wing.h"
#include "rerank/v1/rerank.pb-c.h"
#include "tei/v1/tei.pb-c.h"
#include "util/util.h"

#define MAX_DOCS 64

static rr_server srv;
static rr_arena arena;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_tiny_server(&srv, "fuzz_grpc_intake", MAX_DOCS);
    grpc_init();
    rr_arena_init(&arena, 1 << 20);
    return 0;
}

/* The documents of a message counted independently of wire.c: every occurrence of
 * `field` (wire type 2) at the top level, or inside every occurrence of `outer` when
 * outer != 0. -1 when the bytes are not a message this simple reader can walk. */
static long count(const uint8_t *p, size_t n, uint32_t outer, uint32_t field)
{
    long c = 0;
    size_t i = 0;
    while (i < n) {
        uint64_t key = 0, len = 0;
        int shift = 0;
        do {
            if (i >= n || shift > 63) return -1;
            key |= (uint64_t)(p[i] & 0x7f) << shift;
            shift += 7;
        } while (p[i++] & 0x80);
        int wt = (int)(key & 7);
        if (wt == 0) {
            do {
                if (i >= n) return -1;
            } while (p[i++] & 0x80);
            continue;
        }
        if (wt == 1 || wt == 5) {
            len = wt == 1 ? 8 : 4;
        } else if (wt == 2) {
            shift = 0;
            do {
                if (i >= n || shift > 63) return -1;
                len |= (uint64_t)(p[i] & 0x7f) << shift;
                shift += 7;
            } while (p[i++] & 0x80);
        } else {
            return -1;
        }
        if (len > n - i) return -1;
        if (wt == 2 && (key >> 3) == (outer ? outer : field)) {
            if (!outer) {
                c++;
            } else {
                long inner = count(p + i, (size_t)len, 0, field);
                if (inner < 0) return -1;
                c += inner;
            }
        }
        i += (size_t)len;
    }
    return c;
}

/* Checks an admitted request, or a refusal; gives the request back. */
static void check_admitted(rr_sched_req *r, const rr_problem *p, size_t want_docs,
                           ProtobufCBinaryData *(*text_of)(void *msg, size_t i), void *msg)
{
    if (!r) {
        FUZZ_CHECK(p->fail == RR_FAIL_INVALID || p->fail == RR_FAIL_EMPTY ||
                       p->fail == RR_FAIL_TOO_MANY || p->fail == RR_FAIL_OVERLOADED,
                   "refused as %s: %s", rr_fail_name(p->fail), p->msg);
        FUZZ_CHECK(p->msg[0], "a refusal without a message");
        if (want_docs == 0) FUZZ_CHECK(p->fail != RR_FAIL_TOO_MANY, "0 documents: too many?");
        return;
    }
    FUZZ_CHECK(r->n_docs >= 1 && r->n_docs <= MAX_DOCS && (size_t)r->n_docs == want_docs,
               "%d documents admitted, %zu sent", r->n_docs, want_docs);
    FUZZ_CHECK(r->max_length >= 3 && r->max_length <= srv.info->max_length, "max_length %d",
               r->max_length);
    FUZZ_CHECK(r->query.len > 0 && rr_utf8_check(r->query.p, r->query.len) == r->query.len,
               "query admitted empty or not UTF-8");
    for (int i = 0; i < r->n_docs; i++) {
        ProtobufCBinaryData *t = text_of(msg, (size_t)i);
        FUZZ_CHECK(r->docs[i].len == t->len && (t->len == 0 || r->docs[i].p == (char *)t->data),
                   "document %d is not the message's text", i);
    }
    rr_front_abort(&srv, r);
}

static ProtobufCBinaryData *rerank_text(void *m, size_t i)
{
    return &((Rerank__V1__RerankRequest *)m)->documents[i]->text;
}

static ProtobufCBinaryData *batch_text(void *m, size_t i)
{
    return &((Rerank__V1__StreamBatch *)m)->documents[i]->text;
}

static ProtobufCBinaryData *tei_text(void *m, size_t i)
{
    return &((Tei__V1__RerankRequest *)m)->texts[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int kind = data[0] % 6;
    data++, size--;
    static const uint32_t docs_top[] = {2}, docs_batch[] = {2, 1};
    static const struct {
        const ProtobufCMessageDescriptor *d;
        const uint32_t *path;
        int depth;
        const char *name;
    } kinds[6] = {
        {&rerank__v1__rerank_request__descriptor, docs_top, 1, "RerankRequest"},
        {&rerank__v1__rerank_stream_request__descriptor, docs_batch, 2, "RerankStreamRequest"},
        {&tei__v1__rerank_request__descriptor, docs_top, 1, "RerankRequest"},
        {&tei__v1__rerank_stream_request__descriptor, NULL, 0, "RerankStreamRequest"},
        {&grpc__health__v1__health_check_request__descriptor, NULL, 0, "HealthCheckRequest"},
        {&grpc__reflection__v1__server_reflection_request__descriptor, NULL, 0,
         "ServerReflectionRequest"},
    };
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)data, size);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    rr_wire_limit lim = {kinds[kind].path, kinds[kind].depth, MAX_DOCS, "documents"};
    rr_problem p = {0};
    ProtobufCMessage *m =
        rr_decode(kinds[kind].d, bb, &arena, kinds[kind].path ? &lim : NULL, kinds[kind].name, &p);
    long wire = kinds[kind].path ? count(data, size, kind == 1 ? 2 : 0, kind == 1 ? 1 : 2) : -1;
    if (!m) {
        FUZZ_CHECK(p.fail == RR_FAIL_MALFORMED || p.fail == RR_FAIL_TOO_MANY ||
                       p.fail == RR_FAIL_TOO_BIG || p.fail == RR_FAIL_OVERLOADED,
                   "decode failed as %s: %s", rr_fail_name(p.fail), p.msg);
        FUZZ_CHECK(p.msg[0], "a decode failure without a message");
        if (p.fail == RR_FAIL_TOO_MANY)
            FUZZ_CHECK(wire > MAX_DOCS, "TOO_MANY with %ld documents on the wire", wire);
    } else {
        if (kinds[kind].path && wire >= 0)
            FUZZ_CHECK(wire <= MAX_DOCS, "%ld documents on the wire decoded", wire);
        uint64_t deadline = 12345;
        rr_sched_req *r = NULL;
        switch (kind) {
        case 0: {
            Rerank__V1__RerankRequest *q = (Rerank__V1__RerankRequest *)m;
            r = rr_rerank_admit(&srv, q, deadline, &p);
            if (r) FUZZ_CHECK(r->deadline_ns == deadline, "deadline lost");
            int top = rr_front_top(q->top_n, q->n_documents ? (int)q->n_documents : 1);
            FUZZ_CHECK(top >= 1 && top <= (q->n_documents ? (int)q->n_documents : 1), "top %d",
                       top);
            check_admitted(r, &p, q->n_documents, rerank_text, q);
            break;
        }
        case 1: {
            Rerank__V1__RerankStreamRequest *q = (Rerank__V1__RerankStreamRequest *)m;
            rr_intake tmpl;
            if (q->kind_case == RERANK__V1__RERANK_STREAM_REQUEST__KIND_OPEN) {
                if (!rr_rerank_open(&srv, q->open, &tmpl, &p))
                    FUZZ_CHECK(p.fail == RR_FAIL_INVALID && p.msg[0], "open refused as %s",
                               rr_fail_name(p.fail));
            } else if (q->kind_case == RERANK__V1__RERANK_STREAM_REQUEST__KIND_BATCH) {
                tmpl = (rr_intake){.query = {"q", 1}, .docs_field = "documents", .truncate = 1};
                r = rr_rerank_batch_admit(&srv, &tmpl, q->batch, deadline, &p);
                check_admitted(r, &p, q->batch->n_documents, batch_text, q->batch);
            }
            break;
        }
        case 2: {
            Tei__V1__RerankRequest *q = (Tei__V1__RerankRequest *)m;
            r = rr_tei_admit(&srv, q, deadline, &p);
            check_admitted(r, &p, q->n_texts, tei_text, q);
            break;
        }
        case 3: {
            uint8_t flags = 0xff;
            if (rr_tei_stream_message((Tei__V1__RerankStreamRequest *)m, 7, &flags, &p))
                FUZZ_CHECK((flags & ~(RR_PAIR_TRUNCATE | RR_PAIR_KEEP_LAST)) == 0, "flags %x",
                           flags);
            else
                FUZZ_CHECK(p.fail == RR_FAIL_INVALID && strstr(p.msg, "message 7"), "%s", p.msg);
            break;
        }
        default:
            break; /* health and reflection: decoding under the cap is the whole intake */
        }
    }
    FUZZ_CHECK(rr_sched_live(srv.sched) == 0, "%d requests left acquired",
               rr_sched_live(srv.sched));
    rr_arena_reset(&arena);
    grpc_byte_buffer_destroy(bb);
    return 0;
}
