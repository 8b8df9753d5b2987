/*
 * report.c — rerank-bench's reports, in --out: report.json (every number, for scripts and
 * bench/results), report.md (the tables a reader wants), latency_k.dat and concurrency.dat
 * (gnuplot's data) and, when gnuplot is installed, latency_k.png and concurrency.png.
 * Latencies are printed in ms; "–" marks what was not measured.
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define M rb_ms_str /* short: a table row calls it up to a dozen times */

/* What every part of the report reads: the run, and the facts gathered once about it. */
typedef struct report {
    const rb_opts *o;
    const rb_inputs *in;
    const rb_info *info; /* NULL without a server */
    const char *inproc_desc;
    const rb_peers *ps;
    const rb_results *r;
    char cpu[256], date[64], device[200];
    struct utsname un;
    int st_i, hf_i; /* the sentence-transformers and transformers peers, or -1 */
} report;

static double ms(double s)
{
    return 1e3 * s;
}

static cJSON *summary_json(const rb_summary *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", s->n);
    if (s->n) {
        cJSON_AddNumberToObject(o, "mean", s->mean);
        cJSON_AddNumberToObject(o, "p50", s->p50);
        cJSON_AddNumberToObject(o, "p90", s->p90);
        cJSON_AddNumberToObject(o, "p99", s->p99);
        cJSON_AddNumberToObject(o, "max", s->max);
    }
    return o;
}

static cJSON *point_json(const rb_point *p, int with_stages)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "mode", p->mode);
    cJSON_AddNumberToObject(o, "k", p->k);
    cJSON_AddNumberToObject(o, "clients", p->clients);
    if (p->rate > 0) cJSON_AddNumberToObject(o, "offered_rate", p->rate);
    cJSON_AddNumberToObject(o, "requests", p->n);
    cJSON_AddNumberToObject(o, "errors", p->n_err);
    if (p->n_err) cJSON_AddStringToObject(o, "first_error", p->first_err);
    if (p->late_starts) cJSON_AddNumberToObject(o, "late_starts", p->late_starts);
    if (p->arrived) {
        cJSON *g = cJSON_AddObjectToObject(o, "goodput");
        cJSON_AddNumberToObject(g, "deadline_s", p->deadline_s);
        cJSON_AddNumberToObject(g, "arrived", p->arrived);
        cJSON_AddNumberToObject(g, "in_deadline", p->in_deadline);
        cJSON_AddNumberToObject(g, "share", (double)p->in_deadline / p->arrived);
        cJSON_AddNumberToObject(g, "refused_at_admission", p->refused);
    }
    cJSON_AddNumberToObject(o, "wall_s", p->wall_s);
    cJSON_AddNumberToObject(o, "requests_per_s", rb_per_s(p, p->n));
    cJSON_AddNumberToObject(o, "pairs_per_s", rb_per_s(p, (double)p->pairs));
    cJSON_AddNumberToObject(o, "tokens_per_s", rb_per_s(p, (double)p->tokens));
    cJSON_AddItemToObject(o, "latency_s", summary_json(&p->s_lat));
    if (with_stages) {
        cJSON *st = cJSON_AddObjectToObject(o, "server_stages_s");
        cJSON_AddItemToObject(st, "tokenization", summary_json(&p->s_tok));
        cJSON_AddItemToObject(st, "queue", summary_json(&p->s_queue));
        cJSON_AddItemToObject(st, "inference", summary_json(&p->s_inf));
        cJSON_AddItemToObject(st, "total", summary_json(&p->s_srv));
        cJSON_AddItemToObject(o, "first_response_s", summary_json(&p->s_first));
    }
    return o;
}

static void machine_cpu(char *out, size_t cap)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(out, cap, "unknown CPU");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c += 2;
                c[strcspn(c, "\n")] = 0;
                snprintf(out, cap, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static const char *R(double num, double den)
{
    static char ring[8][32];
    static int at;
    char *b = ring[at++ % 8];
    if (isnan(num) || isnan(den) || den <= 0)
        snprintf(b, 32, "–");
    else
        snprintf(b, 32, "%.2f×", num / den);
    return b;
}

/* PNG plots through gnuplot (when installed): only the series that were measured. */
static void plot(const report *rp)
{
    static const struct {
        int col, src;
        const char *style, *title;
    } series[] = {
        {2, 0, "lw 2 pt 7 lc rgb '#7b1fa2'", "rerankd gRPC unary p50"},
        {3, 0, "dt 2 pt 7 lc rgb '#7b1fa2'", "rerankd gRPC unary p99"},
        {4, 1, "pt 5 lc rgb '#1976d2'", "rerankd gRPC stream p50"},
        {6, 2, "pt 9 lc rgb '#2e7d32'", "engine in-process p50"},
        {8, 3, "lw 2 pt 11 lc rgb '#e65100'", "sentence-transformers p50"},
        {10, 4, "pt 13 lc rgb '#5d4037'", "transformers p50"},
    };
    const rb_results *r = rp->r;
    const int has[5] = {r->unary != NULL, r->stream != NULL, r->inproc != NULL, rp->st_i >= 0,
                        rp->hf_i >= 0};
    char cmd[1200];
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "rerank-bench: gnuplot not found; no PNG plots (data in %s/*.dat)\n",
                rp->o->out_dir);
        return;
    }
    snprintf(cmd, sizeof cmd, "gnuplot -e \"dir='%s'\" -", rp->o->out_dir);
    FILE *g = popen(cmd, "w");
    if (!g) return;
    fprintf(g, "set terminal pngcairo size 900,560 font 'sans,10'\nset datafile missing 'NaN'\n"
               "set grid\nset key top left\n");
    fprintf(g,
            "set output dir.'/latency_k.png'\nset title 'Latency per request vs K, one client "
            "(%s)' noenhanced\nset logscale xy\nset xlabel 'K (documents per request)'\n"
            "set ylabel 'latency (ms)'\nplot ",
            rp->device);
    int first = 1;
    for (size_t i = 0; i < sizeof series / sizeof *series; i++) {
        if (!has[series[i].src]) continue;
        fprintf(g, "%s dir.'/latency_k.dat' u 1:%d w lp %s t '%s'", first ? "" : ",", series[i].col,
                series[i].style, series[i].title);
        first = 0;
    }
    fprintf(g, "%s\n", first ? "1/0 notitle" : "");
    if (r->n_closed) {
        fprintf(g,
                "set output dir.'/concurrency.png'\nset title 'Throughput vs concurrency, "
                "closed loop, K = %d (%s)' noenhanced\nunset logscale\nset logscale x 2\n"
                "set xlabel 'concurrent clients'\nset ylabel 'pairs/s'\nset y2label "
                "'latency (ms)'\nset ytics nomirror\nset y2tics\nset yrange [0:*]\n"
                "set y2range [0:*]\n"
                "plot dir.'/concurrency.dat' u 1:3 w lp lw 2 pt 7 t 'throughput (pairs/s)' "
                "axes x1y1, '' u 1:4 w lp pt 5 t 'p50 latency (ms)' axes x1y2, '' u 1:5 w lp "
                "dt 2 pt 5 t 'p99 latency (ms)' axes x1y2\n",
                rp->o->sweep_k, rp->device);
    }
    if (pclose(g) != 0) fprintf(stderr, "rerank-bench: gnuplot failed; no PNG plots\n");
}

/* ----------------------------------------------------------------------------------------
 * report.json
 */

/* machine (first key), tool, date, device, server, inproc_engine */
static void json_setup(const report *rp, cJSON *root)
{
    cJSON *mach = cJSON_AddObjectToObject(root, "machine");
    cJSON_AddStringToObject(root, "tool", "rerank-bench");
    cJSON_AddStringToObject(root, "date", rp->date);
    cJSON_AddStringToObject(mach, "cpu", rp->cpu);
    cJSON_AddNumberToObject(mach, "online_cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddStringToObject(mach, "os", rp->un.release);
    cJSON_AddStringToObject(root, "device", rp->device);
    if (rp->info) {
        const rb_info *info = rp->info;
        cJSON *s = cJSON_AddObjectToObject(root, "server");
        cJSON_AddStringToObject(s, "target", rp->o->target);
        cJSON_AddStringToObject(s, "version", info->version);
        cJSON_AddStringToObject(s, "model", info->model_id);
        cJSON_AddStringToObject(s, "architecture", info->architecture);
        cJSON_AddStringToObject(s, "dtype", info->dtype);
        cJSON_AddStringToObject(s, "weights_dtype", info->weights_dtype);
        cJSON_AddNumberToObject(s, "max_batch_tokens", info->max_batch_tokens);
        cJSON_AddNumberToObject(s, "tokenizer_workers", info->tokenizer_workers);
    }
    if (rp->inproc_desc[0]) cJSON_AddStringToObject(root, "inproc_engine", rp->inproc_desc);
}

/* inputs, validation */
static void json_inputs(const report *rp, cJSON *root)
{
    const rb_results *r = rp->r;
    cJSON *ij = cJSON_AddObjectToObject(root, "inputs");
    cJSON_AddStringToObject(ij, "source", rp->in->source);
    cJSON_AddNumberToObject(ij, "query_tokens", rp->in->query_tokens);
    cJSON_AddNumberToObject(ij, "passage_tokens", rp->in->passage_tokens);
    cJSON_AddNumberToObject(ij, "stream_batch", rp->o->stream_batch);
    if (r->validation_ref[0]) {
        cJSON *v = cJSON_AddObjectToObject(root, "validation");
        cJSON_AddStringToObject(v, "reference", r->validation_ref);
        cJSON_AddNumberToObject(v, "max_rel_diff", r->validation_worst);
        cJSON_AddNumberToObject(v, "tolerance", LOGIT_TOL);
        cJSON_AddNumberToObject(v, "max_k", rp->o->validate_max_k);
    }
}

/* latency_by_k: per K, every side that ran, peers included */
static void json_latency_by_k(const report *rp, cJSON *root)
{
    const rb_results *r = rp->r;
    const rb_peers *ps = rp->ps;
    cJSON *lk = cJSON_AddArrayToObject(root, "latency_by_k");
    for (int ki = 0; ki < rp->in->n_k; ki++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "k", rp->in->per_k[ki].k);
        if (r->unary) cJSON_AddItemToObject(e, "grpc_unary", point_json(&r->unary[ki], 1));
        if (r->stream && r->stream[ki].cap)
            cJSON_AddItemToObject(e, "grpc_stream", point_json(&r->stream[ki], 1));
        if (r->inproc) cJSON_AddItemToObject(e, "inproc", point_json(&r->inproc[ki], 0));
        for (int i = 0; i < ps->n; i++)
            if (ps->p[i].by_k[ki].k >= 0)
                cJSON_AddItemToObject(e, ps->p[i].name, point_json(&ps->p[i].by_k[ki], 0));
        cJSON_AddItemToArray(lk, e);
    }
}

/* peers, peer_environment, concurrency, open_loop */
static void json_peers_and_load(const report *rp, cJSON *root)
{
    const rb_results *r = rp->r;
    const rb_peers *ps = rp->ps;
    if (ps->n) {
        cJSON *pj = cJSON_AddArrayToObject(root, "peers");
        for (int i = 0; i < ps->n; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", ps->p[i].name);
            cJSON_AddStringToObject(e, "desc", ps->p[i].desc);
            cJSON_AddItemToArray(pj, e);
        }
        if (ps->machine[0]) cJSON_AddStringToObject(root, "peer_environment", ps->machine);
    }
    cJSON *cj = cJSON_AddArrayToObject(root, "concurrency");
    for (int i = 0; i < r->n_closed; i++)
        cJSON_AddItemToArray(cj, point_json(&r->closed[i], 1));
    if (r->have_open) cJSON_AddItemToObject(root, "open_loop", point_json(&r->open, 1));
}

/* ----------------------------------------------------------------------------------------
 * gnuplot data
 */

static void dat_latency_k(const report *rp, FILE *f)
{
    const rb_results *r = rp->r;
    const rb_peer *st = rp->st_i >= 0 ? &rp->ps->p[rp->st_i] : NULL,
                  *hf = rp->hf_i >= 0 ? &rp->ps->p[rp->hf_i] : NULL;
    fprintf(f, "# K unary_p50 unary_p99 stream_p50 stream_p99 inproc_p50 inproc_p99 st_p50 st_p99 "
               "hf_p50 hf_p99 (ms)\n");
    for (int ki = 0; ki < rp->in->n_k; ki++) {
        const rb_summary *cols[5] = {r->unary ? &r->unary[ki].s_lat : NULL,
                                     r->stream && r->stream[ki].cap ? &r->stream[ki].s_lat : NULL,
                                     r->inproc ? &r->inproc[ki].s_lat : NULL,
                                     st && st->by_k[ki].k >= 0 ? &st->by_k[ki].s_lat : NULL,
                                     hf && hf->by_k[ki].k >= 0 ? &hf->by_k[ki].s_lat : NULL};
        fprintf(f, "%d", rp->in->per_k[ki].k);
        for (int c = 0; c < 5; c++) {
            if (cols[c] && cols[c]->n)
                fprintf(f, " %.4f %.4f", ms(cols[c]->p50), ms(cols[c]->p99));
            else
                fprintf(f, " NaN NaN");
        }
        fputc('\n', f);
    }
}

static void dat_concurrency(const report *rp, FILE *f)
{
    fprintf(f, "# clients requests_per_s pairs_per_s p50_ms p99_ms\n");
    for (int i = 0; i < rp->r->n_closed; i++) {
        const rb_point *p = &rp->r->closed[i];
        fprintf(f, "%d %.3f %.3f %.4f %.4f\n", p->clients, rb_per_s(p, p->n),
                rb_per_s(p, (double)p->pairs), ms(p->s_lat.p50), ms(p->s_lat.p99));
    }
}

/* ----------------------------------------------------------------------------------------
 * report.md
 */

/* The title and the facts: machine, device, server, engine, peers, inputs, validation. */
static void md_header(const report *rp, FILE *f)
{
    const rb_info *info = rp->info;
    const rb_peers *ps = rp->ps;
    const rb_results *r = rp->r;
    fprintf(f, "# rerank-bench, %s\n\n", rp->date);
    fprintf(f, "- Machine: %s, %ld online CPUs, Linux %s\n", rp->cpu, sysconf(_SC_NPROCESSORS_ONLN),
            rp->un.release);
    fprintf(f, "- Device: %s\n", rp->device);
    if (info)
        fprintf(f,
                "- Server: rerankd %s at %s, model `%s` (%s, weights %s, compute %s), "
                "max_batch_tokens %u, %u tokenizer workers\n",
                info->version, rp->o->target, info->model_id, info->architecture,
                info->weights_dtype, info->dtype, info->max_batch_tokens, info->tokenizer_workers);
    if (rp->inproc_desc[0])
        fprintf(f, "- In-process engine: %s (rr_score_query: tokenization + forward)\n",
                rp->inproc_desc);
    for (int i = 0; i < ps->n; i++)
        fprintf(f, "- Peer %s: %s\n", ps->p[i].name, ps->p[i].desc);
    if (ps->machine[0]) fprintf(f, "- Peer environment: %s\n", ps->machine);
    fprintf(f,
            "- Inputs: %s; queries ~%d tokens, passages ~%d tokens (windows of the text cut "
            "at word boundaries); the same requests for every side\n",
            rp->in->source, rp->in->query_tokens, rp->in->passage_tokens);
    if (r->validation_ref[0])
        fprintf(f,
                "- Validated before timing: every side's logits for the first request of each K "
                "≤ %d against %s, max |Δ|/max(1,|x|) = %.1e (tolerance %.0e)\n",
                rp->o->validate_max_k, r->validation_ref, r->validation_worst, LOGIT_TOL);
    fprintf(f, "- Percentiles are nearest-rank over n requests (p99 of fewer than 100 requests is "
               "the maximum); latencies in ms\n\n");
}

static void md_latency_by_k(const report *rp, FILE *f)
{
    const rb_results *r = rp->r;
    fprintf(f, "## Latency per request vs K (one client, sequential)\n\n");
    fprintf(f,
            "| K | n | gRPC unary p50 | p90 | p99 | max | pairs/s | tokens/s | gRPC stream p50 | "
            "p99 | in-process p50 | p99 | server cost (unary p50 − in-process p50) |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int ki = 0; ki < rp->in->n_k; ki++) {
        const rb_point *u = r->unary ? &r->unary[ki] : NULL,
                       *s = r->stream && r->stream[ki].cap ? &r->stream[ki] : NULL,
                       *ip = r->inproc ? &r->inproc[ki] : NULL;
        fprintf(f, "| %d | %d | %s | %s | %s | %s | %.0f | %.0f | %s | %s | %s | %s | %s |\n",
                rp->in->per_k[ki].k,
                u    ? u->n
                : ip ? ip->n
                     : 0,
                M(u ? u->s_lat.p50 : NAN), M(u ? u->s_lat.p90 : NAN), M(u ? u->s_lat.p99 : NAN),
                M(u ? u->s_lat.max : NAN), u ? rb_per_s(u, (double)u->pairs) : NAN,
                u ? rb_per_s(u, (double)u->tokens) : NAN, M(s ? s->s_lat.p50 : NAN),
                M(s ? s->s_lat.p99 : NAN), M(ip ? ip->s_lat.p50 : NAN), M(ip ? ip->s_lat.p99 : NAN),
                M(u && ip ? u->s_lat.p50 - ip->s_lat.p50 : NAN));
    }
}

/* Each peer's p50 and p99, then its ratios to gRPC unary and to in-process. */
static void md_peers(const report *rp, FILE *f)
{
    const rb_results *r = rp->r;
    const rb_peers *ps = rp->ps;
    fprintf(f, "\n## Peers, same inputs, same run\n\n");
    fprintf(f, "Ratio = peer p50 / rerankd p50 (above 1: rerankd is faster).\n\n| K |");
    for (int i = 0; i < ps->n; i++)
        fprintf(f, " %s p50 | p99 |", ps->p[i].name);
    for (int i = 0; i < ps->n; i++)
        fprintf(f, " %s / gRPC unary | %s / in-process |", ps->p[i].name, ps->p[i].name);
    fprintf(f, "\n|---|");
    for (int i = 0; i < 2 * ps->n; i++)
        fprintf(f, "---|---|");
    fprintf(f, "\n");
    for (int ki = 0; ki < rp->in->n_k; ki++) {
        double up = r->unary ? r->unary[ki].s_lat.p50 : NAN;
        double ipp = r->inproc ? r->inproc[ki].s_lat.p50 : NAN;
        fprintf(f, "| %d |", rp->in->per_k[ki].k);
        for (int i = 0; i < ps->n; i++) {
            const rb_point *pp = &ps->p[i].by_k[ki];
            fprintf(f, " %s | %s |", M(pp->k >= 0 ? pp->s_lat.p50 : NAN),
                    M(pp->k >= 0 ? pp->s_lat.p99 : NAN));
        }
        for (int i = 0; i < ps->n; i++) {
            const rb_point *pp = &ps->p[i].by_k[ki];
            double pv = pp->k >= 0 ? pp->s_lat.p50 : NAN;
            fprintf(f, " %s | %s |", R(pv, up), R(pv, ipp));
        }
        fprintf(f, "\n");
    }
}

static void md_server_stages(const report *rp, FILE *f)
{
    fprintf(f, "\n## Server stages (gRPC unary, medians, from rerank.v1.Stats)\n\n");
    fprintf(f, "| K | tokenization | queue | inference | server total | client − server "
               "(transport, client) |\n|---|---|---|---|---|---|\n");
    for (int ki = 0; ki < rp->in->n_k; ki++) {
        const rb_point *u = &rp->r->unary[ki];
        fprintf(f, "| %d | %s | %s | %s | %s | %s |\n", u->k, M(u->s_tok.p50), M(u->s_queue.p50),
                M(u->s_inf.p50), M(u->s_srv.p50), M(u->s_lat.p50 - u->s_srv.p50));
    }
}

static void md_streaming(const report *rp, FILE *f)
{
    fprintf(f, "\n## Streaming (RerankStream, %d documents per StreamBatch)\n\n",
            rp->o->stream_batch);
    fprintf(f, "| K | first batch scored p50 | whole ranking p50 | p99 | inference (sum of "
               "batches) p50 |\n|---|---|---|---|---|\n");
    for (int ki = 0; ki < rp->in->n_k; ki++) {
        const rb_point *s = &rp->r->stream[ki];
        if (!s->cap) continue;
        fprintf(f, "| %d | %s | %s | %s | %s |\n", s->k, M(s->s_first.p50), M(s->s_lat.p50),
                M(s->s_lat.p99), M(s->s_inf.p50));
    }
}

static void md_concurrency(const report *rp, FILE *f)
{
    fprintf(f,
            "\n## Throughput vs concurrency (closed loop, gRPC unary, K = %d)\n\n"
            "Warm-up: at least %g s and until every client has completed a request; "
            "window: completions during at least %g s and at least one per client.\n\n",
            rp->o->sweep_k, rp->o->warmup_s, rp->o->sweep_s);
    fprintf(f, "| clients | window (s) | requests | req/s | pairs/s | tokens/s | p50 | p90 | "
               "p99 | max | "
               "queue p50 | inference p50 | errors "
               "|\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < rp->r->n_closed; i++) {
        const rb_point *p = &rp->r->closed[i];
        fprintf(f, "| %d | %.1f | %d | %.1f | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %d |\n",
                p->clients, p->wall_s, p->n, rb_per_s(p, p->n), rb_per_s(p, (double)p->pairs),
                rb_per_s(p, (double)p->tokens), M(p->s_lat.p50), M(p->s_lat.p90), M(p->s_lat.p99),
                M(p->s_lat.max), M(p->s_queue.p50), M(p->s_inf.p50), p->n_err);
    }
}

static void md_open_loop(const report *rp, FILE *f)
{
    const rb_point *p = &rp->r->open;
    fprintf(f, "\n## Open loop (fixed arrival rate, latency from the scheduled arrival)\n\n");
    fprintf(f, "| K | offered req/s | achieved req/s | requests | p50 | p90 | p99 | max | "
               "queue p50 | queue p99 | errors |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    fprintf(f, "| %d | %.1f | %.1f | %d | %s | %s | %s | %s | %s | %s | %d |\n", p->k, p->rate,
            rb_per_s(p, p->n), p->n, M(p->s_lat.p50), M(p->s_lat.p90), M(p->s_lat.p99),
            M(p->s_lat.max), M(p->s_queue.p50), M(p->s_queue.p99), p->n_err);
    if (p->arrived)
        fprintf(f,
                "\nGoodput: %d of %d arrivals answered within the %.3f s deadline (%.1f %%); %d "
                "refused at admission.\n",
                p->in_deadline, p->arrived, p->deadline_s, 100.0 * p->in_deadline / p->arrived,
                p->refused);
}

static void markdown(const report *rp, FILE *f)
{
    const rb_results *r = rp->r;
    md_header(rp, f);
    md_latency_by_k(rp, f);
    if (rp->ps->n) md_peers(rp, f);
    if (r->unary) md_server_stages(rp, f);
    if (r->stream) md_streaming(rp, f);
    if (r->n_closed) md_concurrency(rp, f);
    if (r->have_open) md_open_loop(rp, f);
    fprintf(f, "\nPlots: `latency_k.png` (latency vs K)%s.\n",
            r->n_closed ? ", `concurrency.png` (throughput vs concurrency)" : "");
}

/* ----------------------------------------------------------------------------------------
 * Writing the files
 */

static void write_failed(const char *path)
{
    fprintf(stderr, "rerank-bench: cannot write %s: %s\n", path, strerror(errno));
}

/* Writes rp->o->out_dir/name through fill. */
static int write_file(const report *rp, const char *name, void (*fill)(const report *, FILE *))
{
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", rp->o->out_dir, name);
    if (!(f = fopen(path, "w"))) {
        write_failed(path);
        return -1;
    }
    fill(rp, f);
    fclose(f);
    return 0;
}

/* report.json: the text is made before the file is opened, so that running out of memory
 * leaves no empty report behind. */
static int write_json(const report *rp)
{
    char path[1024];
    FILE *f = NULL;
    cJSON *root = cJSON_CreateObject();
    json_setup(rp, root);
    json_inputs(rp, root);
    json_latency_by_k(rp, root);
    json_peers_and_load(rp, root);
    char *js = cJSON_Print(root);
    cJSON_Delete(root);
    snprintf(path, sizeof path, "%s/report.json", rp->o->out_dir);
    if (!js || !(f = fopen(path, "w"))) {
        write_failed(path);
        free(js);
        return -1;
    }
    fputs(js, f);
    fputc('\n', f);
    free(js);
    fclose(f);
    return 0;
}

int rb_report_write(const rb_opts *o, const rb_inputs *in, const rb_info *info,
                    const char *inproc_desc, const rb_peers *ps, const rb_results *r)
{
    report rp = {.o = o,
                 .in = in,
                 .info = info,
                 .inproc_desc = inproc_desc,
                 .ps = ps,
                 .r = r,
                 .st_i = rb_peers_find(ps, "sentence-transformers"),
                 .hf_i = rb_peers_find(ps, "transformers")};
    time_t now = time(NULL);
    machine_cpu(rp.cpu, sizeof rp.cpu);
    uname(&rp.un);
    strftime(rp.date, sizeof rp.date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    snprintf(rp.device, sizeof rp.device, "%s", info ? info->device : inproc_desc);
    if (write_json(&rp) || write_file(&rp, "latency_k.dat", dat_latency_k) ||
        write_file(&rp, "concurrency.dat", dat_concurrency) ||
        write_file(&rp, "report.md", markdown))
        return -1;
    plot(&rp);
    return 0;
}

/* mkdir -p */
int rb_mkdir_p(const char *dir)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "rerank-bench: cannot create %s: %s\n", buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (!c) break;
        }
    }
    return 0;
}
