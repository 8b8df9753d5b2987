/*
 * test_util.c — the request path's building blocks in src/util: the arena (alignment,
 * growth, reuse without allocation after a reset, the retain cap, allocation failure) and
 * the metrics histograms (bucket edges inclusive as Prometheus wants, cumulative reads,
 * sums in the reported unit, concurrent observers losing nothing).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "test.h"
#include "util/arena.h"
#include "util/hist.h"
#include "util/util.h"

static void test_arena(void)
{
    rr_arena a;
    rr_arena_init(&a, 1 << 20);
    /* A message-like pattern: many small strings and a few larger arrays. */
    long before = rr_alloc_count();
    char *p[2000];
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(i % 97) + 1;
        p[i] = rr_arena_alloc(&a, n);
        CHECK(p[i] != NULL && ((uintptr_t)p[i] & 15) == 0);
        memset(p[i], i & 0xff, n);
    }
    for (int i = 0; i < 2000; i++)
        CHECK((unsigned char)p[i][0] == (i & 0xff)); /* no overlap */
    long grew = rr_alloc_count() - before;
    CHECK_MSG(grew > 0 && grew < 10, "%ld chunk allocations for 2000 strings", grew);
    size_t held = rr_arena_held(&a);

    /* The same shape again after a reset: no allocation at all. */
    for (int round = 0; round < 3; round++) {
        rr_arena_reset(&a);
        before = rr_alloc_count();
        for (int i = 0; i < 2000; i++)
            CHECK(rr_arena_alloc(&a, (size_t)(i % 97) + 1) != NULL);
        CHECK_MSG(rr_alloc_count() == before, "round %d allocated %ld times", round,
                  rr_alloc_count() - before);
        CHECK(rr_arena_held(&a) == held);
    }

    /* A large allocation gets a chunk of its own size; zero bytes is a valid pointer. */
    void *big = rr_arena_alloc(&a, 3 << 20);
    CHECK(big != NULL);
    memset(big, 1, 3 << 20);
    CHECK(rr_arena_alloc(&a, 0) != NULL);
    /* The retain cap (1 MiB) drops chunks beyond it on reset. */
    rr_arena_reset(&a);
    CHECK_MSG(rr_arena_held(&a) <= (1 << 20), "%zu bytes held after reset", rr_arena_held(&a));

    /* Allocation failure: NULL, and the arena stays usable. */
    rr_arena_free(&a);
    rr_alloc_fail_after(0);
    CHECK(rr_arena_alloc(&a, 16) == NULL);
    rr_alloc_fail_after(-1);
    CHECK(rr_arena_alloc(&a, 16) != NULL);
    rr_arena_free(&a);
    CHECK(rr_arena_held(&a) == 0);
}

static rr_hist shared;

static void *observer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        rr_hist_observe(&shared, (uint64_t)(i % 3) * 1000000); /* 0, 1, 2 ms */
    return NULL;
}

static void test_hist(void)
{
    rr_hist h;
    rr_hist_init(&h, rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    rr_hist_observe(&h, 1000000);         /* exactly 1 ms: in le="0.001" (inclusive) */
    rr_hist_observe(&h, 1000001);         /* just over: le="0.0025" */
    rr_hist_observe(&h, 0);               /* the first bucket */
    rr_hist_observe(&h, (uint64_t)120e9); /* 120 s: +Inf only */
    rr_hist_snap s;
    rr_hist_read(&h, &s);
    int i1 = -1, i25 = -1;
    for (int i = 0; i < h.n; i++) {
        if (h.le[i] == 0.001) i1 = i;
        if (h.le[i] == 0.0025) i25 = i;
    }
    CHECK(i1 >= 0 && i25 == i1 + 1);
    CHECK(s.cum[0] == 1);
    CHECK_MSG(s.cum[i1] == 2 && s.cum[i25] == 3, "cum %llu %llu", (unsigned long long)s.cum[i1],
              (unsigned long long)s.cum[i25]);
    CHECK(s.cum[h.n - 1] == 3 && s.cum[h.n] == 4);
    CHECK(fabs(s.sum - (0.002000001 + 120.0)) < 1e-6);
    for (int i = 1; i <= h.n; i++)
        CHECK(s.cum[i] >= s.cum[i - 1]);

    /* Sizes: scale 1, edges exact integers. */
    rr_hist z;
    rr_hist_init(&z, rr_hist_sizes, rr_hist_sizes_n, 1);
    rr_hist_observe(&z, 16384);
    rr_hist_observe(&z, 16385);
    rr_hist_read(&z, &s);
    int i16k = -1;
    for (int i = 0; i < z.n; i++)
        if (z.le[i] == 16384) i16k = i;
    CHECK_MSG(i16k >= 0, "rr_hist_sizes has no 16384 edge");
    if (i16k >= 0)
        CHECK_MSG(s.cum[i16k] == 1 && s.cum[i16k + 1] == 2, "cum %llu %llu",
                  (unsigned long long)s.cum[i16k], (unsigned long long)s.cum[i16k + 1]);

    /* Four threads, 400,000 observations: none lost. */
    rr_hist_init(&shared, rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, observer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    rr_hist_read(&shared, &s);
    CHECK_MSG(s.cum[shared.n] == 400000, "%llu observations", (unsigned long long)s.cum[shared.n]);
    CHECK(fabs(s.sum - 4 * (33333 * 0.001 + 33333 * 0.002)) < 1e-6);
}

int main(void)
{
    test_arena();
    test_hist();
    return test_summary("test_util");
}
