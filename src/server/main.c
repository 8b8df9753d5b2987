/*
 * main.c — rerankd: flags, server set-up, completion-queue threads, model loading, and the
 * graceful shutdown sequence (guide §2, §7).
 *
 * Start-up order: the gRPC server starts first, with health NOT_SERVING and scoring calls
 * answered UNAVAILABLE, so probes see "loading"; then the model, engine and scheduler come
 * up, health turns SERVING and `READY <port>` is printed on stdout.
 * Shutdown (SIGTERM/SIGINT, via a self-pipe): health NOT_SERVING (pushed to watchers) →
 * grpc_server_shutdown_and_notify (no new calls) → in-flight work has --grace-seconds to
 * finish → grpc_server_cancel_all_calls → scheduler stopped → CQ drained → exit 0.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"
#include "util/util.h"

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    char b = (char)sig;
    ssize_t w = write(sig_pipe[1], &b, 1);
    (void)w;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rerankd --model DIR [options]\n"
            "  --model DIR              Hugging Face cross-encoder folder (required)\n"
            "  --device auto|cpu|cuda:N auto: cuda:0 when built with CUDA and a device exists,\n"
            "                           else cpu (default auto)\n"
            "  --host HOST              listen address (default 0.0.0.0)\n"
            "  --port N                 listen port (default 50051; 0 = ephemeral); `READY <port>`\n"
            "                           is printed on stdout once serving\n"
            "  --max-batch-tokens N     token budget of one engine batch (default 16384)\n"
            "  --max-docs N             documents per unary request / stream batch (default 1000)\n"
            "  --max-message-bytes N    largest request message (default 4194304)\n"
            "  --max-in-flight N        requests being tokenized or scored at once (default 256)\n"
            "  --threads N              CPU engine threads (default 0 = all cores)\n"
            "  --tokenizer-workers N    tokenization threads (default 2)\n"
            "  --grace-seconds S        drain period on SIGTERM/SIGINT (default 5)\n"
            "  --tls-cert FILE          serve gRPC over TLS with this PEM certificate chain ...\n"
            "  --tls-key FILE           ... and this PEM private key; both re-read when they change\n"
            "  --tls-client-ca FILE     mutual TLS: require client certificates signed by this PEM CA\n"
            "  --http-port N            also serve GET /metrics (Prometheus), /health and /info over\n"
            "                           HTTP on --host:N (0 = ephemeral; `HTTP <port>` is printed on\n"
            "                           stdout before READY); default: no HTTP listener\n"
            "  --help                   this text\n");
}

static int parse_int(const char *flag, const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || x < lo || x > hi) {
        fprintf(stderr, "rerankd: %s needs an integer in %ld ... %ld (got %s)\n", flag, lo, hi, v ? v : "nothing");
        return 0;
    }
    *out = (int)x;
    return 1;
}

static int parse_args(int argc, char **argv, rr_config *cfg)
{
    *cfg = (rr_config){.device = "auto", .host = "0.0.0.0", .port = 50051, .max_batch_tokens = 16384,
                       .max_docs = 1000, .max_message_bytes = 4 << 20, .max_in_flight = 256,
                       .threads = 0, .tokenizer_workers = 2, .cq_threads = 2, .grace_seconds = 5,
                       .http_port = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--model") == 0) {
            cfg->model_dir = v, ok = v != NULL;
        } else if (strcmp(a, "--device") == 0) {
            cfg->device = v, ok = v != NULL;
        } else if (strcmp(a, "--host") == 0) {
            cfg->host = v, ok = v != NULL;
        } else if (strcmp(a, "--port") == 0) {
            ok = parse_int(a, v, 0, 65535, &cfg->port);
        } else if (strcmp(a, "--max-batch-tokens") == 0) {
            ok = parse_int(a, v, 1, 1 << 24, &cfg->max_batch_tokens);
        } else if (strcmp(a, "--max-docs") == 0) {
            ok = parse_int(a, v, 1, 1 << 20, &cfg->max_docs);
        } else if (strcmp(a, "--max-message-bytes") == 0) {
            ok = parse_int(a, v, 1024, INT_MAX, &cfg->max_message_bytes);
        } else if (strcmp(a, "--max-in-flight") == 0) {
            ok = parse_int(a, v, 1, 1 << 20, &cfg->max_in_flight);
        } else if (strcmp(a, "--threads") == 0) {
            ok = parse_int(a, v, 0, 4096, &cfg->threads);
        } else if (strcmp(a, "--tokenizer-workers") == 0) {
            ok = parse_int(a, v, 1, 1024, &cfg->tokenizer_workers);
        } else if (strcmp(a, "--tls-cert") == 0) {
            cfg->tls_cert = v, ok = v != NULL;
        } else if (strcmp(a, "--tls-key") == 0) {
            cfg->tls_key = v, ok = v != NULL;
        } else if (strcmp(a, "--tls-client-ca") == 0) {
            cfg->tls_client_ca = v, ok = v != NULL;
        } else if (strcmp(a, "--http-port") == 0) {
            ok = parse_int(a, v, 0, 65535, &cfg->http_port);
        } else if (strcmp(a, "--grace-seconds") == 0) {
            char *end;
            cfg->grace_seconds = v ? strtod(v, &end) : -1;
            ok = v && !*end && cfg->grace_seconds >= 0;
            if (!ok) fprintf(stderr, "rerankd: --grace-seconds needs a number >= 0\n");
        } else {
            fprintf(stderr, "rerankd: unknown option %s (see --help)\n", a);
            return 0;
        }
        if (!ok) {
            if (!v) fprintf(stderr, "rerankd: %s needs a value\n", a);
            return 0;
        }
        i++;
    }
    if (!cfg->model_dir) {
        fprintf(stderr, "rerankd: --model DIR is required (see --help)\n");
        return 0;
    }
    if ((cfg->tls_cert || cfg->tls_key || cfg->tls_client_ca) && !(cfg->tls_cert && cfg->tls_key)) {
        fprintf(stderr, "rerankd: TLS needs both --tls-cert and --tls-key (--tls-client-ca adds mTLS)\n");
        return 0;
    }
    return 1;
}

/* auto → cuda:0 when the CUDA engine is built and a device opens, else cpu. Returns the
 * engine or NULL with err filled. */
static rr_engine *open_engine(rr_server *srv, rr_error *err)
{
    rr_engine_opts o = {.device = -1, .max_batch_tokens = srv->cfg.max_batch_tokens,
                        .n_threads = srv->cfg.threads, .dtype = RR_DTYPE_F16};
    rr_engine *e = NULL;
    const char *d = srv->cfg.device;
    if (strcmp(d, "cpu") == 0) {
        o.device = -1;
    } else if (strncmp(d, "cuda:", 5) == 0) {
        char *end;
        long n = strtol(d + 5, &end, 10);
        if (!d[5] || *end || n < 0 || n > 1024) {
            rr_set_error(err, RR_E_INVALID, "--device %s: expected cuda:N", d);
            return NULL;
        }
        o.device = (int)n;
    } else if (strcmp(d, "auto") == 0) {
        o.device = 0;
        if (rr_engine_init(srv->model, &o, &e, err) == RR_OK) return e;
        fprintf(stderr, "rerankd: --device auto: no CUDA engine (%s); using the CPU\n", err->msg);
        o.device = -1;
    } else {
        rr_set_error(err, RR_E_INVALID, "--device %s: expected auto, cpu or cuda:N", d);
        return NULL;
    }
    if (rr_engine_init(srv->model, &o, &e, err) != RR_OK) return NULL;
    return e;
}

static void *cq_main(void *arg)
{
    rr_server *srv = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type == GRPC_OP_COMPLETE) ((rr_tag *)ev.tag)->on_done(ev.tag, ev.success);
    }
    return NULL;
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
        if (seconds < 0) pthread_cond_wait(&s->cv, &s->mu);
        else if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT) break;
    }
    int done = s->done;
    pthread_mutex_unlock(&s->mu);
    return done;
}

static const struct {
    rr_method m;
    const char *path;
    grpc_server_register_method_payload_handling payload;
    int armed; /* requests kept armed: hot methods more (guide §2.4) */
} methods[RR_M_COUNT] = {
    {RR_M_RERANK, "/rerank.v1.Reranker/Rerank", GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 8},
    {RR_M_RERANK_STREAM, "/rerank.v1.Reranker/RerankStream", GRPC_SRM_PAYLOAD_NONE, 4},
    {RR_M_INFO, "/rerank.v1.Reranker/Info", GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 1},
    {RR_M_TEI_RERANK, "/tei.v1.Rerank/Rerank", GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 4},
    {RR_M_TEI_RERANK_STREAM, "/tei.v1.Rerank/RerankStream", GRPC_SRM_PAYLOAD_NONE, 2},
    {RR_M_TEI_INFO, "/tei.v1.Info/Info", GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 1},
    {RR_M_HEALTH_CHECK, "/grpc.health.v1.Health/Check", GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 2},
    {RR_M_HEALTH_WATCH, "/grpc.health.v1.Health/Watch", GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 1},
    {RR_M_REFLECT_V1, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", GRPC_SRM_PAYLOAD_NONE, 1},
    {RR_M_REFLECT_V1ALPHA, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
     GRPC_SRM_PAYLOAD_NONE, 1},
};

const char *rr_method_path(rr_method m)
{
    for (int i = 0; i < RR_M_COUNT; i++)
        if (methods[i].m == m) return methods[i].path;
    return "unknown";
}

int main(int argc, char **argv)
{
    rr_server srv;
    memset(&srv, 0, sizeof srv);
    if (!parse_args(argc, argv, &srv.cfg)) return 2;
    rr_config *cfg = &srv.cfg;
    int rc = 1, started = 0, n_threads = 0;
    pthread_t cq_threads[8];
    rr_error err = {0};
    shutdown_tag sd = {.tag.on_done = on_shutdown, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

    pthread_mutex_init(&srv.health_mu, NULL);
    pthread_mutex_init(&srv.metrics_mu, NULL);
    srv.health = RR_HEALTH_NOT_SERVING;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    srv.boot_unix = (double)wall.tv_sec + wall.tv_nsec * 1e-9;
    rr_metrics_init(&srv);
    if (!rr_call_pools_init(&srv)) {
        fprintf(stderr, "rerankd: out of memory for the call contexts\n");
        goto fail_early;
    }
    if (pipe(sig_pipe) != 0) {
        perror("rerankd: pipe");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!rr_reflection_init(&srv)) {
        fprintf(stderr, "rerankd: the embedded descriptor set is malformed\n");
        goto fail_early;
    }

    if (cfg->tls_cert && !(srv.tls = rr_tls_init(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, &err))) {
        fprintf(stderr, "rerankd: %s: %s\n", rr_status_name(err.status), err.msg);
        goto fail_early;
    }

    grpc_init();
    /* HTTP first: a failure here leaves no gRPC listener to unwind (a 1.51 server with a
     * port added but never started aborts in grpc_server_destroy: server.cc:859 asserts
     * ShutdownCalled() || listeners_.empty()). */
    if (cfg->http_port >= 0) {
        if (!rr_http_start(&srv)) goto fail;
        printf("HTTP %d\n", srv.http_port);
        fflush(stdout);
    }
    grpc_arg args[4];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = cfg->max_message_bytes;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[1].value.integer = 64 << 20;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_ALLOW_REUSEPORT; /* a port clash must fail (fact 3) */
    args[2].value.integer = 0;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = (char *)GRPC_ARG_MAX_CONCURRENT_STREAMS;
    args[3].value.integer = 1024;
    grpc_channel_args ch_args = {.num_args = 4, .args = args};
    srv.server = grpc_server_create(&ch_args, NULL);
    for (int i = 0; i < RR_M_COUNT; i++) {
        srv.handles[methods[i].m] = grpc_server_register_method(srv.server, methods[i].path, NULL, methods[i].payload, 0);
        if (!srv.handles[methods[i].m]) {
            fprintf(stderr, "rerankd: cannot register %s\n", methods[i].path);
            goto fail;
        }
    }
    srv.cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv.server, srv.cq, NULL);
    char addr[300];
    snprintf(addr, sizeof addr, strchr(cfg->host, ':') ? "[%s]:%d" : "%s:%d", cfg->host, cfg->port);
    grpc_server_credentials *creds = srv.tls ? rr_tls_credentials(srv.tls) : grpc_insecure_server_credentials_create();
    int port = creds ? grpc_server_add_http2_port(srv.server, addr, creds) : 0;
    if (creds) grpc_server_credentials_release(creds);
    if (port == 0) {
        fprintf(stderr, "rerankd: cannot listen on %s (%s)\n", addr,
                srv.tls ? "in use, not a local address, or the TLS certificate and key are unusable"
                        : "in use or not a local address");
        goto fail;
    }

    grpc_server_start(srv.server);
    started = 1;
    for (n_threads = 0; n_threads < cfg->cq_threads && n_threads < 8; n_threads++)
        pthread_create(&cq_threads[n_threads], NULL, cq_main, &srv);
    for (int i = 0; i < RR_M_COUNT; i++)
        for (int k = 0; k < methods[i].armed; k++) rr_call_arm(&srv, methods[i].m);
    for (int k = 0; k < 2; k++) rr_call_arm(&srv, RR_M_GENERIC);
    fprintf(stderr, "rerankd: listening on %s (port %d%s), loading %s\n", addr, port,
            srv.tls ? (cfg->tls_client_ca ? ", mutual TLS" : ", TLS") : "", cfg->model_dir);

    uint64_t t0 = rr_now_ns();
    if (rr_model_load(cfg->model_dir, &srv.model, &err) != RR_OK) {
        fprintf(stderr, "rerankd: %s: %s\n", rr_status_name(err.status), err.msg);
        goto fail;
    }
    srv.info = rr_model_get_info(srv.model);
    if (srv.info->n_labels != 1) {
        fprintf(stderr, "rerankd: %s has %d labels; a reranker has exactly 1\n", cfg->model_dir, srv.info->n_labels);
        goto fail;
    }
    if (!(srv.engine = open_engine(&srv, &err))) {
        fprintf(stderr, "rerankd: %s: %s\n", rr_status_name(err.status), err.msg);
        goto fail;
    }
    snprintf(srv.device_desc, sizeof srv.device_desc, "%s", rr_engine_describe(srv.engine));
    rr_sched_opts so = {.max_in_flight = cfg->max_in_flight, .tokenizer_workers = cfg->tokenizer_workers,
                        .max_batch_tokens = cfg->max_batch_tokens};
    if (rr_sched_init(srv.model, srv.engine, &so, &srv.sched, &err) != RR_OK) {
        fprintf(stderr, "rerankd: %s: %s\n", rr_status_name(err.status), err.msg);
        goto fail;
    }
    atomic_store(&srv.ready, 1);
    rr_health_set(&srv, RR_HEALTH_SERVING);
    fprintf(stderr, "rerankd: %s (%s, max length %d) on %s, loaded in %.2f s\n", cfg->model_dir,
            srv.info->arch_name, srv.info->max_length, srv.device_desc, (rr_now_ns() - t0) / 1e9);
    printf("READY %d\n", port);
    fflush(stdout);

    for (;;) {
        char b;
        ssize_t r = read(sig_pipe[0], &b, 1);
        if (r == 1) {
            fprintf(stderr, "rerankd: signal %d: draining (grace %.1f s)\n", (int)b, cfg->grace_seconds);
            break;
        }
        if (r < 0 && errno != EINTR) break;
    }
    rc = 0;

fail:
    /* Shutdown sequence (guide §7). Also the failure path once the server exists. */
    rr_health_set(&srv, RR_HEALTH_NOT_SERVING);
    atomic_store(&srv.shutting_down, 1);
    if (srv.server) {
        if (started) {
            grpc_server_shutdown_and_notify(srv.server, srv.cq, &sd.tag);
            if (!wait_shutdown(&sd, rc == 0 ? cfg->grace_seconds : 0)) {
                fprintf(stderr, "rerankd: grace period over, cancelling %d live calls\n",
                        atomic_load(&srv.live_calls));
                grpc_server_cancel_all_calls(srv.server);
                wait_shutdown(&sd, -1);
            }
        }
        /* The scheduler goes first: its shutdown answers suspended HTTP requests (503),
         * which the HTTP thread then sends. /metrics stops reading its counters, and no
         * HTTP request may be between its drain check and its submit (http_rerank.c). */
        pthread_mutex_lock(&srv.metrics_mu);
        srv.stats_off = 1;
        pthread_mutex_unlock(&srv.metrics_mu);
        while (atomic_load(&srv.http_starting)) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        rr_sched_free(srv.sched); /* queued work completes SHUTDOWN; CQ threads still poll */
        srv.sched = NULL;
        rr_http_stop(&srv);
        if (!started) grpc_server_destroy(srv.server); /* never listened: nothing to drain */
        if (srv.cq) {
            grpc_completion_queue_shutdown(srv.cq);
            for (int i = 0; i < n_threads; i++) pthread_join(cq_threads[i], NULL);
            if (n_threads == 0)
                while (grpc_completion_queue_next(srv.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
                       GRPC_QUEUE_SHUTDOWN) {
                }
        }
        fprintf(stderr, "rerankd: stopped, %d live calls\n", atomic_load(&srv.live_calls));
        if (started) grpc_server_destroy(srv.server);
        if (srv.cq) grpc_completion_queue_destroy(srv.cq);
    }
    rr_http_stop(&srv);
    grpc_shutdown();
    rr_engine_free(srv.engine);
    rr_model_free(srv.model);
fail_early:
    {
        void (*destroy[2])(void *) = {rr_stream_state_destroy, rr_tei_stream_destroy};
        rr_call_pools_free(&srv, destroy); /* no call is live: the CQ is drained */
    }
    rr_tls_free(srv.tls); /* after grpc_shutdown: the core calls its fetcher until then */
    rr_reflection_free(&srv);
    pthread_mutex_destroy(&srv.health_mu);
    pthread_mutex_destroy(&srv.metrics_mu);
    rr_metrics_free(&srv);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    return rc;
}
