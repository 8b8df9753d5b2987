/*
 * admit.h — deadline-aware admission for the scheduler: a live estimate of how long the
 * engine takes per token, of the work queued ahead of a new request, and the decision to
 * refuse at once a request whose deadline that work cannot meet, instead of letting it wait
 * in the queue until it expires.
 *
 * The estimate. Each engine forward observes (n_tok, forward ns); its per-token cost goes
 * into an exponentially weighted mean (weight 1/8) of the bucket of its size: batches of
 * ≤ 32, ≤ 64, ... ≤ 2^24 tokens, because a small batch costs more per token than a full one
 * (on a GPU by far, on the CPU less). The work ahead of a request is the tokens of the
 * requests in the ready queue (tokenized, not yet in a batch) plus what is left of the batch
 * being computed (its estimate minus the time it has run). The batcher packs the queue first
 * come first served into batches of at most max_batch_tokens, so T tokens of work take
 * floor(T / B) full batches at the per-token cost of a full batch plus one batch of the rest
 * at its own bucket's cost. A bucket with no observation borrows the nearest bucket above
 * (larger batches are cheaper per token: an underestimate) or, when none above has data, the
 * nearest below.
 *
 * The decision (rr_admit_check). A request is refused when the estimate of its completion
 * is later than its deadline. Requests share batches, and every request of a batch finishes
 * when the batch does, so a request that joins the queue's last batch also delays the
 * requests already in it: it is refused, too, when that batch would then end after the
 * earliest deadline among them (tail_deadline, kept at enqueue). Without that rule, requests
 * admitted one by one within their own deadlines grew the next batch until its members
 * missed. No safety margin either. Measured at 2x capacity on the shared 2-core VM (minilm,
 * K = 10, --max-batch-tokens 16384, open loop, one 20 s run per cell, load average ~5, so
 * read them as rough): goodput at 5 s deadlines 9 % without the batch rule, 21 % with it and
 * a 25 % margin (refuse only past 1.25 x the time left), 30 % and 42 % (two runs) as here;
 * at 2 s deadlines (smaller batches) 23 %, 18 %, 26 % and 30 %; admission off, 0 %. At
 * 0.3x capacity nothing was refused and every request met its deadline.
 *
 * Never refused: no deadline (not even for others' deadlines: DEADLINE_EXCEEDED would be
 * a wrong answer to a request that set none), admission off, a cold estimator (the first
 * RR_ADMIT_WARMUP forwards touch the mmapped weights and the workspace for the first time
 * and are not learned from; minilm on the VM: 0.77 ms per token, later 0.64-0.74 at the
 * same size; nothing is refused until a later one has been), a deadline already passed
 * (the scheduler's expiry answers those); at the intake, where only the queue counts,
 * nothing is refused behind an empty queue.
 *
 * What is not counted makes the estimate lower, so the error is on the side of admitting:
 * requests still waiting for a tokenizer worker (their tokens are not known yet); the
 * keep-a-request-together rule of the batcher (batches are a little less than full); a
 * request larger than a batch, whose first pairs fill what is left of the last batch, is
 * not held to the deadlines in it. A request dropped from the queue (cancelled) leaves its
 * deadline in tail_deadline until the last batch changes, which can only refuse more.
 *
 * Threads: the engine thread alone writes the per-token costs and the batch in flight;
 * tokenizer workers and the engine thread move the queued-token count; any thread estimates
 * and decides. Everything is a relaxed atomic: a reader may see one forward's cost and the
 * next forward's start, which moves an estimate by at most one batch. Two requests admitted
 * at the same instant do not see each other. No lock, no allocation.
 */
#ifndef RR_ADMIT_H
#define RR_ADMIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RR_ADMIT_BUCKETS 20 /* batch sizes ≤ 2^5 … ≤ 2^24 tokens (--max-batch-tokens ≤ 2^24) */
#define RR_ADMIT_WARMUP 1 /* forwards observed before the estimate is used */

/* Where a request was refused: before tokenization (the queue alone is too long) or after
 * (the queue and its own tokens). */
typedef enum rr_admit_stage { RR_ADMIT_INTAKE = 0, RR_ADMIT_TOKENIZED = 1 } rr_admit_stage;

typedef struct rr_admit {
    int enabled; /* 0: never refuses (the estimate is still kept, for /metrics) */
    int max_batch_tokens;
    atomic_uint_fast64_t ps_per_tok[RR_ADMIT_BUCKETS]; /* picoseconds per token; 0 = no data */
    atomic_uint_fast64_t forwards;                     /* observed, failed ones excluded */
    atomic_long queued_tokens;                         /* ready, not yet in a batch */
    atomic_long batch_tokens;                          /* the batch in flight; 0 when idle */
    atomic_uint_fast64_t batch_t0;                     /* its start, rr_now_ns clock */
    atomic_uint_fast64_t refused[2];                   /* by rr_admit_stage */
    atomic_uint_fast64_t tail_deadline; /* earliest in the queue's last batch; UINT64_MAX none */
} rr_admit;

/* An estimate of the work in front of (and including) n_tok new tokens. */
typedef struct rr_admit_est {
    int cold;          /* 1: no estimate yet (the other fields are 0) */
    long ahead_tokens; /* queued + in flight */
    uint64_t ns;       /* until the last of the n_tok tokens is scored */
} rr_admit_est;

/* Zeroes a; max_batch_tokens ≥ 1 is the batcher's budget; enabled 0/1. */
void rr_admit_init(rr_admit *a, int max_batch_tokens, int enabled);

/* Queue accounting, in tokens: a request's tokens enter the ready queue (enqueue, with its
 * deadline, 0 = none, for tail_deadline), leave it unscored (drop: cancelled, expired,
 * failed, shutdown), or go into a batch (batch_begin). */
void rr_admit_enqueue(rr_admit *a, long n_tok, uint64_t deadline_ns);
void rr_admit_drop(rr_admit *a, long n_tok);

/* The engine thread, around each forward: begin takes the batch's tokens out of the queue
 * and marks them in flight from t0; end learns the forward's cost (when ok) and clears the
 * batch in flight. */
void rr_admit_batch_begin(rr_admit *a, long n_tok, uint64_t t0);
void rr_admit_batch_end(rr_admit *a, long n_tok, uint64_t forward_ns, int ok);

/* Engine time for n_tok tokens packed into batches from an empty engine: ns. 0 when cold. */
uint64_t rr_admit_cost_ns(const rr_admit *a, long n_tok);

/* The estimate for n_tok more tokens behind everything queued and in flight, at `now`. */
rr_admit_est rr_admit_estimate(const rr_admit *a, long n_tok, uint64_t now);

/* Admits (1) or refuses (0) a request with this deadline (rr_now_ns clock; 0 = none) and
 * n_tok tokens (RR_ADMIT_INTAKE: not known yet, pass 0) at `now`: refused when the estimate
 * of its completion is later than its deadline, or (after tokenization) than the earliest
 * deadline of the requests in the queue's last batch when its tokens would join that batch.
 * A request without a deadline is always admitted. A refusal counts in refused[stage] and
 * writes one line to msg[cap] for the client:
 *   "refused at admission: estimated 840 ms to score 12000 tokens behind 30000 queued,
 *    200 ms left before the deadline"
 *   "... to score the 30000 tokens queued ahead, 200 ms left before the deadline" (intake)
 *   "... behind 30000 queued, past the deadline of a request queued in the batch it would
 *    join (200 ms left)" */
int rr_admit_check(rr_admit *a, rr_admit_stage stage, uint64_t deadline_ns, long n_tok,
                   uint64_t now, char *msg, size_t cap);

/* Per-token cost of bucket i in seconds (0 when it has no data), its upper bound in tokens,
 * and the refusals so far: for /metrics. */
double rr_admit_seconds_per_token(const rr_admit *a, int bucket);
long rr_admit_bucket_le(int bucket);
uint64_t rr_admit_refused(const rr_admit *a, rr_admit_stage stage);

#endif /* RR_ADMIT_H */
