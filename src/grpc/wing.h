/*
 * wing.h — rerankd's gRPC wing (src/grpc/): the wing's state, the per-call context with its
 * one-send-at-a-time output queue, the one method table, decoding under limits, and the
 * services. Built on gRPC C-core 1.51 and protobuf-c 1.4.1; the quirks worked around are
 * recorded in shared/reference/grpc-c-core.md (cited as "guide §N" / "fact N").
 *
 * The wing converts between the wire and the front (edge/front.h) and nothing more: limits,
 * validation, ranking and the outcome classes live in the front, and rr_call_fail maps a
 * class to a status code through one table (call.c).
 *
 * Strings: the C code is generated from a variant of rerank.proto and tei.proto whose
 * `string` fields are `bytes` (proto_c_variant.cmake; the wire format is identical), so
 * every text arrives as {len, data} and a U+0000 inside it is a character, not an end.
 */
#ifndef RR_GRPC_WING_H
#define RR_GRPC_WING_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/status.h>
#include <grpc/support/time.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdatomic.h>

#include "edge/edge.h"
#include "edge/front.h"
#include "util/arena.h"
#include "util/hist.h"

/* ThreadSanitizer cannot see gRPC's own synchronization (its locks are not pthread's), so a
 * tag handed to the core is released, and acquired when the CQ hands it back: TSan then
 * knows the CQ thread sees what the thread that armed the tag wrote. No-ops otherwise. */
#if defined(__SANITIZE_THREAD__)
#define RR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RR_TSAN 1
#endif
#endif
#ifdef RR_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define RR_TSAN_RELEASE(p) __tsan_release(p)
#define RR_TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define RR_TSAN_RELEASE(p) ((void)(p))
#define RR_TSAN_ACQUIRE(p) ((void)(p))
#endif

/* A completion-queue tag: the CQ thread calls on_done(tag, ok). */
typedef struct rr_tag {
    void (*on_done)(struct rr_tag *t, int ok);
} rr_tag;

typedef enum rr_method {
    RR_M_RERANK,
    RR_M_RERANK_STREAM,
    RR_M_INFO,
    RR_M_TEI_RERANK,
    RR_M_TEI_RERANK_STREAM,
    RR_M_TEI_INFO,
    RR_M_HEALTH_CHECK,
    RR_M_HEALTH_WATCH,
    RR_M_REFLECT_V1,
    RR_M_REFLECT_V1ALPHA,
    RR_M_COUNT,
    RR_M_GENERIC = RR_M_COUNT, /* any other path: UNIMPLEMENTED */
} rr_method;

typedef struct rr_call rr_call;

/* One row of the method table (methods.c): everything the wing knows of a method. */
typedef struct rr_method_def {
    const char *path;            /* "/rerank.v1.Reranker/Rerank"; "unknown" for RR_M_GENERIC */
    int reads_payload;           /* 1: the core reads the one request message before publishing the
                                  * call (GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, guide §2.4) */
    int armed;                   /* requests kept armed: hot methods more (guide §2.4) */
    void (*handler)(rr_call *c); /* on the CQ thread when a call arrives, under c->mu */
    int keyed; /* 1: needs `authorization: Bearer <key>` when a key is set (rerank.v1, tei.v1) */
} rr_method_def;

/* Indexed by rr_method, RR_M_GENERIC included. server.c hands it to the wing (g->methods),
 * so call.c dispatches without naming a service. */
extern const rr_method_def rr_methods[RR_M_COUNT + 1];

/* gRPC status codes 0 (OK) ... 16 (UNAUTHENTICATED). */
#define RR_N_CODES 17

typedef struct rr_refl_file rr_refl_file;
typedef struct rr_tls rr_tls;

/* A LIFO of reusable objects, each starting with a `void *next` link. LIFO: the object
 * reused is the one most recently warmed, so a steady load reuses the same few. */
typedef struct rr_free_list {
    pthread_mutex_t mu;
    void *head;
    int n, max;
} rr_free_list;

/* An arena in a free list (call.c). */
typedef struct rr_pooled_arena {
    void *next;
    rr_arena a;
} rr_pooled_arena;

typedef struct rr_grpc {
    rr_server *srv;
    const rr_method_def *methods; /* rr_methods */
    grpc_server *server;
    grpc_completion_queue *cq;
    void *handles[RR_M_COUNT];
    int port;    /* bound */
    int started; /* grpc_server_start ran */
    pthread_t threads[8];
    int n_threads;
    atomic_int shutting_down; /* stop re-arming requests */
    atomic_int live_calls;

    /* Health Watch calls (health.c), each holding a reference, under watch_mu. */
    pthread_mutex_t watch_mu;
    rr_call *watchers;

    /* Reflection: the embedded FileDescriptorSet, split per file (reflection.c). */
    int n_files;
    rr_refl_file *files;

    rr_tls *tls; /* NULL: plaintext */

    /* Finished calls by method and status code, and their handling time (arrival → status
     * sent), for /metrics. Relaxed atomics: counted on the CQ threads. */
    atomic_uint_fast64_t rpc_codes[RR_M_COUNT + 1][RR_N_CODES];
    rr_hist rpc_seconds[RR_M_COUNT + 1];

    /* Reuse instead of allocation (call.c): call contexts per method (prefilled at start),
     * decoding arenas, and the two stream services' states. Together they keep a steady
     * load from allocating (tests/server/test_operations.py checks
     * rerankd_heap_allocations_total). Each list is bounded, and so is what an arena keeps
     * across resets, so a burst does not pin its memory. */
    rr_free_list calls[RR_M_COUNT + 1];
    rr_free_list arenas;
    rr_free_list streams[2]; /* rerank.v1 RerankStream, tei.v1 RerankStream states */
} rr_grpc;

/* Per-call context. Lifetime: refs counts outstanding batches, the armed request and jobs
 * in the scheduler; when it reaches zero the context goes back to its method's free list
 * (guide §3) and its arena to the wing's. */
struct rr_call {
    void *next;      /* free-list link */
    rr_arena *arena; /* from the wing's free list on first use (rr_call_arena) */
    rr_grpc *g;
    rr_server *srv; /* g->srv */
    rr_method method;
    atomic_int refs;
    pthread_mutex_t mu; /* serializes start_batch and the state below (guide §5.2) */

    grpc_call *call;
    gpr_timespec deadline; /* GPR_CLOCK_MONOTONIC (fact 10) */
    grpc_metadata_array md;
    grpc_call_details details; /* generic calls only */
    grpc_byte_buffer *payload; /* initial payload (unary) or RECV_MESSAGE target */
    int cancelled;             /* RECV_CLOSE_ON_SERVER target */
    uint64_t t_start;          /* rr_now_ns at arrival */
    uint64_t t_status;         /* rr_now_ns when the status went out (0: not yet) */

    rr_tag t_new, t_recv, t_send, t_close;

    /* Output: messages wait here; one SEND batch in flight at a time (guide §5.1). */
#define RR_OUTQ 8
    grpc_byte_buffer *outq[RR_OUTQ];
    int out_head, out_n;
    int send_in_flight;
    int sent_md;
    int status_pending, status_started;
    grpc_status_code status_code;
    char status_msg[RR_ERROR_MSG_CAP];

    grpc_byte_buffer *sending; /* the message of the SEND batch in flight */
    int recv_in_flight, recv_paused, read_done, closed, dead;
    int big; /* received a message of 1 MiB or more (call.c trims the heap after) */

    rr_sched_req *req; /* in the scheduler, when non-NULL */
    void *svc;         /* service state (stream state, unpacked request) */
    void (*svc_free)(rr_call *c);
    void (*on_recv)(rr_call *c, int ok); /* RECV_MESSAGE completed, under mu */
    void (*on_sent)(rr_call *c);         /* after each SEND completes, under mu */
    void (*on_closed)(rr_call *c);       /* RECV_CLOSE completed, under mu */
    rr_call *watch_next;
};

/* ---- server.c: the wing's life (called by the composition root) ---------------------- */

/* grpc_init, TLS, reflection, pools; creates, binds and starts the server on cfg.host and
 * cfg.port, starts the CQ threads and arms every method; registers the wing's metrics and
 * health listener. 0 with a message on stderr on failure (*out is then still valid for
 * rr_grpc_free). */
int rr_grpc_start(rr_server *srv, rr_grpc **out);
/* No new calls; calls in progress have `grace` seconds, then are cancelled. Returns when
 * every call has ended. */
void rr_grpc_drain(rr_grpc *g, double grace);
/* After the scheduler is freed: drains the CQ, destroys the server, grpc_shutdown. NULL ok. */
void rr_grpc_free(rr_grpc *g);

/* ---- call.c ---------------------------------------------------------------------------- */

void rr_call_ref(rr_call *c);
void rr_call_unref(rr_call *c);
/* Under c->mu: queue a message (takes the buffer) / set the final status, then send what can
 * be sent. Returns 0 when the queue is full (the buffer is destroyed and the call failed). */
int rr_call_send(rr_call *c, grpc_byte_buffer *bb);
void rr_call_finish(rr_call *c, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Under c->mu: finishes the call with the status of a front problem (the one table). */
void rr_call_fail(rr_call *c, const rr_problem *p);
/* Under c->mu: 1 when the model is loaded, else the call is finished UNAVAILABLE. */
int rr_call_ready(rr_call *c);
/* Under c->mu: submits an admitted request for the call; done(r) runs with r->user == c
 * and must drop the reference this takes (rr_call_unref). */
void rr_call_submit(rr_call *c, rr_sched_req *r, void (*done)(rr_sched_req *));
/* The status code of a class: TEI's mapping where TEI has the case (README "Errors"). */
grpc_status_code rr_grpc_code(rr_fail f);
/* Under c->mu: start RECV_MESSAGE into c->payload, completing on c->t_recv. */
int rr_call_recv(rr_call *c);
/* Arm one request for `method` on the wing's CQ. */
int rr_call_arm(rr_grpc *g, rr_method m);
/* Serialize a protobuf-c message into a byte buffer. */
grpc_byte_buffer *rr_pack(const ProtobufCMessage *msg);

/* How many of a repeated field a message may carry, counted on the wire before decoding:
 * field path[depth-1] inside the submessage(s) path[0 .. depth-1) (wire.c). */
typedef struct rr_wire_limit {
    const uint32_t *path;
    int depth;
    uint64_t max;
    const char *what; /* "documents", for the message */
} rr_wire_limit;

/* Decodes bb into `arena` (the message dies with the arena's next reset): counts `lim`'s
 * field on the wire first (TOO_MANY, naming --max-docs, before any decoding), then unpacks
 * with the arena capped at 4 × the message + 1 MiB (TOO_BIG: a message of a million tiny
 * fields cannot cost more memory than that). NULL with *p: MALFORMED, TOO_MANY, TOO_BIG,
 * OVERLOADED (no arena). `name` names the message type in messages. */
ProtobufCMessage *rr_decode(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb,
                            rr_arena *arena, const rr_wire_limit *lim, const char *name,
                            rr_problem *p);
/* The call's arena (taken from the wing's free list on first use); NULL without memory.
 * Everything in it lives until the call ends. */
rr_arena *rr_call_arena(rr_call *c);
/* An arena from the wing's free list / back to it (reset). */
rr_arena *rr_arena_get(rr_grpc *g);
void rr_arena_put(rr_grpc *g, rr_arena *a);
void rr_free_list_init(rr_free_list *l, int max);
void *rr_free_list_pop(rr_free_list *l);
int rr_free_list_push(rr_free_list *l, void *obj); /* 0 when full: the caller frees obj */
/* Makes the call-context and arena lists and prefills them / empties them at exit. */
int rr_call_pools_init(rr_grpc *g);
void rr_call_pools_free(rr_grpc *g);
/* Deadline as an rr_now_ns() timestamp; 0 for none. */
uint64_t rr_call_deadline_ns(const rr_call *c);
/* Under c->mu: the status is set, sent, or the call is dead: nothing more to do. */
int rr_call_finished(const rr_call *c);

/* ---- wire.c ---------------------------------------------------------------------------- */

/* Reads a base-128 varint at *pos; 0 when truncated or longer than 10 bytes. */
int rr_wire_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *v);
/* Counts field path[depth-1] as described at rr_wire_limit. -1 when the bytes are not a
 * well-formed protobuf message (bad tag, truncated field, group wire types). */
int rr_wire_count(const uint8_t *p, size_t n, const uint32_t *path, int depth, uint64_t *count);

/* ---- the services (entry points are in rr_methods) --------------------------------------- */

void rr_svc_rerank(rr_call *c);
void rr_svc_rerank_stream(rr_call *c);
void rr_svc_info(rr_call *c);
void rr_svc_tei_rerank(rr_call *c);
void rr_svc_tei_rerank_stream(rr_call *c);
void rr_svc_tei_info(rr_call *c);
void rr_svc_health_check(rr_call *c);
void rr_svc_health_watch(rr_call *c);
void rr_svc_reflect(rr_call *c);
void rr_svc_unimplemented(rr_call *c);

/* The intake of each decoded message, without a call (the services and the fuzzers use
 * them): a request admitted by the front with its documents set, or NULL / 0 with *p. */
struct Rerank__V1__RerankRequest;
struct Rerank__V1__StreamOpen;
struct Rerank__V1__StreamBatch;
struct Tei__V1__RerankRequest;
struct Tei__V1__RerankStreamRequest;
rr_sched_req *rr_rerank_admit(rr_server *srv, const struct Rerank__V1__RerankRequest *m,
                              uint64_t deadline_ns, rr_problem *p);
/* A stream's open message → the template of its batches (max_length, query checked). */
int rr_rerank_open(rr_server *srv, const struct Rerank__V1__StreamOpen *o, rr_intake *tmpl,
                   rr_problem *p);
rr_sched_req *rr_rerank_batch_admit(rr_server *srv, const rr_intake *tmpl,
                                    const struct Rerank__V1__StreamBatch *b, uint64_t deadline_ns,
                                    rr_problem *p);
rr_sched_req *rr_tei_admit(rr_server *srv, const struct Tei__V1__RerankRequest *m,
                           uint64_t deadline_ns, rr_problem *p);
/* One TEI stream message's own checks (direction, query) and its RR_PAIR_* flags. */
int rr_tei_stream_message(const struct Tei__V1__RerankStreamRequest *m, int index, uint8_t *flags,
                          rr_problem *p);

/* Each stream service prefills / empties its list of stream states (g->streams[0], [1]). */
int rr_svc_rerank_init(rr_grpc *g);
void rr_svc_rerank_free(rr_grpc *g);
int rr_svc_tei_init(rr_grpc *g);
void rr_svc_tei_free(rr_grpc *g);

/* health.c: the edge's health listener (sends every change to the watchers). */
void rr_grpc_health_changed(void *g, rr_health h);
/* reflection.c */
int rr_reflection_init(rr_grpc *g);
void rr_reflection_free(rr_grpc *g);
/* tls.c: credentials from PEM files, re-read when they change (see tls.c). */
rr_tls *rr_tls_init(const char *cert, const char *key, const char *client_ca, rr_error *err);
grpc_server_credentials *rr_tls_credentials(rr_tls *t);
void rr_tls_free(rr_tls *t);

/* svc_rerank.c: a protobuf `bytes` as a front text, and a C string as a `bytes`. */
static inline rr_text rr_bin_text(ProtobufCBinaryData b)
{
    return (rr_text){(const char *)b.data, b.len};
}
ProtobufCBinaryData rr_bin(const char *s);

#endif /* RR_GRPC_WING_H */
