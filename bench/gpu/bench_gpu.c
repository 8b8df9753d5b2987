/*
 * bench_gpu.c — latency per K of the CUDA engine on one query against K passages
 * (K = 1, 10, 100, 1000), validated against the CPU engine before anything is timed.
 *
 * Inputs: seeded token ids (vocabulary ids ≥ 1000, so no special token), a 16-token query
 * and 1000 passages of 80…120 tokens (mean 100): pairs `[CLS] q [SEP] p [SEP]` of ~119
 * tokens, the anchors' MS MARCO shape. They are written to OUT_DIR/inputs.jsonl so
 * bench/gpu/torch_bench.py runs PyTorch on exactly the same ids.
 * Validation: all 1000 pairs on the CPU engine (fp32) and on the CUDA engine in one batch;
 * the max |difference| must be ≤ 2e-2 (fp16). A miss prints `# validation FAILED …` and
 * makes the exit status 1, but the timing still runs: the device check gets one run, and
 * latencies of a slightly-off engine are still worth having (the bound is a max over 1000
 * pairs with only a ~2x margin over the emulated fp16 error).
 * Timing: host wall clock around each synchronous rr_engine_forward (packing, the copies,
 * the graph or launches, the sync — what a caller waits for), after 20 warm-up calls;
 * median and p90 over many calls. TFLOP/s counts model FLOPs of the full encoder
 * (2·n_tok·n_layer·(4d² + 2·d·d_ff) + 4·n_layer·d·ΣL²), as the anchors do, although the
 * engine runs the last layer for the [CLS] rows only. Every timed forward's status is
 * checked: a K whose forward fails prints `# K=… FAILED …` and gets no row (a failing
 * forward returns early and would otherwise be timed as a fast one).
 * Output: a TSV on stdout and in OUT_DIR/rerank.tsv, both flushed per row so the rows of the
 * finished K survive a kill by the caller's timeout; logits in OUT_DIR/logits_{cpu,cuda}.txt.
 * --smoke: K = 1, 10, 100 once each against the CPU engine, no timing (compute-sanitizer,
 * and the device check's first hang/fault probe).
 * Exit status: 0 when validation passed and every K was timed, 1 otherwise, 2 on usage.
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
    const uint32_t span = (uint32_t)(rr_model_get_info(m)->vocab_size - 1000);
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

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_gpu MODEL_DIR OUT_DIR [--bf16] [--smoke]\n");
        return 2;
    }
    int smoke = 0;
    rr_dtype dt = RR_DTYPE_F16;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--smoke"))
            smoke = 1;
        else if (!strcmp(argv[i], "--bf16"))
            dt = RR_DTYPE_BF16;
    }
    rr_error err = {0};
    rr_model *m = NULL;
    if (rr_model_load(argv[1], &m, &err) != RR_OK) {
        fprintf(stderr, "bench_gpu: %s\n", err.msg);
        return 1;
    }
    const rr_model_info *mi = rr_model_get_info(m);
    inputs in;
    make_inputs(m, &in);
    char path[2048];
    if (!smoke) {
        snprintf(path, sizeof path, "%s/inputs.jsonl", argv[2]);
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "bench_gpu: cannot write %s\n", path);
            return 1;
        }
        for (int s = 0; s < N_PAIRS; s++) {
            fputs("{\"input_ids\": [", f);
            for (int t = in.cu[s]; t < in.cu[s + 1]; t++)
                fprintf(f, "%s%d", t > in.cu[s] ? ", " : "", in.tok[t]);
            fputs("], \"token_type_ids\": [", f);
            for (int t = in.cu[s]; t < in.cu[s + 1]; t++)
                fprintf(f, "%s%d", t > in.cu[s] ? ", " : "", in.typ[t]);
            fputs("]}\n", f);
        }
        fclose(f);
    }

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

    /* Validate before timing. */
    const int n_val = smoke ? 100 : N_PAIRS;
    float *lc = malloc(N_PAIRS * sizeof *lc), *lg = malloc(N_PAIRS * sizeof *lg);
    if (score(cpu, &in, n_val, 64, lc)) {
        fprintf(stderr, "bench_gpu: the CPU engine's forward failed\n");
        return 1;
    }
    int rc = 0, gpu_ok = 1, n_nan = 0;
    float worst = 0;
    const int ks_smoke[] = {1, 10, 100};
    if (smoke) {
        for (int i = 0; i < 3 && gpu_ok; i++) {
            if (score(gpu, &in, ks_smoke[i], ks_smoke[i], lg)) {
                printf("# validation FAILED: rr_engine_forward failed for K=%d\n", ks_smoke[i]);
                gpu_ok = 0;
            }
            if (gpu_ok) n_nan += diff_into(lg, lc, ks_smoke[i], &worst);
        }
    } else {
        if (score(gpu, &in, N_PAIRS, N_PAIRS, lg)) {
            printf("# validation FAILED: rr_engine_forward failed for K=%d\n", N_PAIRS);
            gpu_ok = 0;
        }
        if (gpu_ok) n_nan += diff_into(lg, lc, N_PAIRS, &worst);
    }
    const float bound = dt == RR_DTYPE_BF16 ? 0.25f : 2e-2f;
    if (gpu_ok) {
        const int pass = n_nan == 0 && worst <= bound;
        printf("# validation%s: max |cuda - cpu| over %d pairs = %.4g (bound %.0e)",
               pass ? "" : " FAILED", n_val, worst, bound);
        if (n_nan) printf(", %d NaN", n_nan);
        printf("%s\n", pass || smoke ? "" : "; timing anyway");
        if (!pass) rc = 1;
    } else {
        rc = 1;
    }
    fflush(stdout);
    if (smoke) return rc;
    const char *names[2] = {"cpu", "cuda"};
    float *ls[2] = {lc, lg};
    /* No logits_cuda.txt from a failed forward: torch_bench would compare against garbage. */
    for (int w = 0; w < (gpu_ok ? 2 : 1); w++) {
        snprintf(path, sizeof path, "%s/logits_%s.txt", argv[2], names[w]);
        FILE *f = fopen(path, "w");
        for (int s = 0; f && s < N_PAIRS; s++)
            fprintf(f, "%.7g\n", ls[w][s]);
        if (f) fclose(f);
    }

    snprintf(path, sizeof path, "%s/rerank.tsv", argv[2]);
    FILE *tsv = fopen(path, "w");
    /* Line-buffered: a kill by the caller's timeout inside the K loop keeps the finished rows. */
    if (tsv) setvbuf(tsv, NULL, _IOLBF, 0);
    printf("K\tn_tok\tmedian_ms\tp90_ms\tTFLOPs\n");
    fflush(stdout);
    if (tsv) fprintf(tsv, "K\tn_tok\tmedian_ms\tp90_ms\tTFLOPs\n");
    const int ks[] = {1, 10, 100, 1000};
    static double t[1000];
    static int32_t cu[N_PAIRS + 1];
    for (int i = 0; i < 4; i++) {
        const int k = ks[i], iters = k >= 1000 ? 200 : 1000;
        rr_batch b = batch_of(&in, 0, k, cu);
        rr_status st = RR_OK;
        for (int w = 0; w < 20 && st == RR_OK; w++)
            st = rr_engine_forward(gpu, &b, lg);
        for (int it = 0; it < iters && st == RR_OK; it++) {
            double t0 = now_ms();
            st = rr_engine_forward(gpu, &b, lg);
            t[it] = now_ms() - t0;
        }
        if (st != RR_OK) {
            printf("# K=%d FAILED: rr_engine_forward returned %s; not timed\n", k,
                   rr_status_name(st));
            fflush(stdout);
            rc = 1;
            continue;
        }
        qsort(t, iters, sizeof *t, cmp_double);
        const double med = t[iters / 2], p90 = t[iters * 9 / 10];
        const double tf = model_flops(mi, &in, k) / (med * 1e-3) / 1e12;
        printf("%d\t%d\t%.4f\t%.4f\t%.2f\n", k, b.n_tok, med, p90, tf);
        fflush(stdout);
        if (tsv) fprintf(tsv, "%d\t%d\t%.4f\t%.4f\t%.2f\n", k, b.n_tok, med, p90, tf);
    }
    if (tsv) fclose(tsv);
    rr_engine_free(gpu);
    rr_engine_free(cpu);
    rr_model_free(m);
    free(lc), free(lg), free(in.tok), free(in.typ);
    return rc;
}
