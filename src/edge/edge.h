/*
 * edge.h — the protocol-neutral state of rerankd's request edge: configuration, the loaded
 * model, engine and scheduler, serving health, the admission gate in front of the
 * scheduler, and /metrics. The gRPC and HTTP wings (src/grpc/, src/http/) hold a pointer to
 * one rr_server and reach the scheduler only through the front (front.h); the composition
 * root (src/rerankd/main.c) creates and tears it down. No gRPC, protobuf-c or
 * libmicrohttpd type appears here.
 */
#ifndef RR_EDGE_H
#define RR_EDGE_H

#include <pthread.h>
#include <stdatomic.h>

#include "edge/auth.h"
#include "rerank.h"
#include "sched/sched.h"
#include "util/strbuf.h"

#define RR_SERVER_VERSION "0.1.0"

typedef struct rr_config {
    const char *model_dir;
    const char *device; /* "auto", "cpu", "cuda:N" */
    const char *dtype;  /* "auto" (f16 on CUDA, f32 on the CPU) or an rr_dtype_parse name */
    const char *host;
    int port;
    int max_batch_tokens;
    int max_docs;
    int max_message_bytes;
    int max_in_flight;
    int threads; /* CPU engine threads; 0 = the CPUs this process may use */
    int tokenizer_workers;
    int cq_threads;
    double grace_seconds;
    const char *tls_cert, *tls_key, *tls_client_ca; /* PEM files; NULL = plaintext */
    int http_port;                                  /* -1 = no HTTP listener */
    int http_max_connections;                       /* open HTTP connections at once */
    int http_max_connections_per_ip;                /* 0 = no per-address limit */
    int http_idle_timeout;      /* s: a connection that has sent no (further) request is closed */
    double http_timeout;        /* s: default deadline of an HTTP reranking request; 0 = none */
    int chunk_default;          /* --long-documents chunk: requests that do not say are chunked */
    int max_chunks_per_doc;     /* windows per document: the default and the most asked */
    int max_chunks_per_request; /* documents × windows per document, at most */
    const char *api_key;        /* --api-key; NULL = none */
    const char *api_key_file;   /* --api-key-file; NULL = none */
    int api_key_protect_ops;    /* /metrics and /info need the key too */
    int admission_control;      /* 1: refuse requests whose deadline cannot be met (admit.h) */
    /* gRPC connection management (C-core channel arguments), in ms; 0 = C-core's default
     * (keepalive ping after 2 h, 20 s to answer; connections never aged). */
    int grpc_keepalive_time_ms, grpc_keepalive_timeout_ms;
    int grpc_max_connection_age_ms, grpc_max_connection_age_grace_ms;
} rr_config;

typedef enum rr_health {
    RR_HEALTH_SERVING = 1,
    RR_HEALTH_NOT_SERVING = 2,
} rr_health;

/* A wing's part of /metrics, appended after the neutral families (see metrics.c). */
typedef void (*rr_metrics_fn)(rr_strbuf *b, void *ctx);

#define RR_MAX_WINGS 2

typedef struct rr_server {
    rr_config cfg;

    /* Published once the model is loaded (before that, scoring requests are UNAVAILABLE);
     * never cleared. model/info/engine/sched/device_desc are immutable once ready is set. */
    atomic_int ready;
    rr_model *model;
    const rr_model_info *info;
    rr_engine *engine;
    rr_sched *sched;
    char device_desc[128];
    const char *tls_mode; /* "off", "server", "mutual": for rerankd_info */

    /* Draining: set on SIGTERM. The gRPC core then refuses new calls by itself and the
     * HTTP wing refuses new requests (503); work already admitted finishes. */
    atomic_int draining;

    /* The admission gate: every front request holds it from its check to its submit, so
     * the scheduler is never freed under a submit (rr_edge_close_gate). */
    atomic_int admitting;
    atomic_int gate_closed;

    /* Health: one status for every service; on_health (the gRPC wing's Watch) hears of each
     * change, outside health_mu. */
    pthread_mutex_t health_mu;
    rr_health health;
    void (*on_health)(void *ctx, rr_health h);
    void *on_health_ctx;

    /* /metrics: one render buffer (grown once, then reused: scrapes do not allocate), the
     * wings' families, and stats_off (set before the scheduler is freed). */
    pthread_mutex_t metrics_mu;
    char *metrics_buf;
    size_t metrics_cap;
    int stats_off;
    struct {
        rr_metrics_fn fn;
        void *ctx;
    } wings[RR_MAX_WINGS];
    int n_wings;
    double boot_unix; /* wall-clock start, for process_start_time_seconds */

    /* The API key (auth.h): set up by the composition root after rr_edge_init, checked by
     * the wings; refusals are counted here and rendered by metrics.c. */
    rr_auth auth;
} rr_server;

/* Zeroes srv, takes cfg, makes the locks; health NOT_SERVING. */
void rr_edge_init(rr_server *srv, const rr_config *cfg);
/* Frees what rr_edge_init and the metrics made (not the model, engine or scheduler). */
void rr_edge_free(rr_server *srv);

/* Health: the current status / a change (tells on_health when it changed). */
rr_health rr_health_get(rr_server *srv);
void rr_health_set(rr_server *srv, rr_health h);

/* Closes the admission gate and waits until no request is between its check and its
 * submit; afterwards every new request is UNAVAILABLE and the scheduler may be freed. */
void rr_edge_close_gate(rr_server *srv);

/* metrics.c: Prometheus text exposition (format 0.0.4) of everything counted, into the
 * server's render buffer; the caller holds metrics_mu while it uses the text. NULL when out
 * of memory. rr_metrics_add: a wing's families (at start-up, before serving). */
const char *rr_metrics_render(rr_server *srv, size_t *len);
void rr_metrics_add(rr_server *srv, rr_metrics_fn fn, void *ctx);
/* Shared by the wings' families: a histogram's series ("" or `key="value"` labels) and
 * HELP/TYPE lines. */
void rr_metrics_header(rr_strbuf *b, const char *name, const char *type, const char *help);
void rr_metrics_hist(rr_strbuf *b, const char *name, const char *labels, const rr_hist *h);

#endif /* RR_EDGE_H */
