/*
 * golden.h — reading the golden files of tests/golden/<model>/ (written by
 * tests/golden/make_golden.py from HF transformers; format in that script) for the engine
 * tests. RR_GOLDEN_DIR in the environment overrides the folder (for scratch goldens).
 * Header-only (static inline), test code: plain malloc. Includers define _POSIX_C_SOURCE
 * 200809L before any include (getline, strdup).
 */
#ifndef RR_TEST_GOLDEN_H
#define RR_TEST_GOLDEN_H

#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct golden_pair {
    int qid;
    int n; /* tokens */
    int32_t *ids;
    int32_t *type_ids;
    double logit;
    char *query, *doc; /* the texts (UTF-8, NUL-terminated) */
    int has_nul;       /* a text contains U+0000, so query/doc above are cut short */
} golden_pair;

/* Quick mode (RR_TEST_QUICK set and not "0", as scripts/test.sh does under the sanitizers):
 * keeps the pairs of at most 1024 tokens of every third query (xlmr-long's 8192-token pairs
 * take minutes under ASan), moved to the front in order, and returns how many.
 * Whole queries are kept so ranking checks still apply; the dropped pairs stay at the back so
 * golden_pairs_free(p, n) still frees them. */
static inline int golden_quick(golden_pair *p, int n)
{
    const char *q = getenv("RR_TEST_QUICK");
    if (!q || !*q || strcmp(q, "0") == 0) return n;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (p[i].qid % 3 != 0 || p[i].n > 1024) continue;
        golden_pair t = p[k];
        p[k++] = p[i];
        p[i] = t;
    }
    return k;
}

static inline const char *golden_dir(void)
{
    const char *env = getenv("RR_GOLDEN_DIR");
    return env && *env ? env : RR_SOURCE_DIR "/tests/golden";
}

static inline int32_t *json_ints(const cJSON *a, int *n)
{
    *n = cJSON_GetArraySize(a);
    int32_t *v = malloc(((size_t)*n + 1) * sizeof *v);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) v[i++] = (int32_t)it->valuedouble;
    return v;
}

/* Reads <golden_dir>/<model>/pairs.jsonl; returns the number of pairs (0 when absent). */
static inline int golden_pairs(const char *model, golden_pair **out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/pairs.jsonl", golden_dir(), model);
    FILE *f = fopen(path, "r");
    *out = NULL;
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    int n = 0, alloc = 0;
    golden_pair *v = NULL;
    while (getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        if (n == alloc) v = realloc(v, (size_t)(alloc = alloc ? 2 * alloc : 256) * sizeof *v);
        golden_pair *p = &v[n++];
        int nt;
        p->qid = cJSON_GetObjectItem(j, "qid")->valueint;
        p->has_nul = strstr(line, "\\u0000") != NULL;
        p->ids = json_ints(cJSON_GetObjectItem(j, "input_ids"), &p->n);
        p->type_ids = json_ints(cJSON_GetObjectItem(j, "token_type_ids"), &nt);
        p->logit = cJSON_GetObjectItem(j, "logit")->valuedouble;
        p->query = strdup(cJSON_GetObjectItem(j, "query")->valuestring);
        p->doc = strdup(cJSON_GetObjectItem(j, "doc")->valuestring);
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    *out = v;
    return n;
}

static inline void golden_pairs_free(golden_pair *v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i].ids);
        free(v[i].type_ids);
        free(v[i].query);
        free(v[i].doc);
    }
    free(v);
}

#endif /* RR_TEST_GOLDEN_H */
