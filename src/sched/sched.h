/*
 * sched.h — the request scheduler of rerankd: pooled request objects, a tokenization
 * worker pool, and one token-budget batcher feeding ONE engine thread.
 *
 * Flow: the edge acquires a request from the pool (NULL when --max-in-flight requests are
 * live), fills the input fields, and submits it. A tokenizer worker encodes the query once
 * and each document once and builds the [CLS] q [SEP] d [SEP] pairs into the request's own
 * token buffers — one pair per document, or, with `chunk`, one per window of a long
 * document (windows are ordinary pairs from here on; their logits are combined into the
 * document's when the request is done). The engine thread packs pairs from all ready requests,
 * first come first served, into varlen batches of at most max_batch_tokens tokens (a request's
 * pairs stay in one batch when they fit in an empty one), forwards, and scatters the logits back.
 * When a request's last pair is scored, or it fails, is cancelled or expires, `done` is called —
 * exactly once, from a worker or the engine thread — and the edge sends the response from
 * that thread, then releases the request.
 *
 * Memory: request objects and their arrays are reused; arrays grow to the largest request
 * seen (a high-water mark) and never shrink, so a steady load allocates nothing. The engine
 * batch buffers are allocated once at init. Cancelled or expired work is dropped before it
 * is tokenized or computed. No protobuf or gRPC type appears here.
 */
#ifndef RR_SCHED_H
#define RR_SCHED_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rerank.h"
#include "sched/admit.h"
#include "util/hist.h"

typedef struct rr_sched rr_sched;

/* A run of bytes that need not be NUL-terminated and may contain NULs (texts arrive from
 * the wire with their lengths; U+0000 is a character like any other). */
typedef struct rr_text {
    const char *p;
    size_t len;
} rr_text;

/* Per-pair options (rr_sched_req.pair_flags). */
enum { RR_PAIR_TRUNCATE = 1, RR_PAIR_KEEP_LAST = 2 };

typedef enum rr_sched_outcome {
    RR_SCHED_DONE = 0,      /* logits[] hold every document's logit */
    RR_SCHED_FAILED = 1,    /* err says why (RR_E_UTF8, RR_E_TOO_LONG naming an index, ...) */
    RR_SCHED_CANCELLED = 2, /* `cancelled` was set before the work was done */
    RR_SCHED_EXPIRED = 3,   /* deadline passed before the work was done, or it cannot be met:
                             * refused at admission (admit.h), err.msg says so */
    RR_SCHED_SHUTDOWN = 4,  /* the scheduler stopped */
} rr_sched_outcome;

typedef struct rr_sched_req rr_sched_req;

struct rr_sched_req {
    /* Input, set by the caller between acquire and submit. The texts are borrowed: they must
     * stay valid until `done` runs. docs is owned by the request (see reserve). */
    rr_text query; /* every pair's query, unless `queries` is set */
    int n_docs;
    rr_text *docs;             /* [n_docs] */
    const rr_text *queries;    /* borrowed [n_docs]: pair i's own query (TEI streams); NULL */
    const uint8_t *pair_flags; /* borrowed [n_docs]: pair i's RR_PAIR_*; NULL = as below */
    const char *docs_field;    /* names documents in messages ("documents", "texts") */
    int max_length;            /* 3 ... model max_length (the caller validates) */
    int truncate;              /* 0: an over-long pair fails the request naming its index */
    int keep_last;             /* truncation direction: 1 keeps the end of each text */
    int max_doc_tokens;        /* > 0: documents count only that many tokens (rr_pair_opts) */
    int chunk;                 /* long documents in windows (rr_chunk_plan), not truncated */
    int max_chunks;            /* chunk: windows per document, 1 ... opts.max_chunks */
    int overlap;               /* chunk: tokens shared by neighbours; < 0 the default */
    int chunk_score;           /* chunk: rr_chunk_score */
    uint64_t deadline_ns;      /* rr_now_ns() clock; 0 = none */
    atomic_int cancelled;      /* set by the caller at any time: work is dropped, done still runs */
    void (*done)(rr_sched_req *r);
    void *user;

    /* Output, valid in `done`. */
    rr_sched_outcome outcome;
    rr_error err;
    float *logits;        /* [n_docs], input order: each document's (combined) logit */
    int n_pairs;          /* pairs scored: n_docs, or the windows of every document */
    rr_window *win;       /* [n_pairs]: each pair, document i's being win[doc_first[i] ...
                             doc_first[i + 1]) (tok_start / tok_end: its document tokens) */
    float *pair_logits;   /* [n_pairs] */
    int *doc_first;       /* [n_docs + 1] */
    int *best;            /* [n_docs]: the window rr_chunk_combine picked (0 unchunked) */
    int *n_possible;      /* [n_docs]: windows that would cover the whole document */
    int query_tokens;     /* of the (first) query, before truncation */
    long total_tokens;    /* sum of pair lengths after truncation */
    uint64_t t_submit;    /* rr_now_ns at submit */
    uint64_t tokenize_ns; /* worker time spent tokenizing this request */
    uint64_t queue_ns;    /* from tokenized to its first batch starting */
    uint64_t infer_ns;    /* forward time of the batches that carried its pairs */

    /* Private to sched.c. */
    int cap_docs, cap_pairs;
    long cap_tok;
    int32_t *ids, *type_ids; /* packed pairs, [cap_tok] */
    int next_pair;           /* first pair not yet put in a batch */
    int n_scored;
    uint64_t t_ready;
    int started;
    void *scratch;
    size_t scratch_cap;
    rr_sched_req *next; /* free list / queues */
};

typedef struct rr_sched_opts {
    int max_in_flight;     /* request objects in the pool */
    int tokenizer_workers; /* threads; 0 → the CPUs this process may use */
    int max_chunks;        /* the most windows a request may ask per document (sizes each
                              worker's document buffer); 0 → 1 */
    int admission_control; /* 1: refuse a request whose deadline cannot be met (admit.h) */
} rr_sched_opts;

/* Cumulative statistics for the metrics endpoint, updated lock-free (relaxed atomics) by the
 * scheduler's threads; read them at any time through rr_sched_stats_get. */
typedef struct rr_sched_stats {
    rr_hist request_seconds;  /* submit → done, every outcome */
    rr_hist tokenize_seconds; /* per request that was scored (RR_SCHED_DONE) */
    rr_hist queue_seconds;    /* tokenized → its first batch starts (DONE requests) */
    rr_hist infer_seconds;    /* forward time of the batches carrying its pairs (DONE) */
    rr_hist request_pairs;    /* documents per request (every outcome) */
    rr_hist batch_tokens;     /* one observation per engine batch */
    rr_hist batch_pairs;
    rr_hist forward_seconds;
    atomic_uint_fast64_t outcomes[5];   /* requests by rr_sched_outcome */
    atomic_uint_fast64_t pairs, tokens; /* scored */
    atomic_uint_fast64_t forward_failures;
    atomic_int queued_tokenize, queued_engine; /* requests waiting now */
} rr_sched_stats;

const rr_sched_stats *rr_sched_stats_get(const rr_sched *s);

/* Starts the worker threads and the engine thread. The engine is owned by the engine thread
 * from here until rr_sched_free; its max_batch_tokens is the batcher's token budget (one
 * source of truth: the workspace the engine sized at init). */
rr_status rr_sched_init(const rr_model *m, rr_engine *e, const rr_sched_opts *o, rr_sched **out,
                        rr_error *err);

/* Stops the threads; work still queued completes with RR_SCHED_SHUTDOWN. Every acquired
 * request must have been released. Accepts NULL. */
void rr_sched_free(rr_sched *s);

/* A free request with cleared inputs and outputs, or NULL when max_in_flight are live. */
rr_sched_req *rr_sched_acquire(rr_sched *s);

/* Makes docs/logits/best/n_possible hold n_docs entries (grows the high-water mark; pair
 * arrays grow as the worker builds the pairs). RR_E_NOMEM. */
rr_status rr_sched_reserve(rr_sched_req *r, int n_docs, rr_error *err);

/* A buffer of at least `bytes` owned by the request, for the caller's response building;
 * valid until release. NULL when out of memory. */
void *rr_sched_scratch(rr_sched_req *r, size_t bytes);

/* Queues the request; `done` will be called exactly once. */
void rr_sched_submit(rr_sched *s, rr_sched_req *r);

/* Returns the request to the pool (after `done`). */
void rr_sched_release(rr_sched *s, rr_sched_req *r);

/* Requests acquired and not yet released. */
int rr_sched_live(rr_sched *s);

/* The deadline-aware admission state (admit.h): the front checks a request against it
 * before tokenization, /metrics reads its estimate and refusals. */
rr_admit *rr_sched_admit(rr_sched *s);

#endif /* RR_SCHED_H */
