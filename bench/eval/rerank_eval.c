/*
 * rerank_eval.c — rerank-eval: is reranking worth its latency on this collection?
 *
 *   rerank-eval --run RUN --qrels QRELS [--k 100] --metrics-only [--json FILE]
 *   rerank-eval --run RUN --qrels QRELS --queries Q --corpus C --target HOST:PORT [--k 100]
 *               [--out-run FILE] [--json FILE] [--md FILE]
 *
 * Reads a first-stage TREC run ("qid Q0 docid rank score tag"), TREC qrels ("qid 0 docid
 * rel"; a three-column "qid docid rel" file with an optional header, as BEIR ships, also
 * works), queries and a corpus (TSV "id<TAB>text[<TAB>more…]", extra columns joined with a
 * space; or JSONL {"_id"|"id", "text", "title"?} as BEIR ships, title prepended). For every
 * query of the run that has judgments, its top K (trec_eval order) go to rerankd's unary
 * Rerank, one query at a time, and the documents are re-ordered by logit. Reported, before
 * (the run cut at K) and after: nDCG@10, MRR@10 and Recall@K (unchanged by construction —
 * the ceiling reranking works under), with the latency of each query's Rerank call. Metric
 * definitions: metrics.h (trec_eval's, checked against pytrec_eval in tests/bench).
 * --out-run writes the reranked top K as a TREC run (score = logit); --metrics-only skips
 * the server and evaluates RUN alone. Only the documents the run names are kept from the
 * corpus, so a large collection costs one pass over the file.
 *
 * A client program: allocates with plain malloc.
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "metrics.h"
#include "stats.h"

#define NDCG_K 10
#define MRR_K 10

/* ----------------------------------------------------------------------------------------
 * A string → int hash map (open addressing, FNV-1a), owning copies of its keys
 */

typedef struct smap {
    char **keys;
    int *vals;
    size_t cap, n;
} smap;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int smap_grow(smap *m)
{
    size_t cap = m->cap ? 2 * m->cap : 1024;
    char **keys = calloc(cap, sizeof *keys);
    int *vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = fnv1a(m->keys[i]) & (cap - 1);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

/* Slot of key, or -1 when absent. */
static long smap_find(const smap *m, const char *key)
{
    if (!m->cap) return -1;
    for (size_t j = fnv1a(key) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        if (!m->keys[j]) return -1;
        if (strcmp(m->keys[j], key) == 0) return (long)j;
    }
}

static int smap_get(const smap *m, const char *key, int dflt)
{
    long j = smap_find(m, key);
    return j < 0 ? dflt : m->vals[j];
}

/* Inserts or overwrites; returns the stored key (owned by the map), NULL on failure. */
static const char *smap_put(smap *m, const char *key, int val)
{
    long j = smap_find(m, key);
    if (j >= 0) {
        m->vals[j] = val;
        return m->keys[j];
    }
    if (2 * (m->n + 1) > m->cap && smap_grow(m)) return NULL;
    size_t i = fnv1a(key) & (m->cap - 1);
    while (m->keys[i])
        i = (i + 1) & (m->cap - 1);
    if (!(m->keys[i] = strdup(key))) return NULL;
    m->vals[i] = val;
    m->n++;
    return m->keys[i];
}

static void smap_free(smap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ----------------------------------------------------------------------------------------
 * Collection
 */

typedef struct query {
    const char *qid; /* owned by qids */
    char *text;      /* from --queries */
    ev_doc *docs;    /* the run's documents, trec order after loading */
    int n_docs, cap;
    int *ideal; /* positive judgments */
    int n_ideal, n_relevant;
    int judged; /* the query has qrels */
    /* results */
    double before[3], after[3]; /* nDCG@10, MRR@10, Recall@K */
    double latency_s, inference_s;
    int reranked;
} query;

typedef struct collection {
    smap qids; /* qid → index into q */
    query *q;
    int n_q, cap_q;
    smap qrels;  /* "qid\x1fdocid" → rel */
    smap judged; /* qid → number of judgments */
    smap docids; /* docid → index into texts (needed documents only) */
    char **texts;
} collection;

static int is_blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == 0;
}

/* Splits s on whitespace into at most max fields (in place). */
static int split_ws(char *s, char **f, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, " \t\r\n", &save); t && n < max;
         t = strtok_r(NULL, " \t\r\n", &save))
        f[n++] = t;
    return n;
}

static char *pair_key(char *buf, size_t cap, const char *qid, const char *docid)
{
    snprintf(buf, cap, "%s\x1f%s", qid, docid);
    return buf;
}

static int read_qrels(const char *path, collection *c)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, key[1024];
    size_t cap = 0;
    long lineno = 0;
    int rc = -1;
    if (!f) {
        fprintf(stderr, "rerank-eval: cannot open --qrels %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (getline(&line, &cap, f) > 0) {
        char *fld[5], *end;
        lineno++;
        if (is_blank(line)) continue;
        int n = split_ws(line, fld, 5);
        const char *qid, *docid, *rels;
        if (n == 4) {
            qid = fld[0], docid = fld[2], rels = fld[3];
        } else if (n == 3) {
            qid = fld[0], docid = fld[1], rels = fld[2];
        } else {
            fprintf(stderr,
                    "rerank-eval: %s:%ld: expected 'qid 0 docid rel' (or 'qid docid rel')\n", path,
                    lineno);
            goto done;
        }
        long rel = strtol(rels, &end, 10);
        if (*end) {
            if (lineno == 1 && n == 3) continue; /* BEIR header "query-id corpus-id score" */
            fprintf(stderr, "rerank-eval: %s:%ld: relevance '%s' is not an integer\n", path, lineno,
                    rels);
            goto done;
        }
        if (!smap_put(&c->qrels, pair_key(key, sizeof key, qid, docid), (int)rel) ||
            !smap_put(&c->judged, qid, smap_get(&c->judged, qid, 0) + 1))
            goto nomem;
    }
    rc = 0;
    goto done;
nomem:
    fprintf(stderr, "rerank-eval: out of memory reading %s\n", path);
done:
    free(line);
    fclose(f);
    return rc;
}

static query *query_for(collection *c, const char *qid)
{
    int i = smap_get(&c->qids, qid, -1);
    if (i >= 0) return &c->q[i];
    if (c->n_q == c->cap_q) {
        int cap = c->cap_q ? 2 * c->cap_q : 64;
        query *q = realloc(c->q, (size_t)cap * sizeof *q);
        if (!q) return NULL;
        c->q = q;
        c->cap_q = cap;
    }
    query *q = &c->q[c->n_q];
    memset(q, 0, sizeof *q);
    if (!(q->qid = smap_put(&c->qids, qid, c->n_q))) return NULL;
    c->n_q++;
    return q;
}

static int read_run(const char *path, collection *c)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, key[1024];
    size_t cap = 0;
    long lineno = 0;
    int rc = -1;
    if (!f) {
        fprintf(stderr, "rerank-eval: cannot open --run %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (getline(&line, &cap, f) > 0) {
        char *fld[7], *end;
        lineno++;
        if (is_blank(line)) continue;
        if (split_ws(line, fld, 7) != 6) {
            fprintf(stderr, "rerank-eval: %s:%ld: expected 'qid Q0 docid rank score tag'\n", path,
                    lineno);
            goto done;
        }
        double score = strtod(fld[4], &end);
        if (*end || !isfinite(score)) {
            fprintf(stderr, "rerank-eval: %s:%ld: score '%s' is not a number\n", path, lineno,
                    fld[4]);
            goto done;
        }
        query *q = query_for(c, fld[0]);
        if (!q) goto nomem;
        if (q->n_docs == q->cap) {
            int nc = q->cap ? 2 * q->cap : 16;
            ev_doc *d = realloc(q->docs, (size_t)nc * sizeof *d);
            if (!d) goto nomem;
            q->docs = d;
            q->cap = nc;
        }
        const char *docid = smap_put(&c->docids, fld[2], -1);
        if (!docid) goto nomem;
        q->docs[q->n_docs++] = (ev_doc){
            docid, score, smap_get(&c->qrels, pair_key(key, sizeof key, fld[0], fld[2]), 0)};
    }
    rc = 0;
    goto done;
nomem:
    fprintf(stderr, "rerank-eval: out of memory reading %s\n", path);
done:
    free(line);
    fclose(f);
    return rc;
}

/* Positive judgments of every query of the run (one pass over the qrels map). */
static int collect_ideal(collection *c)
{
    for (size_t i = 0; i < c->qrels.cap; i++) {
        const char *k = c->qrels.keys[i];
        if (!k || c->qrels.vals[i] <= 0) continue;
        char qid[1024];
        size_t len = strcspn(k, "\x1f");
        if (len >= sizeof qid) continue;
        memcpy(qid, k, len);
        qid[len] = 0;
        int qi = smap_get(&c->qids, qid, -1);
        if (qi < 0) continue;
        query *q = &c->q[qi];
        int *t = realloc(q->ideal, (size_t)(q->n_ideal + 1) * sizeof *t);
        if (!t) return -1;
        q->ideal = t;
        q->ideal[q->n_ideal++] = c->qrels.vals[i];
        q->n_relevant++;
    }
    for (int i = 0; i < c->n_q; i++)
        c->q[i].judged = smap_get(&c->judged, c->q[i].qid, 0) > 0;
    return 0;
}

static void metrics(query *q, const ev_doc *d, int n, int k, double out[3])
{
    out[0] = ev_ndcg_at(d, n, q->ideal, q->n_ideal, NDCG_K);
    out[1] = ev_rr_at(d, n, MRR_K);
    out[2] = ev_recall_at(d, n, q->n_relevant, k);
}

/* Reads an id → text file (TSV or JSONL), keeping the ids `want` holds (value ≥ -1 means
 * wanted; the stored text index replaces it). */
static int read_texts(const char *path, const char *what, smap *want, char ***texts, int *n_texts)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = -1;
    if (!f) {
        fprintf(stderr, "rerank-eval: cannot open --%s %s: %s\n", what, path, strerror(errno));
        return -1;
    }
    while (getline(&line, &cap, f) > 0) {
        char *id = NULL, *text = NULL;
        cJSON *j = NULL;
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (is_blank(line)) continue;
        if (line[strspn(line, " \t")] == '{') {
            const cJSON *vid, *vt, *vti;
            if (!(j = cJSON_Parse(line))) {
                fprintf(stderr, "rerank-eval: %s:%ld: not a JSON object\n", path, lineno);
                goto done;
            }
            vid = cJSON_GetObjectItemCaseSensitive(j, "_id");
            if (!vid) vid = cJSON_GetObjectItemCaseSensitive(j, "id");
            vt = cJSON_GetObjectItemCaseSensitive(j, "text");
            vti = cJSON_GetObjectItemCaseSensitive(j, "title");
            if (!cJSON_IsString(vid) || !cJSON_IsString(vt)) {
                fprintf(stderr,
                        "rerank-eval: %s:%ld: needs string fields \"_id\" (or \"id\") "
                        "and \"text\"\n",
                        path, lineno);
                cJSON_Delete(j);
                goto done;
            }
            id = vid->valuestring;
            if (cJSON_IsString(vti) && vti->valuestring[0]) {
                size_t n = strlen(vti->valuestring) + strlen(vt->valuestring) + 2;
                if ((text = malloc(n)))
                    snprintf(text, n, "%s %s", vti->valuestring, vt->valuestring);
            } else {
                text = strdup(vt->valuestring);
            }
        } else {
            char *tab = strchr(line, '\t');
            if (!tab) {
                fprintf(stderr, "rerank-eval: %s:%ld: expected 'id<TAB>text'\n", path, lineno);
                goto done;
            }
            *tab = 0;
            id = line;
            for (char *p = tab + 1; (p = strchr(p, '\t')); p++)
                *p = ' ';
            text = strdup(tab + 1);
        }
        long slot = smap_find(want, id);
        if (slot >= 0 && want->vals[slot] == -1 && text) {
            char **t = realloc(*texts, (size_t)(*n_texts + 1) * sizeof *t);
            if (!t) {
                free(text);
                cJSON_Delete(j);
                goto done;
            }
            *texts = t;
            want->vals[slot] = *n_texts;
            (*texts)[(*n_texts)++] = text;
        } else {
            free(text);
        }
        cJSON_Delete(j);
    }
    rc = 0;
done:
    free(line);
    fclose(f);
    return rc;
}

/* ----------------------------------------------------------------------------------------
 * Reranking through the server, one query at a time
 */

typedef struct wait_ctx {
    int done, status, n_scored;
    char msg[256];
    float *logits;
    double latency_s, inference_s;
} wait_ctx;

static void on_done(void *user, const rb_reply *r)
{
    wait_ctx *w = user;
    w->done = 1;
    w->status = r->status;
    w->n_scored = r->n_scored;
    w->latency_s = r->latency_s;
    w->inference_s = 1e-9 * (double)r->stats.inference_ns;
    snprintf(w->msg, sizeof w->msg, "%s", r->msg);
    if (r->n_docs > 0) memcpy(w->logits, r->logits, (size_t)r->n_docs * sizeof *w->logits);
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: rerank-eval --run RUN --qrels QRELS [--k K] --metrics-only [--json FILE]\n"
        "       rerank-eval --run RUN --qrels QRELS --queries FILE --corpus FILE\n"
        "                   --target HOST:PORT [--k K] [--out-run FILE] [--json FILE] [--md FILE]\n"
        "  --k K            rerank (and evaluate) each query's top K of the run (default 100)\n"
        "  --queries FILE   TSV 'id<TAB>text' or JSONL {\"_id\", \"text\"}\n"
        "  --corpus FILE    TSV 'id<TAB>text[<TAB>...]' or JSONL {\"_id\", \"title\", \"text\"}\n"
        "  --out-run FILE   the reranked top K as a TREC run (score = logit)\n"
        "  --json FILE      per-query metrics and latencies; --md FILE a Markdown summary\n"
        "  --timeout S      per-call deadline (default 600)\n");
}

int main(int argc, char **argv)
{
    const char *run = NULL, *qrels = NULL, *queries = NULL, *corpus = NULL, *target = NULL,
               *out_run = NULL, *json = NULL, *md = NULL;
    int k = 100, metrics_only = 0, rc = 1, n_texts = 0, n_eval = 0;
    double timeout_s = 600;
    collection c;
    char **texts = NULL;
    rb_client *cli = NULL;
    rb_info info;
    char msg[256];
    double *lat = NULL;
    memset(&c, 0, sizeof c);
    memset(&info, 0, sizeof info);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--metrics-only") == 0) {
            metrics_only = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "rerank-eval: %s needs a value (see --help)\n", a);
            return 2;
        }
        if (strcmp(a, "--run") == 0)
            run = v;
        else if (strcmp(a, "--qrels") == 0)
            qrels = v;
        else if (strcmp(a, "--queries") == 0)
            queries = v;
        else if (strcmp(a, "--corpus") == 0)
            corpus = v;
        else if (strcmp(a, "--target") == 0)
            target = v;
        else if (strcmp(a, "--out-run") == 0)
            out_run = v;
        else if (strcmp(a, "--json") == 0)
            json = v;
        else if (strcmp(a, "--md") == 0)
            md = v;
        else if (strcmp(a, "--k") == 0)
            k = atoi(v);
        else if (strcmp(a, "--timeout") == 0)
            timeout_s = atof(v);
        else {
            fprintf(stderr, "rerank-eval: unknown option %s (see --help)\n", a);
            return 2;
        }
        i++;
    }
    if (!run || !qrels || k < 1 || (!metrics_only && (!queries || !corpus || !target))) {
        fprintf(stderr, "rerank-eval: needs --run, --qrels, --k ≥ 1 and either --metrics-only or "
                        "--queries, --corpus and --target (see --help)\n");
        return 2;
    }
    if (read_qrels(qrels, &c) || read_run(run, &c) || collect_ideal(&c)) goto done;
    for (int i = 0; i < c.n_q; i++) {
        query *q = &c.q[i];
        ev_sort_trec(q->docs, q->n_docs);
        if (q->n_docs > k) q->n_docs = k;
        if (!q->judged) continue;
        metrics(q, q->docs, q->n_docs, k, q->before);
        n_eval++;
    }
    fprintf(stderr, "rerank-eval: %d queries in the run, %d with judgments (evaluated)\n", c.n_q,
            n_eval);

    if (!metrics_only) {
        int max_docs = 1;
        smap qwant = {0};
        char **qtexts = NULL;
        int n_q_texts = 0;
        for (int i = 0; i < c.n_q; i++) {
            if (c.q[i].n_docs > max_docs) max_docs = c.q[i].n_docs;
            if (c.q[i].judged && !smap_put(&qwant, c.q[i].qid, -1)) goto done;
        }
        if (read_texts(queries, "queries", &qwant, &qtexts, &n_q_texts) ||
            read_texts(corpus, "corpus", &c.docids, &texts, &n_texts)) {
            smap_free(&qwant);
            for (int i = 0; i < n_q_texts; i++)
                free(qtexts[i]);
            free(qtexts);
            goto done;
        }
        for (int i = 0; i < c.n_q; i++) {
            int t = smap_get(&qwant, c.q[i].qid, -1);
            if (t >= 0) c.q[i].text = qtexts[t];
        }
        free(qtexts);
        smap_free(&qwant);
        cli = rb_client_init(target, 1, max_docs, timeout_s);
        if (!cli || rb_client_info(cli, &info, 30, msg, sizeof msg)) {
            fprintf(stderr, "rerank-eval: %s: %s\n", target, cli ? msg : "cannot create a client");
            goto done;
        }
        if ((unsigned)max_docs > info.max_documents) {
            fprintf(stderr, "rerank-eval: --k %d is over the server's max_documents %u\n", k,
                    info.max_documents);
            goto done;
        }
        fprintf(stderr, "rerank-eval: %s: %s on %s\n", target, info.model_id, info.device);
        float *logits = malloc((size_t)max_docs * sizeof *logits);
        const char **docs = malloc((size_t)max_docs * sizeof *docs);
        if (!logits || !docs) {
            free(logits);
            free(docs);
            goto done;
        }
        for (int i = 0; i < c.n_q; i++) {
            query *q = &c.q[i];
            rb_request req;
            wait_ctx w = {.logits = logits};
            if (!q->judged) continue;
            if (!q->text) {
                fprintf(stderr, "rerank-eval: query %s is not in %s\n", q->qid, queries);
                goto rerank_fail;
            }
            for (int d = 0; d < q->n_docs; d++) {
                int t = smap_get(&c.docids, q->docs[d].docid, -1);
                if (t < 0) {
                    fprintf(stderr, "rerank-eval: document %s (query %s) is not in %s\n",
                            q->docs[d].docid, q->qid, corpus);
                    goto rerank_fail;
                }
                docs[d] = texts[t];
            }
            if (rb_request_init(&req, q->text, docs, q->n_docs, 0, 0)) goto rerank_fail;
            if (rb_client_start(cli, &req, rb_now_s(), i, on_done, &w, msg, sizeof msg) <= 0) {
                fprintf(stderr, "rerank-eval: %s\n", msg);
                rb_request_free(&req);
                goto rerank_fail;
            }
            while (!w.done)
                rb_client_poll(cli, rb_now_s() + 1.0);
            rb_request_free(&req);
            if (w.status != 0 || w.n_scored != q->n_docs) {
                fprintf(stderr, "rerank-eval: query %s: status %d: %s (%d of %d scored)\n", q->qid,
                        w.status, w.msg, w.n_scored, q->n_docs);
                goto rerank_fail;
            }
            for (int d = 0; d < q->n_docs; d++)
                q->docs[d].score = logits[d];
            ev_sort_trec(q->docs, q->n_docs);
            metrics(q, q->docs, q->n_docs, k, q->after);
            q->latency_s = w.latency_s;
            q->inference_s = w.inference_s;
            q->reranked = 1;
            if (isatty(2)) fprintf(stderr, "\r  reranked %d/%d queries", i + 1, c.n_q);
        }
        if (isatty(2)) fprintf(stderr, "\n");
        free(logits);
        free(docs);
        goto reranked;
    rerank_fail:
        free(logits);
        free(docs);
        goto done;
    reranked:;
    }

    /* Reports */
    double mb[3] = {0}, ma[3] = {0}, total_lat = 0;
    int n_lat = 0;
    long pairs = 0;
    lat = malloc((size_t)(c.n_q ? c.n_q : 1) * sizeof *lat);
    if (!lat) goto done;
    for (int i = 0; i < c.n_q; i++) {
        query *q = &c.q[i];
        if (!q->judged) continue;
        for (int m = 0; m < 3; m++)
            mb[m] += q->before[m] / n_eval, ma[m] += q->after[m] / n_eval;
        if (q->reranked) {
            lat[n_lat++] = q->latency_s;
            total_lat += q->latency_s;
            pairs += q->n_docs;
        }
    }
    rb_summary ls;
    rb_summarize(lat, n_lat, &ls);
    const char *names[3] = {"nDCG@10", "MRR@10", "Recall@K"};
    printf("%-10s %10s%s\n", "metric", "before", metrics_only ? "" : "      after      Δ");
    for (int m = 0; m < 3; m++) {
        char name[32];
        if (m == 2)
            snprintf(name, sizeof name, "Recall@%d", k);
        else
            snprintf(name, sizeof name, "%s", names[m]);
        if (metrics_only)
            printf("%-10s %10.4f\n", name, mb[m]);
        else
            printf("%-10s %10.4f %10.4f %+7.4f\n", name, mb[m], ma[m], ma[m] - mb[m]);
    }
    if (n_lat)
        printf("latency per query (K ≤ %d, %d queries): p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, "
               "max %.1f ms; %.0f pairs/s\n",
               k, n_lat, 1e3 * ls.p50, 1e3 * ls.p90, 1e3 * ls.p99, 1e3 * ls.max,
               total_lat > 0 ? pairs / total_lat : 0);
    if (json) {
        cJSON *root = cJSON_CreateObject(), *per = cJSON_CreateObject();
        cJSON *before = cJSON_AddObjectToObject(root, "before");
        char rk[32];
        snprintf(rk, sizeof rk, "recall_%d", k);
        cJSON_AddStringToObject(root, "run", run);
        cJSON_AddNumberToObject(root, "k", k);
        cJSON_AddNumberToObject(root, "queries_evaluated", n_eval);
        cJSON_AddNumberToObject(before, "ndcg_cut_10", mb[0]);
        cJSON_AddNumberToObject(before, "recip_rank_10", mb[1]);
        cJSON_AddNumberToObject(before, rk, mb[2]);
        if (!metrics_only) {
            cJSON *after = cJSON_AddObjectToObject(root, "after");
            cJSON_AddStringToObject(root, "server", info.device);
            cJSON_AddStringToObject(root, "model", info.model_id);
            cJSON_AddNumberToObject(after, "ndcg_cut_10", ma[0]);
            cJSON_AddNumberToObject(after, "recip_rank_10", ma[1]);
            cJSON_AddNumberToObject(after, rk, ma[2]);
            cJSON *l = cJSON_AddObjectToObject(root, "latency_s");
            cJSON_AddNumberToObject(l, "n", ls.n);
            cJSON_AddNumberToObject(l, "p50", ls.p50);
            cJSON_AddNumberToObject(l, "p90", ls.p90);
            cJSON_AddNumberToObject(l, "p99", ls.p99);
            cJSON_AddNumberToObject(l, "max", ls.max);
            cJSON_AddNumberToObject(l, "mean", ls.mean);
        }
        for (int i = 0; i < c.n_q; i++) {
            query *q = &c.q[i];
            if (!q->judged) continue;
            cJSON *e = cJSON_CreateObject(), *b = cJSON_AddObjectToObject(e, "before");
            cJSON_AddNumberToObject(b, "ndcg_cut_10", q->before[0]);
            cJSON_AddNumberToObject(b, "recip_rank_10", q->before[1]);
            cJSON_AddNumberToObject(b, rk, q->before[2]);
            if (q->reranked) {
                cJSON *a = cJSON_AddObjectToObject(e, "after");
                cJSON_AddNumberToObject(a, "ndcg_cut_10", q->after[0]);
                cJSON_AddNumberToObject(a, "recip_rank_10", q->after[1]);
                cJSON_AddNumberToObject(a, rk, q->after[2]);
                cJSON_AddNumberToObject(e, "latency_s", q->latency_s);
                cJSON_AddNumberToObject(e, "inference_s", q->inference_s);
                cJSON_AddNumberToObject(e, "documents", q->n_docs);
            }
            cJSON_AddItemToObject(per, q->qid, e);
        }
        cJSON_AddItemToObject(root, "per_query", per);
        char *s = cJSON_Print(root);
        cJSON_Delete(root);
        FILE *f = s ? fopen(json, "w") : NULL;
        if (!f) {
            fprintf(stderr, "rerank-eval: cannot write %s\n", json);
            free(s);
            goto done;
        }
        fprintf(f, "%s\n", s);
        free(s);
        fclose(f);
    }
    if (md && !metrics_only) {
        FILE *f = fopen(md, "w");
        if (!f) {
            fprintf(stderr, "rerank-eval: cannot write %s\n", md);
            goto done;
        }
        fprintf(
            f, "| metric | before (run cut at K = %d) | after reranking | Δ |\n|---|---|---|---|\n",
            k);
        for (int m = 0; m < 3; m++) {
            if (m == 2)
                fprintf(f, "| Recall@%d | %.4f | %.4f | %+.4f |\n", k, mb[m], ma[m], ma[m] - mb[m]);
            else
                fprintf(f, "| %s | %.4f | %.4f | %+.4f |\n", names[m], mb[m], ma[m], ma[m] - mb[m]);
        }
        fprintf(f,
                "\nRerank latency per query (%d queries, ≤ %d documents each, one at a time): "
                "p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms; server %s, model `%s`.\n",
                n_lat, k, 1e3 * ls.p50, 1e3 * ls.p90, 1e3 * ls.p99, 1e3 * ls.max, info.device,
                info.model_id);
        fclose(f);
    }
    if (out_run && !metrics_only) {
        FILE *f = fopen(out_run, "w");
        if (!f) {
            fprintf(stderr, "rerank-eval: cannot write %s\n", out_run);
            goto done;
        }
        for (int i = 0; i < c.n_q; i++)
            for (int d = 0; c.q[i].reranked && d < c.q[i].n_docs; d++)
                fprintf(f, "%s Q0 %s %d %.9g rerankd\n", c.q[i].qid, c.q[i].docs[d].docid, d + 1,
                        c.q[i].docs[d].score);
        fclose(f);
    }
    rc = 0;
done:
    free(lat);
    rb_client_free(cli);
    for (int i = 0; i < c.n_q; i++) {
        free(c.q[i].docs);
        free(c.q[i].ideal);
        free(c.q[i].text);
    }
    free(c.q);
    for (int i = 0; i < n_texts; i++)
        free(texts[i]);
    free(texts);
    smap_free(&c.qids);
    smap_free(&c.qrels);
    smap_free(&c.judged);
    smap_free(&c.docids);
    return rc;
}
