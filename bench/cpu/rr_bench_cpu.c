/*
 * rr_bench_cpu.c — rr-bench-cpu, the CPU benchmark of librerank against the Hugging Face
 * peer (bench/cpu/peer.py). A benchmark, not a test: bench/cpu/run.sh drives it.
 *
 *   rr-bench-cpu tokenize MODEL_DIR TEXT_FILE REF_FILE [REPEATS]
 *       rr_tokenizer_encode, single-threaded, over every line of TEXT_FILE (one passage a
 *       line, no special tokens). REF_FILE holds the peer's "n_tokens fnv1a" per line; every
 *       line must match (count and FNV-1a of the ids) before anything is timed.
 *   rr-bench-cpu engine MODEL_DIR PAIRS_FILE N_THREADS [REPEATS]
 *       rr_engine_forward on the CPU with N_THREADS over PAIRS_FILE (JSONL with input_ids,
 *       token_type_ids and the peer's logit), packed into batches of 32 pairs in file order.
 *       Every logit must be within 1e-4 * max(1, |logit|) of the peer's before timing.
 *
 *   rr-bench-cpu worker MODEL_DIR N_THREADS DTYPE
 *       A persistent engine for bench/cpu/compare.py, which times it against the ONNX Runtime
 *       and PyTorch peers (bench/cpu/peer_worker.py speaks the same protocol) with the model
 *       loaded once. Loads MODEL_DIR and an engine of DTYPE (f32, bf16, int8: rr_dtype_parse)
 *       with N_THREADS and rerankd's default batch budget (max_batch_tokens 0 → 16384, pairs
 *       packed unpadded), then prints "READY <rr_engine_describe>", or "UNAVAILABLE <why>"
 *       and exits 0 when the engine refuses the dtype (or anything else at start-up), so the
 *       driver can mark that column "not available" rather than fail. Then, per stdin line
 *       "IN_PATH OUT_PATH": IN_PATH is JSONL, one request a line, {"query": "...", "docs":
 *       ["...", ...]}; the first request is scored once untimed (warm-up, its documents cut
 *       to 100: a K = 1000 warm-up would cost a whole timed request and warm nothing more),
 *       then every request is scored and timed with rr_score_query (text in, logits out:
 *       tokenization, packing and forward passes, max_length the model's, truncation on).
 *       OUT_PATH gets one line per request, "<seconds> <logit> <logit> ...", and stdout one
 *       line, "OK <n_requests> <sum of seconds>" or "ERROR <message>". EOF ends it.
 *
 * Timing: one warm-up pass, then REPEATS (default 5) timed passes over the whole input; the
 * best and the median are reported. The last line of output is machine-readable:
 *   RESULT tokenize bytes=.. tokens=.. best_s=.. median_s=.. mb_s=.. tok_s=..
 *   RESULT engine pairs=.. tokens=.. threads=.. best_s=.. median_s=.. pairs_s=..
 * (mb_s, tok_s and pairs_s from the best pass). Exit status 0 only when validation passed.
 *
 * Uses the public API (include/rerank.h) only; being a client program, it allocates with
 * plain malloc.
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rerank.h"

#define BATCH_PAIRS 32
#define LOGIT_TOL 1e-4
#define MAX_REPEATS 100

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts t[0..n) and returns the median. */
static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Whole file into a NUL-terminated buffer; NULL when unreadable. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) goto done;
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
done:
    fclose(f);
    return buf;
}

/* FNV-1a over the ids as 32-bit values; peer.py computes the same. */
static uint32_t fnv1a(const int32_t *ids, int n)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < n; i++) {
        h ^= (uint32_t)ids[i];
        h *= 16777619u;
    }
    return h;
}

/* ---------------------------------------------------------------------------------------
 * tokenize
 */

typedef struct line {
    const char *s;
    size_t len;
} line;

static int bench_tokenize(const char *model_dir, const char *text_path, const char *ref_path,
                          int repeats)
{
    int rc = 1;
    size_t text_len = 0, max_len = 0, n_lines = 0, bytes = 0;
    char *text = NULL;
    line *lines = NULL;
    int32_t *ids = NULL;
    FILE *ref = NULL;
    rr_tokenizer *tok = NULL;
    rr_error err = {0};
    double t[MAX_REPEATS];
    long long n_tokens = 0;

    if (rr_tokenizer_load(model_dir, &tok, &err) != RR_OK) {
        fprintf(stderr, "rr-bench-cpu: %s\n", err.msg);
        goto fail;
    }
    text = slurp(text_path, &text_len);
    if (!text) {
        fprintf(stderr, "rr-bench-cpu: cannot read %s\n", text_path);
        goto fail;
    }
    for (size_t i = 0; i < text_len; i++)
        n_lines += text[i] == '\n';
    lines = malloc((n_lines + 1) * sizeof *lines);
    if (!lines) goto fail;
    n_lines = 0;
    for (char *p = text, *end = text + text_len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lines[n_lines++] = (line){p, len};
        bytes += len;
        if (len > max_len) max_len = len;
        p += len + 1;
    }
    /* A token covers at least one byte of text, so max_len + 1 ids always suffice. */
    ids = malloc((max_len + 1) * sizeof *ids);
    ref = fopen(ref_path, "r");
    if (!ids || !ref) {
        fprintf(stderr, "rr-bench-cpu: cannot read %s\n", ref_path);
        goto fail;
    }

    /* Validate: counts and id hashes of every line against the peer. */
    for (size_t i = 0; i < n_lines; i++) {
        int n = 0, want_n;
        unsigned long want_h;
        rr_status s =
            rr_tokenizer_encode(tok, lines[i].s, lines[i].len, 0, ids, (int)max_len + 1, &n);
        if (s != RR_OK) {
            fprintf(stderr, "rr-bench-cpu: %s line %zu: %s\n", text_path, i + 1, rr_status_name(s));
            goto fail;
        }
        if (fscanf(ref, "%d %lu", &want_n, &want_h) != 2) {
            fprintf(stderr, "rr-bench-cpu: %s: no entry for line %zu\n", ref_path, i + 1);
            goto fail;
        }
        if (n != want_n || fnv1a(ids, n) != (uint32_t)want_h) {
            fprintf(stderr, "rr-bench-cpu: %s line %zu: %d tokens (hash %u), peer %d (hash %lu)\n",
                    text_path, i + 1, n, fnv1a(ids, n), want_n, want_h);
            goto fail;
        }
        n_tokens += n;
    }
    printf("tokenize: validated %zu lines, %zu bytes, %lld tokens against %s\n", n_lines, bytes,
           n_tokens, ref_path);

    for (int r = -1; r < repeats; r++) {
        double t0 = now_s();
        for (size_t i = 0; i < n_lines; i++) {
            int n;
            rr_tokenizer_encode(tok, lines[i].s, lines[i].len, 0, ids, (int)max_len + 1, &n);
        }
        if (r >= 0) t[r] = now_s() - t0;
    }
    double med = median(t, repeats), best = t[0];
    printf("RESULT tokenize bytes=%zu tokens=%lld best_s=%.6f median_s=%.6f mb_s=%.3f tok_s=%.0f\n",
           bytes, n_tokens, best, med, (double)bytes / best / 1e6, (double)n_tokens / best);
    rc = 0;
fail:
    if (ref) fclose(ref);
    free(ids);
    free(lines);
    free(text);
    rr_tokenizer_free(tok);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * engine
 */

typedef struct pairs {
    int n_seq;
    long n_tok;
    int32_t *tokens; /* all pairs end to end */
    int32_t *type_ids;
    int32_t *cu_seqlens; /* n_seq + 1 */
    float *want;         /* the peer's logits */
} pairs;

static void pairs_free(pairs *p)
{
    free(p->tokens);
    free(p->type_ids);
    free(p->cu_seqlens);
    free(p->want);
}

/* Appends the integer array `key` of obj to *dst (grown as needed); returns its length. */
static int append_ids(const cJSON *obj, const char *key, int32_t **dst, long *len, long *cap)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key), *e;
    int n = 0;
    if (!cJSON_IsArray(arr)) return -1;
    cJSON_ArrayForEach(e, arr)
    {
        if (*len + n >= *cap) {
            long ncap = *cap ? 2 * *cap : 1 << 16;
            int32_t *g = realloc(*dst, (size_t)ncap * sizeof **dst);
            if (!g) return -1;
            *dst = g;
            *cap = ncap;
        }
        (*dst)[*len + n++] = (int32_t)e->valuedouble;
    }
    *len += n;
    return n;
}

static int read_pairs(const char *path, pairs *p)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t bcap = 0;
    long tcap = 0, ycap = 0, n_type = 0;
    int scap = 0, rc = -1;
    if (!f) {
        fprintf(stderr, "rr-bench-cpu: cannot read %s\n", path);
        return -1;
    }
    memset(p, 0, sizeof *p);
    while (getline(&buf, &bcap, f) > 0) {
        cJSON *o = cJSON_Parse(buf);
        const cJSON *logit = cJSON_GetObjectItemCaseSensitive(o, "logit");
        if (!o || !cJSON_IsNumber(logit)) {
            fprintf(stderr, "rr-bench-cpu: %s line %d: not a pair with a logit\n", path,
                    p->n_seq + 1);
            cJSON_Delete(o);
            goto done;
        }
        if (p->n_seq + 2 > scap) {
            scap = scap ? 2 * scap : 1024;
            int32_t *cu = realloc(p->cu_seqlens, (size_t)scap * sizeof *cu);
            float *w = realloc(p->want, (size_t)scap * sizeof *w);
            if (cu) p->cu_seqlens = cu;
            if (w) p->want = w;
            if (!cu || !w) {
                cJSON_Delete(o);
                goto done;
            }
        }
        int a = append_ids(o, "input_ids", &p->tokens, &p->n_tok, &tcap);
        int b = append_ids(o, "token_type_ids", &p->type_ids, &n_type, &ycap);
        p->want[p->n_seq] = (float)logit->valuedouble;
        cJSON_Delete(o);
        if (a <= 0 || a != b) {
            fprintf(stderr, "rr-bench-cpu: %s line %d: bad input_ids/token_type_ids\n", path,
                    p->n_seq + 1);
            goto done;
        }
        p->cu_seqlens[0] = 0;
        p->cu_seqlens[p->n_seq + 1] = (int32_t)p->n_tok;
        p->n_seq++;
    }
    rc = p->n_seq > 0 ? 0 : -1;
    if (rc) fprintf(stderr, "rr-bench-cpu: %s holds no pairs\n", path);
done:
    free(buf);
    fclose(f);
    return rc;
}

/* One pass over all pairs in batches of BATCH_PAIRS; logits[n_seq]. */
static rr_status run_pass(rr_engine *e, const pairs *p, float *logits)
{
    for (int s0 = 0; s0 < p->n_seq; s0 += BATCH_PAIRS) {
        int n = p->n_seq - s0 < BATCH_PAIRS ? p->n_seq - s0 : BATCH_PAIRS;
        int32_t cu[BATCH_PAIRS + 1];
        int32_t base = p->cu_seqlens[s0];
        for (int i = 0; i <= n; i++)
            cu[i] = p->cu_seqlens[s0 + i] - base;
        rr_batch b = {.n_seq = n,
                      .n_tok = cu[n],
                      .tokens = p->tokens + base,
                      .type_ids = p->type_ids + base,
                      .cu_seqlens = cu};
        rr_status s = rr_engine_forward(e, &b, logits + s0);
        if (s != RR_OK) return s;
    }
    return RR_OK;
}

static int bench_engine(const char *model_dir, const char *pairs_path, int n_threads, int repeats)
{
    int rc = 1, max_batch_tok = 0;
    pairs p = {0};
    rr_model *m = NULL;
    rr_engine *e = NULL;
    rr_error err = {0};
    float *logits = NULL;
    double t[MAX_REPEATS];

    if (read_pairs(pairs_path, &p) != 0) goto fail;
    for (int s0 = 0; s0 < p.n_seq; s0 += BATCH_PAIRS) {
        int s1 = s0 + BATCH_PAIRS < p.n_seq ? s0 + BATCH_PAIRS : p.n_seq;
        int tok = p.cu_seqlens[s1] - p.cu_seqlens[s0];
        if (tok > max_batch_tok) max_batch_tok = tok;
    }
    logits = malloc((size_t)p.n_seq * sizeof *logits);
    if (!logits) goto fail;
    if (rr_model_load(model_dir, &m, &err) != RR_OK) {
        fprintf(stderr, "rr-bench-cpu: %s\n", err.msg);
        goto fail;
    }
    rr_engine_opts opts = {.device = -1, .max_batch_tokens = max_batch_tok, .n_threads = n_threads};
    if (rr_engine_init(m, &opts, &e, &err) != RR_OK) {
        fprintf(stderr, "rr-bench-cpu: %s\n", err.msg);
        goto fail;
    }

    /* Validate every logit against the peer (this pass also serves as the warm-up). */
    rr_status s = run_pass(e, &p, logits);
    if (s != RR_OK) {
        fprintf(stderr, "rr-bench-cpu: rr_engine_forward: %s\n", rr_status_name(s));
        goto fail;
    }
    double worst = 0;
    for (int i = 0; i < p.n_seq; i++) {
        double d = fabs((double)logits[i] - (double)p.want[i]);
        double tol = LOGIT_TOL * fmax(1.0, fabs((double)p.want[i]));
        if (!(d <= tol)) {
            fprintf(stderr,
                    "rr-bench-cpu: %s pair %d: logit %.7g, peer %.7g (|diff| %.2e > %.2e)\n",
                    pairs_path, i, logits[i], p.want[i], d, tol);
            goto fail;
        }
        if (d > worst) worst = d;
    }
    printf("engine: validated %d pairs (%ld tokens) against %s, max |diff| %.2e; %s\n", p.n_seq,
           p.n_tok, pairs_path, worst, rr_engine_describe(e));

    for (int r = 0; r < repeats; r++) {
        double t0 = now_s();
        s = run_pass(e, &p, logits);
        t[r] = now_s() - t0;
        if (s != RR_OK) goto fail;
    }
    double med = median(t, repeats), best = t[0];
    printf("RESULT engine pairs=%d tokens=%ld threads=%d best_s=%.6f median_s=%.6f pairs_s=%.1f\n",
           p.n_seq, p.n_tok, n_threads, best, med, (double)p.n_seq / best);
    rc = 0;
fail:
    rr_engine_free(e);
    rr_model_free(m);
    free(logits);
    pairs_free(&p);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * worker
 */

#define WARMUP_DOCS 100

typedef struct request {
    const char *query;
    const char **docs; /* into the cJSON tree */
    size_t *lens;
    int n_docs;
} request;

typedef struct request_set {
    cJSON **trees; /* one parsed line per request; owns the strings above */
    request *req;
    int n;
} request_set;

static void request_set_free(request_set *rs)
{
    for (int i = 0; i < rs->n; i++) {
        cJSON_Delete(rs->trees[i]);
        free(rs->req[i].docs);
        free(rs->req[i].lens);
    }
    free(rs->trees);
    free(rs->req);
    memset(rs, 0, sizeof *rs);
}

/* Parses every request of path into rs (before any timing); on failure writes why to msg. */
static int read_requests(const char *path, request_set *rs, char *msg, size_t msg_cap)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t bcap = 0;
    int cap = 0, rc = -1;
    memset(rs, 0, sizeof *rs);
    if (!f) {
        snprintf(msg, msg_cap, "cannot read %s", path);
        return -1;
    }
    while (getline(&buf, &bcap, f) > 0) {
        if (buf[0] == '\n') continue;
        if (rs->n == cap) {
            cap = cap ? 2 * cap : 64;
            cJSON **t = realloc(rs->trees, (size_t)cap * sizeof *t);
            if (t) rs->trees = t;
            request *r = realloc(rs->req, (size_t)cap * sizeof *r);
            if (r) rs->req = r;
            if (!t || !r) goto oom;
        }
        cJSON *o = cJSON_Parse(buf);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "query");
        const cJSON *docs = cJSON_GetObjectItemCaseSensitive(o, "docs"), *d;
        int n = cJSON_GetArraySize(docs);
        if (!cJSON_IsString(q) || !cJSON_IsArray(docs) || n < 1) {
            snprintf(msg, msg_cap, "%s line %d: not a {\"query\", \"docs\"} request", path,
                     rs->n + 1);
            cJSON_Delete(o);
            goto done;
        }
        request *r = &rs->req[rs->n];
        rs->trees[rs->n++] = o;
        *r = (request){.query = q->valuestring, .n_docs = 0};
        r->docs = malloc((size_t)n * sizeof *r->docs);
        r->lens = malloc((size_t)n * sizeof *r->lens);
        if (!r->docs || !r->lens) goto oom;
        cJSON_ArrayForEach(d, docs)
        {
            if (!cJSON_IsString(d)) {
                snprintf(msg, msg_cap, "%s line %d: a document is not a string", path, rs->n);
                goto done;
            }
            r->docs[r->n_docs] = d->valuestring;
            r->lens[r->n_docs++] = strlen(d->valuestring);
        }
    }
    rc = rs->n > 0 ? 0 : -1;
    if (rc) snprintf(msg, msg_cap, "%s holds no requests", path);
    goto done;
oom:
    snprintf(msg, msg_cap, "out of memory reading %s", path);
done:
    free(buf);
    fclose(f);
    if (rc) request_set_free(rs);
    return rc;
}

/* One "IN_PATH OUT_PATH" command; the reply line is written to stdout. */
static void worker_run(rr_engine *e, const rr_model *m, const char *in_path, const char *out_path)
{
    request_set rs;
    char msg[RR_ERROR_MSG_CAP + 256];
    rr_error err = {0};
    rr_score_opts so = {.max_length = 0, .truncate = 1, .keep_last = 0};
    float *logits = NULL;
    FILE *out = NULL;
    int max_docs = 0;
    double sum = 0;

    if (read_requests(in_path, &rs, msg, sizeof msg) != 0) {
        printf("ERROR %s\n", msg);
        return;
    }
    for (int i = 0; i < rs.n; i++)
        if (rs.req[i].n_docs > max_docs) max_docs = rs.req[i].n_docs;
    logits = malloc((size_t)max_docs * sizeof *logits);
    out = fopen(out_path, "w");
    if (!logits || !out) {
        printf("ERROR cannot write %s\n", out_path);
        goto done;
    }
    const request *w = &rs.req[0];
    if (rr_score_query(e, m, w->query, strlen(w->query), w->docs, w->lens,
                       w->n_docs < WARMUP_DOCS ? w->n_docs : WARMUP_DOCS, &so, logits,
                       &err) != RR_OK) {
        printf("ERROR warm-up: %s\n", err.msg);
        goto done;
    }
    for (int i = 0; i < rs.n; i++) {
        const request *r = &rs.req[i];
        double t0 = now_s();
        rr_status s = rr_score_query(e, m, r->query, strlen(r->query), r->docs, r->lens, r->n_docs,
                                     &so, logits, &err);
        double dt = now_s() - t0;
        if (s != RR_OK) {
            printf("ERROR request %d: %s\n", i, err.msg);
            goto done;
        }
        sum += dt;
        fprintf(out, "%.9f", dt);
        for (int d = 0; d < r->n_docs; d++)
            fprintf(out, " %.9g", logits[d]);
        fputc('\n', out);
    }
    if (fclose(out) != 0) {
        out = NULL;
        printf("ERROR cannot write %s\n", out_path);
        goto done;
    }
    out = NULL;
    printf("OK %d %.9f\n", rs.n, sum);
done:
    if (out) fclose(out);
    free(logits);
    request_set_free(&rs);
}

static int worker(const char *model_dir, int n_threads, const char *dtype_name)
{
    rr_model *m = NULL;
    rr_engine *e = NULL;
    rr_error err = {0};
    rr_engine_opts opts = {.device = -1, .max_batch_tokens = 0, .n_threads = n_threads};
    char *cmd = NULL;
    size_t cap = 0;

    /* Replies must reach the driver as soon as they are written. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (rr_dtype_parse(dtype_name, &opts.dtype, &err) != RR_OK ||
        rr_model_load(model_dir, &m, &err) != RR_OK ||
        rr_engine_init(m, &opts, &e, &err) != RR_OK) {
        printf("UNAVAILABLE %s: %s\n", rr_status_name(err.status), err.msg);
        rr_model_free(m);
        return 0;
    }
    printf("READY %s\n", rr_engine_describe(e));
    while (getline(&cmd, &cap, stdin) > 0) {
        char *save = NULL;
        const char *in = strtok_r(cmd, " \t\r\n", &save);
        const char *out = strtok_r(NULL, " \t\r\n", &save);
        if (!in) continue;
        if (!out)
            printf("ERROR expected \"IN_PATH OUT_PATH\"\n");
        else
            worker_run(e, m, in, out);
    }
    free(cmd);
    rr_engine_free(e);
    rr_model_free(m);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: rr-bench-cpu tokenize MODEL_DIR TEXT_FILE REF_FILE [REPEATS]\n"
                    "       rr-bench-cpu engine MODEL_DIR PAIRS_FILE N_THREADS [REPEATS]\n"
                    "       rr-bench-cpu worker MODEL_DIR N_THREADS DTYPE\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "worker") == 0) {
        int n_threads = atoi(argv[3]);
        if (n_threads < 1) return usage();
        return worker(argv[2], n_threads, argv[4]);
    }
    if (argc < 5) return usage();
    int repeats = argc > 5 ? atoi(argv[5]) : 5;
    if (repeats < 1 || repeats > MAX_REPEATS) return usage();
    if (strcmp(argv[1], "tokenize") == 0) return bench_tokenize(argv[2], argv[3], argv[4], repeats);
    if (strcmp(argv[1], "engine") == 0) {
        int n_threads = atoi(argv[4]);
        if (n_threads < 1) return usage();
        return bench_engine(argv[2], argv[3], n_threads, repeats);
    }
    return usage();
}
