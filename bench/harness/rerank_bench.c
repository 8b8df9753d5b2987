/*
 * rerank_bench.c — rerank-bench, the benchmark harness of rerankd (issue 5).
 *
 * What it measures, in this order (each phase optional):
 *   1. latency per K (one client, closed loop, a fixed number of requests per K) through
 *      gRPC unary Rerank, gRPC RerankStream, and the engine in-process (rr_score_query:
 *      tokenization + forward, no server) — the gap between the last and the first is the
 *      cost of the server itself;
 *   2. a closed-loop concurrency sweep (1 … 64 clients, unary, one K) for a fixed time each:
 *      throughput and latency under load;
 *   3. an open-loop run at a fixed request rate: arrivals are scheduled on a clock and each
 *      latency counts from the scheduled arrival, so a slow server cannot slow the arrivals
 *      down and hide its own queueing (no coordinated omission).
 * Reported: p50/p90/p99/max latency (nearest rank, n printed beside), pairs/s, tokens/s,
 * the server's per-stage split (tokenization, queue, inference — rerank.v1.Stats) and the
 * device (rerank.v1.Reranker/Info). Outputs: report.json, report.md, latency_k.dat,
 * concurrency.dat and, when gnuplot is on PATH, latency_k.png and concurrency.png.
 *
 * Inputs: queries and passages are windows of real English text cut to a target length in
 * tokens (default 16-token queries, 100-token passages) from a text file of one passage a
 * line (bench/harness/run.sh uses the golden corpus, tests/golden/corpus.py: the Python
 * documentation shipped inside CPython) or from --inputs, a JSON file written earlier by
 * --dump-inputs (so the peers in bench/peers/ see exactly the same requests). With --peers
 * (bench/peers/peers.py's JSON) the peers' latencies for the same requests are reported
 * beside ours, with ratios, and their logits validate ours before anything is timed.
 *
 * A client program: allocates with plain malloc; uses librerank only through rerank.h.
 * The parts are listed, with what each offers, in bench.h; this file is main: the steps in
 * order.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define MAX_SLOTS 1024 /* gRPC calls in flight at most */

/* The model, for --text (its tokenizer cuts the inputs) and --inproc (its engine). */
static int load_model(const rb_opts *o, rr_model **model)
{
    rr_error err;
    if (!o->model || !(o->text || o->inproc)) return 0;
    fprintf(stderr, "rerank-bench: loading %s\n", o->model);
    if (rr_model_load(o->model, model, &err) != RR_OK) {
        fprintf(stderr, "rerank-bench: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int load_inputs(const rb_opts *o, const rr_model *model, rb_inputs *in)
{
    if (o->text)
        return rb_inputs_generate(o, rr_model_tokenizer(model),
                                  rr_model_get_info(model)->max_length, in);
    return rb_inputs_read(o->inputs, in);
}

/* --dump-inputs: the exit status. */
static int dump_inputs(const rb_inputs *in, const char *path)
{
    if (rb_inputs_write(in, path)) return 1;
    fprintf(stderr, "rerank-bench: wrote %s\n", path);
    return 0;
}

/* The in-process engine of --inproc; desc receives its description. */
static int start_engine(const rb_opts *o, const rr_model *model, rr_engine **engine, char *desc,
                        size_t cap)
{
    rr_engine_opts eo = {.device = o->device,
                         .max_batch_tokens = 0,
                         .n_threads = o->threads,
                         .dtype = o->device < 0 ? RR_DTYPE_F32 : RR_DTYPE_F16};
    rr_error err;
    if (rr_engine_init(model, &eo, engine, &err) != RR_OK) {
        fprintf(stderr, "rerank-bench: %s\n", err.msg);
        return -1;
    }
    snprintf(desc, cap, "%s", rr_engine_describe(*engine));
    return 0;
}

/* A gRPC client of --target, the server's Info, and the requests packed for it. */
static int connect_server(const rb_opts *o, rb_inputs *in, rb_client **cli, rb_info *info)
{
    int max_k = rb_inputs_max_k(in);
    char msg[256];
    *cli = rb_client_init(o->target, MAX_SLOTS, max_k, o->timeout_s);
    if (!*cli) {
        fprintf(stderr, "rerank-bench: cannot create a gRPC client for %s\n", o->target);
        return -1;
    }
    if (rb_client_info(*cli, info, 30, msg, sizeof msg)) {
        fprintf(stderr, "rerank-bench: %s: %s\n", o->target, msg);
        return -1;
    }
    fprintf(stderr, "rerank-bench: %s: rerankd %s, %s on %s\n", o->target, info->version,
            info->architecture, info->device);
    if ((unsigned)max_k > info->max_documents) {
        fprintf(stderr, "rerank-bench: K = %d is over the server's max_documents %u\n", max_k,
                info->max_documents);
        return -1;
    }
    return rb_inputs_pack(in, o->stream_batch);
}

int main(int argc, char **argv)
{
    rb_opts o;
    rb_inputs in;
    rb_peers ps;
    rb_results r;
    rb_info info;
    rr_model *model = NULL;
    rr_engine *engine = NULL;
    rb_client *cli = NULL;
    char inproc_desc[160] = "";
    int rc = 1;

    memset(&in, 0, sizeof in);
    memset(&ps, 0, sizeof ps);
    memset(&r, 0, sizeof r);
    if (!rb_opts_parse(argc, argv, &o)) return 2;
    rb_progress_enable(o.progress);
    if (load_model(&o, &model) || load_inputs(&o, model, &in)) goto done;
    if (o.dump_inputs) {
        rc = dump_inputs(&in, o.dump_inputs);
        goto done;
    }
    if (o.peers && rb_peers_read(o.peers, &in, &ps)) goto done;
    if (rb_mkdir_p(o.out_dir)) goto done;
    if (o.inproc && start_engine(&o, model, &engine, inproc_desc, sizeof inproc_desc)) goto done;
    if (o.target && connect_server(&o, &in, &cli, &info)) goto done;
    if (rb_validate(&o, &in, &ps, engine, model, cli, &r)) goto done;
    if (rb_run_latency_by_k(&o, &in, cli, engine, model, &r)) goto done;
    /* In-process engine released before the load phases: it would hold its threads' memory
     * and nothing else; the server is what is measured from here on. */
    rr_engine_free(engine);
    engine = NULL;
    if (rb_run_load(&o, &in, cli, &r)) goto done;
    if (rb_report_write(&o, &in, cli ? &info : NULL, inproc_desc, &ps, &r)) goto done;
    fprintf(stderr, "rerank-bench: wrote %s/report.{json,md}\n", o.out_dir);
    rc = rb_results_failed(&r);
    if (rc) fprintf(stderr, "rerank-bench: some requests failed (see errors in the report)\n");
done:
    rb_results_free(&r);
    rb_peers_free(&ps, in.n_k);
    rb_inputs_free(&in);
    rb_client_free(cli);
    rr_engine_free(engine);
    rr_model_free(model);
    return rc;
}
