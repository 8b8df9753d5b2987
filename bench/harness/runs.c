/*
 * runs.c — what rerank-bench measures and how: measurement points (per-request samples and
 * their summaries), the closed loop, the open loop and the in-process run that fill them,
 * and the phases of rerank_bench.c built from those runs.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* ----------------------------------------------------------------------------------------
 * Progress bar (stderr, only on a terminal)
 */

static int g_progress;
static double g_progress_last;

void rb_progress_enable(int on)
{
    g_progress = on;
}

static void progress(const char *label, double done, double total)
{
    if (!g_progress) return;
    double now = rb_now_s();
    if (done < total && now - g_progress_last < 0.1) return;
    g_progress_last = now;
    int width = 30, fill = total > 0 ? (int)(width * done / total) : width;
    if (fill > width) fill = width;
    fprintf(stderr, "\r  [%.*s%*s] %3d%% %-40.40s", fill, "##############################",
            width - fill, "", total > 0 ? (int)(100 * done / total) : 100, label);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}

/* ----------------------------------------------------------------------------------------
 * Measurement points
 */

int rb_point_init(rb_point *p, const char *mode, int k, int cap)
{
    memset(p, 0, sizeof *p);
    snprintf(p->mode, sizeof p->mode, "%s", mode);
    p->k = k;
    p->cap = cap > 0 ? cap : 1;
    double **arr[] = {&p->lat, &p->first, &p->tok, &p->queue, &p->inf, &p->srv};
    for (size_t i = 0; i < sizeof arr / sizeof *arr; i++)
        if (!(*arr[i] = calloc((size_t)p->cap, sizeof(double)))) return -1;
    return 0;
}

void rb_point_free(rb_point *p)
{
    free(p->lat), free(p->first), free(p->tok), free(p->queue), free(p->inf), free(p->srv);
    memset(p, 0, sizeof *p);
}

static int point_grow(rb_point *p)
{
    if (p->n < p->cap) return 0;
    int cap = 2 * p->cap;
    double **arr[] = {&p->lat, &p->first, &p->tok, &p->queue, &p->inf, &p->srv};
    for (size_t i = 0; i < sizeof arr / sizeof *arr; i++) {
        double *t = realloc(*arr[i], (size_t)cap * sizeof(double));
        if (!t) return -1;
        *arr[i] = t;
    }
    p->cap = cap;
    return 0;
}

void rb_point_finish(rb_point *p)
{
    rb_summarize(p->lat, p->n, &p->s_lat);
    rb_summarize(p->first, p->n, &p->s_first);
    rb_summarize(p->tok, p->n, &p->s_tok);
    rb_summarize(p->queue, p->n, &p->s_queue);
    rb_summarize(p->inf, p->n, &p->s_inf);
    rb_summarize(p->srv, p->n, &p->s_srv);
}

double rb_per_s(const rb_point *p, double x)
{
    return p->wall_s > 0 ? x / p->wall_s : NAN;
}

const char *rb_ms_str(double s)
{
    static char ring[16][32];
    static int at;
    char *b = ring[at++ % 16];
    if (isnan(s))
        snprintf(b, 32, "–");
    else if (s < 0.01)
        snprintf(b, 32, "%.2f", 1e3 * s);
    else
        snprintf(b, 32, "%.1f", 1e3 * s);
    return b;
}

/* ----------------------------------------------------------------------------------------
 * Driving the server
 */

typedef struct run_ctx {
    rb_point *p;
    rb_k_inputs *kp;
    int warmup_n;     /* count mode: cookies below are warm-up */
    double t_measure; /* time mode: completions from here ... */
    double t_end;     /* ... to here are measured; later ones are ignored */
    int time_mode, open_loop;
    double deadline_s; /* open loop: the call deadline, for goodput */
    long n_done;       /* completions so far, warm-up included */
    double first_measured_start, last_end;
} run_ctx;

static void on_reply(void *user, const rb_reply *r)
{
    run_ctx *x = user;
    rb_point *p = x->p;
    double t_done = r->t_start + r->latency_s;
    int measured;
    x->n_done++;
    if (x->time_mode) {
        /* open loop: measured = arrived in the window (t_end is infinite, completion may be
         * late); closed loop: measured = completed in the window, cancelled leftovers after
         * t_end are neither measured nor errors */
        if (t_done > x->t_end) return;
        measured = x->open_loop ? r->t_start >= x->t_measure : t_done >= x->t_measure;
    } else {
        measured = r->cookie >= x->warmup_n;
    }
    if (x->open_loop && measured) {
        p->arrived++;
        if (r->status == 0 && r->n_scored == r->n_docs && r->latency_s <= x->deadline_s)
            p->in_deadline++;
        if (r->status == GRPC_STATUS_DEADLINE_EXCEEDED &&
            strncmp(r->msg, "refused at admission", 20) == 0)
            p->refused++;
    }
    if (r->status != 0 || r->n_scored != r->n_docs) {
        if (!p->n_err)
            snprintf(p->first_err, sizeof p->first_err, "status %d: %.200s (%d of %d scored)",
                     r->status, r->msg, r->n_scored, r->n_docs);
        p->n_err++;
        return;
    }
    if (!measured || point_grow(p)) return;
    const rb_query_set *qs = &x->kp->pool[r->cookie % x->kp->n_pool];
    p->lat[p->n] = r->latency_s;
    p->first[p->n] = r->first_s;
    p->tok[p->n] = 1e-9 * (double)r->stats.tokenization_ns;
    p->queue[p->n] = 1e-9 * (double)r->stats.queue_ns;
    p->inf[p->n] = 1e-9 * (double)r->stats.inference_ns;
    p->srv[p->n] = 1e-9 * (double)r->stats.total_ns;
    p->n++;
    p->pairs += r->n_docs;
    p->tokens += r->stats.total_tokens ? (long)r->stats.total_tokens : qs->tokens;
    if (x->first_measured_start == 0 || r->t_start < x->first_measured_start)
        x->first_measured_start = r->t_start;
    if (t_done > x->last_end) x->last_end = t_done;
}

static const rb_request *pick(rb_k_inputs *kp, long seq, int streaming)
{
    rb_query_set *qs = &kp->pool[seq % kp->n_pool];
    return streaming ? &qs->stream : &qs->unary;
}

/* Closed loop: `clients` calls always in flight.
 * Count mode (measure_s == 0): warmup_n + n requests, all measured but the warm-up.
 * Time mode: warm-up lasts at least warmup_s and until every client has completed one
 * request (so the queue is in its steady state, however long one request takes at this
 * concurrency); then completions are measured for measure_s, extended until there are at
 * least `clients` of them (one round; a slow server gets a longer window, not an empty
 * one; at most 300 s); then the calls still in flight are cancelled rather than waited for. */
static int run_closed(rb_client *cli, rb_k_inputs *kp, int streaming, int clients, int warmup_n,
                      int n, double warmup_s, double measure_s, rb_point *p, const char *label)
{
    run_ctx x = {.p = p, .kp = kp, .warmup_n = warmup_n, .time_mode = measure_s > 0};
    double t0 = rb_now_s();
    long seq = 0;
    char err[256];
    x.t_measure = x.t_end = 1e300;
    for (;;) {
        double now = rb_now_s();
        if (x.time_mode && x.t_measure > 1e299 &&
            ((x.n_done >= clients && now - t0 >= warmup_s) || now - t0 > 300)) {
            x.t_measure = now;
        }
        if (x.time_mode && x.t_measure < 1e299 && x.t_end > 1e299 &&
            ((now >= x.t_measure + measure_s && p->n + p->n_err >= clients) ||
             now >= x.t_measure + 300))
            x.t_end = now;
        int more = x.time_mode ? now < x.t_end : seq < warmup_n + n;
        while (more && rb_client_in_flight(cli) < clients) {
            int rc = rb_client_start(cli, pick(kp, seq, streaming), rb_now_s(), seq, on_reply, &x,
                                     err, sizeof err);
            if (rc < 0) {
                fprintf(stderr, "rerank-bench: %s\n", err);
                return -1;
            }
            if (rc == 0) break;
            seq++;
        }
        if (!more) {
            if (x.time_mode) rb_client_cancel_all(cli);
            if (rb_client_in_flight(cli) == 0) break;
        }
        double wake = rb_now_s() + 0.1;
        if (x.time_mode && x.t_measure < 1e299 && x.t_measure + measure_s < wake && more)
            wake = x.t_measure + measure_s > now ? x.t_measure + measure_s : now + 0.01;
        rb_client_poll(cli, wake);
        if (!x.time_mode)
            progress(label, (double)(p->n + p->n_err), n);
        else if (x.t_measure > 1e299)
            progress(label, 0, 1);
        else
            progress(label, rb_now_s() - x.t_measure, measure_s);
    }
    p->clients = clients;
    p->wall_s = x.time_mode ? x.t_end - x.t_measure : x.last_end - x.first_measured_start;
    if (x.time_mode) progress(label, 1, 1);
    rb_point_finish(p);
    return 0;
}

/* Open loop: arrivals every 1/rate s for warmup_s + measure_s; latency from the scheduled
 * arrival. Calls left over at the end are waited for (bounded by the call deadline). */
static int run_open(rb_client *cli, rb_k_inputs *kp, double rate, double warmup_s, double measure_s,
                    double deadline_s, rb_point *p, const char *label)
{
    run_ctx x = {.p = p, .kp = kp, .time_mode = 1, .open_loop = 1, .deadline_s = deadline_s};
    double t0 = rb_now_s(), next = t0, step = 1.0 / rate;
    long seq = 0;
    char err[256];
    /* Requests that arrived in the window are all measured, however late they complete:
     * their latency is real; only arrivals define the window (t_end infinite). */
    x.t_measure = t0 + warmup_s;
    x.t_end = 1e300;
    double arrivals_end = t0 + warmup_s + measure_s;
    for (;;) {
        double now = rb_now_s();
        while (next <= now && next < arrivals_end) {
            int rc =
                rb_client_start(cli, pick(kp, seq, 0), next, seq, on_reply, &x, err, sizeof err);
            if (rc < 0) {
                fprintf(stderr, "rerank-bench: %s\n", err);
                return -1;
            }
            if (rc == 0) { /* every slot busy: this arrival waits, its latency still counts */
                p->late_starts++;
                break;
            }
            seq++;
            next += step;
        }
        if (next >= arrivals_end && rb_client_in_flight(cli) == 0) break;
        double wake = next < arrivals_end ? next : rb_now_s() + 0.1;
        rb_client_poll(cli, wake);
        progress(label, rb_now_s() - t0, warmup_s + measure_s);
    }
    progress(label, 1, 1);
    p->rate = rate;
    p->wall_s = measure_s;
    p->deadline_s = deadline_s;
    rb_point_finish(p);
    return 0;
}

/* ----------------------------------------------------------------------------------------
 * In-process engine
 */

static int run_inproc(rr_engine *e, const rr_model *m, rb_k_inputs *kp, rb_point *p,
                      const char *label)
{
    rr_score_opts so = {.max_length = 0, .truncate = 1, .keep_last = 0};
    rr_error err;
    float *logits = malloc((size_t)kp->k * sizeof *logits);
    size_t *lens = malloc((size_t)kp->k * sizeof *lens);
    double t_first = 0, t_last = 0;
    if (!logits || !lens) goto fail;
    for (int i = 0; i < kp->warmup + kp->n_requests; i++) {
        rb_query_set *qs = &kp->pool[i % kp->n_pool];
        for (int d = 0; d < qs->n_docs; d++)
            lens[d] = strlen(qs->docs[d]);
        double t0 = rb_now_s();
        rr_status st =
            rr_score_query(e, m, qs->query, strlen(qs->query), (const char *const *)qs->docs, lens,
                           qs->n_docs, &so, logits, &err);
        double t1 = rb_now_s();
        if (st != RR_OK) {
            fprintf(stderr, "rerank-bench: rr_score_query: %s\n", err.msg);
            goto fail;
        }
        if (i < kp->warmup || point_grow(p)) continue;
        if (!t_first) t_first = t0;
        t_last = t1;
        p->lat[p->n] = p->inf[p->n] = t1 - t0;
        p->first[p->n] = t1 - t0;
        p->n++;
        p->pairs += qs->n_docs;
        p->tokens += qs->tokens;
        progress(label, p->n, kp->n_requests);
    }
    p->clients = 1;
    p->wall_s = t_last - t_first;
    rb_point_finish(p);
    free(logits);
    free(lens);
    return 0;
fail:
    free(logits);
    free(lens);
    return -1;
}

/* ----------------------------------------------------------------------------------------
 * Phases
 */

/* Latency at one K: every side that runs, one after the other, then a line on stderr. */
static int latency_at_k(const rb_opts *o, rb_k_inputs *kp, rb_client *cli, rr_engine *engine,
                        const rr_model *m, rb_results *r, int ki)
{
    char label[64];
    if (r->unary) {
        snprintf(label, sizeof label, "K=%d gRPC unary", kp->k);
        if (rb_point_init(&r->unary[ki], "unary", kp->k, kp->n_requests) ||
            run_closed(cli, kp, 0, 1, kp->warmup, kp->n_requests, 0, 0, &r->unary[ki], label))
            return -1;
    }
    if (r->stream && kp->k <= o->stream_max_k) {
        snprintf(label, sizeof label, "K=%d gRPC stream", kp->k);
        if (rb_point_init(&r->stream[ki], "stream", kp->k, kp->n_requests) ||
            run_closed(cli, kp, 1, 1, kp->warmup, kp->n_requests, 0, 0, &r->stream[ki], label))
            return -1;
    }
    if (r->inproc) {
        snprintf(label, sizeof label, "K=%d in-process", kp->k);
        if (rb_point_init(&r->inproc[ki], "inproc", kp->k, kp->n_requests) ||
            run_inproc(engine, m, kp, &r->inproc[ki], label))
            return -1;
    }
    fprintf(stderr, "  K=%-5d unary p50 %s ms  stream p50 %s ms  in-process p50 %s ms\n", kp->k,
            rb_ms_str(r->unary ? r->unary[ki].s_lat.p50 : NAN),
            rb_ms_str(r->stream && r->stream[ki].cap ? r->stream[ki].s_lat.p50 : NAN),
            rb_ms_str(r->inproc ? r->inproc[ki].s_lat.p50 : NAN));
    return 0;
}

int rb_run_latency_by_k(const rb_opts *o, rb_inputs *in, rb_client *cli, rr_engine *engine,
                        const rr_model *m, rb_results *r)
{
    r->n_k = in->n_k;
    if (cli && o->unary) r->unary = calloc((size_t)in->n_k, sizeof *r->unary);
    if (cli && o->stream) r->stream = calloc((size_t)in->n_k, sizeof *r->stream);
    if (engine) r->inproc = calloc((size_t)in->n_k, sizeof *r->inproc);
    for (int ki = 0; ki < in->n_k; ki++)
        if (latency_at_k(o, &in->per_k[ki], cli, engine, m, r, ki)) return -1;
    return 0;
}

/* The closed-loop sweep over o->concs; *peak receives the highest requests/s. */
static int closed_sweep(const rb_opts *o, rb_k_inputs *kp, rb_client *cli, rb_results *r,
                        double *peak)
{
    r->closed = calloc((size_t)(o->n_concs ? o->n_concs : 1), sizeof *r->closed);
    if (!r->closed) return -1;
    for (int i = 0; i < o->n_concs; i++) {
        rb_point *p = &r->closed[i];
        char label[64];
        snprintf(label, sizeof label, "closed loop, %d clients, K=%d", o->concs[i], kp->k);
        if (rb_point_init(p, "closed", kp->k, 1024) ||
            run_closed(cli, kp, 0, o->concs[i], 0, 0, o->warmup_s, o->sweep_s, p, label)) {
            rb_point_free(p);
            return -1;
        }
        r->n_closed++;
        double rps = rb_per_s(p, p->n);
        if (rps > *peak) *peak = rps;
        fprintf(stderr, "  %2d clients: %.1f req/s, p50 %s ms, p99 %s ms, %d errors\n", o->concs[i],
                rps, rb_ms_str(p->s_lat.p50), rb_ms_str(p->s_lat.p99), p->n_err);
    }
    return 0;
}

static int open_at_rate(const rb_opts *o, rb_k_inputs *kp, rb_client *cli, double rate,
                        rb_results *r)
{
    char label[64];
    snprintf(label, sizeof label, "open loop, %.1f req/s, K=%d", rate, kp->k);
    if (rb_point_init(&r->open, "open", kp->k, 1024) ||
        run_open(cli, kp, rate, o->warmup_s, o->open_s, o->timeout_s, &r->open, label)) {
        rb_point_free(&r->open);
        return -1;
    }
    r->have_open = 1;
    fprintf(stderr, "  open loop %.1f req/s: p50 %s ms, p99 %s ms, %d errors\n", rate,
            rb_ms_str(r->open.s_lat.p50), rb_ms_str(r->open.s_lat.p99), r->open.n_err);
    fprintf(stderr,
            "  goodput: %d of %d arrivals answered within %.3f s (%.1f %%), %d refused at "
            "admission\n",
            r->open.in_deadline, r->open.arrived, o->timeout_s,
            r->open.arrived ? 100.0 * r->open.in_deadline / r->open.arrived : 0.0, r->open.refused);
    return 0;
}

int rb_run_load(const rb_opts *o, rb_inputs *in, rb_client *cli, rb_results *r)
{
    double peak = 0;
    if (!cli || (!o->n_concs && o->rate == 0)) return 0;
    rb_k_inputs *kp = rb_inputs_find_k(in, o->sweep_k);
    if (!kp) {
        fprintf(stderr, "rerank-bench: --sweep-k %d must be one of the K values\n", o->sweep_k);
        return -1;
    }
    if (closed_sweep(o, kp, cli, r, &peak)) return -1;
    double rate = o->rate >= 0 ? o->rate : o->rate_fraction * peak;
    return rate > 0 ? open_at_rate(o, kp, cli, rate, r) : 0;
}

/* ----------------------------------------------------------------------------------------
 * Results
 */

int rb_results_failed(const rb_results *r)
{
    int failed = 0;
    for (int ki = 0; ki < r->n_k; ki++) {
        if (r->unary && r->unary[ki].n_err) failed = 1;
        if (r->stream && r->stream[ki].n_err) failed = 1;
    }
    for (int i = 0; i < r->n_closed; i++)
        if (r->closed[i].n_err) failed = 1;
    if (r->have_open && r->open.n_err) failed = 1;
    return failed;
}

void rb_results_free(rb_results *r)
{
    for (int ki = 0; ki < r->n_k; ki++) {
        if (r->unary) rb_point_free(&r->unary[ki]);
        if (r->stream) rb_point_free(&r->stream[ki]);
        if (r->inproc) rb_point_free(&r->inproc[ki]);
    }
    for (int i = 0; i < r->n_closed; i++)
        rb_point_free(&r->closed[i]);
    if (r->have_open) rb_point_free(&r->open);
    free(r->unary), free(r->stream), free(r->inproc), free(r->closed);
    memset(r, 0, sizeof *r);
}
