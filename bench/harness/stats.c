/*
 * stats.c — see stats.h.
 */
#include "stats.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double rb_percentile_sorted(const double *v, int n, double p)
{
    if (n <= 0) return NAN;
    int rank = (int)ceil(p / 100.0 * n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

void rb_summarize(double *v, int n, rb_summary *out)
{
    double sum = 0;
    out->n = n;
    if (n <= 0) {
        out->mean = out->p50 = out->p90 = out->p99 = out->max = NAN;
        return;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    for (int i = 0; i < n; i++)
        sum += v[i];
    out->mean = sum / n;
    out->p50 = rb_percentile_sorted(v, n, 50);
    out->p90 = rb_percentile_sorted(v, n, 90);
    out->p99 = rb_percentile_sorted(v, n, 99);
    out->max = v[n - 1];
}
