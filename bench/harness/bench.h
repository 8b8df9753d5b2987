/*
 * bench.h — the parts of rerank-bench (the benchmark harness, issue 5) and what each offers
 * the others. Internal to bench/harness; the program is described in rerank_bench.c.
 *
 *   opts.c        the command line (rb_opts)
 *   inputs.c      the requests: cut from text, or read from / written to --inputs JSON
 *   peers.c       the peers' latencies and logits for the same requests (--peers JSON)
 *   runs.c        measurement points and the runs that fill them: closed loop, open loop,
 *                 in-process; the latency-per-K and load phases built from them
 *   validate.c    every side's logits against a reference before anything is timed
 *   report.c      report.json, report.md, latency_k.dat, concurrency.dat, the PNG plots
 *   rerank_bench.c  main: the steps above in order
 *
 * Calls point one way: rerank_bench.c calls every part; validate.c and report.c use peers.c
 * and runs.c; peers.c fills runs.c's points; runs.c replays inputs.c's requests; inputs.c
 * reads opts.c's options. Errors: a function that fails returns non-zero, after printing
 * one "rerank-bench: …" line to stderr that says why, except when it ran out of memory
 * (not always printed). Memory: plain malloc (a client program); every _free accepts a
 * zeroed struct.
 */
#ifndef RB_BENCH_H
#define RB_BENCH_H

#include <stddef.h>

#include "client.h"
#include "rerank.h"
#include "stats.h"

#define MAX_LIST 32    /* entries of --k and --concurrency */
#define MAX_PEERS 4    /* peers read from --peers; later ones are ignored */
#define LOGIT_TOL 1e-4 /* validation: largest |Δ| / max(1, |reference|) accepted */

/* ----------------------------------------------------------------------------------------
 * opts.c — the command line
 */

typedef struct rb_opts {
    const char *target; /* host:port of a running rerankd */
    const char *model;  /* model folder: tokenizer for --text, engine for --inproc */
    const char *text;   /* one passage a line */
    const char *inputs; /* JSON written by --dump-inputs */
    const char *dump_inputs;
    const char *peers; /* bench/peers/peers.py output */
    const char *out_dir;
    const char *source_name;
    int device; /* in-process engine: -1 CPU, else CUDA ordinal */
    int inproc, unary, stream;
    int ks[MAX_LIST], n_ks;
    int concs[MAX_LIST], n_concs;
    int sweep_k;
    double sweep_s, warmup_s;
    double rate, rate_fraction, open_s;
    int pairs_per_k, min_requests, max_requests, pool, warmup_pairs;
    int query_tokens, passage_tokens;
    int stream_batch, threads, stream_max_k, validate_max_k;
    unsigned long seed;
    double timeout_s;
    int progress;
} rb_opts;

/* Fills *o from argv (defaults as --help states them). Returns 1 when the options are
 * usable, 0 after printing why not (exit status 2). --help prints usage and exits 0. */
int rb_opts_parse(int argc, char **argv, rb_opts *o);

/* ----------------------------------------------------------------------------------------
 * inputs.c — per K, a pool of requests (query + K passages) and the number of requests to
 * time. Request i of a K (warm-up included) is pool[i % n_pool], on every side.
 */

typedef struct rb_query_set {
    char *query;
    char **docs;
    int n_docs;
    long tokens; /* scored tokens of all pairs (after truncation) */
    rb_request unary, stream;
} rb_query_set;

typedef struct rb_k_inputs {
    int k, warmup, n_requests, n_pool;
    rb_query_set *pool;
} rb_k_inputs;

typedef struct rb_inputs {
    char source[256];
    int query_tokens, passage_tokens;
    unsigned long seed;
    rb_k_inputs *per_k;
    int n_k;
} rb_inputs;

/* The whole file at path, NUL-terminated (*len, when not NULL, receives its length without
 * the NUL); caller frees. NULL when unreadable or out of memory, errno set; prints nothing. */
char *rb_slurp(const char *path, size_t *len);

/* Cuts o->ks' requests from o->text: queries of o->query_tokens and passages of
 * o->passage_tokens tokens (tok's count), windows of the text at word boundaries picked by a
 * generator seeded with o->seed, so the same options give the same requests. max_len is the
 * model's maximum pair length: rb_query_set.tokens counts the pairs after truncation. */
int rb_inputs_generate(const rb_opts *o, const rr_tokenizer *tok, int max_len, rb_inputs *in);

/* Reads / writes the JSON of --inputs / --dump-inputs (bench/peers/peers.py reads it). */
int rb_inputs_read(const char *path, rb_inputs *in);
int rb_inputs_write(const rb_inputs *in, const char *path);

/* Packs every request of the pools for gRPC: unary, and streaming with stream_batch
 * documents per StreamBatch. Returns -1 when out of memory, printing nothing. */
int rb_inputs_pack(rb_inputs *in, int stream_batch);

/* The largest K (0 when there is none). */
int rb_inputs_max_k(const rb_inputs *in);

/* The last entry whose K is k, or NULL. */
rb_k_inputs *rb_inputs_find_k(rb_inputs *in, int k);

void rb_inputs_free(rb_inputs *in);

/* ----------------------------------------------------------------------------------------
 * runs.c — measurement points, the runs that fill them, and the phases built from runs
 */

typedef struct rb_point {
    char mode[16]; /* "unary", "stream", "inproc", "peer", "closed", "open" */
    int k, clients;
    double rate; /* open loop: offered requests/s */
    int n_err;
    char first_err[256];
    double *lat, *first, *tok, *queue, *inf, *srv; /* per measured request, seconds */
    int n, cap;
    double wall_s; /* measured window */
    long pairs, tokens;
    int late_starts; /* open loop: arrivals started late because every slot was busy */
    /* Open loop, goodput: arrivals in the window; of them, answered OK within the call
     * deadline (--timeout) counted from the scheduled arrival; refused by the server's
     * deadline-aware admission (DEADLINE_EXCEEDED "refused at admission ..."). */
    int arrived, in_deadline, refused;
    double deadline_s;
    rb_summary s_lat, s_first, s_tok, s_queue, s_inf, s_srv;
} rb_point;

/* A point with room for cap measured requests (it grows beyond); -1 when out of memory.
 * rb_point_finish sorts the samples into the s_* summaries; call it once, after the run. */
int rb_point_init(rb_point *p, const char *mode, int k, int cap);
void rb_point_finish(rb_point *p);
void rb_point_free(rb_point *p);

/* x per second of the measured window; NaN when the window is empty. */
double rb_per_s(const rb_point *p, double x);

/* s seconds in milliseconds as stderr and the reports print them ("–" for NaN). The string
 * lives in a ring of 16: valid until 16 more calls. */
const char *rb_ms_str(double s);

/* Everything measured. Arrays are NULL when their phase or side did not run; a point that
 * was not run (stream above --stream-max-k) has cap == 0. */
typedef struct rb_results {
    int n_k; /* entries of unary, stream, inproc */
    rb_point *unary, *stream, *inproc;
    rb_point *closed; /* [n_closed] */
    int n_closed;
    rb_point open;
    int have_open;
    double validation_worst;
    char validation_ref[64];
} rb_results;

/* 1 when any gRPC request failed (the report shows them), else 0. */
int rb_results_failed(const rb_results *r);
void rb_results_free(rb_results *r);

/* Progress bar on stderr while runs go, when on (rerank-bench: only on a terminal). */
void rb_progress_enable(int on);

/* Phase 1, latency per K with one client: every K of in through gRPC unary and streaming
 * (cli; streaming only for K ≤ o->stream_max_k) and in-process (engine with m); either of
 * cli and engine may be NULL. Fills r->unary, r->stream, r->inproc; prints a line per K. */
int rb_run_latency_by_k(const rb_opts *o, rb_inputs *in, rb_client *cli, rr_engine *engine,
                        const rr_model *m, rb_results *r);

/* Phases 2 and 3, at K = o->sweep_k through cli: the closed-loop sweep over o->concs, then
 * the open loop at o->rate (default: o->rate_fraction of the sweep's peak). Nothing to do
 * without cli, or with neither clients nor a rate. Fills r->closed and r->open. */
int rb_run_load(const rb_opts *o, rb_inputs *in, rb_client *cli, rb_results *r);

/* ----------------------------------------------------------------------------------------
 * peers.c — bench/peers/peers.py's JSON: per peer, raw latencies per K and the logits of
 * pool[0] (the first request) of each K
 */

typedef struct rb_peer {
    char name[64];
    char desc[256];
    rb_point *by_k;  /* [n_k] of the inputs, mode "peer"; k == -1 where the peer has no K */
    float **logits0; /* [n_k]; NULL entries where the file has none */
} rb_peer;

typedef struct rb_peers {
    rb_peer p[MAX_PEERS];
    int n;
    char machine[256];
} rb_peers;

/* Reads path against in (only K values of in are kept; request i of a K stands for
 * in's request warmup + i). Returns -1 when unreadable (printed) or out of memory (not). */
int rb_peers_read(const char *path, const rb_inputs *in, rb_peers *out);

/* The index of the last peer named name, or -1. */
int rb_peers_find(const rb_peers *ps, const char *name);

void rb_peers_free(rb_peers *ps, int n_k);

/* ----------------------------------------------------------------------------------------
 * validate.c — before timing, pool[0] of every K ≤ o->validate_max_k is scored by each side
 * and compared with a reference: transformers' logits from the peers file when given, else
 * the in-process engine (engine with m), else gRPC unary (streaming checked against it).
 * The other peers' logits are checked against the same reference. Sets
 * r->validation_ref and r->validation_worst and prints them; any logit off by more than
 * LOGIT_TOL fails (printed: the K, side, index and both values).
 */
int rb_validate(const rb_opts *o, const rb_inputs *in, const rb_peers *ps, rr_engine *engine,
                const rr_model *m, rb_client *cli, rb_results *r);

/* ----------------------------------------------------------------------------------------
 * report.c — the reports, in o->out_dir
 */

/* mkdir -p dir. */
int rb_mkdir_p(const char *dir);

/* Writes report.json, latency_k.dat, concurrency.dat and report.md, then the PNG plots when
 * gnuplot is on PATH (a missing or failing gnuplot is printed, not an error). info is NULL
 * without a server; inproc_desc is "" without an in-process engine. */
int rb_report_write(const rb_opts *o, const rb_inputs *in, const rb_info *info,
                    const char *inproc_desc, const rb_peers *ps, const rb_results *r);

#endif /* RB_BENCH_H */
