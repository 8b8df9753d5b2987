/*
 * validate.c — rerank-bench validates before it times (style.md habit 13): pool[0] of every
 * K up to --validate-max-k (100 spans several engine batches; larger K would only repeat the
 * check at a high price on a CPU) is scored by each side and compared with one reference,
 * logit by logit, within LOGIT_TOL relative to max(1, |reference|). A failure stops the
 * program before any number is reported.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct check_ctx {
    float *logits;
    int status, n_scored;
    char msg[256];
    int done;
} check_ctx;

static void on_check(void *user, const rb_reply *r)
{
    check_ctx *c = user;
    c->status = r->status;
    c->n_scored = r->n_scored;
    snprintf(c->msg, sizeof c->msg, "%s", r->msg);
    memcpy(c->logits, r->logits, (size_t)r->n_docs * sizeof *c->logits);
    c->done = 1;
}

static int score_once(rb_client *cli, const rb_request *req, float *logits, char *err, size_t cap)
{
    check_ctx c = {.logits = logits};
    int rc = rb_client_start(cli, req, rb_now_s(), 0, on_check, &c, err, cap);
    if (rc <= 0) return -1;
    while (!c.done)
        rb_client_poll(cli, rb_now_s() + 1.0);
    if (c.status != 0 || c.n_scored != req->n_docs) {
        snprintf(err, cap, "status %d: %.200s (%d of %d scored)", c.status, c.msg, c.n_scored,
                 req->n_docs);
        return -1;
    }
    return 0;
}

/* Largest |a-b| / max(1,|b|) over n; *at receives its index. */
static double max_rel_diff(const float *a, const float *b, int n, int *at)
{
    double worst = 0;
    *at = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(d <= worst)) {
            worst = d;
            *at = i;
        }
    }
    return worst;
}

static int check_against(const char *what, const char *ref_name, const float *got, const float *ref,
                         int k, double *worst_all)
{
    int at;
    double d = max_rel_diff(got, ref, k, &at);
    if (d > *worst_all) *worst_all = d;
    if (!(d <= LOGIT_TOL)) {
        fprintf(stderr,
                "rerank-bench: validation failed: K=%d %s logit[%d] = %.6f, %s says %.6f "
                "(|Δ|/max(1,|x|) = %.2e > %.0e); no numbers are reported\n",
                k, what, at, got[at], ref_name, ref[at], d, LOGIT_TOL);
        return -1;
    }
    return 0;
}

/* The reference of one K, and what every K shares. */
typedef struct validation {
    const rb_peers *ps;
    int hf; /* the transformers peer, or -1 */
    rr_engine *engine;
    const rr_model *m;
    rb_client *cli;
    float *ref, *got;     /* [max K] */
    const char *ref_name; /* where ref came from at this K; NULL before the first side */
    double worst;         /* over every K so far */
} validation;

static void adopt(validation *v, const char *name, const float *x, int k)
{
    memcpy(v->ref, x, (size_t)k * sizeof *v->ref);
    v->ref_name = name;
}

/* A side's logits x: checked against the reference, or, while there is none, taken as the
 * reference under the name as_ref. */
static int offer(validation *v, const char *what, const char *as_ref, const float *x, int k)
{
    if (v->ref_name) return check_against(what, v->ref_name, x, v->ref, k, &v->worst);
    adopt(v, as_ref, x, k);
    return 0;
}

static int check_engine(validation *v, const rb_k_inputs *kp)
{
    rr_score_opts so = {.max_length = 0, .truncate = 1, .keep_last = 0};
    rr_error err;
    size_t *lens = malloc((size_t)kp->k * sizeof *lens);
    const rb_query_set *qs = &kp->pool[0];
    if (!lens) return -1;
    for (int d = 0; d < kp->k; d++)
        lens[d] = strlen(qs->docs[d]);
    rr_status st = rr_score_query(v->engine, v->m, qs->query, strlen(qs->query),
                                  (const char *const *)qs->docs, lens, kp->k, &so, v->got, &err);
    free(lens);
    if (st != RR_OK) {
        fprintf(stderr, "rerank-bench: rr_score_query: %s\n", err.msg);
        return -1;
    }
    return offer(v, "in-process", "the in-process engine", v->got, kp->k);
}

/* gRPC unary (when asked for, or as the reference when there is none yet) and streaming
 * (when asked for at this K). */
static int check_server(validation *v, const rb_opts *o, const rb_k_inputs *kp)
{
    const rb_request *reqs[2] = {o->unary || !v->ref_name ? &kp->pool[0].unary : NULL,
                                 o->stream && kp->k <= o->stream_max_k ? &kp->pool[0].stream
                                                                       : NULL};
    const char *names[2] = {"gRPC unary", "gRPC stream"};
    char msg[256];
    for (int j = 0; j < 2; j++) {
        if (!reqs[j]) continue;
        if (score_once(v->cli, reqs[j], v->got, msg, sizeof msg)) {
            fprintf(stderr, "rerank-bench: K=%d %s: %s\n", kp->k, names[j], msg);
            return -1;
        }
        if (offer(v, names[j], "gRPC unary", v->got, kp->k)) return -1;
    }
    return 0;
}

/* The peers other than transformers, against the reference (never as it). */
static int check_peers(validation *v, int ki, int k)
{
    for (int i = 0; i < v->ps->n; i++) {
        const rb_peer *p = &v->ps->p[i];
        if (i == v->hf || !p->logits0[ki] || !v->ref_name) continue;
        if (check_against(p->name, v->ref_name, p->logits0[ki], v->ref, k, &v->worst)) return -1;
    }
    return 0;
}

static int validate_k(validation *v, const rb_opts *o, const rb_k_inputs *kp, int ki)
{
    v->ref_name = NULL;
    if (v->hf >= 0 && v->ps->p[v->hf].logits0[ki])
        adopt(v, "transformers (fp32)", v->ps->p[v->hf].logits0[ki], kp->k);
    if (v->engine && check_engine(v, kp)) return -1;
    if (v->cli && check_server(v, o, kp)) return -1;
    return check_peers(v, ki, kp->k);
}

int rb_validate(const rb_opts *o, const rb_inputs *in, const rb_peers *ps, rr_engine *engine,
                const rr_model *m, rb_client *cli, rb_results *r)
{
    int max_k = rb_inputs_max_k(in), rc = -1;
    validation v = {.ps = ps,
                    .hf = rb_peers_find(ps, "transformers"),
                    .engine = engine,
                    .m = m,
                    .cli = cli,
                    .ref = malloc((size_t)max_k * sizeof(float)),
                    .got = malloc((size_t)max_k * sizeof(float))};
    if (!v.ref || !v.got) goto done;
    for (int ki = 0; ki < in->n_k; ki++) {
        const rb_k_inputs *kp = &in->per_k[ki];
        if (kp->k > o->validate_max_k) continue;
        if (validate_k(&v, o, kp, ki)) goto done;
        if (v.ref_name) snprintf(r->validation_ref, sizeof r->validation_ref, "%s", v.ref_name);
    }
    r->validation_worst = v.worst;
    fprintf(stderr, "rerank-bench: validated against %s (max rel. diff %.1e)\n", r->validation_ref,
            r->validation_worst);
    rc = 0;
done:
    free(v.ref);
    free(v.got);
    return rc;
}
