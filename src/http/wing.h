/*
 * wing.h — rerankd's HTTP wing (src/http/): one libmicrohttpd daemon on --http-port with
 * GET /metrics, /health, /info and the JSON reranking API (rerank.c). Like the gRPC wing it
 * converts between its wire format and the front (edge/front.h) and nothing more.
 *
 * Hostile clients: the daemon polls with epoll on a small thread pool, holds up to
 * --http-max-connections connections (--http-max-connections-per-ip per address), and
 * closes a connection idle for --http-idle-timeout seconds, so thousands of idle or slow
 * connections cost file descriptors, not the health probe. A reranking request's
 * connection is suspended while it is scored and watched (epoll, EPOLLRDHUP): a client
 * that goes away cancels its request before its compute.
 */
#ifndef RR_HTTP_WING_H
#define RR_HTTP_WING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "edge/edge.h"
#include "edge/front.h"
#include "util/hist.h"

struct MHD_Daemon;
struct MHD_Connection;

/* Reranking routes: /rerank (TEI's shape) and /v1|v2/rerank (Cohere/Jina shape). */
#define RR_HTTP_ROUTES 3
/* Statuses counted per route: 200 400 401 413 422 424 429 499 500 503, and other. */
#define RR_HTTP_CODES 11

typedef struct rr_http_req rr_http_req;

/* A suspended request's entry in the disconnect watcher: the epoll event carries
 * (generation << 32 | slot), so an event for a request that already ended finds another
 * generation and is ignored. */
typedef struct rr_http_slot {
    rr_sched_req *r; /* the watched request; NULL when free */
    int fd;
    uint32_t gen;
    int next_free;
} rr_http_slot;

typedef struct rr_http {
    rr_server *srv;
    struct MHD_Daemon *d;
    int port; /* bound */

    atomic_uint_fast64_t codes[RR_HTTP_ROUTES][RR_HTTP_CODES];
    rr_hist seconds[RR_HTTP_ROUTES];

    /* The disconnect watcher (watch.c). */
    int epfd, wake_fd;
    pthread_t watcher;
    int watcher_started;
    pthread_mutex_t watch_mu;
    rr_http_slot *slots;
    int n_slots, free_slot;
} rr_http;

/* http.c: starts the listener on cfg.host:cfg.http_port (before the model loads: probes
 * see 503 "loading") and registers the wing's metrics. 0 with a message on stderr when it
 * cannot listen (*out is then still valid for rr_http_stop). */
int rr_http_start(rr_server *srv, rr_http **out);
/* Stops the daemon (after the scheduler, whose shutdown answers suspended requests) and
 * frees the wing. NULL ok. */
void rr_http_stop(rr_http *h);

/* watch.c: start (n_slots requests at most) and stop the watcher; watch a suspended
 * request's socket (its request r is cancelled if the peer hangs up) / stop watching it,
 * before the request is released. Watch returns 0 when the socket cannot be watched (the
 * request still runs; only early cancellation is lost). */
int rr_http_watch_start(rr_http *h, int n_slots);
void rr_http_watch_stop(rr_http *h);
int rr_http_watch(rr_http *h, rr_sched_req *r, int fd, int *slot);
void rr_http_unwatch(rr_http *h, int slot);

/* rerank.c: whether the request's Authorization header carries the API key (1 also when no
 * key is set; a refusal is counted), and the body of the 401 that refuses it: TEI's error
 * shape, nothing about the key. */
int rr_http_authorized(rr_http *h, struct MHD_Connection *conn);
#define RR_HTTP_UNAUTHORIZED "{\"error\":\"unauthorized\",\"error_type\":\"Unauthorized\"}"

/* rerank.c: the reranking routes. rr_http_rerank_route: 0 /rerank, 1 /v1|v2/rerank, -1
 * other. rr_http_rerank: the MHD access handler for them; rr_http_rerank_free: the
 * per-connection cleanup (MHD_OPTION_NOTIFY_COMPLETED). */
int rr_http_rerank_route(const char *url);
int rr_http_rerank(rr_http *h, struct MHD_Connection *conn, int route, const char *upload_data,
                   size_t *upload_data_size, void **con_cls);
void rr_http_rerank_free(void *con_cls);
/* rerank.c: what a reranking request asks of its answer. */
typedef enum { RR_HTTP_TEI, RR_HTTP_COHERE } rr_http_shape;
typedef struct rr_http_opts {
    rr_http_shape shape; /* /rerank with "texts": TEI's; otherwise Cohere/Jina's */
    int raw_scores, return_text;
    uint64_t top_n; /* 0: all */
} rr_http_opts;

/* rerank.c: a body for `route` (0 /rerank, 1 /v1/rerank, 2 /v2/rerank) measured (rr_json_scan:
 * depth, an array over --max-docs, the number of values), parsed (jansson) and admitted by the
 * front with every document set; NULL with *p. *json is the parsed body the texts point
 * into (the caller's to json_decref after done, also on failure). */
typedef struct json_t json_t;
rr_sched_req *rr_http_admit(rr_server *srv, int route, const char *body, size_t len,
                            uint64_t deadline_ns, json_t **json, rr_http_opts *o, rr_problem *p);

/* rerank.c: the counters by route and status (init) and their /metrics families. */
void rr_http_rerank_init(rr_http *h);
void rr_http_rerank_metrics(rr_strbuf *b, void *ctx);

/* json.c: JSON text helpers. A string literal of bytes s[0..n) (quotes included): control
 * characters and U+0000 escaped, invalid UTF-8 replaced by U+FFFD. */
void rr_json_put_string(rr_strbuf *o, const char *s, size_t n);

/* What a body holds before it is parsed, from one pass over its bytes: the most elements
 * of an array directly under the top-level object (and that key), nesting depth and the
 * number of values. */
typedef struct rr_json_shape {
    uint64_t values;    /* every value, containers included */
    int depth;          /* deepest nesting */
    uint64_t top_array; /* elements of the largest array that is a top-level member */
    char top_key[32];   /* its key (truncated), "" when the body has none */
} rr_json_shape;

/* Scans body[0..n) (need not be valid JSON: the parser judges that later). */
void rr_json_scan(const char *body, size_t n, rr_json_shape *s);

#endif /* RR_HTTP_WING_H */
