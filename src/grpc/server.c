/*
 * server.c — the gRPC wing's life: grpc_init, TLS and reflection set-up, server creation
 * with the method table, the completion-queue threads, and the two halves of the shutdown
 * sequence (guide §7): drain (no new calls, a grace period, then cancel) before the
 * scheduler stops, and destruction after it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <grpc/support/log.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "grpc/wing.h"
#include "util/strbuf.h"
#include "util/util.h"

/* Stream states kept per kind (each keeps up to about 2 MiB, see the services). */
#define STREAMS_KEPT 32

static void *cq_main(void *arg)
{
    rr_grpc *g = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type != GRPC_OP_COMPLETE) continue;
        RR_TSAN_ACQUIRE(ev.tag);
        ((rr_tag *)ev.tag)->on_done(ev.tag, ev.success);
    }
    return NULL;
}

static const char *const code_names[RR_N_CODES] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

/* The wing's /metrics families (rr_metrics_add). */
static void grpc_metrics(rr_strbuf *b, void *ctx)
{
    rr_grpc *g = ctx;
    rr_metrics_header(b, "rerankd_grpc_live_calls", "gauge",
                      "gRPC calls in progress (streams included).");
    rr_strbuf_printf(b, "rerankd_grpc_live_calls %d\n", atomic_load(&g->live_calls));
    rr_metrics_header(b, "rerankd_grpc_requests_total", "counter",
                      "Finished gRPC calls by method and status code (CANCELLED: the client "
                      "went away).");
    for (int m = 0; m <= RR_M_COUNT; m++)
        for (int c = 0; c < RR_N_CODES; c++) {
            uint64_t n = atomic_load_explicit(&g->rpc_codes[m][c], memory_order_relaxed);
            if (n || c == 0)
                rr_strbuf_printf(b, "rerankd_grpc_requests_total{method=\"%s\",code=\"%s\"} %llu\n",
                                 rr_methods[m].path, code_names[c], (unsigned long long)n);
        }
    rr_metrics_header(b, "rerankd_grpc_handling_seconds", "histogram",
                      "gRPC call handling time, arrival to status sent (a stream's whole life), "
                      "by method.");
    for (int m = 0; m <= RR_M_COUNT; m++) {
        char labels[160];
        snprintf(labels, sizeof labels, "method=\"%s\"", rr_methods[m].path);
        rr_metrics_hist(b, "rerankd_grpc_handling_seconds", labels, &g->rpc_seconds[m]);
    }
}

int rr_grpc_start(rr_server *srv, rr_grpc **out)
{
    const rr_config *cfg = &srv->cfg;
    rr_error err = {0};
    rr_grpc *g = rr_calloc(1, sizeof *g);
    *out = g;
    if (!g) {
        fprintf(stderr, "rerankd: out of memory for the gRPC server\n");
        return 0;
    }
    g->srv = srv;
    g->methods = rr_methods;
    pthread_mutex_init(&g->watch_mu, NULL);
    rr_free_list_init(&g->streams[0], STREAMS_KEPT);
    rr_free_list_init(&g->streams[1], STREAMS_KEPT);
    for (int m = 0; m <= RR_M_COUNT; m++) {
        for (int c = 0; c < RR_N_CODES; c++)
            atomic_init(&g->rpc_codes[m][c], 0);
        rr_hist_init(&g->rpc_seconds[m], rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    }
    if (!rr_call_pools_init(g) || !rr_svc_rerank_init(g) || !rr_svc_tei_init(g)) {
        fprintf(stderr, "rerankd: out of memory for the call contexts\n");
        return 0;
    }
    if (!rr_reflection_init(g)) {
        fprintf(stderr, "rerankd: the embedded descriptor set is malformed\n");
        return 0;
    }
    if (cfg->tls_cert &&
        !(g->tls = rr_tls_init(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, &err))) {
        fprintf(stderr, "rerankd: %s: %s\n", rr_status_name(err.status), err.msg);
        return 0;
    }
    srv->tls_mode = g->tls ? (cfg->tls_client_ca ? "mutual" : "server") : "off";

    grpc_init();
    /* Fixed arguments, then the connection-management flags that were given. */
    grpc_arg args[8];
    int n_args = 0;
    memset(args, 0, sizeof args);
    const struct {
        const char *key;
        int value;
    } want[8] = {
        {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, cfg->max_message_bytes},
        {GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, 64 << 20},
        {GRPC_ARG_ALLOW_REUSEPORT, 0}, /* a port clash must fail (fact 3) */
        {GRPC_ARG_MAX_CONCURRENT_STREAMS, 1024},
        {GRPC_ARG_KEEPALIVE_TIME_MS, cfg->grpc_keepalive_time_ms},
        {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, cfg->grpc_keepalive_timeout_ms},
        /* GOAWAY after the age (C-core adds +-10 % jitter), so long-lived client connections
         * are spread again over the replicas an L4 balancer sees; then the grace. */
        {GRPC_ARG_MAX_CONNECTION_AGE_MS, cfg->grpc_max_connection_age_ms},
        {GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, cfg->grpc_max_connection_age_grace_ms},
    };
    for (int i = 0; i < 8; i++) {
        if (i >= 4 && want[i].value <= 0) continue; /* not given: C-core's default */
        args[n_args].type = GRPC_ARG_INTEGER;
        args[n_args].key = (char *)want[i].key;
        args[n_args].value.integer = want[i].value;
        n_args++;
    }
    grpc_channel_args ch_args = {.num_args = (size_t)n_args, .args = args};
    g->server = grpc_server_create(&ch_args, NULL);
    for (int m = 0; m < RR_M_COUNT; m++) {
        g->handles[m] = grpc_server_register_method(g->server, rr_methods[m].path, NULL,
                                                    rr_methods[m].reads_payload
                                                        ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
                                                        : GRPC_SRM_PAYLOAD_NONE,
                                                    0);
        if (!g->handles[m]) {
            fprintf(stderr, "rerankd: cannot register %s\n", rr_methods[m].path);
            return 0;
        }
    }
    g->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(g->server, g->cq, NULL);
    char addr[300];
    snprintf(addr, sizeof addr, strchr(cfg->host, ':') ? "[%s]:%d" : "%s:%d", cfg->host, cfg->port);
    grpc_server_credentials *creds =
        g->tls ? rr_tls_credentials(g->tls) : grpc_insecure_server_credentials_create();
    g->port = creds ? grpc_server_add_http2_port(g->server, addr, creds) : 0;
    if (creds) grpc_server_credentials_release(creds);
    if (g->port == 0) {
        fprintf(stderr, "rerankd: cannot listen on %s (%s)\n", addr,
                g->tls ? "in use, not a local address, or the TLS certificate and key are unusable"
                       : "in use or not a local address");
        return 0;
    }
    grpc_server_start(g->server);
    g->started = 1;
    for (g->n_threads = 0; g->n_threads < cfg->cq_threads && g->n_threads < 8; g->n_threads++)
        pthread_create(&g->threads[g->n_threads], NULL, cq_main, g);
    for (int m = 0; m <= RR_M_COUNT; m++)
        for (int k = 0; k < g->methods[m].armed; k++)
            rr_call_arm(g, (rr_method)m);
    srv->on_health = rr_grpc_health_changed;
    srv->on_health_ctx = g;
    rr_metrics_add(srv, grpc_metrics, g);
    fprintf(stderr, "rerankd: listening on %s (port %d%s)\n", addr, g->port,
            g->tls ? (cfg->tls_client_ca ? ", mutual TLS" : ", TLS") : "");
    return 1;
}

typedef struct shutdown_tag {
    rr_tag tag;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} shutdown_tag;

static void on_shutdown(rr_tag *t, int ok)
{
    shutdown_tag *s = (shutdown_tag *)t;
    pthread_mutex_lock(&s->mu);
    s->done = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits for the shutdown tag up to `seconds` (< 0: forever). Returns 1 when done. */
static int wait_shutdown(shutdown_tag *s, double seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (seconds >= 0) {
        long long ns = until.tv_nsec + (long long)(seconds * 1e9);
        until.tv_sec += (time_t)(ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
    }
    pthread_mutex_lock(&s->mu);
    while (!s->done) {
        if (seconds < 0)
            pthread_cond_wait(&s->cv, &s->mu);
        else if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
            break;
    }
    int done = s->done;
    pthread_mutex_unlock(&s->mu);
    return done;
}

void rr_grpc_drain(rr_grpc *g, double grace)
{
    if (!g) return;
    atomic_store(&g->shutting_down, 1);
    if (!g->started) return;
    shutdown_tag sd = {.tag.on_done = on_shutdown,
                       .mu = PTHREAD_MUTEX_INITIALIZER,
                       .cv = PTHREAD_COND_INITIALIZER};
    RR_TSAN_RELEASE(&sd.tag);
    grpc_server_shutdown_and_notify(g->server, g->cq, &sd.tag);
    if (!wait_shutdown(&sd, grace)) {
        fprintf(stderr, "rerankd: grace period over, cancelling %d live calls\n",
                atomic_load(&g->live_calls));
        grpc_server_cancel_all_calls(g->server);
        wait_shutdown(&sd, -1);
    }
}

void rr_grpc_free(rr_grpc *g)
{
    if (!g) return;
    if (g->server) {
        /* A 1.51 server with a port added but never started aborts in grpc_server_destroy
         * unless shut down (server.cc:859); one never listened has nothing to drain. */
        if (!g->started) grpc_server_destroy(g->server);
        if (g->cq) {
            grpc_completion_queue_shutdown(g->cq);
            for (int i = 0; i < g->n_threads; i++)
                pthread_join(g->threads[i], NULL);
            if (g->n_threads == 0)
                while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                           .type != GRPC_QUEUE_SHUTDOWN) {
                }
        }
        fprintf(stderr, "rerankd: stopped, %d live calls\n", atomic_load(&g->live_calls));
        if (g->started) grpc_server_destroy(g->server);
        if (g->cq) grpc_completion_queue_destroy(g->cq);
        grpc_shutdown();
    }
    rr_call_pools_free(g); /* no call is live: the CQ is drained */
    rr_svc_rerank_free(g);
    rr_svc_tei_free(g);
    for (int i = 0; i < 2; i++)
        pthread_mutex_destroy(&g->streams[i].mu);
    rr_tls_free(g->tls); /* after grpc_shutdown: the core calls its fetcher until then */
    rr_reflection_free(g);
    pthread_mutex_destroy(&g->watch_mu);
    rr_free(g);
}
