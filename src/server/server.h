/*
 * server.h — internals shared by the files of rerankd's gRPC edge (src/server/): the
 * server state, the per-call context with its one-send-at-a-time output queue, and the
 * entry points of each service. Built on gRPC C-core 1.51 and protobuf-c 1.4.1; the quirks
 * this code works around are recorded in shared/reference/grpc-c-core.md (cited as
 * "guide §N" / "fact N" below).
 */
#ifndef RR_SERVER_H
#define RR_SERVER_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/status.h>
#include <grpc/support/time.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdatomic.h>

#include "rerank.h"
#include "sched/sched.h"
#include "util/arena.h"
#include "util/hist.h"

#define RR_SERVER_VERSION "0.1.0"

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

typedef struct rr_config {
    const char *model_dir;
    const char *device; /* "auto", "cpu", "cuda:N" */
    const char *host;
    int port;
    int max_batch_tokens;
    int max_docs;
    int max_message_bytes;
    int max_in_flight;
    int threads; /* CPU engine threads; 0 = all */
    int tokenizer_workers;
    int cq_threads;
    double grace_seconds;
    const char *tls_cert, *tls_key, *tls_client_ca; /* PEM files; NULL = plaintext */
    int http_port;                                  /* /metrics, /health, /info; -1 = off */
} rr_config;

typedef enum rr_health {
    RR_HEALTH_SERVING = 1,
    RR_HEALTH_NOT_SERVING = 2,
} rr_health;

typedef struct rr_refl_file rr_refl_file;

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
typedef struct rr_tls rr_tls;
typedef struct rr_http_req rr_http_req;
struct MHD_Daemon;
struct MHD_Connection;

/* HTTP /rerank answers counted by status: 200, 413, 422, 429, 503, other. */
#define RR_HTTP_CODES 6

/* gRPC status codes 0 (OK) ... 16 (UNAUTHENTICATED). */
#define RR_N_CODES 17

typedef struct rr_server {
    rr_config cfg;
    grpc_server *server;
    grpc_completion_queue *cq;
    void *handles[RR_M_COUNT];
    atomic_int shutting_down; /* stop re-arming requests */
    atomic_int live_calls;

    /* Set once the model is loaded (before that, scoring calls get UNAVAILABLE). */
    atomic_int ready;
    rr_model *model;
    const rr_model_info *info;
    rr_engine *engine;
    rr_sched *sched;
    char device_desc[128];

    /* Health: one status for every served service; watchers get every change. */
    pthread_mutex_t health_mu;
    rr_health health;
    struct rr_call *watchers;

    /* Reflection: the embedded FileDescriptorSet, split per file. */
    int n_files;
    rr_refl_file *files;

    rr_tls *tls;             /* NULL: plaintext */
    struct MHD_Daemon *http; /* NULL: no HTTP listener */
    int http_port;           /* bound port */
    atomic_int http_starting; /* HTTP requests between the drain check and submit */
    int stats_off;            /* set under metrics_mu before the scheduler is freed */
    /* HTTP reranking answers per route (/rerank, /v1|v2/rerank) and status, and their time. */
    atomic_uint_fast64_t http_codes[2][RR_HTTP_CODES];
    rr_hist http_seconds[2];

    /* Finished RPCs by method and status code, and their handling time (arrival → status
     * sent), for /metrics. Relaxed atomics: counted on the CQ threads. */
    atomic_uint_fast64_t rpc_codes[RR_M_COUNT + 1][RR_N_CODES];
    rr_hist rpc_seconds[RR_M_COUNT + 1];
    pthread_mutex_t metrics_mu; /* the render buffer */
    char *metrics_buf;
    size_t metrics_cap;

    /* Reuse instead of allocation (call.c): call contexts per method (prefilled at start),
     * decoding arenas, and the two stream services' states. Together they keep a steady
     * load from allocating (tests/server/test_ops.py checks rerankd_heap_allocations_total). */
    rr_free_list calls[RR_M_COUNT + 1];
    rr_free_list arenas;
    rr_free_list streams[2]; /* rerank.v1 RerankStream, tei.v1 RerankStream states */
    double boot_unix; /* wall-clock start, for process_start_time_seconds */
} rr_server;

/* Per-call context. Lifetime: refs counts outstanding batches, the armed request and jobs
 * in the scheduler; when it reaches zero the context goes back to its method's free list
 * (guide §3) and its arena to the server's. */
typedef struct rr_call {
    void *next;      /* free-list link */
    rr_arena *arena; /* from the server's free list on first use (rr_call_arena) */
    rr_server *srv;
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

    rr_sched_req *req; /* in the scheduler, when non-NULL */
    void *svc;         /* service state (stream state, unpacked request) */
    void (*svc_free)(struct rr_call *c);
    void (*on_recv)(struct rr_call *c, int ok); /* RECV_MESSAGE completed, under mu */
    void (*on_sent)(struct rr_call *c);         /* after each SEND completes, under mu */
    void (*on_closed)(struct rr_call *c);       /* RECV_CLOSE completed, under mu */
    struct rr_call *watch_next;
} rr_call;

/* call.c */
void rr_call_ref(rr_call *c);
void rr_call_unref(rr_call *c);
/* Under c->mu: queue a message (takes the buffer) / set the final status, then send what can
 * be sent. Returns 0 when the queue is full (the buffer is destroyed and the call failed). */
int rr_call_send(rr_call *c, grpc_byte_buffer *bb);
void rr_call_finish(rr_call *c, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Under c->mu: start RECV_MESSAGE into c->payload, completing on c->t_recv. */
int rr_call_recv(rr_call *c);
/* Start RECV_CLOSE_ON_SERVER (at call start). */
int rr_call_watch_close(rr_call *c);
/* Arm one request for `method` on the server's CQ. */
int rr_call_arm(rr_server *srv, rr_method m);
/* Serialize a protobuf-c message into a byte buffer. */
grpc_byte_buffer *rr_pack(const ProtobufCMessage *msg);
/* Deserialize into `arena`: the message dies with the arena's next reset (no free). NULL
 * on malformed input, a NULL buffer or arena, or no memory. */
ProtobufCMessage *rr_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb, rr_arena *arena);
/* The call's arena (taken from the server's free list on first use); NULL without memory.
 * Everything in it lives until the call ends. */
rr_arena *rr_call_arena(rr_call *c);
/* An arena from the server's free list / back to it (reset). */
rr_arena *rr_arena_get(rr_server *srv);
void rr_arena_put(rr_server *srv, rr_arena *a);
void rr_free_list_init(rr_free_list *l, int max);
void *rr_free_list_pop(rr_free_list *l);
int rr_free_list_push(rr_free_list *l, void *obj); /* 0 when full: the caller frees obj */
/* Prefills the call-context lists; at exit frees every list (destroy(obj) frees one object
 * of streams[i]). */
int rr_call_pools_init(rr_server *srv);
void rr_call_pools_free(rr_server *srv, void (*destroy_stream[2])(void *));
/* Deadline as an rr_now_ns() timestamp; 0 for none. */
uint64_t rr_call_deadline_ns(const rr_call *c);

/* Service entry points (called on the CQ thread when a call arrives, ok == 1). */
void rr_svc_rerank(rr_call *c);
void rr_svc_rerank_stream(rr_call *c);
void rr_svc_info(rr_call *c);
void rr_svc_tei_rerank(rr_call *c);
void rr_svc_tei_rerank_stream(rr_call *c);
/* Make / free a pooled stream state (rr_call_pools_init / _free). */
void *rr_stream_state_new(void);
void rr_stream_state_destroy(void *st);
void *rr_tei_stream_new(void);
void rr_tei_stream_destroy(void *st);
void rr_svc_tei_info(rr_call *c);
void rr_svc_health_check(rr_call *c);
void rr_svc_health_watch(rr_call *c);
void rr_svc_reflect(rr_call *c);

/* svc_rerank.c: helpers shared with svc_tei.c */
typedef struct rr_rank_item {
    float logit;
    int index;
} rr_rank_item;
/* Fills items[0..n) with (logits[i], i) sorted by logit descending, ties by index. */
void rr_rank_sort(const float *logits, int n, rr_rank_item *items);
/* 0 (and the call finished with UNAVAILABLE) when the model is not loaded yet. */
int rr_svc_ready(rr_call *c);
/* Finishes the call with the status matching a failed scheduler outcome. */
void rr_svc_fail(rr_call *c, rr_sched_outcome outcome, const rr_error *err);
/* Lays out `count` items of `size` bytes at *off (16-byte aligned) in a scratch buffer. */
size_t rr_scratch_take(size_t *off, size_t count, size_t size);

/* main.c: "/rerank.v1.Reranker/Rerank", ...; "unknown" for RR_M_GENERIC. */
const char *rr_method_path(rr_method m);

/* metrics.c: Prometheus text exposition (format 0.0.4) of everything counted, into the
 * server's render buffer (grown once, then reused: scrapes do not allocate either). The
 * caller holds metrics_mu while it uses the text. NULL when out of memory. */
void rr_metrics_init(rr_server *srv);
void rr_metrics_free(rr_server *srv);
const char *rr_metrics_render(rr_server *srv, size_t *len);

/* http.c: the HTTP listener (libmicrohttpd, its own thread) on cfg.host:cfg.http_port:
 * GET /metrics, /health (200 SERVING / 503 otherwise), /info (JSON). 0 with a message on
 * stderr when it cannot listen. */
int rr_http_start(rr_server *srv);
void rr_http_stop(rr_server *srv);

/* http_rerank.c: POST /rerank (TEI's JSON), /v1/rerank and /v2/rerank (Cohere/Jina JSON).
 * route: rr_http_rerank_route(url) (-1: not a reranking route). The MHD access handler for
 * those routes, and the per-connection cleanup (MHD_OPTION_NOTIFY_COMPLETED). */
int rr_http_rerank_route(const char *url);
int rr_http_rerank(rr_server *srv, struct MHD_Connection *conn, int route, const char *upload_data,
                   size_t *upload_data_size, void **con_cls);
void rr_http_rerank_free(void *con_cls);

/* tls.c: credentials from PEM files, re-read when they change (see tls.c). */
rr_tls *rr_tls_init(const char *cert, const char *key, const char *client_ca, rr_error *err);
grpc_server_credentials *rr_tls_credentials(rr_tls *t);
void rr_tls_free(rr_tls *t);

/* health.c */
void rr_health_set(rr_server *srv, rr_health h);
/* reflection.c */
int rr_reflection_init(rr_server *srv);
void rr_reflection_free(rr_server *srv);

#endif /* RR_SERVER_H */
