/*
 * rerank_bench.c — rerank-bench, the benchmark harness of rerankd (issue 5).
 *
 * What it measures, in this order (each phase optional):
 *   1. latency per K (one client, closed loop, a fixed number of requests per K) through
 *      gRPC unary Rerank, gRPC RerankStream, and the engine in-process (rr_score_query:
 *      tokenization + forward, no server) — the gap between the last and the first is the
 *      cost of the server itself;
 *   2. a closed-loop concurrency sweep (1 … 64 clients, unary, one K) for a fixed time each:
 *      throughput and latency under load;
 *   3. an open-loop run at a fixed request rate: arrivals are scheduled on a clock and each
 *      latency counts from the scheduled arrival, so a slow server cannot slow the arrivals
 *      down and hide its own queueing (no coordinated omission).
 * Reported: p50/p90/p99/max latency (nearest rank, n printed beside), pairs/s, tokens/s,
 * the server's per-stage split (tokenization, queue, inference — rerank.v1.Stats) and the
 * device (rerank.v1.Reranker/Info). Outputs: report.json, report.md, latency_k.dat,
 * concurrency.dat and, when gnuplot is on PATH, latency_k.png and concurrency.png.
 *
 * Inputs: queries and passages are windows of real English text cut to a target length in
 * tokens (default 16-token queries, 100-token passages) from a text file of one passage a
 * line (bench/harness/run.sh uses the golden corpus, tests/golden/corpus.py: the Python
 * documentation shipped inside CPython) or from --inputs, a JSON file written earlier by
 * --dump-inputs (so the peers in bench/peers/ see exactly the same requests). With --peers
 * (bench/peers/peers.py's JSON) the peers' latencies for the same requests are reported
 * beside ours, with ratios, and their logits validate ours before anything is timed.
 *
 * A client program: allocates with plain malloc; uses librerank only through rerank.h.
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "rerank.h"
#include "stats.h"

#define MAX_LIST 32
#define MAX_SLOTS 1024
#define LOGIT_TOL 1e-4

/* ----------------------------------------------------------------------------------------
 * Options
 */

typedef struct opts {
    const char *target; /* host:port of a running rerankd */
    const char *model;  /* model folder: tokenizer for --text, engine for --inproc */
    const char *text;   /* one passage a line */
    const char *inputs; /* JSON written by --dump-inputs */
    const char *dump_inputs;
    const char *peers; /* bench/peers/peers.py output */
    const char *out_dir;
    const char *source_name;
    int device; /* in-process engine: -1 CPU, else CUDA ordinal */
    int inproc, unary, stream;
    int ks[MAX_LIST], n_ks;
    int concs[MAX_LIST], n_concs;
    int sweep_k;
    double sweep_s, warmup_s;
    double rate, rate_fraction, open_s;
    int pairs_per_k, min_requests, max_requests, pool, warmup_pairs;
    int query_tokens, passage_tokens;
    int stream_batch, threads, stream_max_k, validate_max_k;
    unsigned long seed;
    double timeout_s;
    int progress;
} opts;

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: rerank-bench [--target HOST:PORT] [--inproc] --model DIR (--text FILE | --inputs "
        "FILE)\n"
        "                    [options]\n"
        "inputs:\n"
        "  --model DIR            model folder (tokenizer for --text; engine for --inproc)\n"
        "  --text FILE            English text, one passage a line (queries and passages are cut\n"
        "                         from it); --source NAME names it in the report\n"
        "  --inputs FILE          requests written earlier by --dump-inputs\n"
        "  --dump-inputs FILE     write the requests (for bench/peers/peers.py) and exit\n"
        "  --query-tokens N       query length in tokens (default 16)\n"
        "  --passage-tokens N     passage length in tokens (default 100)\n"
        "  --seed N               text sampling seed (default 5)\n"
        "latency per K (one client):\n"
        "  --k LIST               K values (default 1,10,25,50,100,250,500,1000)\n"
        "  --pairs-per-k N        requests per K = N / K, clamped to [min, max] (default 1500)\n"
        "  --min-requests N       (default 5)   --max-requests N (default 50)\n"
        "  --pool N               distinct queries per K (default 4)\n"
        "  --warmup-pairs N       untimed requests per K = min(2, N / K) (default 200)\n"
        "  --no-unary, --no-stream  skip a gRPC method; --inproc adds the in-process engine\n"
        "  --stream-batch N       documents per StreamBatch message (default 32)\n"
        "  --stream-max-k K       streaming only for K up to this (default: all)\n"
        "  --validate-max-k K     validate the sides on K up to this (default 100)\n"
        "  --threads N            in-process engine threads (default: all online CPUs)\n"
        "  --device cpu|cuda:N    in-process engine device (default cpu; CUDA runs fp16)\n"
        "load (needs --target):\n"
        "  --concurrency LIST     closed-loop clients (default 1,2,4,8,16,32,64; 0 = skip)\n"
        "  --sweep-k K            K of the concurrency sweep and open loop (default 10)\n"
        "  --sweep-seconds S      measured seconds per point (default 4; warm-up --warmup 1)\n"
        "  --rate R               open-loop requests/s (default: --rate-fraction of the sweep's\n"
        "                         peak throughput; 0 = skip)\n"
        "  --rate-fraction F      (default 0.7)   --open-seconds S (default 10)\n"
        "reports:\n"
        "  --peers FILE           peers' JSON (bench/peers/peers.py) for ratios and validation\n"
        "  --out DIR              report.json, report.md, *.dat, *.png (default "
        "bench/out/harness)\n"
        "  --timeout S            per-call deadline (default 600)\n"
        "  --no-progress          no progress bar (default: shown when stderr is a terminal)\n");
}

static int parse_list(const char *s, int *out, int cap)
{
    int n = 0;
    while (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 1000000 || n == cap) return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static int parse_args(int argc, char **argv, opts *o)
{
    static const int def_k[] = {1, 10, 25, 50, 100, 250, 500, 1000};
    static const int def_c[] = {1, 2, 4, 8, 16, 32, 64};
    memset(o, 0, sizeof *o);
    o->unary = o->stream = 1;
    o->device = -1;
    memcpy(o->ks, def_k, sizeof def_k);
    o->n_ks = 8;
    memcpy(o->concs, def_c, sizeof def_c);
    o->n_concs = 7;
    o->sweep_k = 10;
    o->sweep_s = 4;
    o->warmup_s = 1;
    o->rate = -1;
    o->rate_fraction = 0.7;
    o->open_s = 10;
    o->pairs_per_k = 1500;
    o->min_requests = 5;
    o->max_requests = 50;
    o->pool = 4;
    o->warmup_pairs = 200;
    o->query_tokens = 16;
    o->passage_tokens = 100;
    o->stream_batch = 32;
    o->stream_max_k = 1 << 30;
    o->validate_max_k = 100;
    o->seed = 5;
    o->timeout_s = 600;
    o->out_dir = "bench/out/harness";
    o->progress = isatty(2);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1, ok = 1;
#define IS(x) (strcmp(a, x) == 0)
#define NUM(dst, lo, hi)                                                                           \
    do {                                                                                           \
        char *e_;                                                                                  \
        double d_ = v ? strtod(v, &e_) : 0;                                                        \
        ok = v && *v && !*e_ && d_ >= (lo) && d_ <= (hi);                                          \
        if (ok) dst = d_;                                                                          \
    } while (0)
        if (IS("--help") || IS("-h")) {
            usage(stdout);
            exit(0);
        } else if (IS("--target")) {
            o->target = v, ok = v != NULL;
        } else if (IS("--model")) {
            o->model = v, ok = v != NULL;
        } else if (IS("--text")) {
            o->text = v, ok = v != NULL;
        } else if (IS("--source")) {
            o->source_name = v, ok = v != NULL;
        } else if (IS("--inputs")) {
            o->inputs = v, ok = v != NULL;
        } else if (IS("--dump-inputs")) {
            o->dump_inputs = v, ok = v != NULL;
        } else if (IS("--peers")) {
            o->peers = v, ok = v != NULL;
        } else if (IS("--out")) {
            o->out_dir = v, ok = v != NULL;
        } else if (IS("--inproc")) {
            o->inproc = 1, takes = 0;
        } else if (IS("--device")) {
            ok = v != NULL;
            if (ok && strcmp(v, "cpu") == 0)
                o->device = -1;
            else if (ok && strncmp(v, "cuda:", 5) == 0 && v[5])
                o->device = atoi(v + 5);
            else
                ok = 0;
        } else if (IS("--no-unary")) {
            o->unary = 0, takes = 0;
        } else if (IS("--no-stream")) {
            o->stream = 0, takes = 0;
        } else if (IS("--no-progress")) {
            o->progress = 0, takes = 0;
        } else if (IS("--k")) {
            ok = (o->n_ks = parse_list(v, o->ks, MAX_LIST)) > 0;
        } else if (IS("--concurrency")) {
            ok = (o->n_concs = parse_list(v, o->concs, MAX_LIST)) >= 0;
            if (ok && o->n_concs == 1 && o->concs[0] == 0) o->n_concs = 0;
        } else if (IS("--sweep-k")) {
            NUM(o->sweep_k, 1, 100000);
        } else if (IS("--sweep-seconds")) {
            NUM(o->sweep_s, 0.1, 3600);
        } else if (IS("--warmup")) {
            NUM(o->warmup_s, 0, 3600);
        } else if (IS("--rate")) {
            NUM(o->rate, 0, 1e6);
        } else if (IS("--rate-fraction")) {
            NUM(o->rate_fraction, 0.01, 10);
        } else if (IS("--open-seconds")) {
            NUM(o->open_s, 0.1, 3600);
        } else if (IS("--pairs-per-k")) {
            NUM(o->pairs_per_k, 1, 1e9);
        } else if (IS("--min-requests")) {
            NUM(o->min_requests, 1, 1e6);
        } else if (IS("--max-requests")) {
            NUM(o->max_requests, 1, 1e6);
        } else if (IS("--warmup-pairs")) {
            NUM(o->warmup_pairs, 0, 1e9);
        } else if (IS("--pool")) {
            NUM(o->pool, 1, 1000);
        } else if (IS("--query-tokens")) {
            NUM(o->query_tokens, 1, 100000);
        } else if (IS("--passage-tokens")) {
            NUM(o->passage_tokens, 1, 100000);
        } else if (IS("--stream-max-k")) {
            NUM(o->stream_max_k, 0, 1 << 30);
        } else if (IS("--validate-max-k")) {
            NUM(o->validate_max_k, 0, 1 << 30);
        } else if (IS("--stream-batch")) {
            NUM(o->stream_batch, 1, 100000);
        } else if (IS("--threads")) {
            NUM(o->threads, 0, 4096);
        } else if (IS("--seed")) {
            NUM(o->seed, 0, 4e9);
        } else if (IS("--timeout")) {
            NUM(o->timeout_s, 0.001, 1e6);
        } else {
            fprintf(stderr, "rerank-bench: unknown option %s (see --help)\n", a);
            return 0;
        }
#undef IS
#undef NUM
        if (!ok) {
            fprintf(stderr, "rerank-bench: bad or missing value for %s (see --help)\n", a);
            return 0;
        }
        i += takes;
    }
    if (o->max_requests < o->min_requests) o->max_requests = o->min_requests;
    if (!o->text && !o->inputs) {
        fprintf(stderr, "rerank-bench: --text FILE or --inputs FILE is required\n");
        return 0;
    }
    if ((o->text || o->inproc) && !o->model) {
        fprintf(stderr, "rerank-bench: --model DIR is required with --text and --inproc\n");
        return 0;
    }
    if (!o->dump_inputs && !o->target && !o->inproc) {
        fprintf(stderr, "rerank-bench: nothing to measure: give --target and/or --inproc\n");
        return 0;
    }
    return 1;
}

/* ----------------------------------------------------------------------------------------
 * Inputs: per K, a pool of requests (query + K passages) and the number of requests to time
 */

typedef struct query_set {
    char *query;
    char **docs;
    int n_docs;
    long tokens; /* scored tokens of all pairs (after truncation) */
    rb_request unary, stream;
} query_set;

typedef struct k_inputs {
    int k, warmup, n_requests, n_pool;
    query_set *pool;
} k_inputs;

typedef struct inputs {
    char source[256];
    int query_tokens, passage_tokens;
    unsigned long seed;
    k_inputs *per_k;
    int n_k;
} inputs;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        if (buf) {
            buf[n] = 0;
            if (len) *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

typedef struct word {
    const char *p;
    int len, n_tok;
} word;

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: tiny, seedable, good enough to pick text windows */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A window of consecutive words from a random start, just reaching target tokens. */
static char *text_window(const word *w, long n_words, int target, uint64_t *rng)
{
    long start = (long)(rng_next(rng) % (uint64_t)n_words), i = start;
    int tok = 0;
    size_t len = 0, cap = 256;
    char *s = malloc(cap);
    if (!s) return NULL;
    while (tok < target) {
        const word *x = &w[i];
        if (len + (size_t)x->len + 2 > cap) {
            char *t;
            cap = 2 * (len + (size_t)x->len + 2);
            if (!(t = realloc(s, cap))) {
                free(s);
                return NULL;
            }
            s = t;
        }
        if (len) s[len++] = ' ';
        memcpy(s + len, x->p, (size_t)x->len);
        len += (size_t)x->len;
        tok += x->n_tok;
        i = (i + 1) % n_words;
        if (i == start) break;
    }
    s[len] = 0;
    return s;
}

static int requests_for_k(const opts *o, int k)
{
    int n = (o->pairs_per_k + k - 1) / k;
    return n < o->min_requests ? o->min_requests : n > o->max_requests ? o->max_requests : n;
}

/* Tokens the engine scores for one pair: [CLS] q [SEP] d [SEP], longest_first-truncated. */
static long pair_tokens(const rr_tokenizer *t, int max_len, const char *q, const char *d)
{
    int nq = 0, nd = 0, kq, kd;
    rr_tokenizer_encode(t, q, strlen(q), 0, NULL, 0, &nq);
    rr_tokenizer_encode(t, d, strlen(d), 0, NULL, 0, &nd);
    rr_truncate_longest_first(nq, nd, max_len, &kq, &kd);
    return kq + kd + 3;
}

static int inputs_generate(const opts *o, const rr_tokenizer *tok, int max_len, inputs *in)
{
    size_t len;
    char *text = slurp(o->text, &len);
    word *w = NULL;
    long n_words = 0, cap = 0;
    uint64_t rng = o->seed;
    if (!text) {
        fprintf(stderr, "rerank-bench: cannot read --text %s: %s\n", o->text, strerror(errno));
        return -1;
    }
    for (char *p = text; *p;) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
            p++;
        if (!*p) break;
        char *q = p;
        while (*q && *q != ' ' && *q != '\n' && *q != '\t' && *q != '\r')
            q++;
        if (n_words == cap) {
            cap = cap ? 2 * cap : 65536;
            word *nw = realloc(w, (size_t)cap * sizeof *w);
            if (!nw) goto fail;
            w = nw;
        }
        int nt = 0;
        if (rr_tokenizer_encode(tok, p, (size_t)(q - p), 0, NULL, 0, &nt) == RR_OK && nt > 0)
            w[n_words++] = (word){p, (int)(q - p), nt};
        p = q;
    }
    if (n_words < 100) {
        fprintf(stderr, "rerank-bench: --text %s has only %ld words\n", o->text, n_words);
        goto fail;
    }
    snprintf(in->source, sizeof in->source, "%s", o->source_name ? o->source_name : o->text);
    in->query_tokens = o->query_tokens;
    in->passage_tokens = o->passage_tokens;
    in->seed = o->seed;
    in->n_k = o->n_ks;
    in->per_k = calloc((size_t)o->n_ks, sizeof *in->per_k);
    if (!in->per_k) goto fail;
    for (int ki = 0; ki < o->n_ks; ki++) {
        k_inputs *kp = &in->per_k[ki];
        kp->k = o->ks[ki];
        kp->n_requests = requests_for_k(o, kp->k);
        kp->warmup = o->warmup_pairs / kp->k < 2 ? o->warmup_pairs / kp->k : 2;
        kp->n_pool = kp->n_requests < o->pool ? kp->n_requests : o->pool;
        kp->pool = calloc((size_t)kp->n_pool, sizeof *kp->pool);
        if (!kp->pool) goto fail;
        for (int qi = 0; qi < kp->n_pool; qi++) {
            query_set *qs = &kp->pool[qi];
            qs->query = text_window(w, n_words, o->query_tokens, &rng);
            qs->docs = calloc((size_t)kp->k, sizeof *qs->docs);
            if (!qs->query || !qs->docs) goto fail;
            qs->n_docs = kp->k;
            for (int d = 0; d < kp->k; d++) {
                if (!(qs->docs[d] = text_window(w, n_words, o->passage_tokens, &rng))) goto fail;
                qs->tokens += pair_tokens(tok, max_len, qs->query, qs->docs[d]);
            }
        }
    }
    free(w);
    free(text);
    return 0;
fail:
    fprintf(stderr, "rerank-bench: out of memory preparing inputs\n");
    free(w);
    free(text);
    return -1;
}

static int inputs_write(const inputs *in, const char *path)
{
    cJSON *root = cJSON_CreateObject(), *ks = cJSON_AddArrayToObject(root, "per_k");
    char *s;
    FILE *f;
    cJSON_AddStringToObject(root, "source", in->source);
    cJSON_AddNumberToObject(root, "query_tokens", in->query_tokens);
    cJSON_AddNumberToObject(root, "passage_tokens", in->passage_tokens);
    cJSON_AddNumberToObject(root, "seed", (double)in->seed);
    for (int ki = 0; ki < in->n_k; ki++) {
        const k_inputs *kp = &in->per_k[ki];
        cJSON *o = cJSON_CreateObject(), *pool = cJSON_AddArrayToObject(o, "pool");
        cJSON_AddNumberToObject(o, "k", kp->k);
        cJSON_AddNumberToObject(o, "warmup", kp->warmup);
        cJSON_AddNumberToObject(o, "n_requests", kp->n_requests);
        for (int qi = 0; qi < kp->n_pool; qi++) {
            const query_set *qs = &kp->pool[qi];
            cJSON *q = cJSON_CreateObject();
            cJSON_AddStringToObject(q, "query", qs->query);
            cJSON_AddNumberToObject(q, "tokens", (double)qs->tokens);
            cJSON_AddItemToObject(
                q, "docs", cJSON_CreateStringArray((const char *const *)qs->docs, qs->n_docs));
            cJSON_AddItemToArray(pool, q);
        }
        cJSON_AddItemToArray(ks, o);
    }
    s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s || !(f = fopen(path, "w"))) {
        fprintf(stderr, "rerank-bench: cannot write %s\n", path);
        free(s);
        return -1;
    }
    fputs(s, f);
    fputc('\n', f);
    free(s);
    return fclose(f) == 0 ? 0 : -1;
}

static char *dup_json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

static int inputs_read(const char *path, inputs *in)
{
    char *text = slurp(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL, *ks;
    int rc = -1;
    free(text);
    if (!root) {
        fprintf(stderr, "rerank-bench: --inputs %s: unreadable or not JSON\n", path);
        return -1;
    }
    ks = cJSON_GetObjectItemCaseSensitive(root, "per_k");
    char *src = dup_json_str(root, "source");
    snprintf(in->source, sizeof in->source, "%s", src ? src : path);
    free(src);
    in->query_tokens = cJSON_GetObjectItem(root, "query_tokens")->valueint;
    in->passage_tokens = cJSON_GetObjectItem(root, "passage_tokens")->valueint;
    in->seed = (unsigned long)cJSON_GetObjectItem(root, "seed")->valuedouble;
    in->n_k = cJSON_GetArraySize(ks);
    in->per_k = calloc((size_t)in->n_k, sizeof *in->per_k);
    if (!in->per_k) goto done;
    for (int ki = 0; ki < in->n_k; ki++) {
        const cJSON *o = cJSON_GetArrayItem(ks, ki), *pool = cJSON_GetObjectItem(o, "pool");
        k_inputs *kp = &in->per_k[ki];
        kp->k = cJSON_GetObjectItem(o, "k")->valueint;
        kp->warmup = cJSON_GetObjectItem(o, "warmup")->valueint;
        kp->n_requests = cJSON_GetObjectItem(o, "n_requests")->valueint;
        kp->n_pool = cJSON_GetArraySize(pool);
        kp->pool = calloc((size_t)kp->n_pool, sizeof *kp->pool);
        if (!kp->pool) goto done;
        for (int qi = 0; qi < kp->n_pool; qi++) {
            const cJSON *q = cJSON_GetArrayItem(pool, qi), *docs = cJSON_GetObjectItem(q, "docs");
            query_set *qs = &kp->pool[qi];
            qs->query = dup_json_str(q, "query");
            qs->tokens = (long)cJSON_GetObjectItem(q, "tokens")->valuedouble;
            qs->n_docs = cJSON_GetArraySize(docs);
            qs->docs = calloc((size_t)qs->n_docs, sizeof *qs->docs);
            if (!qs->query || !qs->docs) goto done;
            for (int d = 0; d < qs->n_docs; d++)
                if (!(qs->docs[d] = strdup(cJSON_GetArrayItem(docs, d)->valuestring))) goto done;
        }
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "rerank-bench: --inputs %s: missing fields or out of memory\n", path);
    cJSON_Delete(root);
    return rc;
}

static void inputs_free(inputs *in)
{
    for (int ki = 0; ki < in->n_k; ki++) {
        k_inputs *kp = &in->per_k[ki];
        for (int qi = 0; qi < kp->n_pool; qi++) {
            query_set *qs = &kp->pool[qi];
            for (int d = 0; d < qs->n_docs; d++)
                free(qs->docs[d]);
            free(qs->docs);
            free(qs->query);
            rb_request_free(&qs->unary);
            rb_request_free(&qs->stream);
        }
        free(kp->pool);
    }
    free(in->per_k);
}

/* ----------------------------------------------------------------------------------------
 * Progress bar (stderr, only on a terminal)
 */

static int g_progress;
static double g_progress_last;

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

typedef struct point {
    char mode[16]; /* "unary", "stream", "inproc", "st", "hf", "closed", "open" */
    int k, clients;
    double rate; /* open loop: offered requests/s */
    int n_err;
    char first_err[256];
    double *lat, *first, *tok, *queue, *inf, *srv; /* per measured request, seconds */
    int n, cap;
    double wall_s; /* measured window */
    long pairs, tokens;
    int late_starts; /* open loop: arrivals started late because every slot was busy */
    rb_summary s_lat, s_first, s_tok, s_queue, s_inf, s_srv;
} point;

static int point_init(point *p, const char *mode, int k, int cap)
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

static void point_free(point *p)
{
    free(p->lat), free(p->first), free(p->tok), free(p->queue), free(p->inf), free(p->srv);
    memset(p, 0, sizeof *p);
}

static int point_grow(point *p)
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

static void point_finish(point *p)
{
    rb_summarize(p->lat, p->n, &p->s_lat);
    rb_summarize(p->first, p->n, &p->s_first);
    rb_summarize(p->tok, p->n, &p->s_tok);
    rb_summarize(p->queue, p->n, &p->s_queue);
    rb_summarize(p->inf, p->n, &p->s_inf);
    rb_summarize(p->srv, p->n, &p->s_srv);
}

static double per_s(const point *p, double x)
{
    return p->wall_s > 0 ? x / p->wall_s : NAN;
}

/* ----------------------------------------------------------------------------------------
 * Driving the server
 */

typedef struct run_ctx {
    point *p;
    k_inputs *kp;
    int warmup_n;     /* count mode: cookies below are warm-up */
    double t_measure; /* time mode: completions from here ... */
    double t_end;     /* ... to here are measured; later ones are ignored */
    int time_mode, open_loop;
    long n_done; /* completions so far, warm-up included */
    double first_measured_start, last_end;
} run_ctx;

static void on_reply(void *user, const rb_reply *r)
{
    run_ctx *x = user;
    point *p = x->p;
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
    if (r->status != 0 || r->n_scored != r->n_docs) {
        if (!p->n_err)
            snprintf(p->first_err, sizeof p->first_err, "status %d: %.200s (%d of %d scored)",
                     r->status, r->msg, r->n_scored, r->n_docs);
        p->n_err++;
        return;
    }
    if (!measured || point_grow(p)) return;
    const query_set *qs = &x->kp->pool[r->cookie % x->kp->n_pool];
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

static const rb_request *pick(k_inputs *kp, long seq, int streaming)
{
    query_set *qs = &kp->pool[seq % kp->n_pool];
    return streaming ? &qs->stream : &qs->unary;
}

/* Closed loop: `clients` calls always in flight.
 * Count mode (measure_s == 0): warmup_n + n requests, all measured but the warm-up.
 * Time mode: warm-up lasts at least warmup_s and until every client has completed one
 * request (so the queue is in its steady state, however long one request takes at this
 * concurrency); then completions are measured for measure_s, extended until there are at
 * least `clients` of them (one round; a slow server gets a longer window, not an empty
 * one; at most 300 s); then the calls still in flight are cancelled rather than waited for. */
static int run_closed(rb_client *cli, k_inputs *kp, int streaming, int clients, int warmup_n, int n,
                      double warmup_s, double measure_s, point *p, const char *label)
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
    point_finish(p);
    return 0;
}

/* Open loop: arrivals every 1/rate s for warmup_s + measure_s; latency from the scheduled
 * arrival. Calls left over at the end are waited for (bounded by the call deadline). */
static int run_open(rb_client *cli, k_inputs *kp, double rate, double warmup_s, double measure_s,
                    point *p, const char *label)
{
    run_ctx x = {.p = p, .kp = kp, .time_mode = 1, .open_loop = 1};
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
    point_finish(p);
    return 0;
}

/* ----------------------------------------------------------------------------------------
 * In-process engine
 */

static int run_inproc(rr_engine *e, const rr_model *m, k_inputs *kp, point *p, float *logits0,
                      const char *label)
{
    rr_score_opts so = {.max_length = 0, .truncate = 1, .keep_last = 0};
    rr_error err;
    float *logits = malloc((size_t)kp->k * sizeof *logits);
    size_t *lens = malloc((size_t)kp->k * sizeof *lens);
    double t_first = 0, t_last = 0;
    if (!logits || !lens) goto fail;
    for (int i = 0; i < kp->warmup + kp->n_requests; i++) {
        query_set *qs = &kp->pool[i % kp->n_pool];
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
        if (i == 0 && logits0) memcpy(logits0, logits, (size_t)kp->k * sizeof *logits);
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
    point_finish(p);
    free(logits);
    free(lens);
    return 0;
fail:
    free(logits);
    free(lens);
    return -1;
}

/* ----------------------------------------------------------------------------------------
 * Peers (bench/peers/peers.py JSON): raw latencies per K and the logits of pool[0]
 */

#define MAX_PEERS 4

typedef struct peer {
    char name[64];
    char desc[256];
    point *by_k; /* [n_k], mode "peer" */
    float **logits0;
} peer;

typedef struct peers {
    peer p[MAX_PEERS];
    int n;
    char machine[256];
} peers;

static int peers_read(const char *path, const inputs *in, peers *out)
{
    char *text = slurp(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    memset(out, 0, sizeof *out);
    if (!root) {
        fprintf(stderr, "rerank-bench: --peers %s: unreadable or not JSON\n", path);
        return -1;
    }
    const cJSON *arr = cJSON_GetObjectItem(root, "peers"), *pe;
    const cJSON *mach = cJSON_GetObjectItem(root, "environment");
    if (cJSON_IsString(mach)) snprintf(out->machine, sizeof out->machine, "%s", mach->valuestring);
    cJSON_ArrayForEach(pe, arr)
    {
        if (out->n == MAX_PEERS) break;
        peer *p = &out->p[out->n++];
        const cJSON *nm = cJSON_GetObjectItem(pe, "name"), *ds = cJSON_GetObjectItem(pe, "desc");
        const cJSON *ks = cJSON_GetObjectItem(pe, "per_k"), *kv;
        snprintf(p->name, sizeof p->name, "%s", cJSON_IsString(nm) ? nm->valuestring : "?");
        snprintf(p->desc, sizeof p->desc, "%s", cJSON_IsString(ds) ? ds->valuestring : "");
        p->by_k = calloc((size_t)in->n_k, sizeof *p->by_k);
        p->logits0 = calloc((size_t)in->n_k, sizeof *p->logits0);
        if (!p->by_k || !p->logits0) return -1;
        for (int ki = 0; ki < in->n_k; ki++)
            p->by_k[ki].k = -1;
        cJSON_ArrayForEach(kv, ks)
        {
            int k = cJSON_GetObjectItem(kv, "k")->valueint, ki;
            for (ki = 0; ki < in->n_k && in->per_k[ki].k != k; ki++) {
            }
            if (ki == in->n_k) continue;
            const cJSON *lat = cJSON_GetObjectItem(kv, "latency_s"),
                        *lg = cJSON_GetObjectItem(kv, "logits0"), *x;
            point *pt = &p->by_k[ki];
            if (point_init(pt, "peer", k, cJSON_GetArraySize(lat))) return -1;
            cJSON_ArrayForEach(x, lat)
            {
                pt->lat[pt->n++] = x->valuedouble;
                pt->wall_s += x->valuedouble;
                pt->pairs += k;
                pt->tokens += in->per_k[ki]
                                  .pool[(in->per_k[ki].warmup + pt->n - 1) % in->per_k[ki].n_pool]
                                  .tokens;
            }
            pt->clients = 1;
            point_finish(pt);
            if (cJSON_GetArraySize(lg) == k) {
                p->logits0[ki] = malloc((size_t)k * sizeof(float));
                if (!p->logits0[ki]) return -1;
                int i = 0;
                cJSON_ArrayForEach(x, lg) p->logits0[ki][i++] = (float)x->valuedouble;
            }
        }
    }
    cJSON_Delete(root);
    return 0;
}

static void peers_free(peers *ps, int n_k)
{
    for (int i = 0; i < ps->n; i++) {
        for (int ki = 0; ki < n_k; ki++) {
            if (ps->p[i].by_k && ps->p[i].by_k[ki].k >= 0) point_free(&ps->p[i].by_k[ki]);
            if (ps->p[i].logits0) free(ps->p[i].logits0[ki]);
        }
        free(ps->p[i].by_k);
        free(ps->p[i].logits0);
    }
}

/* ----------------------------------------------------------------------------------------
 * Validation: before timing, pool[0] of every K is scored by each of our paths and compared
 * with a reference (transformers' logits from the peers file when given, else in-process).
 */

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

/* ----------------------------------------------------------------------------------------
 * Reports
 */

typedef struct results {
    point *unary, *stream, *inproc; /* [n_k], NULL when not run */
    point *closed;                  /* [n_closed] */
    int n_closed;
    point open;
    int have_open;
    double validation_worst;
    char validation_ref[64];
} results;

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

static cJSON *point_json(const point *p, int with_stages)
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
    cJSON_AddNumberToObject(o, "wall_s", p->wall_s);
    cJSON_AddNumberToObject(o, "requests_per_s", per_s(p, p->n));
    cJSON_AddNumberToObject(o, "pairs_per_s", per_s(p, (double)p->pairs));
    cJSON_AddNumberToObject(o, "tokens_per_s", per_s(p, (double)p->tokens));
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

static void fmt_ms(char *buf, size_t cap, double s)
{
    if (isnan(s))
        snprintf(buf, cap, "–");
    else if (s < 0.01)
        snprintf(buf, cap, "%.2f", ms(s));
    else
        snprintf(buf, cap, "%.1f", ms(s));
}

static const char *M(double s)
{
    static char ring[16][32];
    static int at;
    char *b = ring[at++ % 16];
    fmt_ms(b, 32, s);
    return b;
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
static void plot(const opts *o, const char *device, const int has[5], int n_closed)
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
    char cmd[1200];
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "rerank-bench: gnuplot not found; no PNG plots (data in %s/*.dat)\n",
                o->out_dir);
        return;
    }
    snprintf(cmd, sizeof cmd, "gnuplot -e \"dir='%s'\" -", o->out_dir);
    FILE *g = popen(cmd, "w");
    if (!g) return;
    fprintf(g, "set terminal pngcairo size 900,560 font 'sans,10'\nset datafile missing 'NaN'\n"
               "set grid\nset key top left\n");
    fprintf(g,
            "set output dir.'/latency_k.png'\nset title 'Latency per request vs K, one client "
            "(%s)' noenhanced\nset logscale xy\nset xlabel 'K (documents per request)'\n"
            "set ylabel 'latency (ms)'\nplot ",
            device);
    int first = 1;
    for (size_t i = 0; i < sizeof series / sizeof *series; i++) {
        if (!has[series[i].src]) continue;
        fprintf(g, "%s dir.'/latency_k.dat' u 1:%d w lp %s t '%s'", first ? "" : ",", series[i].col,
                series[i].style, series[i].title);
        first = 0;
    }
    fprintf(g, "%s\n", first ? "1/0 notitle" : "");
    if (n_closed) {
        fprintf(g,
                "set output dir.'/concurrency.png'\nset title 'Throughput vs concurrency, "
                "closed loop, K = %d (%s)' noenhanced\nunset logscale\nset logscale x 2\n"
                "set xlabel 'concurrent clients'\nset ylabel 'pairs/s'\nset y2label "
                "'latency (ms)'\nset ytics nomirror\nset y2tics\nset yrange [0:*]\n"
                "set y2range [0:*]\n"
                "plot dir.'/concurrency.dat' u 1:3 w lp lw 2 pt 7 t 'throughput (pairs/s)' "
                "axes x1y1, '' u 1:4 w lp pt 5 t 'p50 latency (ms)' axes x1y2, '' u 1:5 w lp "
                "dt 2 pt 5 t 'p99 latency (ms)' axes x1y2\n",
                o->sweep_k, device);
    }
    if (pclose(g) != 0) fprintf(stderr, "rerank-bench: gnuplot failed; no PNG plots\n");
}

static int write_reports(const opts *o, const inputs *in, const rb_info *info, int have_info,
                         const char *inproc_desc, const peers *ps, const results *r)
{
    char path[1024], cpu[256], date[64], device[200];
    struct utsname un;
    time_t now = time(NULL);
    FILE *f;
    int st_i = -1, hf_i = -1;
    machine_cpu(cpu, sizeof cpu);
    uname(&un);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    snprintf(device, sizeof device, "%s", have_info ? info->device : inproc_desc);
    for (int i = 0; i < ps->n; i++) {
        if (strcmp(ps->p[i].name, "sentence-transformers") == 0) st_i = i;
        if (strcmp(ps->p[i].name, "transformers") == 0) hf_i = i;
    }

    /* JSON */
    cJSON *root = cJSON_CreateObject(), *mach = cJSON_AddObjectToObject(root, "machine");
    cJSON_AddStringToObject(root, "tool", "rerank-bench");
    cJSON_AddStringToObject(root, "date", date);
    cJSON_AddStringToObject(mach, "cpu", cpu);
    cJSON_AddNumberToObject(mach, "online_cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddStringToObject(mach, "os", un.release);
    cJSON_AddStringToObject(root, "device", device);
    if (have_info) {
        cJSON *s = cJSON_AddObjectToObject(root, "server");
        cJSON_AddStringToObject(s, "target", o->target);
        cJSON_AddStringToObject(s, "version", info->version);
        cJSON_AddStringToObject(s, "model", info->model_id);
        cJSON_AddStringToObject(s, "architecture", info->architecture);
        cJSON_AddStringToObject(s, "dtype", info->dtype);
        cJSON_AddStringToObject(s, "weights_dtype", info->weights_dtype);
        cJSON_AddNumberToObject(s, "max_batch_tokens", info->max_batch_tokens);
        cJSON_AddNumberToObject(s, "tokenizer_workers", info->tokenizer_workers);
    }
    if (inproc_desc[0]) cJSON_AddStringToObject(root, "inproc_engine", inproc_desc);
    cJSON *ij = cJSON_AddObjectToObject(root, "inputs");
    cJSON_AddStringToObject(ij, "source", in->source);
    cJSON_AddNumberToObject(ij, "query_tokens", in->query_tokens);
    cJSON_AddNumberToObject(ij, "passage_tokens", in->passage_tokens);
    cJSON_AddNumberToObject(ij, "stream_batch", o->stream_batch);
    if (r->validation_ref[0]) {
        cJSON *v = cJSON_AddObjectToObject(root, "validation");
        cJSON_AddStringToObject(v, "reference", r->validation_ref);
        cJSON_AddNumberToObject(v, "max_rel_diff", r->validation_worst);
        cJSON_AddNumberToObject(v, "tolerance", LOGIT_TOL);
        cJSON_AddNumberToObject(v, "max_k", o->validate_max_k);
    }
    cJSON *lk = cJSON_AddArrayToObject(root, "latency_by_k");
    for (int ki = 0; ki < in->n_k; ki++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "k", in->per_k[ki].k);
        if (r->unary) cJSON_AddItemToObject(e, "grpc_unary", point_json(&r->unary[ki], 1));
        if (r->stream && r->stream[ki].cap)
            cJSON_AddItemToObject(e, "grpc_stream", point_json(&r->stream[ki], 1));
        if (r->inproc) cJSON_AddItemToObject(e, "inproc", point_json(&r->inproc[ki], 0));
        for (int i = 0; i < ps->n; i++)
            if (ps->p[i].by_k[ki].k >= 0)
                cJSON_AddItemToObject(e, ps->p[i].name, point_json(&ps->p[i].by_k[ki], 0));
        cJSON_AddItemToArray(lk, e);
    }
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
    char *js = cJSON_Print(root);
    cJSON_Delete(root);
    snprintf(path, sizeof path, "%s/report.json", o->out_dir);
    if (!js || !(f = fopen(path, "w"))) goto io_fail;
    fputs(js, f);
    fputc('\n', f);
    free(js);
    fclose(f);

    /* gnuplot data */
    snprintf(path, sizeof path, "%s/latency_k.dat", o->out_dir);
    if (!(f = fopen(path, "w"))) goto io_fail;
    fprintf(f, "# K unary_p50 unary_p99 stream_p50 stream_p99 inproc_p50 inproc_p99 st_p50 st_p99 "
               "hf_p50 hf_p99 (ms)\n");
    for (int ki = 0; ki < in->n_k; ki++) {
        const rb_summary *cols[5] = {
            r->unary ? &r->unary[ki].s_lat : NULL,
            r->stream && r->stream[ki].cap ? &r->stream[ki].s_lat : NULL,
            r->inproc ? &r->inproc[ki].s_lat : NULL,
            st_i >= 0 && ps->p[st_i].by_k[ki].k >= 0 ? &ps->p[st_i].by_k[ki].s_lat : NULL,
            hf_i >= 0 && ps->p[hf_i].by_k[ki].k >= 0 ? &ps->p[hf_i].by_k[ki].s_lat : NULL};
        fprintf(f, "%d", in->per_k[ki].k);
        for (int c = 0; c < 5; c++) {
            if (cols[c] && cols[c]->n)
                fprintf(f, " %.4f %.4f", ms(cols[c]->p50), ms(cols[c]->p99));
            else
                fprintf(f, " NaN NaN");
        }
        fputc('\n', f);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/concurrency.dat", o->out_dir);
    if (!(f = fopen(path, "w"))) goto io_fail;
    fprintf(f, "# clients requests_per_s pairs_per_s p50_ms p99_ms\n");
    for (int i = 0; i < r->n_closed; i++) {
        const point *p = &r->closed[i];
        fprintf(f, "%d %.3f %.3f %.4f %.4f\n", p->clients, per_s(p, p->n),
                per_s(p, (double)p->pairs), ms(p->s_lat.p50), ms(p->s_lat.p99));
    }
    fclose(f);

    /* Markdown */
    snprintf(path, sizeof path, "%s/report.md", o->out_dir);
    if (!(f = fopen(path, "w"))) goto io_fail;
    fprintf(f, "# rerank-bench, %s\n\n", date);
    fprintf(f, "- Machine: %s, %ld online CPUs, Linux %s\n", cpu, sysconf(_SC_NPROCESSORS_ONLN),
            un.release);
    fprintf(f, "- Device: %s\n", device);
    if (have_info)
        fprintf(f,
                "- Server: rerankd %s at %s, model `%s` (%s, weights %s, compute %s), "
                "max_batch_tokens %u, %u tokenizer workers\n",
                info->version, o->target, info->model_id, info->architecture, info->weights_dtype,
                info->dtype, info->max_batch_tokens, info->tokenizer_workers);
    if (inproc_desc[0])
        fprintf(f, "- In-process engine: %s (rr_score_query: tokenization + forward)\n",
                inproc_desc);
    for (int i = 0; i < ps->n; i++)
        fprintf(f, "- Peer %s: %s\n", ps->p[i].name, ps->p[i].desc);
    if (ps->machine[0]) fprintf(f, "- Peer environment: %s\n", ps->machine);
    fprintf(f,
            "- Inputs: %s; queries ~%d tokens, passages ~%d tokens (windows of the text cut "
            "at word boundaries); the same requests for every side\n",
            in->source, in->query_tokens, in->passage_tokens);
    if (r->validation_ref[0])
        fprintf(f,
                "- Validated before timing: every side's logits for the first request of each K "
                "≤ %d against %s, max |Δ|/max(1,|x|) = %.1e (tolerance %.0e)\n",
                o->validate_max_k, r->validation_ref, r->validation_worst, LOGIT_TOL);
    fprintf(f, "- Percentiles are nearest-rank over n requests (p99 of fewer than 100 requests is "
               "the maximum); latencies in ms\n\n");

    fprintf(f, "## Latency per request vs K (one client, sequential)\n\n");
    fprintf(f,
            "| K | n | gRPC unary p50 | p90 | p99 | max | pairs/s | tokens/s | gRPC stream p50 | "
            "p99 | in-process p50 | p99 | server cost (unary p50 − in-process p50) |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int ki = 0; ki < in->n_k; ki++) {
        const point *u = r->unary ? &r->unary[ki] : NULL,
                    *s = r->stream && r->stream[ki].cap ? &r->stream[ki] : NULL,
                    *ip = r->inproc ? &r->inproc[ki] : NULL;
        fprintf(f, "| %d | %d | %s | %s | %s | %s | %.0f | %.0f | %s | %s | %s | %s | %s |\n",
                in->per_k[ki].k,
                u    ? u->n
                : ip ? ip->n
                     : 0,
                M(u ? u->s_lat.p50 : NAN), M(u ? u->s_lat.p90 : NAN), M(u ? u->s_lat.p99 : NAN),
                M(u ? u->s_lat.max : NAN), u ? per_s(u, (double)u->pairs) : NAN,
                u ? per_s(u, (double)u->tokens) : NAN, M(s ? s->s_lat.p50 : NAN),
                M(s ? s->s_lat.p99 : NAN), M(ip ? ip->s_lat.p50 : NAN), M(ip ? ip->s_lat.p99 : NAN),
                M(u && ip ? u->s_lat.p50 - ip->s_lat.p50 : NAN));
    }
    if (ps->n) {
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
        for (int ki = 0; ki < in->n_k; ki++) {
            double up = r->unary ? r->unary[ki].s_lat.p50 : NAN;
            double ipp = r->inproc ? r->inproc[ki].s_lat.p50 : NAN;
            fprintf(f, "| %d |", in->per_k[ki].k);
            for (int i = 0; i < ps->n; i++) {
                const point *pp = &ps->p[i].by_k[ki];
                fprintf(f, " %s | %s |", M(pp->k >= 0 ? pp->s_lat.p50 : NAN),
                        M(pp->k >= 0 ? pp->s_lat.p99 : NAN));
            }
            for (int i = 0; i < ps->n; i++) {
                const point *pp = &ps->p[i].by_k[ki];
                double pv = pp->k >= 0 ? pp->s_lat.p50 : NAN;
                fprintf(f, " %s | %s |", R(pv, up), R(pv, ipp));
            }
            fprintf(f, "\n");
        }
    }
    if (r->unary) {
        fprintf(f, "\n## Server stages (gRPC unary, medians, from rerank.v1.Stats)\n\n");
        fprintf(f, "| K | tokenization | queue | inference | server total | client − server "
                   "(transport, client) |\n|---|---|---|---|---|---|\n");
        for (int ki = 0; ki < in->n_k; ki++) {
            const point *u = &r->unary[ki];
            fprintf(f, "| %d | %s | %s | %s | %s | %s |\n", u->k, M(u->s_tok.p50),
                    M(u->s_queue.p50), M(u->s_inf.p50), M(u->s_srv.p50),
                    M(u->s_lat.p50 - u->s_srv.p50));
        }
    }
    if (r->stream) {
        fprintf(f, "\n## Streaming (RerankStream, %d documents per StreamBatch)\n\n",
                o->stream_batch);
        fprintf(f, "| K | first batch scored p50 | whole ranking p50 | p99 | inference (sum of "
                   "batches) p50 |\n|---|---|---|---|---|\n");
        for (int ki = 0; ki < in->n_k; ki++) {
            const point *s = &r->stream[ki];
            if (!s->cap) continue;
            fprintf(f, "| %d | %s | %s | %s | %s |\n", s->k, M(s->s_first.p50), M(s->s_lat.p50),
                    M(s->s_lat.p99), M(s->s_inf.p50));
        }
    }
    if (r->n_closed) {
        fprintf(f,
                "\n## Throughput vs concurrency (closed loop, gRPC unary, K = %d)\n\n"
                "Warm-up: at least %g s and until every client has completed a request; "
                "window: completions during at least %g s and at least one per client.\n\n",
                o->sweep_k, o->warmup_s, o->sweep_s);
        fprintf(f, "| clients | window (s) | requests | req/s | pairs/s | tokens/s | p50 | p90 | "
                   "p99 | max | "
                   "queue p50 | inference p50 | errors "
                   "|\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (int i = 0; i < r->n_closed; i++) {
            const point *p = &r->closed[i];
            fprintf(f,
                    "| %d | %.1f | %d | %.1f | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %d |\n",
                    p->clients, p->wall_s, p->n, per_s(p, p->n), per_s(p, (double)p->pairs),
                    per_s(p, (double)p->tokens), M(p->s_lat.p50), M(p->s_lat.p90), M(p->s_lat.p99),
                    M(p->s_lat.max), M(p->s_queue.p50), M(p->s_inf.p50), p->n_err);
        }
    }
    if (r->have_open) {
        const point *p = &r->open;
        fprintf(f, "\n## Open loop (fixed arrival rate, latency from the scheduled arrival)\n\n");
        fprintf(
            f, "| K | offered req/s | achieved req/s | requests | p50 | p90 | p99 | max | "
               "queue p50 | queue p99 | errors |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        fprintf(f, "| %d | %.1f | %.1f | %d | %s | %s | %s | %s | %s | %s | %d |\n", p->k, p->rate,
                per_s(p, p->n), p->n, M(p->s_lat.p50), M(p->s_lat.p90), M(p->s_lat.p99),
                M(p->s_lat.max), M(p->s_queue.p50), M(p->s_queue.p99), p->n_err);
    }
    fprintf(f, "\nPlots: `latency_k.png` (latency vs K)%s.\n",
            r->n_closed ? ", `concurrency.png` (throughput vs concurrency)" : "");
    fclose(f);

    {
        int has[5] = {r->unary != NULL, r->stream != NULL, r->inproc != NULL, st_i >= 0, hf_i >= 0};
        plot(o, device, has, r->n_closed);
    }
    return 0;
io_fail:
    fprintf(stderr, "rerank-bench: cannot write %s: %s\n", path, strerror(errno));
    return -1;
}

/* mkdir -p */
static int mkdir_p_out(const char *dir)
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

/* ----------------------------------------------------------------------------------------
 * main
 */

int main(int argc, char **argv)
{
    opts o;
    inputs in;
    peers ps;
    results r;
    rb_info info;
    int have_info = 0, rc = 1, max_k = 0;
    rr_model *model = NULL;
    rr_engine *engine = NULL;
    rb_client *cli = NULL;
    rr_error err;
    char inproc_desc[160] = "", msg[256];
    float *ref = NULL, *got = NULL;

    memset(&in, 0, sizeof in);
    memset(&ps, 0, sizeof ps);
    memset(&r, 0, sizeof r);
    if (!parse_args(argc, argv, &o)) return 2;
    g_progress = o.progress;

    if (o.model && (o.text || o.inproc)) {
        fprintf(stderr, "rerank-bench: loading %s\n", o.model);
        if (rr_model_load(o.model, &model, &err) != RR_OK) {
            fprintf(stderr, "rerank-bench: %s\n", err.msg);
            goto done;
        }
    }
    if (o.text) {
        if (inputs_generate(&o, rr_model_tokenizer(model), rr_model_get_info(model)->max_length,
                            &in))
            goto done;
    } else if (inputs_read(o.inputs, &in)) {
        goto done;
    }
    if (o.dump_inputs) {
        rc = inputs_write(&in, o.dump_inputs) == 0 ? 0 : 1;
        if (!rc) fprintf(stderr, "rerank-bench: wrote %s\n", o.dump_inputs);
        goto done;
    }
    for (int ki = 0; ki < in.n_k; ki++)
        if (in.per_k[ki].k > max_k) max_k = in.per_k[ki].k;
    if (o.peers && peers_read(o.peers, &in, &ps)) goto done;
    if (mkdir_p_out(o.out_dir)) goto done;
    ref = malloc((size_t)max_k * sizeof *ref);
    got = malloc((size_t)max_k * sizeof *got);
    if (!ref || !got) goto done;

    if (o.inproc) {
        rr_engine_opts eo = {.device = o.device,
                             .max_batch_tokens = 0,
                             .n_threads = o.threads,
                             .dtype = o.device < 0 ? RR_DTYPE_F32 : RR_DTYPE_F16};
        if (rr_engine_init(model, &eo, &engine, &err) != RR_OK) {
            fprintf(stderr, "rerank-bench: %s\n", err.msg);
            goto done;
        }
        snprintf(inproc_desc, sizeof inproc_desc, "%s", rr_engine_describe(engine));
    }
    if (o.target) {
        int slots = MAX_SLOTS;
        cli = rb_client_init(o.target, slots, max_k, o.timeout_s);
        if (!cli) {
            fprintf(stderr, "rerank-bench: cannot create a gRPC client for %s\n", o.target);
            goto done;
        }
        if (rb_client_info(cli, &info, 30, msg, sizeof msg)) {
            fprintf(stderr, "rerank-bench: %s: %s\n", o.target, msg);
            goto done;
        }
        have_info = 1;
        fprintf(stderr, "rerank-bench: %s: rerankd %s, %s on %s\n", o.target, info.version,
                info.architecture, info.device);
        if ((unsigned)max_k > info.max_documents) {
            fprintf(stderr, "rerank-bench: K = %d is over the server's max_documents %u\n", max_k,
                    info.max_documents);
            goto done;
        }
        for (int ki = 0; ki < in.n_k; ki++)
            for (int qi = 0; qi < in.per_k[ki].n_pool; qi++) {
                query_set *qs = &in.per_k[ki].pool[qi];
                if (rb_request_init(&qs->unary, qs->query, (const char *const *)qs->docs,
                                    qs->n_docs, 0, 0) ||
                    rb_request_init(&qs->stream, qs->query, (const char *const *)qs->docs,
                                    qs->n_docs, 1, o.stream_batch))
                    goto done;
            }
    }

    /* Validation before timing, on pool[0] of every K up to --validate-max-k (100 spans
     * several engine batches; larger K would only repeat the check at a high price on a CPU).
     * Reference: transformers' logits when the peers file has them, else the in-process
     * engine, else the unary path (stream checked against it). */
    {
        int hf = -1;
        for (int i = 0; i < ps.n; i++)
            if (strcmp(ps.p[i].name, "transformers") == 0) hf = i;
        for (int ki = 0; ki < in.n_k; ki++) {
            k_inputs *kp = &in.per_k[ki];
            const char *ref_name = NULL;
            if (kp->k > o.validate_max_k) continue;
            int have_ref = 0;
            if (hf >= 0 && ps.p[hf].logits0[ki]) {
                memcpy(ref, ps.p[hf].logits0[ki], (size_t)kp->k * sizeof *ref);
                ref_name = "transformers (fp32)";
                have_ref = 1;
            }
            if (engine) {
                rr_score_opts so = {0, 1, 0};
                size_t *lens = malloc((size_t)kp->k * sizeof *lens);
                query_set *qs = &kp->pool[0];
                if (!lens) goto done;
                for (int d = 0; d < kp->k; d++)
                    lens[d] = strlen(qs->docs[d]);
                rr_status st =
                    rr_score_query(engine, model, qs->query, strlen(qs->query),
                                   (const char *const *)qs->docs, lens, kp->k, &so, got, &err);
                free(lens);
                if (st != RR_OK) {
                    fprintf(stderr, "rerank-bench: rr_score_query: %s\n", err.msg);
                    goto done;
                }
                if (have_ref) {
                    if (check_against("in-process", ref_name, got, ref, kp->k, &r.validation_worst))
                        goto done;
                } else {
                    memcpy(ref, got, (size_t)kp->k * sizeof *ref);
                    ref_name = "the in-process engine";
                    have_ref = 1;
                }
            }
            if (cli) {
                const rb_request *reqs[2] = {
                    o.unary || !have_ref ? &kp->pool[0].unary : NULL,
                    o.stream && kp->k <= o.stream_max_k ? &kp->pool[0].stream : NULL};
                const char *names[2] = {"gRPC unary", "gRPC stream"};
                for (int j = 0; j < 2; j++) {
                    if (!reqs[j]) continue;
                    if (score_once(cli, reqs[j], got, msg, sizeof msg)) {
                        fprintf(stderr, "rerank-bench: K=%d %s: %s\n", kp->k, names[j], msg);
                        goto done;
                    }
                    if (have_ref) {
                        if (check_against(names[j], ref_name, got, ref, kp->k, &r.validation_worst))
                            goto done;
                    } else {
                        memcpy(ref, got, (size_t)kp->k * sizeof *ref);
                        ref_name = "gRPC unary";
                        have_ref = 1;
                    }
                }
            }
            for (int i = 0; i < ps.n; i++) {
                if (i == hf || !ps.p[i].logits0[ki] || !have_ref) continue;
                if (check_against(ps.p[i].name, ref_name, ps.p[i].logits0[ki], ref, kp->k,
                                  &r.validation_worst))
                    goto done;
            }
            if (ref_name) snprintf(r.validation_ref, sizeof r.validation_ref, "%s", ref_name);
        }
        fprintf(stderr, "rerank-bench: validated against %s (max rel. diff %.1e)\n",
                r.validation_ref, r.validation_worst);
    }

    /* 1. Latency per K */
    if (cli && o.unary) r.unary = calloc((size_t)in.n_k, sizeof *r.unary);
    if (cli && o.stream) r.stream = calloc((size_t)in.n_k, sizeof *r.stream);
    if (engine) r.inproc = calloc((size_t)in.n_k, sizeof *r.inproc);
    for (int ki = 0; ki < in.n_k; ki++) {
        k_inputs *kp = &in.per_k[ki];
        char label[64];
        if (r.unary) {
            snprintf(label, sizeof label, "K=%d gRPC unary", kp->k);
            if (point_init(&r.unary[ki], "unary", kp->k, kp->n_requests) ||
                run_closed(cli, kp, 0, 1, kp->warmup, kp->n_requests, 0, 0, &r.unary[ki], label))
                goto done;
        }
        if (r.stream && kp->k <= o.stream_max_k) {
            snprintf(label, sizeof label, "K=%d gRPC stream", kp->k);
            if (point_init(&r.stream[ki], "stream", kp->k, kp->n_requests) ||
                run_closed(cli, kp, 1, 1, kp->warmup, kp->n_requests, 0, 0, &r.stream[ki], label))
                goto done;
        }
        if (r.inproc) {
            snprintf(label, sizeof label, "K=%d in-process", kp->k);
            if (point_init(&r.inproc[ki], "inproc", kp->k, kp->n_requests) ||
                run_inproc(engine, model, kp, &r.inproc[ki], NULL, label))
                goto done;
        }
        fprintf(stderr, "  K=%-5d unary p50 %s ms  stream p50 %s ms  in-process p50 %s ms\n", kp->k,
                M(r.unary ? r.unary[ki].s_lat.p50 : NAN),
                M(r.stream && r.stream[ki].cap ? r.stream[ki].s_lat.p50 : NAN),
                M(r.inproc ? r.inproc[ki].s_lat.p50 : NAN));
    }
    /* In-process engine released before the load phases: it would hold its threads' memory
     * and nothing else; the server is what is measured from here on. */
    rr_engine_free(engine);
    engine = NULL;

    /* 2. Concurrency sweep and 3. open loop, at K = sweep_k */
    if (cli && (o.n_concs || o.rate != 0)) {
        k_inputs *kp = NULL;
        double peak = 0;
        for (int ki = 0; ki < in.n_k; ki++)
            if (in.per_k[ki].k == o.sweep_k) kp = &in.per_k[ki];
        if (!kp) {
            fprintf(stderr, "rerank-bench: --sweep-k %d must be one of the K values\n", o.sweep_k);
            goto done;
        }
        r.closed = calloc((size_t)(o.n_concs ? o.n_concs : 1), sizeof *r.closed);
        if (!r.closed) goto done;
        for (int i = 0; i < o.n_concs; i++) {
            char label[64];
            snprintf(label, sizeof label, "closed loop, %d clients, K=%d", o.concs[i], kp->k);
            if (point_init(&r.closed[i], "closed", kp->k, 1024) ||
                run_closed(cli, kp, 0, o.concs[i], 0, 0, o.warmup_s, o.sweep_s, &r.closed[i],
                           label))
                goto done;
            r.n_closed++;
            double rps = per_s(&r.closed[i], r.closed[i].n);
            if (rps > peak) peak = rps;
            fprintf(stderr, "  %2d clients: %.1f req/s, p50 %s ms, p99 %s ms, %d errors\n",
                    o.concs[i], rps, M(r.closed[i].s_lat.p50), M(r.closed[i].s_lat.p99),
                    r.closed[i].n_err);
        }
        double rate = o.rate >= 0 ? o.rate : o.rate_fraction * peak;
        if (rate > 0) {
            char label[64];
            snprintf(label, sizeof label, "open loop, %.1f req/s, K=%d", rate, kp->k);
            if (point_init(&r.open, "open", kp->k, 1024) ||
                run_open(cli, kp, rate, o.warmup_s, o.open_s, &r.open, label))
                goto done;
            r.have_open = 1;
            fprintf(stderr, "  open loop %.1f req/s: p50 %s ms, p99 %s ms, %d errors\n", rate,
                    M(r.open.s_lat.p50), M(r.open.s_lat.p99), r.open.n_err);
        }
    }

    if (write_reports(&o, &in, &info, have_info, inproc_desc, &ps, &r)) goto done;
    fprintf(stderr, "rerank-bench: wrote %s/report.{json,md}\n", o.out_dir);
    rc = 0;
    for (int ki = 0; ki < in.n_k; ki++) {
        if (r.unary && r.unary[ki].n_err) rc = 1;
        if (r.stream && r.stream[ki].n_err) rc = 1;
    }
    for (int i = 0; i < r.n_closed; i++)
        if (r.closed[i].n_err) rc = 1;
    if (r.have_open && r.open.n_err) rc = 1;
    if (rc) fprintf(stderr, "rerank-bench: some requests failed (see errors in the report)\n");
done:
    for (int ki = 0; ki < in.n_k; ki++) {
        if (r.unary) point_free(&r.unary[ki]);
        if (r.stream) point_free(&r.stream[ki]);
        if (r.inproc) point_free(&r.inproc[ki]);
    }
    for (int i = 0; i < o.n_concs && r.closed; i++)
        point_free(&r.closed[i]);
    if (r.have_open) point_free(&r.open);
    free(r.unary), free(r.stream), free(r.inproc), free(r.closed);
    peers_free(&ps, in.n_k);
    inputs_free(&in);
    rb_client_free(cli);
    rr_engine_free(engine);
    rr_model_free(model);
    free(ref);
    free(got);
    return rc;
}
