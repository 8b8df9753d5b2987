/*
 * call.c — per-call contexts of rerankd's gRPC edge: arming requests, reference counting,
 * the one-send-at-a-time output queue (initial metadata always goes with the first send or
 * with the status: a status-only response never leaves a 1.51 server, fact 6), receive and
 * close watching, protobuf-c <-> byte buffer, and the generic UNIMPLEMENTED answer that
 * keeps unknown methods from hanging (fact 5).
 */
#define _GNU_SOURCE /* PTHREAD_MUTEX_RECURSIVE */
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "grpc/wing.h"
#include "util/util.h"

#define CALL_OF(tag, field) ((rr_call *)((char *)(tag)-offsetof(rr_call, field)))

/* Calls alive that received a message of TRIM_BYTES or more. gRPC reads a message in many
 * small slices that land in the heap, below the mmap threshold, and once freed they stay
 * with the process (16 refused 4 MB messages left ~30 MB resident) unless the heap is
 * trimmed: the last such call to end trims it (a few ms, only after big messages). */
#define TRIM_BYTES ((size_t)1 << 20)
static atomic_int big_calls;

static void note_big(rr_call *c)
{
    if (!c->big && c->payload && grpc_byte_buffer_length(c->payload) >= TRIM_BYTES) {
        c->big = 1;
        atomic_fetch_add(&big_calls, 1);
    }
}

/* Contexts kept per method, and how many exist from the start (more than the armed
 * requests plus a few in flight, so a steady load never finds the list empty). */
#define CALLS_MAX 512
#define CALLS_PREFILL 32
/* Arenas kept, and the bytes each keeps across resets (a 1000-document request decodes
 * into about 200 KB): at most 32 MiB stay with the wing after any burst. */
#define ARENAS_MAX 128
#define ARENA_RETAIN ((size_t)256 << 10)
/* Made at start, ready: 64 arenas with a 16 KiB chunk each (1 MiB), so bursts up to that
 * many messages find warm ones. */
#define ARENAS_PREFILL 64
#define ARENA_PRIME 16384

void rr_free_list_init(rr_free_list *l, int max)
{
    pthread_mutex_init(&l->mu, NULL);
    l->head = NULL;
    l->n = 0;
    l->max = max;
}

void *rr_free_list_pop(rr_free_list *l)
{
    pthread_mutex_lock(&l->mu);
    void *o = l->head;
    if (o) {
        l->head = *(void **)o;
        l->n--;
    }
    pthread_mutex_unlock(&l->mu);
    return o;
}

int rr_free_list_push(rr_free_list *l, void *o)
{
    pthread_mutex_lock(&l->mu);
    int ok = l->n < l->max;
    if (ok) {
        *(void **)o = l->head;
        l->head = o;
        l->n++;
    }
    pthread_mutex_unlock(&l->mu);
    return ok;
}

rr_arena *rr_arena_get(rr_grpc *g)
{
    rr_pooled_arena *p = rr_free_list_pop(&g->arenas);
    if (!p) {
        if (!(p = rr_calloc(1, sizeof *p))) return NULL;
        rr_arena_init(&p->a, ARENA_RETAIN);
    }
    return &p->a;
}

void rr_arena_put(rr_grpc *g, rr_arena *a)
{
    if (!a) return;
    rr_pooled_arena *p = (rr_pooled_arena *)((char *)a - offsetof(rr_pooled_arena, a));
    rr_arena_reset(a);
    rr_arena_set_limit(a, 0);
    if (!rr_free_list_push(&g->arenas, p)) {
        rr_arena_free(a);
        rr_free(p);
    }
}

rr_arena *rr_call_arena(rr_call *c)
{
    if (!c->arena) c->arena = rr_arena_get(c->g);
    return c->arena;
}

int rr_call_pools_init(rr_grpc *g)
{
    for (int m = 0; m <= RR_M_COUNT; m++)
        rr_free_list_init(&g->calls[m], CALLS_MAX);
    rr_free_list_init(&g->arenas, ARENAS_MAX);
    for (int m = 0; m <= RR_M_COUNT; m++)
        for (int k = 0; k < CALLS_PREFILL; k++) {
            rr_call *c = rr_calloc(1, sizeof *c);
            if (!c) return 0; /* rr_call_pools_free releases what was made */
            rr_free_list_push(&g->calls[m], c);
        }
    for (int k = 0; k < ARENAS_PREFILL; k++) {
        rr_pooled_arena *p = rr_calloc(1, sizeof *p);
        if (!p) return 0;
        rr_arena_init(&p->a, ARENA_RETAIN);
        rr_free_list_push(&g->arenas, p);
        if (!rr_arena_alloc(&p->a, ARENA_PRIME)) return 0;
        rr_arena_reset(&p->a);
    }
    return 1;
}

void rr_call_pools_free(rr_grpc *g)
{
    void *o;
    for (int m = 0; m <= RR_M_COUNT; m++) {
        while ((o = rr_free_list_pop(&g->calls[m])))
            rr_free(o);
        pthread_mutex_destroy(&g->calls[m].mu);
    }
    while ((o = rr_free_list_pop(&g->arenas))) {
        rr_arena_free(&((rr_pooled_arena *)o)->a);
        rr_free(o);
    }
    pthread_mutex_destroy(&g->arenas.mu);
}

static void call_free(rr_call *c)
{
    rr_grpc *g = c->g;
    if (c->svc_free) c->svc_free(c);
    if (c->call) grpc_call_unref(c->call);
    grpc_metadata_array_destroy(&c->md);
    if (c->method == RR_M_GENERIC) grpc_call_details_destroy(&c->details);
    if (c->payload) grpc_byte_buffer_destroy(c->payload);
    if (c->sending) grpc_byte_buffer_destroy(c->sending);
    for (int i = 0; i < c->out_n; i++)
        grpc_byte_buffer_destroy(c->outq[(c->out_head + i) % RR_OUTQ]);
    pthread_mutex_destroy(&c->mu);
    int counted = c->call != NULL;
    rr_method m = c->method;
    if (counted) {
        /* A call that ends without our status was cancelled by the client or the core. */
        grpc_status_code code = c->status_started ? c->status_code : GRPC_STATUS_CANCELLED;
        if ((unsigned)code >= RR_N_CODES) code = GRPC_STATUS_UNKNOWN;
        atomic_fetch_add_explicit(&g->rpc_codes[c->method][code], 1, memory_order_relaxed);
        rr_hist_observe(&g->rpc_seconds[c->method],
                        (c->t_status ? c->t_status : rr_now_ns()) - c->t_start);
    }
    /* Back to the free lists (bounded: a burst does not pin its memory forever). */
    rr_arena_put(g, c->arena);
    int big = c->big;
    if (!rr_free_list_push(&g->calls[m], c)) rr_free(c);
    if (counted) atomic_fetch_sub(&g->live_calls, 1);
    if (big && atomic_fetch_sub(&big_calls, 1) == 1) malloc_trim(0);
}

void rr_call_ref(rr_call *c)
{
    atomic_fetch_add(&c->refs, 1);
}

void rr_call_unref(rr_call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1) call_free(c);
}

grpc_byte_buffer *rr_pack(const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s); /* create() took its own ref */
    return bb;
}

static void *arena_alloc(void *arena, size_t n)
{
    return rr_arena_alloc(arena, n);
}

static void arena_nofree(void *arena, void *p)
{
    (void)arena, (void)p; /* the owner resets the arena */
}

/* Memory a message may take to decode, on top of the arena it already holds: protobuf-c
 * copies every string and unknown field and allocates one struct per submessage, so a
 * well-formed message needs about its own size; 4x covers chunk doubling and alignment. */
static size_t decode_budget(size_t len)
{
    return 4 * len + ((size_t)1 << 20);
}

ProtobufCMessage *rr_decode(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb,
                            rr_arena *arena, const rr_wire_limit *lim, const char *name,
                            rr_problem *p)
{
    if (!arena) {
        rr_problem_set(p, RR_FAIL_OVERLOADED, "out of memory decoding a %s", name);
        return NULL;
    }
    grpc_byte_buffer_reader r;
    if (!bb || !grpc_byte_buffer_reader_init(&r, bb)) {
        rr_problem_set(p, RR_FAIL_MALFORMED, "malformed %s", name);
        return NULL;
    }
    /* One slice (the usual case): decode in place. Several: gather them into the arena
     * rather than into readall's fresh slice. buffer_out is the decompressed buffer. */
    size_t len = grpc_byte_buffer_length(r.buffer_out);
    const uint8_t *data = NULL;
    grpc_slice *sl;
    if (grpc_byte_buffer_reader_peek(&r, &sl) && GRPC_SLICE_LENGTH(*sl) == len) {
        data = GRPC_SLICE_START_PTR(*sl);
    } else {
        uint8_t *copy = rr_arena_alloc(arena, len);
        grpc_byte_buffer_reader_destroy(&r);
        if (!copy || !grpc_byte_buffer_reader_init(&r, bb)) {
            rr_problem_set(p, RR_FAIL_OVERLOADED, "out of memory receiving a %s", name);
            return NULL;
        }
        size_t at = 0;
        while (at < len && grpc_byte_buffer_reader_peek(&r, &sl)) {
            size_t n = GRPC_SLICE_LENGTH(*sl) < len - at ? GRPC_SLICE_LENGTH(*sl) : len - at;
            memcpy(copy + at, GRPC_SLICE_START_PTR(*sl), n);
            at += n;
        }
        data = at == len ? copy : NULL;
    }
    ProtobufCMessage *m = NULL;
    uint64_t count = 0;
    if (!data) {
        rr_problem_set(p, RR_FAIL_MALFORMED, "malformed %s", name);
    } else if (lim && rr_wire_count(data, len, lim->path, lim->depth, &count) < 0) {
        rr_problem_set(p, RR_FAIL_MALFORMED, "malformed %s", name);
    } else if (lim && count > lim->max) {
        rr_problem_set(p, RR_FAIL_TOO_MANY, "%llu %s, over the limit of %llu (--max-docs)",
                       (unsigned long long)count, lim->what, (unsigned long long)lim->max);
    } else {
        rr_arena_set_limit(arena, rr_arena_held(arena) + decode_budget(len));
        ProtobufCAllocator alloc = {arena_alloc, arena_nofree, arena};
        m = protobuf_c_message_unpack(d, &alloc, len, data);
        if (!m && arena->over)
            rr_problem_set(p, RR_FAIL_TOO_BIG,
                           "a %s of %zu bytes needs more than %zu bytes to "
                           "decode",
                           name, len, decode_budget(len));
        else if (!m)
            rr_problem_set(p, RR_FAIL_MALFORMED, "malformed %s", name);
        rr_arena_set_limit(arena, 0);
    }
    grpc_byte_buffer_reader_destroy(&r);
    return m;
}

uint64_t rr_call_deadline_ns(const rr_call *c)
{
    gpr_timespec d = c->method == RR_M_GENERIC ? c->details.deadline : c->deadline;
    if (gpr_time_cmp(d, gpr_inf_future(d.clock_type)) == 0) return 0;
    gpr_timespec left = gpr_time_sub(d, gpr_now(d.clock_type)); /* same clock (fact 10) */
    int64_t ns = (int64_t)left.tv_sec * 1000000000 + left.tv_nsec;
    uint64_t now = rr_now_ns();
    return ns <= 0 ? (now > 0 ? now : 1) : now + (uint64_t)ns;
}

/* A failed start_batch poisons the call (fact 7): cancel it with the status instead. */
static void batch_failed(rr_call *c, grpc_call_error e, const char *what)
{
    gpr_log(GPR_ERROR, "rerankd: %s: grpc_call_start_batch failed: %s", what,
            grpc_call_error_to_string(e));
    grpc_call_cancel_with_status(c->call, GRPC_STATUS_INTERNAL, "rerankd: internal batch error",
                                 NULL);
    c->dead = 1;
}

/* Under c->mu: starts the next SEND batch if none is in flight. */
static void pump(rr_call *c)
{
    if (c->send_in_flight || c->status_started) return;
    if (!c->out_n && !c->status_pending) return;
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    int n = 0, with_status = 0;
    grpc_byte_buffer *msg = NULL;
    if (!c->sent_md) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        n++;
    }
    if (c->out_n) {
        msg = c->outq[c->out_head];
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = msg;
        n++;
    }
    grpc_slice details = grpc_empty_slice();
    if (c->status_pending && c->out_n <= 1) {
        details = grpc_slice_from_copied_string(c->status_msg);
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = c->status_code;
        ops[n].data.send_status_from_server.status_details = &details;
        n++;
        with_status = 1;
    }
    rr_call_ref(c);
    RR_TSAN_RELEASE(&c->t_send);
    grpc_call_error e = grpc_call_start_batch(c->call, ops, (size_t)n, &c->t_send, NULL);
    grpc_slice_unref(details); /* copied by start_batch */
    if (e != GRPC_CALL_OK) {
        batch_failed(c, e, "send");
        rr_call_unref(c);
        c->status_started = 1; /* nothing more can be sent on this call */
        return;
    }
    c->sent_md = 1;
    c->send_in_flight = 1;
    if (msg) {
        c->sending = msg;
        c->out_head = (c->out_head + 1) % RR_OUTQ;
        c->out_n--;
    }
    if (with_status) {
        c->status_started = 1;
        c->t_status = rr_now_ns();
    }
}

static void on_send(rr_tag *t, int ok)
{
    rr_call *c = CALL_OF(t, t_send);
    pthread_mutex_lock(&c->mu);
    if (c->sending) grpc_byte_buffer_destroy(c->sending);
    c->sending = NULL;
    c->send_in_flight = 0;
    if (!ok) c->dead = 1;
    pump(c);
    if (c->on_sent) c->on_sent(c);
    pthread_mutex_unlock(&c->mu);
    rr_call_unref(c);
}

int rr_call_send(rr_call *c, grpc_byte_buffer *bb)
{
    if (!bb) {
        rr_call_finish(c, GRPC_STATUS_INTERNAL, "out of memory building the response");
        return 0;
    }
    if (c->status_pending || c->status_started || c->out_n == RR_OUTQ) {
        grpc_byte_buffer_destroy(bb);
        if (!c->status_pending && !c->status_started)
            rr_call_finish(c, GRPC_STATUS_INTERNAL, "output queue overflow");
        return 0;
    }
    c->outq[(c->out_head + c->out_n) % RR_OUTQ] = bb;
    c->out_n++;
    pump(c);
    return 1;
}

void rr_call_finish(rr_call *c, grpc_status_code code, const char *fmt, ...)
{
    if (c->status_pending || c->status_started) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->status_msg, sizeof c->status_msg, fmt, ap);
    va_end(ap);
    c->status_code = code;
    c->status_pending = 1;
    if (c->req) atomic_store(&c->req->cancelled, 1);
    pump(c);
}

grpc_status_code rr_grpc_code(rr_fail f)
{
    /* TEI (router/src/grpc/server.rs): Validation and Empty → INVALID_ARGUMENT, Overloaded →
     * RESOURCE_EXHAUSTED, Unhealthy → UNAVAILABLE, Backend and Tokenizer →
     * FAILED_PRECONDITION. A request that can never succeed (too many documents, too long,
     * too big to decode) is INVALID_ARGUMENT: retry policies retry RESOURCE_EXHAUSTED. */
    static const grpc_status_code code[RR_FAIL_COUNT] = {
        [RR_FAIL_NONE] = GRPC_STATUS_OK,
        [RR_FAIL_MALFORMED] = GRPC_STATUS_INVALID_ARGUMENT,
        [RR_FAIL_INVALID] = GRPC_STATUS_INVALID_ARGUMENT,
        [RR_FAIL_EMPTY] = GRPC_STATUS_INVALID_ARGUMENT,
        [RR_FAIL_TOO_MANY] = GRPC_STATUS_INVALID_ARGUMENT,
        [RR_FAIL_TOO_LONG] = GRPC_STATUS_INVALID_ARGUMENT,
        [RR_FAIL_TOO_BIG] = GRPC_STATUS_INVALID_ARGUMENT,
        [RR_FAIL_OVERLOADED] = GRPC_STATUS_RESOURCE_EXHAUSTED,
        [RR_FAIL_UNAVAILABLE] = GRPC_STATUS_UNAVAILABLE,
        [RR_FAIL_DEADLINE] = GRPC_STATUS_DEADLINE_EXCEEDED,
        [RR_FAIL_CANCELLED] = GRPC_STATUS_CANCELLED,
        [RR_FAIL_TOKENIZER] = GRPC_STATUS_FAILED_PRECONDITION,
        [RR_FAIL_BACKEND] = GRPC_STATUS_FAILED_PRECONDITION,
        [RR_FAIL_INTERNAL] = GRPC_STATUS_INTERNAL,
    };
    return (unsigned)f < RR_FAIL_COUNT ? code[f] : GRPC_STATUS_INTERNAL;
}

void rr_call_fail(rr_call *c, const rr_problem *p)
{
    rr_call_finish(c, rr_grpc_code(p->fail), "%s", p->msg);
}

int rr_call_ready(rr_call *c)
{
    rr_problem p;
    if (rr_front_ready(c->srv, &p)) return 1;
    rr_call_fail(c, &p);
    return 0;
}

void rr_call_submit(rr_call *c, rr_sched_req *r, void (*done)(rr_sched_req *))
{
    c->req = r;
    rr_call_ref(c); /* held by the scheduler until done */
    rr_front_submit(c->srv, r, done, c);
}

int rr_call_finished(const rr_call *c)
{
    return c->status_pending || c->status_started || c->dead;
}

static void on_recv(rr_tag *t, int ok)
{
    rr_call *c = CALL_OF(t, t_recv);
    pthread_mutex_lock(&c->mu);
    c->recv_in_flight = 0;
    note_big(c);
    if (c->on_recv) c->on_recv(c, ok);
    pthread_mutex_unlock(&c->mu);
    rr_call_unref(c);
}

int rr_call_recv(rr_call *c)
{
    if (c->recv_in_flight || c->read_done || c->dead || c->status_started) return 0;
    if (c->payload) {
        grpc_byte_buffer_destroy(c->payload);
        c->payload = NULL;
    }
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->payload;
    rr_call_ref(c);
    RR_TSAN_RELEASE(&c->t_recv);
    grpc_call_error e = grpc_call_start_batch(c->call, &op, 1, &c->t_recv, NULL);
    if (e != GRPC_CALL_OK) {
        batch_failed(c, e, "recv");
        rr_call_unref(c);
        return 0;
    }
    c->recv_in_flight = 1;
    c->recv_paused = 0;
    return 1;
}

static void on_close(rr_tag *t, int ok)
{
    rr_call *c = CALL_OF(t, t_close);
    pthread_mutex_lock(&c->mu);
    c->closed = 1;
    if (c->cancelled) {
        c->dead = 1;
        if (c->req) atomic_store(&c->req->cancelled, 1); /* dropped before compute */
    }
    if (c->on_closed) c->on_closed(c);
    pthread_mutex_unlock(&c->mu);
    rr_call_unref(c);
}

/* Starts RECV_CLOSE_ON_SERVER (at call start). */
static int watch_close(rr_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    rr_call_ref(c);
    RR_TSAN_RELEASE(&c->t_close);
    grpc_call_error e = grpc_call_start_batch(c->call, &op, 1, &c->t_close, NULL);
    if (e != GRPC_CALL_OK) {
        batch_failed(c, e, "recv close");
        rr_call_unref(c);
        return 0;
    }
    return 1;
}

void rr_svc_unimplemented(rr_call *c)
{
    char *path = grpc_slice_to_c_string(c->details.method);
    rr_call_finish(c, GRPC_STATUS_UNIMPLEMENTED, "method %s is not implemented by rerankd", path);
    gpr_free(path);
}

/* The call's `authorization` metadata against the API key (edge/auth.h). */
static int authorized(rr_call *c)
{
    const char *v = NULL;
    size_t n = 0;
    for (size_t i = 0; i < c->md.count; i++)
        if (grpc_slice_str_cmp(c->md.metadata[i].key, "authorization") == 0) {
            v = (const char *)GRPC_SLICE_START_PTR(c->md.metadata[i].value);
            n = GRPC_SLICE_LENGTH(c->md.metadata[i].value);
            break;
        }
    return rr_auth_check(&c->srv->auth, RR_AUTH_GRPC, v, n);
}

static void on_new(rr_tag *t, int ok)
{
    rr_call *c = CALL_OF(t, t_new);
    if (!ok) { /* server shutting down: the request was never matched (call is NULL) */
        rr_call_unref(c);
        return;
    }
    atomic_fetch_add(&c->g->live_calls, 1);
    c->t_start = rr_now_ns();
    if (!atomic_load(&c->g->shutting_down)) rr_call_arm(c->g, c->method);
    pthread_mutex_lock(&c->mu);
    note_big(c);
    if (watch_close(c)) {
        if (c->g->methods[c->method].keyed && !authorized(c))
            rr_call_finish(c, GRPC_STATUS_UNAUTHENTICATED,
                           "rerankd: missing or wrong API key (authorization: Bearer <key>)");
        else
            c->g->methods[c->method].handler(c);
    }
    pthread_mutex_unlock(&c->mu);
    rr_call_unref(c); /* the armed request's reference */
}

int rr_call_arm(rr_grpc *g, rr_method m)
{
    rr_call *c = rr_free_list_pop(&g->calls[m]);
    if (c)
        memset(c, 0, sizeof *c);
    else if (!(c = rr_calloc(1, sizeof *c)))
        return 0;
    c->g = g;
    c->srv = g->srv;
    c->method = m;
    atomic_init(&c->refs, 1);
    /* Recursive: a service handler running under mu may submit to the scheduler, which
     * completes the request synchronously (and re-enters mu) when it is stopping. */
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&c->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    c->t_new.on_done = on_new;
    c->t_recv.on_done = on_recv;
    c->t_send.on_done = on_send;
    c->t_close.on_done = on_close;
    grpc_metadata_array_init(&c->md);
    grpc_call_error e;
    RR_TSAN_RELEASE(&c->t_new);
    if (m == RR_M_GENERIC) {
        grpc_call_details_init(&c->details);
        e = grpc_server_request_call(g->server, &c->call, &c->details, &c->md, g->cq, g->cq,
                                     &c->t_new);
    } else {
        e = grpc_server_request_registered_call(
            g->server, g->handles[m], &c->call, &c->deadline, &c->md,
            g->methods[m].reads_payload ? &c->payload : NULL, g->cq, g->cq, &c->t_new);
    }
    if (e != GRPC_CALL_OK) {
        gpr_log(GPR_ERROR, "rerankd: arming method %d failed: %s", (int)m,
                grpc_call_error_to_string(e));
        rr_call_unref(c);
        return 0;
    }
    return 1;
}
