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
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* Every flag: its name, whether it takes a value, and TEI's environment name for it where
 * TEI has the flag (text-embeddings-inference's router/src/main.rs; HOSTNAME is not read: every
 * shell sets it). Each flag is also read from RERANKD_<NAME> (upper snake case); the command
 * line wins over the environment, RERANKD_* over TEI's name. */
enum {
    F_MODEL = 256,
    F_DEVICE,
    F_HOST,
    F_PORT,
    F_MAX_BATCH_TOKENS,
    F_MAX_DOCS,
    F_MAX_MESSAGE_BYTES,
    F_MAX_IN_FLIGHT,
    F_THREADS,
    F_TOKENIZER_WORKERS,
    F_GRACE_SECONDS,
    F_TLS_CERT,
    F_TLS_KEY,
    F_TLS_CLIENT_CA,
    F_HTTP_PORT,
    F_HTTP_MAX_CONNECTIONS,
    F_HTTP_MAX_CONNECTIONS_PER_IP,
    F_HTTP_IDLE_TIMEOUT,
    F_HTTP_TIMEOUT,
    F_LONG_DOCUMENTS,
    F_MAX_CHUNKS_PER_DOC,
    F_MAX_CHUNKS_PER_REQUEST,
    F_API_KEY,
    F_API_KEY_FILE,
    F_API_KEY_PROTECT_OPS,
    F_ADMISSION_CONTROL,
    F_GRPC_KEEPALIVE_TIME,
    F_GRPC_KEEPALIVE_TIMEOUT,
    F_GRPC_MAX_CONNECTION_AGE,
    F_GRPC_MAX_CONNECTION_AGE_GRACE,
    F_TOKENIZER_PIPELINE,
    F_DTYPE,
    F_END,
    F_HELP = 'h',
    F_VERSION = F_END + 1,
};

static const struct {
    const char *name;
    int has_arg;
    const char *tei_env;
} flags[F_END - F_MODEL] = {
    [F_MODEL - F_MODEL] = {"model", 1, "MODEL_ID"},
    [F_DEVICE - F_MODEL] = {"device", 1, NULL},
    [F_HOST - F_MODEL] = {"host", 1, NULL},
    [F_PORT - F_MODEL] = {"port", 1, "PORT"},
    [F_MAX_BATCH_TOKENS - F_MODEL] = {"max-batch-tokens", 1, "MAX_BATCH_TOKENS"},
    [F_MAX_DOCS - F_MODEL] = {"max-docs", 1, "MAX_CLIENT_BATCH_SIZE"},
    [F_MAX_MESSAGE_BYTES - F_MODEL] = {"max-message-bytes", 1, "PAYLOAD_LIMIT"},
    [F_MAX_IN_FLIGHT - F_MODEL] = {"max-in-flight", 1, "MAX_CONCURRENT_REQUESTS"},
    [F_THREADS - F_MODEL] = {"threads", 1, NULL},
    [F_TOKENIZER_WORKERS - F_MODEL] = {"tokenizer-workers", 1, "TOKENIZATION_WORKERS"},
    [F_GRACE_SECONDS - F_MODEL] = {"grace-seconds", 1, NULL},
    [F_TLS_CERT - F_MODEL] = {"tls-cert", 1, NULL},
    [F_TLS_KEY - F_MODEL] = {"tls-key", 1, NULL},
    [F_TLS_CLIENT_CA - F_MODEL] = {"tls-client-ca", 1, NULL},
    [F_HTTP_PORT - F_MODEL] = {"http-port", 1, NULL},
    [F_HTTP_MAX_CONNECTIONS - F_MODEL] = {"http-max-connections", 1, NULL},
    [F_HTTP_MAX_CONNECTIONS_PER_IP - F_MODEL] = {"http-max-connections-per-ip", 1, NULL},
    [F_HTTP_IDLE_TIMEOUT - F_MODEL] = {"http-idle-timeout", 1, NULL},
    [F_HTTP_TIMEOUT - F_MODEL] = {"http-timeout", 1, NULL},
    [F_LONG_DOCUMENTS - F_MODEL] = {"long-documents", 1, NULL},
    [F_MAX_CHUNKS_PER_DOC - F_MODEL] = {"max-chunks-per-doc", 1, NULL},
    [F_MAX_CHUNKS_PER_REQUEST - F_MODEL] = {"max-chunks-per-request", 1, NULL},
    [F_API_KEY - F_MODEL] = {"api-key", 1, "API_KEY"},
    [F_API_KEY_FILE - F_MODEL] = {"api-key-file", 1, NULL},
    [F_API_KEY_PROTECT_OPS - F_MODEL] = {"api-key-protect-ops", 0, NULL},
    [F_ADMISSION_CONTROL - F_MODEL] = {"admission-control", 1, NULL},
    [F_GRPC_KEEPALIVE_TIME - F_MODEL] = {"grpc-keepalive-time", 1, NULL},
    [F_GRPC_KEEPALIVE_TIMEOUT - F_MODEL] = {"grpc-keepalive-timeout", 1, NULL},
    [F_GRPC_MAX_CONNECTION_AGE - F_MODEL] = {"grpc-max-connection-age", 1, NULL},
    [F_GRPC_MAX_CONNECTION_AGE_GRACE - F_MODEL] = {"grpc-max-connection-age-grace", 1, NULL},
    [F_TOKENIZER_PIPELINE - F_MODEL] = {"tokenizer-pipeline", 1, NULL},
    [F_DTYPE - F_MODEL] = {"dtype", 1, "DTYPE"},
};
#define N_FLAGS (F_END - F_MODEL)

/* RERANKD_<FLAG IN UPPER SNAKE CASE> into out (64 bytes). */
static void env_name(const char *flag, char *out)
{
    int n = snprintf(out, 64, "RERANKD_");
    for (const char *p = flag; *p && n < 63; p++)
        out[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    out[n] = 0;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: rerankd --model DIR [options]    (--flag VALUE and --flag=VALUE both work)\n"
        "  --model DIR              Hugging Face cross-encoder folder (required)\n"
        "  --device auto|cpu|cuda:N auto: cuda:0 when built with CUDA and a device exists,\n"
        "                           else cpu (default auto)\n"
        "  --dtype auto|f32|f16|bf16|int8\n"
        "                           precision (float32/float16/bfloat16 also taken): auto is\n"
        "                           f16 on CUDA, f32 (the reference) on the CPU; bf16 runs on\n"
        "                           CUDA, and on CPUs with AVX512-BF16; int8 (weights quantized\n"
        "                           at load) on the CPU only — their measured score deviation\n"
        "                           is in the README. With --device auto, f32 and int8 pick\n"
        "                           the CPU\n"
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
        "  --tokenizer-pipeline transformers|file\n"
        "                           XLM-R (Unigram) models: tokenize as transformers >= 5 does\n"
        "                           (what sentence-transformers' CrossEncoder scores; the\n"
        "                           default) or run tokenizer.json as written (tokenizers,\n"
        "                           transformers 4, TEI); sets RERANK_TOKENIZER_PIPELINE\n"
        "  --admission-control on|off\n"
        "                           refuse at once (DEADLINE_EXCEEDED / 503) a request whose\n"
        "                           deadline cannot be met behind the work already queued, as\n"
        "                           estimated from measured forward times (default on)\n"
        "  --grpc-keepalive-time S  ping a gRPC client with a call open after S seconds\n"
        "                           without traffic (default: C-core's 7200)\n"
        "  --grpc-keepalive-timeout S\n"
        "                           close the connection when the ping is not answered within\n"
        "                           S seconds (default: C-core's 20)\n"
        "  --grpc-max-connection-age S\n"
        "                           send GOAWAY on a gRPC connection S seconds (+-10 %%) after it\n"
        "                           opened, so clients reconnect and L4 balancers spread them\n"
        "                           again (default: never)\n"
        "  --grpc-max-connection-age-grace S\n"
        "                           calls still open S seconds after that GOAWAY are cancelled\n"
        "                           (default: never)\n"
        "  --tls-cert FILE          serve gRPC over TLS with this PEM certificate chain ...\n"
        "  --tls-key FILE           ... and this PEM private key; both re-read when they change\n"
        "  --tls-client-ca FILE     mutual TLS: require client certificates signed by this PEM CA\n"
        "  --http-port N            also serve the JSON reranking API and the operations routes\n"
        "                           (below) over HTTP on --host:N (0 = ephemeral; `HTTP <port>`\n"
        "                           is printed on stdout before READY); default: no HTTP listener\n"
        "  --http-max-connections N open HTTP connections at once (default 4096; capped by\n"
        "                           the open file limit)\n"
        "  --http-max-connections-per-ip N\n"
        "                           per client address (default 0 = no per-address limit; set\n"
        "                           it when untrusted clients reach the port directly)\n"
        "  --http-idle-timeout S    close an HTTP connection that sends nothing for S seconds\n"
        "                           (default 10; a request being scored is never timed out)\n"
        "  --http-timeout S         deadline of an HTTP reranking request unless it sends\n"
        "                           x-request-timeout (default 0 = none)\n"
        "  --long-documents truncate|chunk\n"
        "                           a document whose pair is over the model's length is cut\n"
        "                           (truncate, the default) or scored in overlapping windows,\n"
        "                           its score the best window's (chunk); requests may choose\n"
        "  --max-chunks-per-doc N   windows scored per chunked document: the default and the\n"
        "                           most a request may ask (default 10, as Cohere's)\n"
        "  --max-chunks-per-request N\n"
        "                           documents x windows per document, at most (default 10000)\n"
        "  --api-key KEY            require `Authorization: Bearer KEY` (HTTP) / metadata\n"
        "                           `authorization: Bearer KEY` (gRPC) on the reranking calls:\n"
        "                           else 401 / UNAUTHENTICATED\n"
        "  --api-key-file FILE      the same, the key read from FILE (a trailing newline\n"
        "                           stripped) and re-read when FILE changes\n"
        "  --api-key-protect-ops    /metrics and /info need the key too (health never does)\n"
        "  --version                print `rerankd <version>` and exit\n"
        "  --help                   this text\n"
        "\n"
        "HTTP routes (--http-port):\n"
        "  POST /rerank             TEI's shape\n"
        "  POST /v1/rerank, /v2/rerank\n"
        "                           Cohere's / Jina's shape\n"
        "  GET  /livez              liveness: 200 while the process serves HTTP, also while\n"
        "                           it loads or drains\n"
        "  GET  /readyz, /health    readiness: 200 SERVING, 503 NOT_SERVING while loading or\n"
        "                           draining (as grpc.health.v1)\n"
        "  GET  /metrics            Prometheus text\n"
        "  GET  /info               the model and limits (JSON, TEI's shape)\n"
        "  GET  /openapi.json       the OpenAPI 3.1 document of these routes\n"
        "gRPC services: rerank.v1.Reranker, tei.v1.Rerank, tei.v1.Info, grpc.health.v1.Health,\n"
        "grpc.reflection.v1 and v1alpha.\n"
        "\n"
        "Environment: every flag is also read from a variable, the command line winning (an\n"
        "empty variable counts as unset; --api-key-protect-ops takes 1/true/yes or 0/false/no):\n");
    for (int i = 0; i < N_FLAGS; i++) {
        char env[64];
        env_name(flags[i].name, env);
        fprintf(f, "  --%-30s %s", flags[i].name, env);
        if (flags[i].tei_env) fprintf(f, ", then TEI's %s", flags[i].tei_env);
        fprintf(f, "\n");
    }
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

/* A duration in seconds (> 0, fractions allowed) as whole milliseconds for a C-core channel
 * argument: 1 ms ... INT_MAX ms (24.8 days). */
static int parse_ms(const char *flag, const char *v, int *out)
{
    char *end;
    double x = v ? strtod(v, &end) : -1;
    if (!v || end == v || *end || !(x >= 0.001 && x <= INT_MAX / 1000.0)) {
        fprintf(stderr, "rerankd: %s needs a number of seconds in 0.001 ... %d (got %s)\n", flag,
                INT_MAX / 1000, v ? v : "nothing");
        return 0;
    }
    *out = (int)(x * 1000 + 0.5);
    return 1;
}

/* One flag's value from `who` (the flag as typed, or the environment variable: errors name
 * it); v is NULL for a flag without a value given on the command line. 0 with a message. */
static int apply(rr_config *cfg, int id, const char *who, const char *v)
{
    switch (id) {
    case F_MODEL:
        cfg->model_dir = v;
        return 1;
    case F_DEVICE:
        cfg->device = v;
        return 1;
    case F_DTYPE:
        cfg->dtype = v;
        return 1;
    case F_HOST:
        cfg->host = v;
        return 1;
    case F_PORT:
        return parse_int(who, v, 0, 65535, &cfg->port);
    case F_MAX_BATCH_TOKENS:
        return parse_int(who, v, 1, 1 << 24, &cfg->max_batch_tokens);
    case F_MAX_DOCS:
        return parse_int(who, v, 1, 1 << 20, &cfg->max_docs);
    case F_MAX_MESSAGE_BYTES:
        return parse_int(who, v, 1024, INT_MAX, &cfg->max_message_bytes);
    case F_MAX_IN_FLIGHT:
        return parse_int(who, v, 1, 1 << 20, &cfg->max_in_flight);
    case F_THREADS:
        return parse_int(who, v, 0, 4096, &cfg->threads);
    case F_TOKENIZER_WORKERS:
        return parse_int(who, v, 1, 1024, &cfg->tokenizer_workers);
    case F_GRACE_SECONDS:
        return parse_seconds(who, v, &cfg->grace_seconds);
    case F_TLS_CERT:
        cfg->tls_cert = v;
        return 1;
    case F_TLS_KEY:
        cfg->tls_key = v;
        return 1;
    case F_TLS_CLIENT_CA:
        cfg->tls_client_ca = v;
        return 1;
    case F_HTTP_PORT:
        return parse_int(who, v, 0, 65535, &cfg->http_port);
    case F_HTTP_MAX_CONNECTIONS:
        return parse_int(who, v, 16, 1 << 20, &cfg->http_max_connections);
    case F_HTTP_MAX_CONNECTIONS_PER_IP:
        return parse_int(who, v, 0, 1 << 20, &cfg->http_max_connections_per_ip);
    case F_HTTP_IDLE_TIMEOUT:
        return parse_int(who, v, 1, 86400, &cfg->http_idle_timeout);
    case F_HTTP_TIMEOUT:
        return parse_seconds(who, v, &cfg->http_timeout);
    case F_TOKENIZER_PIPELINE:
        /* read by the tokenizer loader (tokenizer_load.c) when the model is loaded, after
         * the flags */
        if (strcmp(v, "transformers") != 0 && strcmp(v, "file") != 0) {
            fprintf(stderr, "rerankd: %s is transformers or file (got %s)\n", who, v);
            return 0;
        }
        setenv("RERANK_TOKENIZER_PIPELINE", v, 1);
        return 1;
    case F_ADMISSION_CONTROL:
        if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
            fprintf(stderr, "rerankd: %s needs on or off (got %s)\n", who, v);
            return 0;
        }
        cfg->admission_control = strcmp(v, "on") == 0;
        return 1;
    case F_GRPC_KEEPALIVE_TIME:
        return parse_ms(who, v, &cfg->grpc_keepalive_time_ms);
    case F_GRPC_KEEPALIVE_TIMEOUT:
        return parse_ms(who, v, &cfg->grpc_keepalive_timeout_ms);
    case F_GRPC_MAX_CONNECTION_AGE:
        return parse_ms(who, v, &cfg->grpc_max_connection_age_ms);
    case F_GRPC_MAX_CONNECTION_AGE_GRACE:
        return parse_ms(who, v, &cfg->grpc_max_connection_age_grace_ms);
    case F_LONG_DOCUMENTS:
        if (strcmp(v, "truncate") != 0 && strcmp(v, "chunk") != 0) {
            fprintf(stderr, "rerankd: %s is truncate or chunk (got %s)\n", who, v);
            return 0;
        }
        cfg->chunk_default = strcmp(v, "chunk") == 0;
        return 1;
    case F_MAX_CHUNKS_PER_DOC:
        return parse_int(who, v, 1, 1024, &cfg->max_chunks_per_doc);
    case F_MAX_CHUNKS_PER_REQUEST:
        return parse_int(who, v, 1, 1 << 24, &cfg->max_chunks_per_request);
    case F_API_KEY:
        cfg->api_key = v;
        return 1;
    case F_API_KEY_FILE:
        cfg->api_key_file = v;
        return 1;
    case F_API_KEY_PROTECT_OPS:
        if (!v || strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
            cfg->api_key_protect_ops = 1;
        else if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0)
            cfg->api_key_protect_ops = 0;
        else {
            fprintf(stderr, "rerankd: %s is 1/true/yes or 0/false/no (got %s)\n", who, v);
            return 0;
        }
        return 1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, rr_config *cfg)
{
    *cfg = (rr_config){.device = "auto",
                       .dtype = "auto",
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
                       .chunk_default = 0,
                       .max_chunks_per_doc = 10,
                       .max_chunks_per_request = 10000,
                       .admission_control = 1};
    struct option opts[N_FLAGS + 3];
    for (int i = 0; i < N_FLAGS; i++)
        opts[i] = (struct option){flags[i].name, flags[i].has_arg ? required_argument : no_argument,
                                  NULL, F_MODEL + i};
    opts[N_FLAGS] = (struct option){"help", no_argument, NULL, F_HELP};
    opts[N_FLAGS + 1] = (struct option){"version", no_argument, NULL, F_VERSION};
    opts[N_FLAGS + 2] = (struct option){0};
    int given[N_FLAGS] = {0};
    opterr = 0; /* our messages, which name the flag and point to --help */
    for (;;) {
        int id = getopt_long(argc, argv, ":h", opts, NULL);
        if (id == -1) break;
        const char *typed = argv[optind - 1]; /* the flag just read (with a bad one: it) */
        if (id == F_HELP) {
            usage(stdout);
            exit(0);
        } else if (id == F_VERSION) {
            printf("rerankd %s\n", RR_SERVER_VERSION);
            exit(0);
        } else if (id == ':') {
            fprintf(stderr, "rerankd: %s needs a value\n", typed);
            return 0;
        } else if (id == '?') {
            fprintf(stderr, "rerankd: unknown option %s (see --help)\n", typed);
            return 0;
        }
        char who[64];
        snprintf(who, sizeof who, "--%s", flags[id - F_MODEL].name);
        if (!apply(cfg, id, who, optarg)) return 0;
        given[id - F_MODEL] = 1;
    }
    if (optind < argc) {
        fprintf(stderr, "rerankd: unknown option %s (see --help)\n", argv[optind]);
        return 0;
    }
    /* The environment, for the flags the command line did not give. */
    for (int i = 0; i < N_FLAGS; i++) {
        if (given[i]) continue;
        char env[64];
        env_name(flags[i].name, env);
        const char *name = env, *v = getenv(env);
        if ((!v || !*v) && flags[i].tei_env) name = flags[i].tei_env, v = getenv(name);
        if (v && *v && !apply(cfg, F_MODEL + i, name, v)) return 0;
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
    rr_dtype dt;
    if (strcmp(cfg->dtype, "auto") != 0 && rr_dtype_parse(cfg->dtype, &dt, &err) != RR_OK) {
        fprintf(stderr, "rerankd: --dtype: %s (or auto)\n", err.msg);
        return 0;
    }
    if ((cfg->tls_cert || cfg->tls_key || cfg->tls_client_ca) && !(cfg->tls_cert && cfg->tls_key)) {
        fprintf(stderr,
                "rerankd: TLS needs both --tls-cert and --tls-key (--tls-client-ca adds mTLS)\n");
        return 0;
    }
    if (cfg->api_key && cfg->api_key_file) {
        fprintf(stderr, "rerankd: --api-key and --api-key-file are exclusive\n");
        return 0;
    }
    return 1;
}

/* auto → cuda:0 when the CUDA engine is built and a device opens, else cpu. A CPU-only build
 * (the CPU container image) goes straight to the CPU: a warning about CUDA there would only
 * alarm. A CUDA build without a device says why it fell back. Returns the engine or NULL
 * with err filled. */
static rr_engine *open_engine(rr_server *srv, rr_error *err)
{
    rr_engine_opts o = {
        .device = -1, .max_batch_tokens = srv->cfg.max_batch_tokens, .n_threads = srv->cfg.threads};
    rr_engine *e = NULL;
    if (rr_device_parse(srv->cfg.device, &o.device, err) != RR_OK) return NULL;
    const int dt_auto = strcmp(srv->cfg.dtype, "auto") == 0;
    if (!dt_auto && rr_dtype_parse(srv->cfg.dtype, &o.dtype, err) != RR_OK) return NULL;
    /* f32 and int8 are CPU precisions: auto goes to the CPU for them; an explicit CUDA device
     * is refused rather than run in another precision. */
    if (!dt_auto && (o.dtype == RR_DTYPE_F32 || o.dtype == RR_DTYPE_INT8)) {
        if (o.device == RR_DEVICE_AUTO) o.device = -1;
        if (o.device >= 0) {
            rr_set_error(err, RR_E_UNSUPPORTED,
                         "--dtype %s runs on the CPU only; CUDA runs f16 or bf16", srv->cfg.dtype);
            return NULL;
        }
    }
    if (o.device == RR_DEVICE_AUTO && !rr_engine_has_cuda()) o.device = -1;
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
                        .max_chunks = srv->cfg.max_chunks_per_doc,
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

    if (!rr_auth_init(&srv.auth, cfg.api_key, cfg.api_key_file, cfg.api_key_protect_ops)) goto stop;
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
