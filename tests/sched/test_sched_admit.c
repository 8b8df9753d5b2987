/*
 * test_sched_admit.c — the deadline-aware admission estimator (src/sched/admit.c) on its
 * own, with made-up forward times and clocks (no model, no threads, no timing): the cold start
 * never refuses and the first forwards are not learned; each batch size learns its own cost per
 * token as a 1/8-weighted moving average; a bucket without data borrows the nearest one above,
 * else below; work is costed as full batches plus the rest; the batch in flight counts what
 * is left of it; queued tokens come and go; the refusal threshold sits at 1.25 × the time
 * left; the intake never refuses behind an empty queue; no deadline, a passed deadline or
 * admission off never refuse; refusals are counted by stage and say what was estimated.
 */
#include <string.h>

#include "sched/admit.h"
#include "test.h"

#define MS 1000000ull /* ns */

/* Feeds the warm-up forwards, which are counted but not learned. */
static void warm(rr_admit *a)
{
    for (int i = 0; i < RR_ADMIT_WARMUP; i++) {
        rr_admit_batch_begin(a, 0, 0);
        rr_admit_batch_end(a, 64, 1000 * MS, 1); /* absurdly slow: must not be learned */
    }
}

/* Estimates are sums of truncated nanoseconds: equal within a few ns. */
static int near(uint64_t x, uint64_t y)
{
    return x + 2 >= y && y + 2 >= x;
}

/* One forward of n_tok tokens that took ns, from an empty queue. */
static void forward(rr_admit *a, long n_tok, uint64_t ns)
{
    rr_admit_enqueue(a, n_tok, 0);
    rr_admit_batch_begin(a, n_tok, 0);
    rr_admit_batch_end(a, n_tok, ns, 1);
}

int main(void)
{
    rr_admit a;
    char msg[256];
    const uint64_t now = 1000 * MS;

    CHECK(rr_admit_bucket_le(0) == 32 && rr_admit_bucket_le(1) == 64 &&
          rr_admit_bucket_le(9) == 16384 && rr_admit_bucket_le(RR_ADMIT_BUCKETS - 1) == 1L << 24);

    /* Cold: nothing known, nothing refused, however hopeless the request looks. */
    rr_admit_init(&a, 1024, 1);
    rr_admit_enqueue(&a, 1000000, 0);
    CHECK(rr_admit_estimate(&a, 10, now).cold == 1);
    CHECK(rr_admit_check(&a, RR_ADMIT_INTAKE, now + 1, 0, now, msg, sizeof msg) == 1);
    CHECK(rr_admit_check(&a, RR_ADMIT_TOKENIZED, now + 1, 1000000, now, msg, sizeof msg) == 1);
    warm(&a);
    CHECK_MSG(rr_admit_estimate(&a, 10, now).cold == 1, "the warm-up forwards were learned");
    CHECK(rr_admit_seconds_per_token(&a, 1) == 0);
    CHECK(rr_admit_check(&a, RR_ADMIT_INTAKE, now + 1, 0, now, msg, sizeof msg) == 1);
    rr_admit_drop(&a, 1000000);

    /* Learning: 1024 tokens in 1 ms → 976562 ps/token in the ≤ 1024 bucket; a failed forward
     * teaches nothing; the next forward moves the mean 1/8 of the way. */
    forward(&a, 1024, 1 * MS);
    CHECK(rr_admit_estimate(&a, 0, now).cold == 0);
    CHECK_MSG(fabs(rr_admit_seconds_per_token(&a, 5) - 976562e-12) < 1e-15, "%g",
              rr_admit_seconds_per_token(&a, 5));
    rr_admit_batch_begin(&a, 0, 0);
    rr_admit_batch_end(&a, 1024, 50 * MS, 0);
    CHECK(fabs(rr_admit_seconds_per_token(&a, 5) - 976562e-12) < 1e-15);
    forward(&a, 1024, 2 * MS); /* 1953125 ps/token observed */
    CHECK_MSG(fabs(rr_admit_seconds_per_token(&a, 5) - (976562 + (1953125 - 976562) / 8) * 1e-12) <
                  1e-15,
              "moving average %g", rr_admit_seconds_per_token(&a, 5));
    rr_admit_init(&a, 1024, 1);
    warm(&a);
    forward(&a, 1024, 1 * MS);
    forward(&a, 64, MS / 5); /* small batches cost more per token: 3125 ns/token */
    CHECK(fabs(rr_admit_seconds_per_token(&a, 1) - 3125e-9) < 1e-15);
    CHECK(rr_admit_seconds_per_token(&a, 0) == 0 && rr_admit_seconds_per_token(&a, 2) == 0);

    /* Costs: own bucket; empty buckets borrow above (≤ 128 → ≤ 1024; ≤ 32 → ≤ 64); beyond the
     * budget, full batches at the full batch's rate plus the rest at its own. */
    CHECK_MSG(rr_admit_cost_ns(&a, 64) == 200000, "%llu",
              (unsigned long long)rr_admit_cost_ns(&a, 64));
    CHECK(rr_admit_cost_ns(&a, 20) == 20 * 3125);
    CHECK(rr_admit_cost_ns(&a, 100) == 100 * 976562 / 1000);
    CHECK(rr_admit_cost_ns(&a, 1024) == 1024 * 976562 / 1000);
    CHECK_MSG(rr_admit_cost_ns(&a, 3 * 1024 + 64) == (3ull * 1024 * 976562 + 64 * 3125000) / 1000,
              "%llu", (unsigned long long)rr_admit_cost_ns(&a, 3 * 1024 + 64));
    CHECK(rr_admit_cost_ns(&a, 0) == 0);
    rr_admit b;
    rr_admit_init(&b, 16384, 1); /* only ≤ 1024 known: a full batch borrows it from below */
    warm(&b);
    forward(&b, 1000, 1 * MS);
    CHECK(rr_admit_cost_ns(&b, 16384) == 16384ull * 1000000 / 1000);

    /* The queue: what is waiting, what is in flight (only its unfinished part), what left. */
    rr_admit_enqueue(&a, 5000, 0);
    rr_admit_est e = rr_admit_estimate(&a, 0, now);
    CHECK(e.ahead_tokens == 5000 && e.ns == rr_admit_cost_ns(&a, 5000));
    e = rr_admit_estimate(&a, 2000, now);
    CHECK(e.ahead_tokens == 5000 && e.ns == rr_admit_cost_ns(&a, 7000));
    rr_admit_batch_begin(&a, 1024, now);
    uint64_t c1024 = rr_admit_cost_ns(&a, 1024), c3976 = rr_admit_cost_ns(&a, 3976);
    e = rr_admit_estimate(&a, 0, now);
    CHECK(e.ahead_tokens == 5000 && near(e.ns, c1024 + c3976));
    e = rr_admit_estimate(&a, 0, now + MS / 2);
    CHECK_MSG(near(e.ns, c1024 - MS / 2 + c3976), "%llu", (unsigned long long)e.ns);
    e = rr_admit_estimate(&a, 0, now + 10 * MS); /* the batch overran its estimate */
    CHECK(e.ns == c3976);
    rr_admit_batch_end(&a, 1024, 1 * MS, 1);
    CHECK(rr_admit_estimate(&a, 0, now).ahead_tokens == 3976);
    rr_admit_drop(&a, 3976);
    CHECK(rr_admit_estimate(&a, 0, now).ahead_tokens == 0);

    /* The decision, behind 5000 queued tokens that take W: refused when W > the time left. */
    rr_admit_enqueue(&a, 5000, 0);
    uint64_t w = rr_admit_cost_ns(&a, 5000);
    CHECK(rr_admit_check(&a, RR_ADMIT_INTAKE, now + w, 0, now, msg, sizeof msg) == 1);
    CHECK(rr_admit_refused(&a, RR_ADMIT_INTAKE) == 0);
    msg[0] = 0;
    CHECK(rr_admit_check(&a, RR_ADMIT_INTAKE, now + w - 1, 0, now, msg, sizeof msg) == 0);
    CHECK(rr_admit_refused(&a, RR_ADMIT_INTAKE) == 1 &&
          rr_admit_refused(&a, RR_ADMIT_TOKENIZED) == 0);
    CHECK_MSG(strstr(msg, "refused at admission: estimated ") == msg &&
                  strstr(msg, "to score the 5000 tokens queued ahead") &&
                  strstr(msg, "left before the deadline"),
              "%s", msg);
    /* After tokenization its own tokens count: 2000 more tip a deadline the queue alone meets. */
    CHECK(rr_admit_check(&a, RR_ADMIT_TOKENIZED, now + w, 2000, now, msg, sizeof msg) == 0);
    CHECK_MSG(strstr(msg, "to score 2000 tokens behind 5000 queued") &&
                  strstr(msg, "left before the deadline"),
              "%s", msg);
    CHECK(rr_admit_check(&a, RR_ADMIT_TOKENIZED, now + rr_admit_cost_ns(&a, 7000), 2000, now, msg,
                         sizeof msg) == 1);
    CHECK(rr_admit_refused(&a, RR_ADMIT_TOKENIZED) == 1);
    /* Never refused: no deadline; a deadline already passed (the expiry path answers it). */
    uint64_t before = rr_admit_refused(&a, RR_ADMIT_INTAKE);
    CHECK(rr_admit_check(&a, RR_ADMIT_INTAKE, 0, 0, now, msg, sizeof msg) == 1);
    CHECK(rr_admit_check(&a, RR_ADMIT_INTAKE, now, 0, now, msg, sizeof msg) == 1);
    CHECK(rr_admit_check(&a, RR_ADMIT_INTAKE, now - 1, 0, now, msg, sizeof msg) == 1);
    /* The intake behind an empty queue admits (only the request's own tokens could be too
     * many, which it does not know yet); after tokenization those are weighed. */
    rr_admit_drop(&a, 5000);
    CHECK(rr_admit_check(&a, RR_ADMIT_INTAKE, now + 1, 0, now, msg, sizeof msg) == 1);
    CHECK(rr_admit_refused(&a, RR_ADMIT_INTAKE) == before);
    CHECK(rr_admit_check(&a, RR_ADMIT_TOKENIZED, now + 1000, 1000000, now, msg, sizeof msg) == 0);
    CHECK_MSG(strstr(msg, "to score 1000000 tokens behind 0 queued"), "%s", msg);

    /* The queue's last batch: a request that would join it must not push it past the earliest
     * deadline already in it. 300 + 200 tokens queued (deadlines now + 0.5 ms and + 1 s) in
     * 1024-token batches; 400 more would end that batch after 0.88 ms. */
    rr_admit_enqueue(&a, 300, now + MS / 2);
    rr_admit_enqueue(&a, 200, now + 1000 * MS);
    uint64_t far = now + 1000 * MS;
    CHECK(rr_admit_check(&a, RR_ADMIT_TOKENIZED, far, 400, now, msg, sizeof msg) == 0);
    CHECK_MSG(strstr(msg, "to score 400 tokens behind 500 queued, past the deadline of a request "
                          "queued in the batch it would join (0.5 ms left)"),
              "%s", msg);
    CHECK(rr_admit_check(&a, RR_ADMIT_TOKENIZED, far, 10, now, msg, sizeof msg) == 1);  /* 0.5 ms */
    CHECK(rr_admit_check(&a, RR_ADMIT_TOKENIZED, far, 600, now, msg, sizeof msg) == 1); /* next */
    CHECK_MSG(rr_admit_check(&a, RR_ADMIT_TOKENIZED, 0, 400, now, msg, sizeof msg) == 1,
              "no deadline: never refused");
    CHECK_MSG(rr_admit_check(&a, RR_ADMIT_TOKENIZED, far, 400, now + MS, msg, sizeof msg) == 1,
              "the deadline in the batch has passed: that request will be dropped");
    CHECK(rr_admit_check(&a, RR_ADMIT_INTAKE, far, 0, now, msg, sizeof msg) == 1);
    /* 600 more do not fit in what is left of that batch: they start the next one, whose
     * earliest deadline is theirs; later joiners answer to it. */
    rr_admit_enqueue(&a, 600, now + 2 * MS);
    CHECK(rr_admit_check(&a, RR_ADMIT_TOKENIZED, far, 100, now, msg, sizeof msg) == 1);
    CHECK(rr_admit_check(&a, RR_ADMIT_TOKENIZED, far, 100, now + MS * 3 / 2, msg, sizeof msg) == 0);
    rr_admit_drop(&a, 1100);

    /* Admission off: the same hopeless requests pass; the estimate is still kept. */
    a.enabled = 0;
    rr_admit_enqueue(&a, 5000, 0);
    uint64_t r0 = rr_admit_refused(&a, RR_ADMIT_INTAKE),
             r1 = rr_admit_refused(&a, RR_ADMIT_TOKENIZED);
    CHECK(rr_admit_check(&a, RR_ADMIT_INTAKE, now + 1, 0, now, msg, sizeof msg) == 1);
    CHECK(rr_admit_check(&a, RR_ADMIT_TOKENIZED, now + 1, 1000000, now, msg, sizeof msg) == 1);
    CHECK(rr_admit_refused(&a, RR_ADMIT_INTAKE) == r0 &&
          rr_admit_refused(&a, RR_ADMIT_TOKENIZED) == r1);
    CHECK(rr_admit_estimate(&a, 0, now).ns == rr_admit_cost_ns(&a, 5000));

    /* The message, exactly: 1000-token batches at 20 µs/token; 12000 tokens behind 30000. */
    rr_admit c;
    rr_admit_init(&c, 1000, 1);
    warm(&c);
    forward(&c, 1000, 20 * MS);
    rr_admit_enqueue(&c, 30000, 0);
    CHECK(rr_admit_check(&c, RR_ADMIT_TOKENIZED, now + 200 * MS, 12000, now, msg, sizeof msg) == 0);
    CHECK_MSG(strcmp(msg, "refused at admission: estimated 840 ms to score 12000 tokens behind "
                          "30000 queued, 200 ms left before the deadline") == 0,
              "%s", msg);
    CHECK(rr_admit_check(&c, RR_ADMIT_INTAKE, now + MS / 2, 0, now, msg, sizeof msg) == 0);
    CHECK_MSG(strcmp(msg, "refused at admission: estimated 600 ms to score the 30000 tokens "
                          "queued ahead, 0.5 ms left before the deadline") == 0,
              "%s", msg);
    return test_summary("test_sched_admit");
}
