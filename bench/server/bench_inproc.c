/*
 * bench_inproc.c — the in-process side of the server-overhead benchmark: the same work a
 * rerankd Rerank call does (tokenize the query and K documents, pack, forward on the CPU
 * engine), called directly through rr_score_query, timed per call.
 *
 *   bench_inproc MODEL QUERY DOCS_FILE K ITERS THREADS
 *
 * DOCS_FILE has one document per line; the first K are used. Prints one JSON line:
 * {"k":K,"iters":N,"p50_ms":..,"p99_ms":..,"mean_ms":..,"logits":[...]} (logits of the first
 * call, so the caller can validate against the server before comparing times).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rerank.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_inproc MODEL QUERY DOCS_FILE K ITERS THREADS\n");
        return 2;
    }
    int k = atoi(argv[4]), iters = atoi(argv[5]), threads = atoi(argv[6]), rc = 1;
    rr_model *m = NULL;
    rr_engine *e = NULL;
    rr_error err = {0};
    char **docs = calloc((size_t)k, sizeof *docs);
    size_t *lens = calloc((size_t)k, sizeof *lens);
    float *logits = calloc((size_t)k, sizeof *logits);
    double *t = calloc((size_t)iters, sizeof *t);
    FILE *f = fopen(argv[3], "r");
    if (!docs || !lens || !logits || !t || !f) {
        fprintf(stderr, "bench_inproc: cannot read %s\n", argv[3]);
        goto done;
    }
    char line[1 << 16];
    int n = 0;
    while (n < k && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        docs[n] = strdup(line);
        lens[n] = strlen(line);
        n++;
    }
    if (n < k) {
        fprintf(stderr, "bench_inproc: %s has %d documents, need %d\n", argv[3], n, k);
        goto done;
    }
    if (rr_model_load(argv[1], &m, &err) != RR_OK) goto fail;
    rr_engine_opts eo = {.device = -1, .max_batch_tokens = 16384, .n_threads = threads};
    if (rr_engine_init(m, &eo, &e, &err) != RR_OK) goto fail;
    rr_score_opts so = {.max_length = 0, .truncate = 1, .keep_last = 0};
    float *first = calloc((size_t)k, sizeof *first);
    for (int i = -3; i < iters; i++) { /* 3 warm-up calls */
        double t0 = now_ms();
        if (rr_score_query(e, m, argv[2], strlen(argv[2]), (const char *const *)docs, lens, k, &so,
                           i < 0 ? first : logits, &err) != RR_OK)
            goto fail;
        if (i >= 0) t[i] = now_ms() - t0;
    }
    double sum = 0;
    for (int i = 0; i < iters; i++)
        sum += t[i];
    qsort(t, (size_t)iters, sizeof *t, cmp_double);
    printf("{\"k\":%d,\"iters\":%d,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"mean_ms\":%.4f,\"logits\":[",
           k, iters, t[iters / 2], t[(int)(iters * 0.99) < iters ? (int)(iters * 0.99) : iters - 1],
           sum / iters);
    for (int i = 0; i < k; i++)
        printf("%s%.9g", i ? "," : "", first[i]);
    printf("]}\n");
    free(first);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "bench_inproc: %s: %s\n", rr_status_name(err.status), err.msg);
done:
    if (f) fclose(f);
    for (int i = 0; docs && i < k; i++)
        free(docs[i]);
    free(docs);
    free(lens);
    free(logits);
    free(t);
    rr_engine_free(e);
    rr_model_free(m);
    return rc;
}
