/*
 * hist.h — lock-free histograms for rerankd's metrics: observed from any thread with relaxed
 * atomics (no lock, no allocation: they sit on the request path), read by the /metrics
 * endpoint. Observations are unsigned integers in a raw unit (nanoseconds, tokens, pairs);
 * `scale` converts them to the reported unit (1e-9 for seconds). Bucket bounds are given in
 * the reported unit, ascending, at most RR_HIST_MAX of them; +Inf is implicit.
 *
 * A reader sees each counter atomically but not all of them at one instant: the bucket
 * counts of a scrape can be a few observations apart from its _count, which Prometheus
 * tolerates (client libraries behave the same way).
 */
#ifndef RR_HIST_H
#define RR_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define RR_HIST_MAX 24

typedef struct rr_hist {
    const double *le; /* [n] upper bounds in the reported unit */
    int n;
    double scale;                            /* raw unit → reported unit */
    uint64_t raw_le[RR_HIST_MAX];            /* the bounds in the raw unit (floor) */
    atomic_uint_fast64_t b[RR_HIST_MAX + 1]; /* per bucket, not cumulative; [n] is +Inf */
    atomic_uint_fast64_t sum;                /* raw unit */
} rr_hist;

/* Bucket bounds used by rerankd: latencies (seconds) and sizes (tokens, pairs). */
extern const double rr_hist_seconds[];
extern const int rr_hist_seconds_n;
extern const double rr_hist_sizes[];
extern const int rr_hist_sizes_n;

void rr_hist_init(rr_hist *h, const double *le, int n, double scale);
void rr_hist_observe(rr_hist *h, uint64_t raw);

/* A consistent-enough copy for rendering: cumulative counts [n + 1] ([n] = total count) and
 * the sum in the reported unit. */
typedef struct rr_hist_snap {
    uint64_t cum[RR_HIST_MAX + 1];
    double sum;
} rr_hist_snap;
void rr_hist_read(const rr_hist *h, rr_hist_snap *out);

#endif /* RR_HIST_H */
