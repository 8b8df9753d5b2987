/*
 * bench_gemm_epilogue.cu — device timing of gemm_epilogue.cu against what the engine runs
 * today, on MiniLM-L6's shapes (d_model 384, d_ff 1536) at M = 128, 1190, 11900, 119000
 * tokens (K = 1, 10, 100, 1000 pairs of ~119 tokens):
 *   ffn1  (K 384 → N 1536): fused GEMM + bias + erf GELU | cuda/linear.cu (cuBLASLt plan) +
 * rr_bias_gelu_cuda | cuBLASLt EPILOGUE_GELU_BIAS (the tanh GELU, bias in T); oproj (K 384 → N 384)
 * and ffn2 (K 1536 → N 384): fused GEMM + bias + residual + LN | cuda/linear.cu (cuBLASLt plan) +
 * rr_bias_residual_ln_cuda. Validates before it times (style habit 13): every variant is compared
 * with the fused kernel on the same data (max |Δ|), and the run stops with exit 1 if the fused
 * kernel and the engine's path disagree beyond 4 ulp of T at 8 (fp16 1.6e-2, bf16 0.125). The
 * cuBLASLt row's max |Δ| is its distance from exact erf GELU on the same inputs (both get
 * the bias rounded to T, so only the GELU form differs). Then it times with cudaEvents
 * after 5 warm-up calls (mean of 20 calls per variant) and prints one TSV row per variant:
 *   dtype op M K N variant ms TFLOP/s GB/s(min traffic) max_abs_vs_fused
 * Usage: bench_gemm_epilogue [fp16|bf16] (default fp16). Not run by CI; needs a GPU.
 * Measured: not yet — compiled, not run (no GPU in this session).
 */
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "gemm_epilogue.h"
#include "kernels.h"

#define CK(stmt)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (stmt);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #stmt, cudaGetErrorString(e_)); \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)
#define CKB(stmt)                                                                                  \
    do {                                                                                           \
        cublasStatus_t s_ = (stmt);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            fprintf(stderr, "%s:%d: %s: cublas status %d\n", __FILE__, __LINE__, #stmt, (int)s_);  \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

static const int kWarmup = 5, kReps = 20;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(float lo, float hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (float)((rng >> 11) * (1.0 / 9007199254740992.0));
}

/* A device array of n values of dt drawn from [lo, hi); the rounded values go to *host. */
static void *dev_rand(size_t n, float lo, float hi, rr_dtype dt, std::vector<float> *host)
{
    std::vector<float> f(n);
    for (float &v : f)
        v = frand(lo, hi);
    std::vector<uint16_t> bits(n);
    rr_cuda_from_f32(f.data(), bits.data(), n, dt);
    if (host) {
        host->resize(n);
        rr_cuda_to_f32(bits.data(), host->data(), n, dt);
    }
    void *d;
    CK(cudaMalloc(&d, n * 2));
    CK(cudaMemcpy(d, bits.data(), n * 2, cudaMemcpyHostToDevice));
    return d;
}

static float *dev_f32(const std::vector<float> &h)
{
    float *d;
    CK(cudaMalloc(&d, h.size() * sizeof(float)));
    CK(cudaMemcpy(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

static std::vector<float> rand_f32(size_t n, float lo, float hi)
{
    std::vector<float> v(n);
    for (float &x : v)
        x = frand(lo, hi);
    return v;
}

static double max_abs_diff(const void *a, const void *b, size_t n, rr_dtype dt)
{
    std::vector<uint16_t> ha(n), hb(n);
    CK(cudaMemcpy(ha.data(), a, n * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hb.data(), b, n * 2, cudaMemcpyDeviceToHost));
    std::vector<float> fa(n), fb(n);
    rr_cuda_to_f32(ha.data(), fa.data(), n, dt);
    rr_cuda_to_f32(hb.data(), fb.data(), n, dt);
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)fa[i] - fb[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

/* Mean milliseconds of one call of f after the warm-up. */
template <typename F> static double time_ms(F f, cudaStream_t st)
{
    for (int i = 0; i < kWarmup; i++)
        f();
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    CK(cudaEventRecord(a, st));
    for (int i = 0; i < kReps; i++)
        f();
    CK(cudaEventRecord(b, st));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    return ms / kReps;
}

static const char *dt_name(rr_dtype dt)
{
    return dt == RR_DTYPE_BF16 ? "bf16" : "fp16";
}

static void row(rr_dtype dt, const char *op, int m, int k, int n, const char *variant, double ms,
                double bytes, double diff)
{
    const double flop = 2.0 * m * k * n;
    printf("%s\t%s\t%d\t%d\t%d\t%s\t%.4f\t%.1f\t%.0f\t%.3g\n", dt_name(dt), op, m, k, n, variant,
           ms, flop / ms / 1e9, bytes / ms / 1e6, diff);
    fflush(stdout);
}

/* cuBLASLt y = gelu_tanh(x·wᵀ + bias_t), column-major view: D[n, m] = Wᵀ-op · X. */
struct lt_gelu {
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulHeuristicResult_t heur;
    void *ws;
    size_t ws_size;
};

/* cuBLASLt is optional here: a status other than success (say, no GELU_BIAS algorithm for
 * this type) drops its row with a message instead of ending the run. */
#define LT_TRY(stmt)                                                                               \
    do {                                                                                           \
        cublasStatus_t s_ = (stmt);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            fprintf(stderr, "cuBLASLt: %s: status %d\n", #stmt, (int)s_);                          \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

static bool lt_gelu_init(lt_gelu *g, const void *bias_t, int m, int k, int n, rr_dtype dt)
{
    const cudaDataType_t ct = dt == RR_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    LT_TRY(cublasLtMatmulDescCreate(&g->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_GELU_BIAS;
    LT_TRY(cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    LT_TRY(cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    LT_TRY(cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
    LT_TRY(cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_t,
                                          sizeof bias_t));
    LT_TRY(
        cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &ct, sizeof ct));
    LT_TRY(cublasLtMatrixLayoutCreate(&g->la, ct, k, n, k)); /* w: [n, k] row-major */
    LT_TRY(cublasLtMatrixLayoutCreate(&g->lb, ct, k, m, k)); /* x: [m, k] row-major */
    LT_TRY(cublasLtMatrixLayoutCreate(&g->lc, ct, n, m, n)); /* y: [m, n] row-major */
    cublasLtMatmulPreference_t pref;
    LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &g->ws_size, sizeof g->ws_size));
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(g->lt, g->op, g->la, g->lb, g->lc,
                                                             g->lc, pref, 1, &g->heur, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    LT_TRY(st);
    if (found < 1) {
        fprintf(stderr, "cuBLASLt: no GELU_BIAS algorithm for M=%d\n", m);
        return false;
    }
    return true;
}

static bool lt_gelu_run(lt_gelu *g, const void *x, const void *w, void *y, cudaStream_t st)
{
    const float one = 1.0f, zero = 0.0f;
    LT_TRY(cublasLtMatmul(g->lt, g->op, &one, w, g->la, x, g->lb, &zero, y, g->lc, y, g->lc,
                          &g->heur.algo, g->ws, g->ws_size, st));
    return true;
}

static void lt_gelu_free(lt_gelu *g)
{
    if (g->la) cublasLtMatrixLayoutDestroy(g->la);
    if (g->lb) cublasLtMatrixLayoutDestroy(g->lb);
    if (g->lc) cublasLtMatrixLayoutDestroy(g->lc);
    if (g->op) cublasLtMatmulDescDestroy(g->op);
    if (g->lt) cublasLtDestroy(g->lt);
    cudaFree(g->ws);
}

/* The engine's GEMM (cuda/linear.cu): a cuBLASLt plan with one split-K-free algorithm, the
 * baseline the fused kernels must beat. One handle and workspace for the whole run. */
static rr_linear_plan make_plan(int k, int n, int m, rr_dtype dt)
{
    static cublasLtHandle_t lt;
    static void *ws;
    const size_t ws_bytes = (size_t)32 << 20;
    if (!lt) {
        CKB(cublasLtCreate(&lt));
        CK(cudaMalloc(&ws, ws_bytes));
    }
    rr_linear_plan p;
    CK(rr_linear_plan_init(&p, lt, k, n, 0, m, dt, ws, ws_bytes));
    return p;
}

static bool bench_ffn1(int m, rr_dtype dt, cudaStream_t st, double bound)
{
    const int k = 384, n = 1536;
    const float ws = 2.0f / sqrtf((float)k);
    void *x = dev_rand((size_t)m * k, -1, 1, dt, NULL);
    void *w = dev_rand((size_t)n * k, -ws, ws, dt, NULL);
    /* The bias rounded to T (cuBLASLt takes it in T), as fp32 for our kernels. */
    std::vector<float> bias_r;
    void *bias_t = dev_rand(n, -0.5f, 0.5f, dt, &bias_r);
    float *bias = dev_f32(bias_r);
    void *y_fused, *y_base, *y_lt;
    const size_t ny = (size_t)m * n;
    CK(cudaMalloc(&y_fused, ny * 2));
    CK(cudaMalloc(&y_base, ny * 2));
    CK(cudaMalloc(&y_lt, ny * 2));
    lt_gelu g = {};
    CKB(cublasLtCreate(&g.lt));
    g.ws_size = 32u << 20;
    CK(cudaMalloc(&g.ws, g.ws_size));
    bool lt_ok = lt_gelu_init(&g, bias_t, m, k, n, dt);

    auto fused = [&] { CK(rr_gemm_bias_gelu_cuda(x, w, bias, m, k, n, y_fused, dt, st)); };
    rr_linear_plan plan = make_plan(k, n, m, dt);
    auto base = [&] {
        CK(rr_linear_cuda(&plan, x, w, NULL, m, y_base, st));
        CK(rr_bias_gelu_cuda(y_base, bias, m, n, dt, st));
    };
    auto lt = [&] { lt_ok = lt_ok && lt_gelu_run(&g, x, w, y_lt, st); };
    fused();
    base();
    lt();
    CK(cudaStreamSynchronize(st));
    const double d_base = max_abs_diff(y_fused, y_base, ny, dt);
    const double d_lt = lt_ok ? max_abs_diff(y_fused, y_lt, ny, dt) : NAN;
    const bool ok = d_base <= bound;
    if (!ok)
        fprintf(stderr, "ffn1 M=%d: fused vs cuBLAS+GELU max |diff| %.3g > %.3g: not timed\n", m,
                d_base, bound);
    else {
        /* Minimum traffic: fused reads x, w and writes y once; the separate pass adds a
         * write and a read of y before the final write. */
        const double io = 2.0 * ((double)m * k + (double)n * k + (double)m * n);
        row(dt, "ffn1", m, k, n, "fused_gemm_bias_gelu", time_ms(fused, st), io, 0.0);
        row(dt, "ffn1", m, k, n, "cublas+bias_gelu", time_ms(base, st), io + 4.0 * m * n, d_base);
        if (lt_ok) {
            const double ms = time_ms(lt, st);
            if (lt_ok) row(dt, "ffn1", m, k, n, "cublasLt_GELU_BIAS(tanh)", ms, io, d_lt);
        }
    }
    lt_gelu_free(&g);
    cudaFree(x), cudaFree(w), cudaFree(bias_t), cudaFree(bias);
    cudaFree(y_fused), cudaFree(y_base), cudaFree(y_lt);
    return ok;
}

static bool bench_ln(const char *op, int m, int k, rr_dtype dt, cudaStream_t st, double bound)
{
    const int n = 384;
    const float ws = 2.0f / sqrtf((float)k);
    void *x = dev_rand((size_t)m * k, -1, 1, dt, NULL);
    void *w = dev_rand((size_t)n * k, -ws, ws, dt, NULL);
    void *res = dev_rand((size_t)m * n, -2, 2, dt, NULL);
    float *bias = dev_f32(rand_f32(n, -0.5f, 0.5f));
    float *gamma = dev_f32(rand_f32(n, 0.5f, 1.5f));
    float *beta = dev_f32(rand_f32(n, -0.5f, 0.5f));
    const float eps = 1e-12f;
    void *y_fused, *y_base;
    const size_t ny = (size_t)m * n;
    CK(cudaMalloc(&y_fused, ny * 2));
    CK(cudaMalloc(&y_base, ny * 2));

    auto fused = [&] {
        CK(rr_gemm_bias_residual_ln_cuda(x, w, bias, res, gamma, beta, eps, m, k, n, y_fused, dt,
                                         st));
    };
    rr_linear_plan plan = make_plan(k, n, m, dt);
    auto base = [&] {
        CK(rr_linear_cuda(&plan, x, w, NULL, m, y_base, st));
        CK(rr_bias_residual_ln_cuda(y_base, bias, res, gamma, beta, eps, m, n, dt, st));
    };
    fused();
    base();
    CK(cudaStreamSynchronize(st));
    const double d_base = max_abs_diff(y_fused, y_base, ny, dt);
    const bool ok = d_base <= bound;
    if (!ok)
        fprintf(stderr, "%s M=%d: fused vs cuBLAS+LN max |diff| %.3g > %.3g: not timed\n", op, m,
                d_base, bound);
    else {
        const double io = 2.0 * ((double)m * k + (double)n * k + 2.0 * m * n);
        row(dt, op, m, k, n, "fused_gemm_bias_res_ln", time_ms(fused, st), io, 0.0);
        row(dt, op, m, k, n, "cublas+bias_res_ln", time_ms(base, st), io + 4.0 * m * n, d_base);
    }
    cudaFree(x), cudaFree(w), cudaFree(res), cudaFree(bias), cudaFree(gamma), cudaFree(beta);
    cudaFree(y_fused), cudaFree(y_base);
    return ok;
}

int main(int argc, char **argv)
{
    const rr_dtype dt = argc > 1 && !strcmp(argv[1], "bf16") ? RR_DTYPE_BF16 : RR_DTYPE_F16;
    const double bound = dt == RR_DTYPE_BF16 ? 0.125 : 1.6e-2; /* 4 ulp of T at 8 */
    int dev = 0;
    cudaDeviceProp prop;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
        fprintf(stderr, "bench_gemm_epilogue: no CUDA device\n");
        return 77;
    }
    fprintf(stderr, "bench_gemm_epilogue: %s, %d SMs, %s\n", prop.name, prop.multiProcessorCount,
            dt_name(dt));
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    printf("dtype\top\tM\tK\tN\tvariant\tms\tTFLOP/s\tGB/s\tmax_abs_vs_fused\n");
    bool ok = true;
    for (int m : {128, 1190, 11900, 119000}) {
        ok &= bench_ffn1(m, dt, st, bound);
        ok &= bench_ln("oproj", m, 384, dt, st, bound);
        ok &= bench_ln("ffn2", m, 1536, dt, st, bound);
    }
    cudaStreamDestroy(st);
    return ok ? 0 : 1;
}
