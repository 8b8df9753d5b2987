/*
 * bench_gpu.c — latency of the CUDA engine for one K (one query against K passages), timed
 * first and then checked against the CPU engine, one K per process.
 *
 *   bench_gpu MODEL_DIR OUT_DIR --k K [--bf16]   time, then validate, one K
 *   bench_gpu MODEL_DIR OUT_DIR --inputs          write OUT_DIR/inputs.jsonl only
 *   bench_gpu MODEL_DIR OUT_DIR --smoke [--bf16]  K = 1, 10, 100 once each vs the CPU, no
 *                                                 files (compute-sanitizer, the fault probe)
 *
 * Why one K per process, timed before validated: the device check gets one short run on
 * kernels that have never run, and a fault aborts the process (a poisoned context cannot be
 * recovered). So a fault at K=1000 must not take the K=1 row with it, and a validation
 * fault must not take the timing of its own K: gpu-check.sh runs K = 1, 10, 100, 1000 per
 * precision as separate processes, and each appends its rows as soon as it has them.
 * Inputs: seeded token ids in [1000, 8192) (no special token; the carried model keeps the
 * embedding rows below 8192, bench/gpu/pack-debs.sh), a 16-token query and 1000 passages of
 * 80…120 tokens (mean 100): pairs `[CLS] q [SEP] p [SEP]` of ~119 tokens, the anchors' MS
 * MARCO shape. The same ids every run; --inputs writes them for torch_bench.py.
 * Timing: host wall clock around each synchronous rr_engine_forward (packing, the copies,
 * the graph or launches, the sync — what a caller waits for), after 20 warm-up calls;
 * p50 and p99 over 1000 calls (200 at K=1000). Every timed forward's status is checked (a
 * failing forward returns early and would otherwise be timed as a fast one). TFLOP/s counts
 * model FLOPs of the full encoder (2·n_tok·n_layer·(4d² + 2·d·d_ff) + 4·n_layer·d·ΣL²), as
 * the anchors do, although the engine runs the last layer for the [CLS] rows only.
 * Validation of the same K after its timing: the K pairs on the CPU engine (fp32) and on the
 * CUDA engine in one batch → max |cuda − cpu| (bound 2e-2 fp16, 0.25 bf16), top-10
 * agreement (how many of the CPU's top min(10, K) the CUDA engine also ranks in its top
 * min(10, K)), and batch invariance: the first min(K, 16) pairs each scored alone vs inside
 * the K batch — bitwise-equal count and max |difference|.
 * Output (OUT_DIR, line-buffered appends, so a kill keeps what was written):
 *   rerank.tsv       dtype K n_tok p50_ms p99_ms pairs_per_s TFLOPs — right after timing;
 *   validate.tsv     dtype K max_diff nan top10 top10_of inv_equal inv_of inv_max_diff;
 *   logits_<dtype>_<K>.txt and logits_cpu_<K>.txt (one logit per line);
 * and `# ` lines on stdout for the device check's table.
 * Exit status: 0 when the K was timed and validated within bounds, 1 otherwise, 2 on usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rerank.h"

#define N_PAIRS 1000
#define Q_LEN 16
#define BENCH_VOCAB 8192 /* ids below this: the carried model's kept embedding rows */
#define INV_PAIRS 16     /* pairs scored alone for the batch-invariance column */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct inputs {
    int32_t *tok, *typ, cu[N_PAIRS + 1];
} inputs;

static void make_inputs(const rr_model *m, inputs *in)
{
    const rr_tokenizer *t = rr_model_tokenizer(m);
    const int vocab = rr_model_get_info(m)->vocab_size;
    const uint32_t span = (uint32_t)((vocab < BENCH_VOCAB ? vocab : BENCH_VOCAB) - 1000);
    int32_t q[Q_LEN];
    for (int k = 0; k < Q_LEN; k++)
        q[k] = 1000 + (int32_t)(rnd() % span);
    in->tok = malloc((size_t)N_PAIRS * 200 * sizeof(int32_t));
    in->typ = malloc((size_t)N_PAIRS * 200 * sizeof(int32_t));
    int n = 0;
    in->cu[0] = 0;
    for (int i = 0; i < N_PAIRS; i++) {
        int pl = 80 + (int)(rnd() % 41);
        in->tok[n] = rr_tokenizer_cls_id(t), in->typ[n++] = 0;
        for (int k = 0; k < Q_LEN; k++)
            in->tok[n] = q[k], in->typ[n++] = 0;
        in->tok[n] = rr_tokenizer_sep_id(t), in->typ[n++] = 0;
        for (int k = 0; k < pl; k++)
            in->tok[n] = 1000 + (int32_t)(rnd() % span), in->typ[n++] = 1;
        in->tok[n] = rr_tokenizer_sep_id(t), in->typ[n++] = 1;
        in->cu[i + 1] = n;
    }
}

/* Pairs [first, first + k) as one batch (cu_seqlens rebased to 0 in `cu`). */
static rr_batch batch_of(const inputs *in, int first, int k, int32_t *cu)
{
    for (int s = 0; s <= k; s++)
        cu[s] = in->cu[first + s] - in->cu[first];
    rr_batch b = {k, cu[k], in->tok + in->cu[first], in->typ + in->cu[first], cu};
    return b;
}

/* Scores pairs [0, n) in batches of at most `per` pairs. */
static int score(rr_engine *e, const inputs *in, int n, int per, float *out)
{
    static int32_t cu[N_PAIRS + 1];
    for (int i = 0; i < n; i += per) {
        int k = n - i < per ? n - i : per;
        rr_batch b = batch_of(in, i, k, cu);
        if (rr_engine_forward(e, &b, out + i) != RR_OK) return -1;
    }
    return 0;
}

/* Max |a - b| over n logits into *worst; returns how many differences are NaN (fmaxf would
 * silently drop them, and a NaN logit must fail validation). */
static int diff_into(const float *a, const float *b, int n, float *worst)
{
    int n_nan = 0;
    for (int s = 0; s < n; s++) {
        const float d = fabsf(a[s] - b[s]);
        if (isnan(d))
            n_nan++;
        else
            *worst = fmaxf(*worst, d);
    }
    return n_nan;
}

static double model_flops(const rr_model_info *mi, const inputs *in, int k)
{
    const double d = mi->d_model, f = mi->d_ff;
    double n_tok = in->cu[k], sq = 0;
    for (int s = 0; s < k; s++) {
        double l = in->cu[s + 1] - in->cu[s];
        sq += l * l;
    }
    return mi->n_layer * (2 * n_tok * (4 * d * d + 2 * d * f) + 4 * d * sq);
}

/* Appends one line to OUT_DIR/name, writing `header` first when the file is new. */
static void append_row(const char *dir, const char *name, const char *header, const char *line)
{
    if (!dir) return; /* --smoke writes nothing */
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    const int fresh = f == NULL;
    if (f) fclose(f);
    f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "bench_gpu: cannot write %s\n", path);
        return;
    }
    if (fresh) fputs(header, f);
    fputs(line, f);
    fclose(f);
}

static void write_logits(const char *dir, const char *what, int k, const float *l)
{
    if (!dir) return;
    char path[2048];
    snprintf(path, sizeof path, "%s/logits_%s_%d.txt", dir, what, k);
    FILE *f = fopen(path, "w");
    for (int s = 0; f && s < k; s++)
        fprintf(f, "%.7g\n", l[s]);
    if (f) fclose(f);
}

static int write_inputs(const inputs *in, const char *dir)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/inputs.jsonl", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_gpu: cannot write %s\n", path);
        return 1;
    }
    for (int s = 0; s < N_PAIRS; s++) {
        fputs("{\"input_ids\": [", f);
        for (int t = in->cu[s]; t < in->cu[s + 1]; t++)
            fprintf(f, "%s%d", t > in->cu[s] ? ", " : "", in->tok[t]);
        fputs("], \"token_type_ids\": [", f);
        for (int t = in->cu[s]; t < in->cu[s + 1]; t++)
            fprintf(f, "%s%d", t > in->cu[s] ? ", " : "", in->typ[t]);
        fputs("]}\n", f);
    }
    return fclose(f) != 0;
}

/* Indices of the top n logits of l[0, k), best first (ties by index). */
static void top_n(const float *l, int k, int n, int *idx)
{
    for (int r = 0; r < n; r++) {
        int best = -1;
        for (int s = 0; s < k; s++) {
            int taken = 0;
            for (int q = 0; q < r; q++)
                taken |= idx[q] == s;
            if (!taken && (best < 0 || l[s] > l[best])) best = s;
        }
        idx[r] = best;
    }
}

/* Timing of pairs [0, k): rerank.tsv row and a `# ` line. Returns 0 when every forward
 * succeeded. */
static int time_k(rr_engine *gpu, const rr_model_info *mi, const inputs *in, int k, const char *dtn,
                  const char *dir, float *lg)
{
    static double t[1000];
    static int32_t cu[N_PAIRS + 1];
    const int iters = k >= 1000 ? 200 : 1000;
    rr_batch b = batch_of(in, 0, k, cu);
    rr_status st = RR_OK;
    for (int w = 0; w < 20 && st == RR_OK; w++)
        st = rr_engine_forward(gpu, &b, lg);
    for (int it = 0; it < iters && st == RR_OK; it++) {
        double t0 = now_ms();
        st = rr_engine_forward(gpu, &b, lg);
        t[it] = now_ms() - t0;
    }
    if (st != RR_OK) {
        printf("# %s K=%d FAILED: rr_engine_forward returned %s; not timed\n", dtn, k,
               rr_status_name(st));
        return 1;
    }
    qsort(t, iters, sizeof *t, cmp_double);
    const double p50 = t[iters / 2], p99 = t[iters * 99 / 100];
    const double tf = model_flops(mi, in, k) / (p50 * 1e-3) / 1e12;
    char line[256];
    snprintf(line, sizeof line, "%s\t%d\t%d\t%.4f\t%.4f\t%.1f\t%.2f\n", dtn, k, b.n_tok, p50, p99,
             k / (p50 * 1e-3), tf);
    append_row(dir, "rerank.tsv", "dtype\tK\tn_tok\tp50_ms\tp99_ms\tpairs_per_s\tTFLOPs\n", line);
    printf("# %s K=%d: p50 %.4f ms, p99 %.4f ms, %.0f pairs/s, %.2f TFLOP/s\n", dtn, k, p50, p99,
           k / (p50 * 1e-3), tf);
    return 0;
}

/* Validation of pairs [0, k) after timing: validate.tsv row and `# ` lines. */
static int validate_k(rr_engine *cpu, rr_engine *gpu, const inputs *in, int k, rr_dtype dt,
                      const char *dtn, const char *dir, float *lc, float *lg)
{
    if (score(cpu, in, k, 64, lc)) {
        printf("# %s K=%d validation FAILED: the CPU engine's forward failed\n", dtn, k);
        return 1;
    }
    if (score(gpu, in, k, k, lg)) {
        printf("# %s K=%d validation FAILED: rr_engine_forward failed\n", dtn, k);
        return 1;
    }
    write_logits(dir, "cpu", k, lc);
    write_logits(dir, dtn, k, lg);
    float worst = 0;
    const int n_nan = diff_into(lg, lc, k, &worst);
    const int n_top = k < 10 ? k : 10;
    int tc[10], tg[10], agree = 0;
    top_n(lc, k, n_top, tc);
    top_n(lg, k, n_top, tg);
    for (int a = 0; a < n_top; a++)
        for (int b = 0; b < n_top; b++)
            agree += tc[a] == tg[b];
    /* Batch invariance: each of the first pairs alone (a one-pair batch) vs in the K batch. */
    const int n_inv = k < INV_PAIRS ? k : INV_PAIRS;
    int equal = 0;
    float inv_worst = 0;
    for (int s = 0; s < n_inv; s++) {
        static int32_t cu[2];
        float alone;
        cu[0] = 0, cu[1] = in->cu[s + 1] - in->cu[s];
        rr_batch b = {1, cu[1], in->tok + in->cu[s], in->typ + in->cu[s], cu};
        if (rr_engine_forward(gpu, &b, &alone) != RR_OK) {
            printf("# %s K=%d validation FAILED: a one-pair forward failed\n", dtn, k);
            return 1;
        }
        equal += memcmp(&alone, &lg[s], sizeof alone) == 0;
        diff_into(&alone, &lg[s], 1, &inv_worst);
    }
    const float bound = dt == RR_DTYPE_BF16 ? 0.25f : 2e-2f;
    const int pass = n_nan == 0 && worst <= bound;
    char line[256];
    snprintf(line, sizeof line, "%s\t%d\t%.4g\t%d\t%d\t%d\t%d\t%d\t%.3g\n", dtn, k, worst, n_nan,
             agree, n_top, equal, n_inv, inv_worst);
    append_row(dir, "validate.tsv",
               "dtype\tK\tmax_diff\tnan\ttop10\ttop10_of\tinv_equal\tinv_of\tinv_max_diff\n", line);
    printf("# %s K=%d validation%s: max |cuda - cpu| = %.4g (bound %.0e)%s, top-10 %d/%d, "
           "alone vs in-batch: %d/%d bitwise, max %.3g\n",
           dtn, k, pass ? "" : " FAILED", worst, bound, n_nan ? ", NaN" : "", agree, n_top, equal,
           n_inv, inv_worst);
    return !pass;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_gpu MODEL_DIR OUT_DIR (--k K [--bf16] | --inputs | --smoke "
                        "[--bf16])\n");
        return 2;
    }
    int smoke = 0, only_inputs = 0, k = 0;
    rr_dtype dt = RR_DTYPE_F16;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--smoke"))
            smoke = 1;
        else if (!strcmp(argv[i], "--inputs"))
            only_inputs = 1;
        else if (!strcmp(argv[i], "--bf16"))
            dt = RR_DTYPE_BF16;
        else if (!strcmp(argv[i], "--k") && i + 1 < argc)
            k = atoi(argv[++i]);
        else {
            fprintf(stderr, "bench_gpu: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!smoke && !only_inputs && (k < 1 || k > N_PAIRS)) {
        fprintf(stderr, "bench_gpu: --k needs 1 … %d\n", N_PAIRS);
        return 2;
    }
    const char *dtn = dt == RR_DTYPE_BF16 ? "bf16" : "fp16";
    rr_error err = {0};
    rr_model *m = NULL;
    if (rr_model_load(argv[1], &m, &err) != RR_OK) {
        fprintf(stderr, "bench_gpu: %s\n", err.msg);
        return 1;
    }
    const rr_model_info *mi = rr_model_get_info(m);
    inputs in;
    make_inputs(m, &in);
    if (only_inputs) return write_inputs(&in, argv[2]);

    rr_engine *cpu = NULL, *gpu = NULL;
    rr_engine_opts oc = {.device = -1, .max_batch_tokens = 16384};
    rr_engine_opts og = {.device = 0, .max_batch_tokens = 131072, .dtype = dt};
    if (rr_engine_init(m, &oc, &cpu, &err) != RR_OK ||
        rr_engine_init(m, &og, &gpu, &err) != RR_OK) {
        /* On stdout too, as a `# ` line: the device check's table collects those. */
        printf("# engine init FAILED: %s\n", err.msg);
        fprintf(stderr, "bench_gpu: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "bench_gpu: %s vs %s, %s\n", rr_engine_describe(gpu), rr_engine_describe(cpu),
            argv[1]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    float *lc = malloc(N_PAIRS * sizeof *lc), *lg = malloc(N_PAIRS * sizeof *lg);
    int rc = 0;
    if (smoke) {
        const int ks[] = {1, 10, 100};
        for (int i = 0; i < 3 && !rc; i++)
            rc = validate_k(cpu, gpu, &in, ks[i], dt, dtn, NULL, lc, lg);
    } else {
        rc = time_k(gpu, mi, &in, k, dtn, argv[2], lg);
        rc |= validate_k(cpu, gpu, &in, k, dt, dtn, argv[2], lc, lg);
    }
    rr_engine_free(gpu);
    rr_engine_free(cpu);
    rr_model_free(m);
    free(lc), free(lg), free(in.tok), free(in.typ);
    return rc;
}
