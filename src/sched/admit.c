/*
 * admit.c — deadline-aware admission: the per-token cost estimator, the queued-token count
 * and the admit/refuse decision (contract and design in admit.h).
 */
#include "sched/admit.h"

#include <stdio.h>
#include <string.h>

#define RLX memory_order_relaxed

/* Bucket of a batch of n tokens: 0 for ≤ 32, i for 2^(4+i) < n ≤ 2^(5+i). */
static int bucket_of(long n)
{
    int i = 0;
    while (i < RR_ADMIT_BUCKETS - 1 && n > (32L << i))
        i++;
    return i;
}

long rr_admit_bucket_le(int bucket)
{
    return 32L << bucket;
}

void rr_admit_init(rr_admit *a, int max_batch_tokens, int enabled)
{
    memset(a, 0, sizeof *a);
    a->enabled = enabled != 0;
    a->max_batch_tokens = max_batch_tokens > 0 ? max_batch_tokens : 1;
    atomic_store_explicit(&a->tail_deadline, UINT64_MAX, RLX);
}

/* 1 when n_tok more tokens behind `queued` go into the same batch as the last of them: the
 * queue's last batch has begun and has room (the batcher starts a request that does not fit
 * in what is left of a batch in the next one). */
static int joins_tail(const rr_admit *a, long queued, long n_tok)
{
    long b = a->max_batch_tokens, used = queued % b;
    return queued > 0 && used != 0 && used + n_tok <= b;
}

void rr_admit_enqueue(rr_admit *a, long n_tok, uint64_t deadline_ns)
{
    long before = atomic_fetch_add_explicit(&a->queued_tokens, n_tok, RLX);
    uint64_t d = deadline_ns ? deadline_ns : UINT64_MAX;
    if (!joins_tail(a, before, n_tok)) { /* it starts the last batch */
        atomic_store_explicit(&a->tail_deadline, d, RLX);
        return;
    }
    uint64_t cur = atomic_load_explicit(&a->tail_deadline, RLX);
    while (d < cur &&
           !atomic_compare_exchange_weak_explicit(&a->tail_deadline, &cur, d, RLX, RLX)) {
    }
}

void rr_admit_drop(rr_admit *a, long n_tok)
{
    atomic_fetch_sub_explicit(&a->queued_tokens, n_tok, RLX);
}

void rr_admit_batch_begin(rr_admit *a, long n_tok, uint64_t t0)
{
    atomic_fetch_sub_explicit(&a->queued_tokens, n_tok, RLX);
    atomic_store_explicit(&a->batch_t0, t0, RLX);
    atomic_store_explicit(&a->batch_tokens, n_tok, RLX);
}

void rr_admit_batch_end(rr_admit *a, long n_tok, uint64_t forward_ns, int ok)
{
    atomic_store_explicit(&a->batch_tokens, 0, RLX);
    if (!ok || n_tok <= 0) return;
    /* Only this thread writes forwards and the buckets: load-modify-store is enough. */
    uint64_t seen = atomic_load_explicit(&a->forwards, RLX);
    atomic_store_explicit(&a->forwards, seen + 1, RLX);
    if (seen < RR_ADMIT_WARMUP) return;
    int64_t x = (int64_t)(forward_ns * 1000 / (uint64_t)n_tok);
    if (x < 1) x = 1; /* 0 means "no data" */
    atomic_uint_fast64_t *slot = &a->ps_per_tok[bucket_of(n_tok)];
    int64_t old = (int64_t)atomic_load_explicit(slot, RLX);
    int64_t now = old == 0 ? x : old + (x - old) / 8;
    atomic_store_explicit(slot, (uint64_t)(now > 0 ? now : 1), RLX);
}

/* Picoseconds per token for a batch of bucket i: its own, else the nearest bucket above
 * with data, else the nearest below; 0 when no bucket has data. */
static double ps_per_tok(const rr_admit *a, int i)
{
    for (int j = i; j < RR_ADMIT_BUCKETS; j++) {
        uint64_t v = atomic_load_explicit(&a->ps_per_tok[j], RLX);
        if (v) return (double)v;
    }
    for (int j = i - 1; j >= 0; j--) {
        uint64_t v = atomic_load_explicit(&a->ps_per_tok[j], RLX);
        if (v) return (double)v;
    }
    return 0;
}

static double cost_ns(const rr_admit *a, long n_tok)
{
    if (n_tok <= 0) return 0;
    long b = a->max_batch_tokens, full = n_tok / b, rest = n_tok % b;
    double ps = (double)full * (double)b * ps_per_tok(a, bucket_of(b));
    if (rest) ps += (double)rest * ps_per_tok(a, bucket_of(rest));
    return ps / 1000;
}

uint64_t rr_admit_cost_ns(const rr_admit *a, long n_tok)
{
    return (uint64_t)cost_ns(a, n_tok);
}

rr_admit_est rr_admit_estimate(const rr_admit *a, long n_tok, uint64_t now)
{
    rr_admit_est e = {0};
    long queued = atomic_load_explicit(&a->queued_tokens, RLX);
    long flying = atomic_load_explicit(&a->batch_tokens, RLX);
    uint64_t t0 = atomic_load_explicit(&a->batch_t0, RLX);
    if (queued < 0) queued = 0; /* defensive: tokens leave only after they entered */
    if (flying < 0) flying = 0;
    e.ahead_tokens = queued + flying;
    if (ps_per_tok(a, 0) == 0) {
        e.cold = 1;
        return e;
    }
    double left_of_batch = 0;
    if (flying > 0) {
        double ran = now > t0 ? (double)(now - t0) : 0;
        left_of_batch = cost_ns(a, flying) - ran;
        if (left_of_batch < 0) left_of_batch = 0;
    }
    e.ns = (uint64_t)(left_of_batch + cost_ns(a, queued + (n_tok > 0 ? n_tok : 0)));
    return e;
}

/* Milliseconds as a person reads them: "840 ms", "3.2 ms", "0.41 ms". */
static const char *ms(char *buf, size_t cap, double ns)
{
    double v = ns / 1e6;
    snprintf(buf, cap, v >= 10 ? "%.0f ms" : "%.2g ms", v);
    return buf;
}

int rr_admit_check(rr_admit *a, rr_admit_stage stage, uint64_t deadline_ns, long n_tok,
                   uint64_t now, char *msg, size_t cap)
{
    /* Without a deadline (or past it) there is nothing to decide here: such a request is not
     * refused with DEADLINE_EXCEEDED for others' deadlines; the expiry path answers the rest. */
    if (!a->enabled || deadline_ns == 0 || now >= deadline_ns) return 1;
    if (stage == RR_ADMIT_INTAKE) n_tok = 0;
    /* The earliest deadline in the batch it would join (one already passed is ignored: that
     * request is dropped before its batch is computed). */
    uint64_t tail = UINT64_MAX;
    long queued = atomic_load_explicit(&a->queued_tokens, RLX);
    if (n_tok > 0 && joins_tail(a, queued, n_tok)) {
        tail = atomic_load_explicit(&a->tail_deadline, RLX);
        if (tail <= now) tail = UINT64_MAX;
    }
    rr_admit_est e = rr_admit_estimate(a, n_tok, now);
    if (e.cold) return 1;
    double left = (double)(deadline_ns - now);
    double other = tail != UINT64_MAX ? (double)(tail - now) : 0;
    int miss_own = (double)e.ns > left;
    int miss_other = tail != UINT64_MAX && (double)e.ns > other;
    if (!miss_own && !miss_other) return 1;
    atomic_fetch_add_explicit(&a->refused[stage], 1, RLX);
    char b1[32], b2[32];
    ms(b1, sizeof b1, (double)e.ns);
    if (stage == RR_ADMIT_INTAKE)
        snprintf(msg, cap,
                 "refused at admission: estimated %s to score the %ld tokens queued ahead, %s "
                 "left before the deadline",
                 b1, e.ahead_tokens, ms(b2, sizeof b2, left));
    else if (miss_own)
        snprintf(msg, cap,
                 "refused at admission: estimated %s to score %ld tokens behind %ld queued, %s "
                 "left before the deadline",
                 b1, n_tok, e.ahead_tokens, ms(b2, sizeof b2, left));
    else
        snprintf(msg, cap,
                 "refused at admission: estimated %s to score %ld tokens behind %ld queued, past "
                 "the deadline of a request queued in the batch it would join (%s left)",
                 b1, n_tok, e.ahead_tokens, ms(b2, sizeof b2, other));
    return 0;
}

double rr_admit_seconds_per_token(const rr_admit *a, int bucket)
{
    if (bucket < 0 || bucket >= RR_ADMIT_BUCKETS) return 0;
    return (double)atomic_load_explicit(&a->ps_per_tok[bucket], RLX) * 1e-12;
}

uint64_t rr_admit_refused(const rr_admit *a, rr_admit_stage stage)
{
    return atomic_load_explicit(&a->refused[stage], RLX);
}
