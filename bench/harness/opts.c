/*
 * opts.c — rerank-bench's command line: the usage text, the defaults it states, and the
 * checks that make a set of options runnable (see rb_opts_parse in bench.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: rerank-bench [--target HOST:PORT] [--inproc] --model DIR (--text FILE | --inputs "
        "FILE)\n"
        "                    [options]\n"
        "inputs:\n"
        "  --model DIR            model folder (tokenizer for --text; engine for --inproc)\n"
        "  --text FILE            English text, one passage a line (queries and passages are cut\n"
        "                         from it); --source NAME names it in the report\n"
        "  --inputs FILE          requests written earlier by --dump-inputs\n"
        "  --dump-inputs FILE     write the requests (for bench/peers/peers.py) and exit\n"
        "  --query-tokens N       query length in tokens (default 16)\n"
        "  --passage-tokens N     passage length in tokens (default 100)\n"
        "  --seed N               text sampling seed (default 5)\n"
        "latency per K (one client):\n"
        "  --k LIST               K values (default 1,10,25,50,100,250,500,1000)\n"
        "  --pairs-per-k N        requests per K = N / K, clamped to [min, max] (default 1500)\n"
        "  --min-requests N       (default 5)   --max-requests N (default 50)\n"
        "  --pool N               distinct queries per K (default 4)\n"
        "  --warmup-pairs N       untimed requests per K = min(2, N / K) (default 200)\n"
        "  --no-unary, --no-stream  skip a gRPC method; --inproc adds the in-process engine\n"
        "  --stream-batch N       documents per StreamBatch message (default 32)\n"
        "  --stream-max-k K       streaming only for K up to this (default: all)\n"
        "  --validate-max-k K     validate the sides on K up to this (default 100)\n"
        "  --threads N            in-process engine threads (default: all online CPUs)\n"
        "  --device cpu|cuda:N    in-process engine device (default cpu; CUDA runs fp16)\n"
        "load (needs --target):\n"
        "  --concurrency LIST     closed-loop clients (default 1,2,4,8,16,32,64; 0 = skip)\n"
        "  --sweep-k K            K of the concurrency sweep and open loop (default 10)\n"
        "  --sweep-seconds S      measured seconds per point (default 4; warm-up --warmup 1)\n"
        "  --rate R               open-loop requests/s (default: --rate-fraction of the sweep's\n"
        "                         peak throughput; 0 = skip)\n"
        "  --rate-fraction F      (default 0.7)   --open-seconds S (default 10)\n"
        "reports:\n"
        "  --peers FILE           peers' JSON (bench/peers/peers.py) for ratios and validation\n"
        "  --out DIR              report.json, report.md, *.dat, *.png (default "
        "bench/out/harness)\n"
        "  --timeout S            per-call deadline (default 600); the open loop reports its\n"
        "                         goodput: arrivals answered within it\n"
        "  --no-progress          no progress bar (default: shown when stderr is a terminal)\n");
}

static int parse_list(const char *s, int *out, int cap)
{
    int n = 0;
    while (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 1000000 || n == cap) return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

int rb_opts_parse(int argc, char **argv, rb_opts *o)
{
    static const int def_k[] = {1, 10, 25, 50, 100, 250, 500, 1000};
    static const int def_c[] = {1, 2, 4, 8, 16, 32, 64};
    memset(o, 0, sizeof *o);
    o->unary = o->stream = 1;
    o->device = -1;
    memcpy(o->ks, def_k, sizeof def_k);
    o->n_ks = 8;
    memcpy(o->concs, def_c, sizeof def_c);
    o->n_concs = 7;
    o->sweep_k = 10;
    o->sweep_s = 4;
    o->warmup_s = 1;
    o->rate = -1;
    o->rate_fraction = 0.7;
    o->open_s = 10;
    o->pairs_per_k = 1500;
    o->min_requests = 5;
    o->max_requests = 50;
    o->pool = 4;
    o->warmup_pairs = 200;
    o->query_tokens = 16;
    o->passage_tokens = 100;
    o->stream_batch = 32;
    o->stream_max_k = 1 << 30;
    o->validate_max_k = 100;
    o->seed = 5;
    o->timeout_s = 600;
    o->out_dir = "bench/out/harness";
    o->progress = isatty(2);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1, ok = 1;
#define IS(x) (strcmp(a, x) == 0)
#define NUM(dst, lo, hi)                                                                           \
    do {                                                                                           \
        char *e_;                                                                                  \
        double d_ = v ? strtod(v, &e_) : 0;                                                        \
        ok = v && *v && !*e_ && d_ >= (lo) && d_ <= (hi);                                          \
        if (ok) dst = d_;                                                                          \
    } while (0)
        if (IS("--help") || IS("-h")) {
            usage(stdout);
            exit(0);
        } else if (IS("--target")) {
            o->target = v, ok = v != NULL;
        } else if (IS("--model")) {
            o->model = v, ok = v != NULL;
        } else if (IS("--text")) {
            o->text = v, ok = v != NULL;
        } else if (IS("--source")) {
            o->source_name = v, ok = v != NULL;
        } else if (IS("--inputs")) {
            o->inputs = v, ok = v != NULL;
        } else if (IS("--dump-inputs")) {
            o->dump_inputs = v, ok = v != NULL;
        } else if (IS("--peers")) {
            o->peers = v, ok = v != NULL;
        } else if (IS("--out")) {
            o->out_dir = v, ok = v != NULL;
        } else if (IS("--inproc")) {
            o->inproc = 1, takes = 0;
        } else if (IS("--device")) {
            ok = v != NULL;
            if (ok && strcmp(v, "cpu") == 0)
                o->device = -1;
            else if (ok && strncmp(v, "cuda:", 5) == 0 && v[5])
                o->device = atoi(v + 5);
            else
                ok = 0;
        } else if (IS("--no-unary")) {
            o->unary = 0, takes = 0;
        } else if (IS("--no-stream")) {
            o->stream = 0, takes = 0;
        } else if (IS("--no-progress")) {
            o->progress = 0, takes = 0;
        } else if (IS("--k")) {
            ok = (o->n_ks = parse_list(v, o->ks, MAX_LIST)) > 0;
        } else if (IS("--concurrency")) {
            ok = (o->n_concs = parse_list(v, o->concs, MAX_LIST)) >= 0;
            if (ok && o->n_concs == 1 && o->concs[0] == 0) o->n_concs = 0;
        } else if (IS("--sweep-k")) {
            NUM(o->sweep_k, 1, 100000);
        } else if (IS("--sweep-seconds")) {
            NUM(o->sweep_s, 0.1, 3600);
        } else if (IS("--warmup")) {
            NUM(o->warmup_s, 0, 3600);
        } else if (IS("--rate")) {
            NUM(o->rate, 0, 1e6);
        } else if (IS("--rate-fraction")) {
            NUM(o->rate_fraction, 0.01, 10);
        } else if (IS("--open-seconds")) {
            NUM(o->open_s, 0.1, 3600);
        } else if (IS("--pairs-per-k")) {
            NUM(o->pairs_per_k, 1, 1e9);
        } else if (IS("--min-requests")) {
            NUM(o->min_requests, 1, 1e6);
        } else if (IS("--max-requests")) {
            NUM(o->max_requests, 1, 1e6);
        } else if (IS("--warmup-pairs")) {
            NUM(o->warmup_pairs, 0, 1e9);
        } else if (IS("--pool")) {
            NUM(o->pool, 1, 1000);
        } else if (IS("--query-tokens")) {
            NUM(o->query_tokens, 1, 100000);
        } else if (IS("--passage-tokens")) {
            NUM(o->passage_tokens, 1, 100000);
        } else if (IS("--stream-max-k")) {
            NUM(o->stream_max_k, 0, 1 << 30);
        } else if (IS("--validate-max-k")) {
            NUM(o->validate_max_k, 0, 1 << 30);
        } else if (IS("--stream-batch")) {
            NUM(o->stream_batch, 1, 100000);
        } else if (IS("--threads")) {
            NUM(o->threads, 0, 4096);
        } else if (IS("--seed")) {
            NUM(o->seed, 0, 4e9);
        } else if (IS("--timeout")) {
            NUM(o->timeout_s, 0.001, 1e6);
        } else {
            fprintf(stderr, "rerank-bench: unknown option %s (see --help)\n", a);
            return 0;
        }
#undef IS
#undef NUM
        if (!ok) {
            fprintf(stderr, "rerank-bench: bad or missing value for %s (see --help)\n", a);
            return 0;
        }
        i += takes;
    }
    if (o->max_requests < o->min_requests) o->max_requests = o->min_requests;
    if (!o->text && !o->inputs) {
        fprintf(stderr, "rerank-bench: --text FILE or --inputs FILE is required\n");
        return 0;
    }
    if ((o->text || o->inproc) && !o->model) {
        fprintf(stderr, "rerank-bench: --model DIR is required with --text and --inproc\n");
        return 0;
    }
    if (!o->dump_inputs && !o->target && !o->inproc) {
        fprintf(stderr, "rerank-bench: nothing to measure: give --target and/or --inproc\n");
        return 0;
    }
    return 1;
}
