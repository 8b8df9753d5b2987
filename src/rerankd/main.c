/*
 * main.c — rerankd, the composition root: flags, start-up order, and the shutdown sequence.
 * Everything else is a wing (src/grpc/, src/http/) over the protocol-neutral edge
 * (src/edge/) over the scheduler and the engine; this file only wires them together.
 *
 * Start-up order: the HTTP listener (if any) and the gRPC server start first, with health
 * NOT_SERVING and scoring answered UNAVAILABLE, so probes see "loading"; then the model,
 * engine and scheduler come up, health turns SERVING and `READY <port>` is printed on
 * stdout. Shutdown (SIGTERM/SIGINT, via a self-pipe): health NOT_SERVING (pushed to
 * watchers) → draining (no new gRPC calls or HTTP requests) → in-flight work has
 * --grace-seconds to finish → the rest is cancelled → the admission gate closes and the
 * scheduler stops (queued work answers UNAVAILABLE) → HTTP stops → the CQ drains → exit 0.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge/edge.h"
#include "grpc/wing.h"
#include "http/wing.h"
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
    fprintf(
        f,
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
        "  --threads N              CPU engine threads (default 0 = the CPUs this process\n"
        "                           may use: affinity and cgroup quota)\n"
        "  --tokenizer-workers N    tokenization threads (default 2)\n"
        "  --grace-seconds S        drain period on SIGTERM/SIGINT (default 5)\n"
        "  --admission-control on|off\n"
        "                           refuse at once (DEADLINE_EXCEEDED / 503) a request whose\n"
        "                           deadline cannot be met behind the work already queued, as\n"
        "                           estimated from measured forward times (default on)\n"
        "  --tls-cert FILE          serve gRPC over TLS with this PEM certificate chain ...\n"
        "  --tls-key FILE           ... and this PEM private key; both re-read when they change\n"
        "  --tls-client-ca FILE     mutual TLS: require client certificates signed by this PEM CA\n"
        "  --http-port N            also serve the JSON reranking API (POST /rerank, /v1/rerank,\n"
        "                           /v2/rerank) and GET /metrics, /health, /info over HTTP on\n"
        "                           --host:N (0 = ephemeral; `HTTP <port>` is printed on stdout\n"
        "                           before READY); default: no HTTP listener\n"
        "  --http-max-connections N open HTTP connections at once (default 4096; capped by\n"
        "                           the open file limit)\n"
        "  --http-max-connections-per-ip N\n"
        "                           per client address (default 0 = no per-address limit; set\n"
        "                           it when untrusted clients reach the port directly)\n"
        "  --http-idle-timeout S    close an HTTP connection that sends nothing for S seconds\n"
        "                           (default 10; a request being scored is never timed out)\n"
        "  --http-timeout S         deadline of an HTTP reranking request unless it sends\n"
        "                           x-request-timeout (default 0 = none)\n"
        "  --help                   this text\n");
}

static int parse_int(const char *flag, const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || x < lo || x > hi) {
        fprintf(stderr, "rerankd: %s needs an integer in %ld ... %ld (got %s)\n", flag, lo, hi,
                v ? v : "nothing");
        return 0;
    }
    *out = (int)x;
    return 1;
}

static int parse_seconds(const char *flag, const char *v, double *out)
{
    char *end;
    double x = v ? strtod(v, &end) : -1;
    if (!v || end == v || *end || !(x >= 0 && x < 1e9)) {
        fprintf(stderr, "rerankd: %s needs a number of seconds >= 0 (got %s)\n", flag,
                v ? v : "nothing");
        return 0;
    }
    *out = x;
    return 1;
}

static int parse_args(int argc, char **argv, rr_config *cfg)
{
    *cfg = (rr_config){.device = "auto",
                       .host = "0.0.0.0",
                       .port = 50051,
                       .max_batch_tokens = 16384,
                       .max_docs = 1000,
                       .max_message_bytes = 4 << 20,
                       .max_in_flight = 256,
                       .threads = 0,
                       .tokenizer_workers = 2,
                       .cq_threads = 2,
                       .grace_seconds = 5,
                       .http_port = -1,
                       .http_max_connections = 4096,
                       .http_max_connections_per_ip = 0,
                       .http_idle_timeout = 10,
                       .http_timeout = 0,
                       .admission_control = 1};
    for (int i = 1; i < argc; i += 2) { /* every flag but --help takes a value */
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
        } else if (strcmp(a, "--http-max-connections") == 0) {
            ok = parse_int(a, v, 16, 1 << 20, &cfg->http_max_connections);
        } else if (strcmp(a, "--http-max-connections-per-ip") == 0) {
            ok = parse_int(a, v, 0, 1 << 20, &cfg->http_max_connections_per_ip);
        } else if (strcmp(a, "--http-idle-timeout") == 0) {
            ok = parse_int(a, v, 1, 86400, &cfg->http_idle_timeout);
        } else if (strcmp(a, "--grace-seconds") == 0) {
            ok = parse_seconds(a, v, &cfg->grace_seconds);
        } else if (strcmp(a, "--http-timeout") == 0) {
            ok = parse_seconds(a, v, &cfg->http_timeout);
        } else if (strcmp(a, "--admission-control") == 0) {
            ok = v && (strcmp(v, "on") == 0 || strcmp(v, "off") == 0);
            if (ok) cfg->admission_control = strcmp(v, "on") == 0;
            if (v && !ok) fprintf(stderr, "rerankd: %s needs on or off (got %s)\n", a, v);
        } else {
            fprintf(stderr, "rerankd: unknown option %s (see --help)\n", a);
            return 0;
        }
        if (!ok) {
            if (!v) fprintf(stderr, "rerankd: %s needs a value\n", a);
            return 0;
        }
    }
    if (!cfg->model_dir) {
        fprintf(stderr, "rerankd: --model DIR is required (see --help)\n");
        return 0;
    }
    int device;
    rr_error err;
    if (rr_device_parse(cfg->device, &device, &err) != RR_OK) {
        fprintf(stderr, "rerankd: --device: %s\n", err.msg);
        return 0;
    }
    if ((cfg->tls_cert || cfg->tls_key || cfg->tls_client_ca) && !(cfg->tls_cert && cfg->tls_key)) {
        fprintf(stderr,
                "rerankd: TLS needs both --tls-cert and --tls-key (--tls-client-ca adds mTLS)\n");
        return 0;
    }
    return 1;
}

/* auto → cuda:0 when the CUDA engine is built and a device opens, else cpu. Returns the
 * engine or NULL with err filled. */
static rr_engine *open_engine(rr_server *srv, rr_error *err)
{
    rr_engine_opts o = {.device = -1,
                        .max_batch_tokens = srv->cfg.max_batch_tokens,
                        .n_threads = srv->cfg.threads,
                        .dtype = RR_DTYPE_F16};
    rr_engine *e = NULL;
    if (rr_device_parse(srv->cfg.device, &o.device, err) != RR_OK) return NULL;
    if (o.device == RR_DEVICE_AUTO) {
        o.device = 0;
        if (rr_engine_init(srv->model, &o, &e, err) == RR_OK) return e;
        fprintf(stderr, "rerankd: --device auto: no CUDA engine (%s); using the CPU\n", err->msg);
        o.device = -1;
    }
    if (rr_engine_init(srv->model, &o, &e, err) != RR_OK) return NULL;
    return e;
}

/* Model, engine and scheduler; then ready. 0 with a message on stderr. */
static int load(rr_server *srv)
{
    rr_error err = {0};
    uint64_t t0 = rr_now_ns();
    fprintf(stderr, "rerankd: loading %s\n", srv->cfg.model_dir);
    if (rr_model_load(srv->cfg.model_dir, &srv->model, &err) != RR_OK) goto fail;
    srv->info = rr_model_get_info(srv->model);
    if (srv->info->n_labels != 1) {
        fprintf(stderr, "rerankd: %s has %d labels; a reranker has exactly 1\n", srv->cfg.model_dir,
                srv->info->n_labels);
        return 0;
    }
    if (!(srv->engine = open_engine(srv, &err))) goto fail;
    snprintf(srv->device_desc, sizeof srv->device_desc, "%s", rr_engine_describe(srv->engine));
    rr_sched_opts so = {.max_in_flight = srv->cfg.max_in_flight,
                        .tokenizer_workers = srv->cfg.tokenizer_workers,
                        .admission_control = srv->cfg.admission_control};
    if (rr_sched_init(srv->model, srv->engine, &so, &srv->sched, &err) != RR_OK) goto fail;
    atomic_store(&srv->ready, 1);
    rr_health_set(srv, RR_HEALTH_SERVING);
    fprintf(stderr, "rerankd: %s (%s, max length %d) on %s, loaded in %.2f s\n", srv->cfg.model_dir,
            srv->info->arch_name, srv->info->max_length, srv->device_desc,
            (rr_now_ns() - t0) / 1e9);
    return 1;
fail:
    fprintf(stderr, "rerankd: %s: %s\n", rr_status_name(err.status), err.msg);
    return 0;
}

int main(int argc, char **argv)
{
    rr_config cfg;
    if (!parse_args(argc, argv, &cfg)) return 2;
    /* Buffers of 256 KiB and more (a big request's decoding arena, a 4 MB body) come from
     * their own mappings and go back to the system when freed. glibc's default raises this
     * threshold after such frees, after which a burst of big requests stays in the heap. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    rr_server srv;
    rr_edge_init(&srv, &cfg);
    rr_grpc *grpc = NULL;
    rr_http *http = NULL;
    int rc = 1;

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

    /* HTTP first: a failure here leaves no gRPC listener to unwind. */
    if (cfg.http_port >= 0) {
        if (!rr_http_start(&srv, &http)) goto stop;
        printf("HTTP %d\n", http->port);
        fflush(stdout);
    }
    if (!rr_grpc_start(&srv, &grpc) || !load(&srv)) goto stop;
    printf("READY %d\n", grpc->port);
    fflush(stdout);

    for (;;) {
        char b;
        ssize_t r = read(sig_pipe[0], &b, 1);
        if (r == 1) {
            fprintf(stderr, "rerankd: signal %d: draining (grace %.1f s)\n", (int)b,
                    cfg.grace_seconds);
            break;
        }
        if (r < 0 && errno != EINTR) break;
    }
    rc = 0;

stop:
    /* Shutdown sequence (guide §7); also the failure path. */
    rr_health_set(&srv, RR_HEALTH_NOT_SERVING);
    atomic_store(&srv.draining, 1);
    rr_grpc_drain(grpc, rc == 0 ? cfg.grace_seconds : 0);
    /* The scheduler goes next: its shutdown answers suspended HTTP requests (503), which
     * the HTTP threads then send. /metrics stops reading its counters first, and no request
     * may be between its admission and its submit. */
    pthread_mutex_lock(&srv.metrics_mu);
    srv.stats_off = 1;
    pthread_mutex_unlock(&srv.metrics_mu);
    rr_edge_close_gate(&srv);
    rr_sched_free(srv.sched); /* queued work completes SHUTDOWN; CQ threads still poll */
    srv.sched = NULL;
    rr_http_stop(http);
    rr_grpc_free(grpc);
    rr_engine_free(srv.engine);
    rr_model_free(srv.model);
    rr_edge_free(&srv);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    return rc;
}
