/*
 * metrics.c — rerankd's Prometheus metrics (text exposition format 0.0.4), served by http.c
 * at GET /metrics.
 *
 * What is counted where: the gRPC edge counts finished RPCs by method and status code with
 * their handling time (arrival → status sent; call.c); the scheduler counts scoring requests
 * by outcome, their stages (tokenize, queue, inference), documents and tokens, and one
 * observation per engine batch (sched.c). Both use lock-free counters; this file only reads
 * them. Names follow Prometheus conventions (base units, _total counters, _seconds); label
 * values are fixed strings of ours, so nothing here needs escaping except the model path.
 *
 * The text goes to one buffer kept in the server (64 KiB, grown if ever needed), so a
 * scrape allocates nothing through our funnel after the first, and
 * rerankd_heap_allocations_total, read before rendering, counts the request path only.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server.h"
#include "util/strbuf.h"
#include "util/util.h"

/* A label value as Prometheus wants it: backslash, double quote and newline escaped. */
static void put_escaped(rr_strbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            rr_strbuf_printf(b, "\\\\");
        else if (*s == '"')
            rr_strbuf_printf(b, "\\\"");
        else if (*s == '\n')
            rr_strbuf_printf(b, "\\n");
        else
            rr_strbuf_printf(b, "%c", *s);
    }
}

static void header(rr_strbuf *b, const char *name, const char *type, const char *help)
{
    rr_strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's series; `labels` is "" or `key="value"` without braces. */
static void put_hist(rr_strbuf *b, const char *name, const char *labels, const rr_hist *h)
{
    rr_hist_snap s;
    rr_hist_read(h, &s);
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < h->n; i++)
        rr_strbuf_printf(b, "%s_bucket{%s%sle=\"%.10g\"} %llu\n", name, labels, sep, h->le[i],
            (unsigned long long)s.cum[i]);
    rr_strbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)s.cum[h->n]);
    rr_strbuf_printf(b, "%s_sum%s%s%s %.9g\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", s.sum);
    rr_strbuf_printf(b, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
        (unsigned long long)s.cum[h->n]);
}

static void put_hist_metric(rr_strbuf *b, const char *name, const char *help, const rr_hist *h)
{
    header(b, name, "histogram", help);
    put_hist(b, name, "", h);
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

static const char *const outcome_names[5] = {"done", "failed", "cancelled", "expired", "shutdown"};

void rr_metrics_init(rr_server *srv)
{
    for (int m = 0; m <= RR_M_COUNT; m++) {
        for (int c = 0; c < RR_N_CODES; c++)
            atomic_init(&srv->rpc_codes[m][c], 0);
        rr_hist_init(&srv->rpc_seconds[m], rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    }
    for (int r = 0; r < 2; r++) {
        for (int c = 0; c < RR_HTTP_CODES; c++)
            atomic_init(&srv->http_codes[r][c], 0);
        rr_hist_init(&srv->http_seconds[r], rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    }
}

static long resident_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    int ok = fscanf(f, "%ld %ld", &pages, &rss) == 2;
    fclose(f);
    return ok ? rss * sysconf(_SC_PAGESIZE) : -1;
}

void rr_metrics_free(rr_server *srv)
{
    rr_free(srv->metrics_buf);
    srv->metrics_buf = NULL;
    srv->metrics_cap = 0;
}

const char *rr_metrics_render(rr_server *srv, size_t *len)
{
    long allocs = rr_alloc_count(); /* before this scrape can allocate anything */
    if (!srv->metrics_buf) {
        srv->metrics_buf = rr_malloc(65536);
        srv->metrics_cap = srv->metrics_buf ? 65536 : 0;
    }
    rr_strbuf b = {.p = srv->metrics_buf, .cap = srv->metrics_cap};
    if (!b.p) return NULL;
    b.p[0] = 0;
    /* The model, device and scheduler are published by `ready` (set after them, never
     * cleared); stats_off, set under metrics_mu (held here) before the scheduler is freed,
     * withdraws the scheduler. */
    int ready = atomic_load(&srv->ready) && !srv->stats_off;

    header(&b, "rerankd_info", "gauge", "Build and model of this server (value 1).");
    rr_strbuf_printf(&b, "rerankd_info{version=\"%s\",model=\"", RR_SERVER_VERSION);
    put_escaped(&b, srv->cfg.model_dir);
    rr_strbuf_printf(&b, "\",architecture=\"%s\",device=\"", ready ? srv->info->arch_name : "");
    put_escaped(&b, ready ? srv->device_desc : "");
    rr_strbuf_printf(&b, "\",max_length=\"%d\",tls=\"%s\"} 1\n", ready ? srv->info->max_length : 0,
        srv->tls ? (srv->cfg.tls_client_ca ? "mutual" : "server") : "off");
    header(&b, "rerankd_ready", "gauge",
           "1 once the model is loaded and the server answers scoring calls.");
    rr_strbuf_printf(&b, "rerankd_ready %d\n", ready);
    pthread_mutex_lock(&srv->health_mu);
    int serving = srv->health == RR_HEALTH_SERVING;
    pthread_mutex_unlock(&srv->health_mu);
    header(&b, "rerankd_serving", "gauge",
           "1 while grpc.health.v1 reports SERVING (0 while loading or draining).");
    rr_strbuf_printf(&b, "rerankd_serving %d\n", serving);
    header(&b, "rerankd_max_batch_tokens", "gauge",
           "Token budget of one engine batch (--max-batch-tokens).");
    rr_strbuf_printf(&b, "rerankd_max_batch_tokens %d\n", srv->cfg.max_batch_tokens);
    header(&b, "process_start_time_seconds", "gauge",
           "Start time of the process since the Unix epoch.");
    rr_strbuf_printf(&b, "process_start_time_seconds %.3f\n", srv->boot_unix);
    long rss = resident_bytes();
    if (rss >= 0) {
        header(&b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        rr_strbuf_printf(&b, "process_resident_memory_bytes %ld\n", rss);
    }

    header(&b, "rerankd_heap_allocations_total", "counter",
           "Heap allocations made through rerankd's allocation funnel (its own code and the "
           "protobuf decoding into its arenas; not gRPC's internals). Flat under a steady load.");
    rr_strbuf_printf(&b, "rerankd_heap_allocations_total %ld\n", allocs);
    header(&b, "rerankd_http_requests_total", "counter",
           "Finished HTTP reranking requests by route and status (other: 400-range parse "
           "failures of the transport, 500s).");
    static const char *const http_routes[2] = {"/rerank", "/v1/rerank"};
    static const char *const http_codes[RR_HTTP_CODES] = {"200", "413", "422",
                                                          "429", "503", "other"};
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < RR_HTTP_CODES; c++)
            rr_strbuf_printf(&b, "rerankd_http_requests_total{route=\"%s\",code=\"%s\"} %llu\n", http_routes[r],
                http_codes[c], (unsigned long long)atomic_load(&srv->http_codes[r][c]));
    header(&b, "rerankd_http_handling_seconds", "histogram",
           "HTTP reranking request time, first byte of headers to answer queued, by route.");
    for (int r = 0; r < 2; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\"", http_routes[r]);
        put_hist(&b, "rerankd_http_handling_seconds", labels, &srv->http_seconds[r]);
    }
    header(&b, "rerankd_grpc_live_calls", "gauge", "gRPC calls in progress (streams included).");
    rr_strbuf_printf(&b, "rerankd_grpc_live_calls %d\n", atomic_load(&srv->live_calls));
    header(&b, "rerankd_grpc_requests_total", "counter",
           "Finished gRPC calls by method and status code (CANCELLED: the client went away).");
    for (int m = 0; m <= RR_M_COUNT; m++)
        for (int c = 0; c < RR_N_CODES; c++) {
            uint64_t n = atomic_load_explicit(&srv->rpc_codes[m][c], memory_order_relaxed);
            if (n || c == 0)
                rr_strbuf_printf(&b, "rerankd_grpc_requests_total{method=\"%s\",code=\"%s\"} %llu\n",
                    rr_method_path((rr_method)m), code_names[c], (unsigned long long)n);
        }
    header(&b, "rerankd_grpc_handling_seconds", "histogram",
           "gRPC call handling time, arrival to status sent (a stream's whole life), by method.");
    for (int m = 0; m <= RR_M_COUNT; m++) {
        char labels[160];
        snprintf(labels, sizeof labels, "method=\"%s\"", rr_method_path((rr_method)m));
        put_hist(&b, "rerankd_grpc_handling_seconds", labels, &srv->rpc_seconds[m]);
    }

    if (ready) {
        const rr_sched_stats *st = rr_sched_stats_get(srv->sched);
        header(
            &b, "rerankd_requests_in_flight", "gauge",
            "Scoring requests (unary calls and stream batches) being tokenized, queued or scored.");
        rr_strbuf_printf(&b, "rerankd_requests_in_flight %d\n", rr_sched_live(srv->sched));
        header(&b, "rerankd_requests_max_in_flight", "gauge",
               "--max-in-flight: more get RESOURCE_EXHAUSTED.");
        rr_strbuf_printf(&b, "rerankd_requests_max_in_flight %d\n", srv->cfg.max_in_flight);
        header(&b, "rerankd_queued_requests", "gauge",
               "Scoring requests waiting, by the stage they wait for.");
        rr_strbuf_printf(&b, "rerankd_queued_requests{stage=\"tokenize\"} %d\n",
            atomic_load(&st->queued_tokenize));
        rr_strbuf_printf(&b, "rerankd_queued_requests{stage=\"engine\"} %d\n", atomic_load(&st->queued_engine));
        header(&b, "rerankd_requests_total", "counter", "Finished scoring requests by outcome.");
        for (int o = 0; o < 5; o++)
            rr_strbuf_printf(&b, "rerankd_requests_total{outcome=\"%s\"} %llu\n", outcome_names[o],
                (unsigned long long)atomic_load_explicit(&st->outcomes[o], memory_order_relaxed));
        header(&b, "rerankd_pairs_total", "counter", "(query, document) pairs scored.");
        rr_strbuf_printf(&b, "rerankd_pairs_total %llu\n", (unsigned long long)atomic_load(&st->pairs));
        header(&b, "rerankd_tokens_total", "counter",
               "Tokens of the pairs scored, after truncation.");
        rr_strbuf_printf(&b, "rerankd_tokens_total %llu\n", (unsigned long long)atomic_load(&st->tokens));
        header(&b, "rerankd_engine_failures_total", "counter", "Engine batches that failed.");
        rr_strbuf_printf(&b, "rerankd_engine_failures_total %llu\n",
            (unsigned long long)atomic_load(&st->forward_failures));
        put_hist_metric(&b, "rerankd_request_seconds",
                        "Scoring request time, submit to done, every outcome.",
                        &st->request_seconds);
        put_hist_metric(&b, "rerankd_tokenize_seconds", "Tokenization time of a scored request.",
                        &st->tokenize_seconds);
        put_hist_metric(&b, "rerankd_queue_seconds",
                        "Wait of a scored request from tokenized to its first batch.",
                        &st->queue_seconds);
        put_hist_metric(&b, "rerankd_inference_seconds",
                        "Forward time of the batches that carried a scored request's pairs.",
                        &st->infer_seconds);
        put_hist_metric(&b, "rerankd_request_pairs", "Documents per scoring request.",
                        &st->request_pairs);
        put_hist_metric(&b, "rerankd_batch_tokens", "Tokens per engine batch.", &st->batch_tokens);
        put_hist_metric(&b, "rerankd_batch_pairs", "Pairs per engine batch.", &st->batch_pairs);
        put_hist_metric(&b, "rerankd_forward_seconds", "Engine forward time per batch.",
                        &st->forward_seconds);
    }
    srv->metrics_buf = b.p; /* it may have grown */
    srv->metrics_cap = b.cap;
    if (b.oom) return NULL;
    *len = b.len;
    return b.p;
}
