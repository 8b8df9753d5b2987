/*
 * hist.c — lock-free histograms for the metrics endpoint (contract in hist.h).
 */
#include "util/hist.h"

#include <math.h>

/* 100 µs … 60 s: a GPU batch is sub-millisecond, a CPU request with K = 1000 takes seconds. */
const double rr_hist_seconds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
const int rr_hist_seconds_n = (int)(sizeof rr_hist_seconds / sizeof rr_hist_seconds[0]);
/* Tokens or pairs per batch/request: powers of two up to the largest budget anyone sets. */
const double rr_hist_sizes[] = {1,   2,    4,    8,    16,   32,    64,    128,   256,
                                512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072};
const int rr_hist_sizes_n = (int)(sizeof rr_hist_sizes / sizeof rr_hist_sizes[0]);

void rr_hist_init(rr_hist *h, const double *le, int n, double scale)
{
    h->le = le;
    h->n = n > RR_HIST_MAX ? RR_HIST_MAX : n;
    h->scale = scale;
    for (int i = 0; i < h->n; i++)
        h->raw_le[i] = (uint64_t)floor(le[i] / scale + 1e-6);
    for (int i = 0; i <= RR_HIST_MAX; i++)
        atomic_init(&h->b[i], 0);
    atomic_init(&h->sum, 0);
}

void rr_hist_observe(rr_hist *h, uint64_t raw)
{
    int i = 0;
    while (i < h->n && raw > h->raw_le[i])
        i++;
    atomic_fetch_add_explicit(&h->b[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, raw, memory_order_relaxed);
}

void rr_hist_read(const rr_hist *h, rr_hist_snap *out)
{
    uint64_t c = 0;
    for (int i = 0; i <= h->n; i++) {
        c += atomic_load_explicit(&h->b[i], memory_order_relaxed);
        out->cum[i] = c;
    }
    out->sum = (double)atomic_load_explicit(&h->sum, memory_order_relaxed) * h->scale;
}
