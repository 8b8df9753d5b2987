/*
 * inputs.c — the requests every side replays: per K, a pool of queries with K passages
 * each, cut from English text (--text) or read back from the JSON of --dump-inputs
 * (--inputs), so that rerank-bench, the peers and later runs see the same requests.
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

char *rb_slurp(const char *path, size_t *len)
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

static int requests_for_k(const rb_opts *o, int k)
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

int rb_inputs_generate(const rb_opts *o, const rr_tokenizer *tok, int max_len, rb_inputs *in)
{
    size_t len;
    char *text = rb_slurp(o->text, &len);
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
        rb_k_inputs *kp = &in->per_k[ki];
        kp->k = o->ks[ki];
        kp->n_requests = requests_for_k(o, kp->k);
        kp->warmup = o->warmup_pairs / kp->k < 2 ? o->warmup_pairs / kp->k : 2;
        kp->n_pool = kp->n_requests < o->pool ? kp->n_requests : o->pool;
        kp->pool = calloc((size_t)kp->n_pool, sizeof *kp->pool);
        if (!kp->pool) goto fail;
        for (int qi = 0; qi < kp->n_pool; qi++) {
            rb_query_set *qs = &kp->pool[qi];
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

int rb_inputs_write(const rb_inputs *in, const char *path)
{
    cJSON *root = cJSON_CreateObject(), *ks = cJSON_AddArrayToObject(root, "per_k");
    char *s;
    FILE *f;
    cJSON_AddStringToObject(root, "source", in->source);
    cJSON_AddNumberToObject(root, "query_tokens", in->query_tokens);
    cJSON_AddNumberToObject(root, "passage_tokens", in->passage_tokens);
    cJSON_AddNumberToObject(root, "seed", (double)in->seed);
    for (int ki = 0; ki < in->n_k; ki++) {
        const rb_k_inputs *kp = &in->per_k[ki];
        cJSON *o = cJSON_CreateObject(), *pool = cJSON_AddArrayToObject(o, "pool");
        cJSON_AddNumberToObject(o, "k", kp->k);
        cJSON_AddNumberToObject(o, "warmup", kp->warmup);
        cJSON_AddNumberToObject(o, "n_requests", kp->n_requests);
        for (int qi = 0; qi < kp->n_pool; qi++) {
            const rb_query_set *qs = &kp->pool[qi];
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

int rb_inputs_read(const char *path, rb_inputs *in)
{
    char *text = rb_slurp(path, NULL);
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
        rb_k_inputs *kp = &in->per_k[ki];
        kp->k = cJSON_GetObjectItem(o, "k")->valueint;
        kp->warmup = cJSON_GetObjectItem(o, "warmup")->valueint;
        kp->n_requests = cJSON_GetObjectItem(o, "n_requests")->valueint;
        kp->n_pool = cJSON_GetArraySize(pool);
        kp->pool = calloc((size_t)kp->n_pool, sizeof *kp->pool);
        if (!kp->pool) goto done;
        for (int qi = 0; qi < kp->n_pool; qi++) {
            const cJSON *q = cJSON_GetArrayItem(pool, qi), *docs = cJSON_GetObjectItem(q, "docs");
            rb_query_set *qs = &kp->pool[qi];
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

int rb_inputs_pack(rb_inputs *in, int stream_batch)
{
    for (int ki = 0; ki < in->n_k; ki++)
        for (int qi = 0; qi < in->per_k[ki].n_pool; qi++) {
            rb_query_set *qs = &in->per_k[ki].pool[qi];
            if (rb_request_init(&qs->unary, qs->query, (const char *const *)qs->docs, qs->n_docs, 0,
                                0) ||
                rb_request_init(&qs->stream, qs->query, (const char *const *)qs->docs, qs->n_docs,
                                1, stream_batch))
                return -1;
        }
    return 0;
}

int rb_inputs_max_k(const rb_inputs *in)
{
    int max_k = 0;
    for (int ki = 0; ki < in->n_k; ki++)
        if (in->per_k[ki].k > max_k) max_k = in->per_k[ki].k;
    return max_k;
}

rb_k_inputs *rb_inputs_find_k(rb_inputs *in, int k)
{
    rb_k_inputs *kp = NULL;
    for (int ki = 0; ki < in->n_k; ki++)
        if (in->per_k[ki].k == k) kp = &in->per_k[ki];
    return kp;
}

void rb_inputs_free(rb_inputs *in)
{
    for (int ki = 0; ki < in->n_k; ki++) {
        rb_k_inputs *kp = &in->per_k[ki];
        for (int qi = 0; qi < kp->n_pool; qi++) {
            rb_query_set *qs = &kp->pool[qi];
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
