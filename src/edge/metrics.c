/*
 * metrics.c — rerankd's Prometheus metrics (text exposition format 0.0.4), served by the
 * HTTP wing at GET /metrics.
 *
 * What is counted where: the scheduler counts scoring requests by outcome, their stages
 * (tokenize, queue, inference), documents and tokens, and one observation per engine batch
 * (sched.c); each wing counts its own calls (gRPC by method and status code, HTTP by route
 * and status) and renders them through the hook it registered (rr_metrics_add), so this
 * file names no protocol. All counters are lock-free; this file only reads them. Names follow
 * Prometheus conventions (base units, _total counters, _seconds); label values are fixed strings of
 * ours, so nothing here needs escaping except the model path.
 *
 * The text goes to one buffer kept in the server (64 KiB, grown if ever needed), so a
 * scrape allocates nothing through our funnel after the first, and
 * rerankd_heap_allocations_total, read before rendering, counts the request path only.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "edge/edge.h"
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

void rr_metrics_header(rr_strbuf *b, const char *name, const char *type, const char *help)
{
    rr_strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's series; `labels` is "" or `key="value"` without braces. */
void rr_metrics_hist(rr_strbuf *b, const char *name, const char *labels, const rr_hist *h)
{
    rr_hist_snap s;
    rr_hist_read(h, &s);
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < h->n; i++)
        rr_strbuf_printf(b, "%s_bucket{%s%sle=\"%.10g\"} %llu\n", name, labels, sep, h->le[i],
                         (unsigned long long)s.cum[i]);
    rr_strbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                     (unsigned long long)s.cum[h->n]);
    rr_strbuf_printf(b, "%s_sum%s%s%s %.9g\n", name, labels[0] ? "{" : "", labels,
                     labels[0] ? "}" : "", s.sum);
    rr_strbuf_printf(b, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
                     labels[0] ? "}" : "", (unsigned long long)s.cum[h->n]);
}

static void put_hist_metric(rr_strbuf *b, const char *name, const char *help, const rr_hist *h)
{
    rr_metrics_header(b, name, "histogram", help);
    rr_metrics_hist(b, name, "", h);
}

/* Deadline-aware admission (sched/admit.h): the work it sees queued, its estimate, its
 * refusals. */
static void put_admission(rr_strbuf *b, rr_admit *a, rr_engine *e)
{
    rr_admit_est est = rr_admit_estimate(a, 0, rr_now_ns());
    rr_metrics_header(b, "rerankd_queued_tokens", "gauge",
                      "Tokens of tokenized requests waiting for the engine, plus the batch being "
                      "computed (what a new request waits behind).");
    rr_strbuf_printf(b, "rerankd_queued_tokens %ld\n", est.ahead_tokens);
    rr_metrics_header(b, "rerankd_admission_control", "gauge",
                      "1 when requests whose deadline cannot be met are refused at admission "
                      "(--admission-control).");
    rr_strbuf_printf(b, "rerankd_admission_control %d\n", a->enabled);
    rr_metrics_header(b, "rerankd_admission_refused_total", "counter",
                      "Requests refused at admission (DEADLINE_EXCEEDED / 503) because their "
                      "deadline could not be met: before tokenization (the queue alone) or after.");
    rr_strbuf_printf(b, "rerankd_admission_refused_total{stage=\"intake\"} %llu\n",
                     (unsigned long long)rr_admit_refused(a, RR_ADMIT_INTAKE));
    rr_strbuf_printf(b, "rerankd_admission_refused_total{stage=\"tokenized\"} %llu\n",
                     (unsigned long long)rr_admit_refused(a, RR_ADMIT_TOKENIZED));
    rr_metrics_header(
        b, "rerankd_admission_seconds_per_token", "gauge",
        "Estimated engine time per token for a batch of at most batch_tokens_le tokens "
        "(moving average of measured forwards; buckets without data are absent).");
    int max_tok = rr_engine_max_batch_tokens(e);
    for (int i = 0; i < RR_ADMIT_BUCKETS; i++) {
        double spt = rr_admit_seconds_per_token(a, i);
        if (spt > 0)
            rr_strbuf_printf(b,
                             "rerankd_admission_seconds_per_token{batch_tokens_le=\"%ld\"} %.6g\n",
                             rr_admit_bucket_le(i), spt);
        if (rr_admit_bucket_le(i) >= max_tok) break;
    }
    if (!est.cold) {
        rr_metrics_header(b, "rerankd_admission_wait_seconds", "gauge",
                          "Estimated wait of a new request for the work queued ahead of it "
                          "(absent until the estimator has data).");
        rr_strbuf_printf(b, "rerankd_admission_wait_seconds %.6g\n", (double)est.ns * 1e-9);
    }
}

static const char *const outcome_names[5] = {"done", "failed", "cancelled", "expired", "shutdown"};

void rr_metrics_add(rr_server *srv, rr_metrics_fn fn, void *ctx)
{
    if (srv->n_wings < RR_MAX_WINGS) {
        srv->wings[srv->n_wings].fn = fn;
        srv->wings[srv->n_wings].ctx = ctx;
        srv->n_wings++;
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

    rr_metrics_header(&b, "rerankd_info", "gauge", "Build and model of this server (value 1).");
    rr_strbuf_printf(&b, "rerankd_info{version=\"%s\",model=\"", RR_SERVER_VERSION);
    put_escaped(&b, srv->cfg.model_dir);
    rr_strbuf_printf(&b, "\",architecture=\"%s\",device=\"", ready ? srv->info->arch_name : "");
    put_escaped(&b, ready ? srv->device_desc : "");
    rr_strbuf_printf(&b, "\",max_length=\"%d\",tls=\"%s\"} 1\n", ready ? srv->info->max_length : 0,
                     srv->tls_mode);
    rr_metrics_header(&b, "rerankd_ready", "gauge",
                      "1 once the model is loaded and the server answers scoring calls.");
    rr_strbuf_printf(&b, "rerankd_ready %d\n", ready);
    int serving = rr_health_get(srv) == RR_HEALTH_SERVING;
    rr_metrics_header(&b, "rerankd_serving", "gauge",
                      "1 while grpc.health.v1 reports SERVING (0 while loading or draining).");
    rr_strbuf_printf(&b, "rerankd_serving %d\n", serving);
    rr_metrics_header(&b, "rerankd_max_batch_tokens", "gauge",
                      "Token budget of one engine batch (--max-batch-tokens).");
    rr_strbuf_printf(&b, "rerankd_max_batch_tokens %d\n",
                     ready ? rr_engine_max_batch_tokens(srv->engine) : srv->cfg.max_batch_tokens);
    rr_metrics_header(&b, "rerankd_auth_refused_total", "counter",
                      "Requests refused for a missing or wrong API key, by protocol.");
    static const char *const protocols[RR_AUTH_PROTOCOLS] = {"grpc", "http"};
    for (int p = 0; p < RR_AUTH_PROTOCOLS; p++)
        rr_strbuf_printf(&b, "rerankd_auth_refused_total{protocol=\"%s\"} %llu\n", protocols[p],
                         (unsigned long long)atomic_load(&srv->auth.refused[p]));
    rr_metrics_header(&b, "process_start_time_seconds", "gauge",
                      "Start time of the process since the Unix epoch.");
    rr_strbuf_printf(&b, "process_start_time_seconds %.3f\n", srv->boot_unix);
    long rss = resident_bytes();
    if (rss >= 0) {
        rr_metrics_header(&b, "process_resident_memory_bytes", "gauge",
                          "Resident memory size in bytes.");
        rr_strbuf_printf(&b, "process_resident_memory_bytes %ld\n", rss);
    }

    rr_metrics_header(
        &b, "rerankd_heap_allocations_total", "counter",
        "Heap allocations made through rerankd's allocation funnel (its own code and the "
        "protobuf decoding into its arenas; not gRPC's internals). Flat under a steady load.");
    rr_strbuf_printf(&b, "rerankd_heap_allocations_total %ld\n", allocs);
    for (int i = 0; i < srv->n_wings; i++)
        srv->wings[i].fn(&b, srv->wings[i].ctx);

    if (ready) {
        const rr_sched_stats *st = rr_sched_stats_get(srv->sched);
        rr_metrics_header(
            &b, "rerankd_requests_in_flight", "gauge",
            "Scoring requests (unary calls and stream batches) being tokenized, queued or scored.");
        rr_strbuf_printf(&b, "rerankd_requests_in_flight %d\n", rr_sched_live(srv->sched));
        rr_metrics_header(&b, "rerankd_requests_max_in_flight", "gauge",
                          "--max-in-flight: more get RESOURCE_EXHAUSTED.");
        rr_strbuf_printf(&b, "rerankd_requests_max_in_flight %d\n", srv->cfg.max_in_flight);
        rr_metrics_header(&b, "rerankd_queued_requests", "gauge",
                          "Scoring requests waiting, by the stage they wait for.");
        rr_strbuf_printf(&b, "rerankd_queued_requests{stage=\"tokenize\"} %d\n",
                         atomic_load(&st->queued_tokenize));
        rr_strbuf_printf(&b, "rerankd_queued_requests{stage=\"engine\"} %d\n",
                         atomic_load(&st->queued_engine));
        put_admission(&b, rr_sched_admit(srv->sched), srv->engine);
        rr_metrics_header(&b, "rerankd_requests_total", "counter",
                          "Finished scoring requests by outcome.");
        for (int o = 0; o < 5; o++)
            rr_strbuf_printf(
                &b, "rerankd_requests_total{outcome=\"%s\"} %llu\n", outcome_names[o],
                (unsigned long long)atomic_load_explicit(&st->outcomes[o], memory_order_relaxed));
        rr_metrics_header(&b, "rerankd_pairs_total", "counter", "(query, document) pairs scored.");
        rr_strbuf_printf(&b, "rerankd_pairs_total %llu\n",
                         (unsigned long long)atomic_load(&st->pairs));
        rr_metrics_header(&b, "rerankd_tokens_total", "counter",
                          "Tokens of the pairs scored, after truncation.");
        rr_strbuf_printf(&b, "rerankd_tokens_total %llu\n",
                         (unsigned long long)atomic_load(&st->tokens));
        rr_metrics_header(&b, "rerankd_engine_failures_total", "counter",
                          "Engine batches that failed.");
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
