/*
 * stats.h — latency summaries shared by rerank-bench and rerank-eval: nearest-rank
 * percentiles (the p-th percentile of n samples is the ceil(p/100 * n)-th smallest, so p99
 * of fewer than 100 samples is the maximum — reports print n beside every percentile).
 */
#ifndef RB_STATS_H
#define RB_STATS_H

typedef struct rb_summary {
    int n;
    double mean, p50, p90, p99, max;
} rb_summary;

/* Summarizes v[0..n) (sorted in place). All fields are NaN when n == 0. */
void rb_summarize(double *v, int n, rb_summary *out);

/* Nearest-rank percentile of an ascending array (NaN when n == 0). */
double rb_percentile_sorted(const double *v, int n, double p);

#endif /* RB_STATS_H */
