/*
 * front.h — the protocol-neutral request front of rerankd. Both wings (gRPC: rerank.v1 and
 * tei.v1; HTTP: TEI and Cohere/Jina JSON) decode their wire format into the same intake,
 * and get back the same problems, the same ranking and the same outcome classes, so one
 * input meets one treatment on every path:
 *
 *   wing decodes ─▶ rr_front_begin (ready, limits, options, query) ─▶ rr_front_doc × n
 *       ─▶ rr_front_submit ─▶ … scheduler … ─▶ done: rr_front_outcome, rr_front_rank
 *       ─▶ wing encodes ─▶ rr_front_release
 *
 * Every failure is an rr_problem: a class (rr_fail) and one line naming the field. Each
 * wing maps a class to its status exactly once (grpc/status.c, http/rerank.c); the table is
 * in README.md ("Errors"). TEI's choices are followed where TEI has the case.
 */
#ifndef RR_FRONT_H
#define RR_FRONT_H

#include <stdint.h>

#include "edge/edge.h"

typedef enum rr_fail {
    RR_FAIL_NONE = 0,
    RR_FAIL_MALFORMED,   /* undecodable: bad protobuf, JSON syntax, not JSON UTF-8 */
    RR_FAIL_INVALID,     /* a field's value: empty query, bad UTF-8, max_length, types */
    RR_FAIL_EMPTY,       /* no documents */
    RR_FAIL_TOO_MANY,    /* over --max-docs (per request, stream batch or stream) */
    RR_FAIL_TOO_LONG,    /* a pair over max_length with truncation off */
    RR_FAIL_TOO_BIG,     /* over --max-message-bytes, or its decoding over its budget */
    RR_FAIL_OVERLOADED,  /* --max-in-flight reached, or out of memory */
    RR_FAIL_UNAVAILABLE, /* loading, draining, stopped */
    RR_FAIL_DEADLINE,    /* the deadline passed before the pairs were scored, or cannot be
                          * met (refused at admission) */
    RR_FAIL_CANCELLED,   /* the client went away */
    RR_FAIL_TOKENIZER,   /* the tokenizer failed on valid input */
    RR_FAIL_BACKEND,     /* the engine failed, or produced NaN */
    RR_FAIL_INTERNAL,    /* a bug of ours (queue overflow, ...) */
    RR_FAIL_COUNT
} rr_fail;

typedef struct rr_problem {
    rr_fail fail;
    char msg[RR_ERROR_MSG_CAP];
} rr_problem;

/* Fills p; returns 0, so `return rr_problem_set(p, ...)` fails a check. */
int rr_problem_set(rr_problem *p, rr_fail f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Lower-case name of a class ("too_many"), for logs and tests. */
const char *rr_fail_name(rr_fail f);

/* What a wing asks for, in neutral terms. Sizes are as counted on the wire, unclamped:
 * the front does every range check, so a 2^32-1 or a negative varint cannot wrap. */
typedef struct rr_intake {
    rr_text query;          /* shared by every pair unless the wing sets r->queries */
    uint64_t n_docs;        /* documents */
    const char *docs_field; /* names documents in messages: "documents", "texts" */
    uint64_t max_length;    /* 0: the model's; else 3 ... the model's */
    int truncate;           /* 0: an over-long pair is TOO_LONG, naming it */
    int keep_last;          /* 1: truncation keeps the end of each text */
    uint64_t deadline_ns;   /* rr_now_ns clock; 0: none */
    /* Long documents (README "Long documents"). As counted on the wire, checked here. */
    uint64_t max_doc_tokens; /* 0: whole documents; else each counts its first N tokens */
    int long_docs;           /* RR_LONG_* */
    uint64_t max_chunks;     /* windows per document; 0: --max-chunks-per-doc */
    int64_t overlap;         /* tokens shared by neighbouring windows; < 0: ⌊window / 8⌋ */
    int chunk_score;         /* rr_chunk_score, as the wing parsed it */
} rr_intake;

/* How long documents are treated: the server's --long-documents, or as a request says. */
enum { RR_LONG_DEFAULT = 0, RR_LONG_TRUNCATE = 1, RR_LONG_CHUNK = 2 };

/* One document's winning window, for the answer (chunked requests). Offsets are into the
 * document's text: tokens of the document alone, and Unicode code points. */
typedef struct rr_front_window {
    int index;            /* 0-based, of the document's windows */
    int scored, possible; /* windows scored; windows that would cover the document */
    int token_start, token_end;
    int char_start, char_end;
} rr_front_window;

/* 1 when the request was chunked (its answers carry windows). */
int rr_front_chunked(const rr_sched_req *r);
/* Document i's winning window of a done, chunked request. */
void rr_front_window_of(const rr_sched_req *r, int i, rr_front_window *w);

/* 1 when the model is loaded; else 0 and UNAVAILABLE. */
int rr_front_ready(rr_server *srv, rr_problem *p);

/* The checks of rr_front_begin that do not need documents: max_length in range, the
 * query non-empty and UTF-8, the long-document options in range (a stream checks its open
 * with this before any batch). */
int rr_front_options(rr_server *srv, const rr_intake *in, rr_problem *p);

/* Checks the request against the server's state, limits and the model, then takes a
 * scheduler request for it with the options, query and deadline set. NULL with *p:
 * UNAVAILABLE (loading, stopping), EMPTY, TOO_MANY (--max-docs), INVALID (query empty or
 * not UTF-8, max_length outside 3 ... the model's), DEADLINE ("refused at admission": the
 * work queued ahead alone outlasts in->deadline_ns, sched/admit.h), OVERLOADED
 * (--max-in-flight, memory).
 * On success the wing sets every document with rr_front_doc, then rr_front_submit, or
 * gives the request back with rr_front_abort. */
rr_sched_req *rr_front_begin(rr_server *srv, const rr_intake *in, rr_problem *p);

/* Document i's text (borrowed until done; its UTF-8 is checked by the tokenizer, which
 * names it) and id (echoed to the client, so checked here: INVALID "documents[3].id is not
 * valid UTF-8"; an absent id is {NULL, 0}). 0 with *p on a bad id. */
int rr_front_doc(rr_sched_req *r, int i, rr_text text, rr_text id, rr_problem *p);

/* A query of its own for a pair (TEI streams): non-empty, UTF-8 (what names it). */
int rr_front_query(rr_text q, const char *what, rr_problem *p);

/* Submits: done(r) runs exactly once, from a worker or the engine thread. */
void rr_front_submit(rr_server *srv, rr_sched_req *r, void (*done)(rr_sched_req *), void *user);
/* Gives back a request that was begun but not submitted. */
void rr_front_abort(rr_server *srv, rr_sched_req *r);
/* Gives back a request after its done ran. */
void rr_front_release(rr_server *srv, rr_sched_req *r);

/* In done: 1 when every pair was scored; else 0 with *p (INVALID / TOO_LONG naming the
 * document, DEADLINE, CANCELLED, UNAVAILABLE, BACKEND, OVERLOADED, TOKENIZER). */
int rr_front_outcome(const rr_sched_req *r, rr_problem *p);

/* How many results a top_n asks for out of n: n when top_n is 0 or ≥ n. */
int rr_front_top(uint64_t top_n, int n);

/* Ranks logits[n] best first into out[n] (ties by index). 0 with BACKEND when a score is
 * NaN (TEI refuses those too). */
int rr_front_rank_logits(const float *logits, int n, rr_ranked *out, rr_problem *p);

/* Ranks a done request's logits into its scratch, followed (16-byte aligned) by `extra`
 * bytes for the wing's response structures. 0 with *p: OVERLOADED (memory), BACKEND (NaN). */
int rr_front_rank(rr_sched_req *r, size_t extra, const rr_ranked **items, void **extra_out,
                  rr_problem *p);

#endif /* RR_FRONT_H */
