/*
 * linear.cu — y[n_tok, n_out] = x[n_tok, n_in] · w[n_out, n_in]ᵀ (+ bias) through cuBLASLt,
 * with one algorithm per layer shape fixed at start-up and used for every row count, so a
 * row's result does not depend on the other rows of its batch (batch invariance).
 *
 * Row-major y = x·wᵀ is, read column-major, yᵀ = w·xᵀ with w [n_in × n_out] col-major
 * transposed: A = w (TRANSA = T, n_in × n_out, ld n_in), B = x (n_in × n_tok, ld n_in),
 * C = D = y (n_out × n_tok, ld n_out). fp16/bf16 in and out, CUBLAS_COMPUTE_32F (fp32
 * accumulation), alpha/beta fp32 on the host.
 *
 * The plan (rr_linear_plan_init, at engine create): descriptors for the shape, then
 * cublasLtMatmulAlgoGetHeuristic at a representative row count (max_rows, capped at 4096),
 * and the first candidate that, after forcing CUBLASLT_ALGO_CONFIG_SPLITK_NUM = 1 and
 * CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME = NONE, passes cublasLtMatmulAlgoCheck at 1 row and at
 * max_rows within the workspace. rr_linear_cuda then only sets the row count (the COLS of the
 * B and D layouts) and the bias pointer on the plan's descriptors — host-side attribute
 * writes, no allocation, so it can be graph-captured — and calls cublasLtMatmul with the
 * plan's algorithm. cublasGemmEx, before, let cuBLAS pick an algorithm (and split-K) per M,
 * so a pair's logit could change in the last bit with its neighbours.
 *
 * What is and is not guaranteed. cuBLAS promises bitwise-identical results run to run for
 * the same toolkit, architecture and SM count (cuBLAS docs, "Results reproducibility"); it
 * promises nothing about a row's bits across different M. Fixing the algorithm struct fixes
 * the kernel, tile (CUBLASLT_ALGO_CONFIG_TILE_ID), stages, swizzle, cluster shape and split
 * count; with split-K 1 and no reduction, each output element is accumulated by one CTA over
 * the whole of k, in an order fixed by the kernel, so by construction its value depends on
 * its row of x and the weights only. That is our reading of the algorithm's definition, not
 * a documented contract: a kernel whose k order depended on the grid (stream-K or another
 * data-parallel/split hybrid chosen inside one algorithm id) would break it. The engine's
 * tests check it bitwise (tests/cuda/test_cuda_model.c: a pair alone vs inside batches of
 * other sizes, graph vs eager) on the device. The heuristic assumes 256-byte aligned
 * pointers (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES default to 256 and are not set), which
 * the engine's carve (ALIGN 256 from a cudaMalloc base, itself 256-byte aligned on a device)
 * gives; rr_linear_cuda checks only 16 bytes (a row of 8 halves), so the host-side fake
 * runtime of tests/cuda/host, whose allocations are plain mallocs, can run it.
 *
 * Bias: with a bias the plan uses CUBLASLT_EPILOGUE_BIAS. cuBLASLt's bias for fp16/bf16
 * outputs is in the output type (cublasLt.h, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: "the same
 * type as the elements of output matrix"), so the bias is stored in dt: it is rounded once
 * to dt at upload, widened and added to the fp32 accumulator in the epilogue, and the sum is
 * rounded to dt once. Before, the GEMM output was rounded to dt, the fp32 bias added, and
 * the sum rounded again (rr_add_bias_cuda). The encoder layers fuse their biases into the
 * following kernel instead (attention load, bias+GELU, bias+residual+LN) and plan without.
 *
 * Tried: nothing else yet. A per-M algorithm (the best per row-count bucket) would be a few
 * per cent faster at large M (review §2.7) and would give up batch invariance.
 */
#include "common.cuh"

#include <stdint.h>

#define RR_LT_CANDIDATES 16

static cudaDataType_t lt_type(rr_dtype dt)
{
    return dt == RR_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_16F;
}

static int lt_ok(cublasStatus_t st, const char *what, const rr_linear_plan *p)
{
    if (st == CUBLAS_STATUS_SUCCESS) return 1;
    fprintf(stderr, "rr_linear_plan_init(%d -> %d): %s failed: %s\n", p->n_in, p->n_out, what,
            cublasLtGetStatusString(st));
    return 0;
}

/* Sets the row count of the x and y layouts (the COLS of B and D). */
static cublasStatus_t set_rows(const rr_linear_plan *p, int n_tok)
{
    const uint64_t cols = (uint64_t)n_tok;
    cublasStatus_t st =
        cublasLtMatrixLayoutSetAttribute(p->b, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols);
    if (st == CUBLAS_STATUS_SUCCESS)
        st =
            cublasLtMatrixLayoutSetAttribute(p->c, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols);
    return st;
}

/* Whether algo runs the plan's problem at n_tok rows within the workspace. */
static int algo_fits(const rr_linear_plan *p, const cublasLtMatmulAlgo_t *algo, int n_tok)
{
    cublasLtMatmulHeuristicResult_t r;
    memset(&r, 0, sizeof r);
    if (set_rows(p, n_tok) != CUBLAS_STATUS_SUCCESS) return 0;
    return cublasLtMatmulAlgoCheck(p->lt, p->desc, p->a, p->b, p->c, p->c, algo, &r) ==
               CUBLAS_STATUS_SUCCESS &&
           r.state == CUBLAS_STATUS_SUCCESS && r.workspaceSize <= p->ws_bytes;
}

extern "C" cudaError_t rr_linear_plan_init(rr_linear_plan *p, cublasLtHandle_t lt, int n_in,
                                           int n_out, int with_bias, int max_rows, rr_dtype dt,
                                           void *ws, size_t ws_bytes)
{
    RR_LAUNCH_REQUIRE(p && lt && n_in >= 1 && n_out >= 1 && max_rows >= 1);
    RR_LAUNCH_REQUIRE(dt == RR_DTYPE_F16 || dt == RR_DTYPE_BF16);
    RR_LAUNCH_REQUIRE(ws || ws_bytes == 0);
    memset(p, 0, sizeof *p);
    p->lt = lt, p->n_in = n_in, p->n_out = n_out, p->has_bias = with_bias != 0;
    p->max_rows = max_rows, p->dt = dt, p->ws = ws, p->ws_bytes = ws_bytes;
    const cudaDataType_t t = lt_type(dt);
    const int32_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
    const int32_t epi = with_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    const int32_t bias_t = (int32_t)t;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t cand[RR_LT_CANDIDATES];
    int n_cand = 0, found = 0;

    if (!lt_ok(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "DescCreate",
               p) ||
        !lt_ok(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t,
                                              sizeof op_t),
               "TRANSA", p) ||
        !lt_ok(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n,
                                              sizeof op_n),
               "TRANSB", p) ||
        !lt_ok(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                              sizeof epi),
               "EPILOGUE", p))
        goto fail;
    if (with_bias &&
        !lt_ok(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_t,
                                              sizeof bias_t),
               "BIAS_DATA_TYPE", p))
        goto fail;
    if (!lt_ok(cublasLtMatrixLayoutCreate(&p->a, t, (uint64_t)n_in, (uint64_t)n_out, n_in),
               "LayoutCreate(w)", p) ||
        !lt_ok(cublasLtMatrixLayoutCreate(&p->b, t, (uint64_t)n_in, (uint64_t)max_rows, n_in),
               "LayoutCreate(x)", p) ||
        !lt_ok(cublasLtMatrixLayoutCreate(&p->c, t, (uint64_t)n_out, (uint64_t)max_rows, n_out),
               "LayoutCreate(y)", p) ||
        !lt_ok(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate", p) ||
        !lt_ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &ws_bytes, sizeof ws_bytes),
               "MAX_WORKSPACE_BYTES", p))
        goto fail;

    /* The representative row count: large enough that the heuristic picks a tile for the
     * batches where GEMM time matters, not for K=1. */
    if (!lt_ok(set_rows(p, max_rows < 4096 ? max_rows : 4096), "LayoutSetAttribute(COLS)", p) ||
        !lt_ok(cublasLtMatmulAlgoGetHeuristic(lt, p->desc, p->a, p->b, p->c, p->c, pref,
                                              RR_LT_CANDIDATES, cand, &n_cand),
               "MatmulAlgoGetHeuristic", p))
        goto fail;
    for (int i = 0; i < n_cand && !found; i++) {
        if (cand[i].state != CUBLAS_STATUS_SUCCESS) continue;
        cublasLtMatmulAlgo_t algo = cand[i].algo;
        const int32_t one = 1;
        const uint32_t none = CUBLASLT_REDUCTION_SCHEME_NONE;
        int32_t splits = 0;
        uint32_t red = 1;
        size_t got = 0;
        if (cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &one,
                                                 sizeof one) != CUBLAS_STATUS_SUCCESS ||
            cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                                                 &none, sizeof none) != CUBLAS_STATUS_SUCCESS)
            continue;
        /* Read back: an algorithm that silently kept its split would not be invariant. */
        if (cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits,
                                                 sizeof splits, &got) != CUBLAS_STATUS_SUCCESS ||
            splits != 1 ||
            cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red,
                                                 sizeof red, &got) != CUBLAS_STATUS_SUCCESS ||
            red != CUBLASLT_REDUCTION_SCHEME_NONE)
            continue;
        if (!algo_fits(p, &algo, 1) || !algo_fits(p, &algo, max_rows)) continue;
        p->algo = algo;
        found = 1;
    }
    cublasLtMatmulPreferenceDestroy(pref);
    pref = NULL;
    if (!found) {
        fprintf(stderr,
                "rr_linear_plan_init(%d -> %d, %d rows, %s%s): no cuBLASLt algorithm without "
                "split-K runs both 1 and %d rows (%d candidates)\n",
                n_in, n_out, max_rows, dt == RR_DTYPE_BF16 ? "bf16" : "fp16",
                with_bias ? ", bias" : "", max_rows, n_cand);
        goto fail;
    }
    return cudaSuccess;
fail:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    rr_linear_plan_free(p);
    return cudaErrorNotSupported;
}

extern "C" void rr_linear_plan_free(rr_linear_plan *p)
{
    if (!p) return;
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    if (p->a) cublasLtMatrixLayoutDestroy(p->a);
    if (p->b) cublasLtMatrixLayoutDestroy(p->b);
    if (p->c) cublasLtMatrixLayoutDestroy(p->c);
    p->desc = NULL, p->a = p->b = p->c = NULL;
}

extern "C" cudaError_t rr_linear_cuda(const rr_linear_plan *p, const void *x, const void *w,
                                      const void *bias, int n_tok, void *y, cudaStream_t stream)
{
    RR_NVTX_RANGE(__func__);
    RR_LAUNCH_REQUIRE(p && p->desc && x && w && y && x != y);
    RR_LAUNCH_REQUIRE(n_tok >= 1 && n_tok <= p->max_rows && (bias != NULL) == p->has_bias);
    RR_LAUNCH_REQUIRE(((uintptr_t)x | (uintptr_t)w | (uintptr_t)y | (uintptr_t)bias) % 16 == 0);
    cublasStatus_t st = set_rows(p, n_tok);
    if (st == CUBLAS_STATUS_SUCCESS && bias)
        st = cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                            sizeof bias);
    const float alpha = 1.0f, beta = 0.0f;
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmul(p->lt, p->desc, &alpha, w, p->a, x, p->b, &beta, y, p->c, y, p->c,
                            &p->algo, p->ws, p->ws_bytes, stream);
    if (st != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "rr_linear_cuda: cublasLtMatmul(%d x %d x %d) failed: %s\n", n_tok,
                p->n_out, p->n_in, cublasLtGetStatusString(st));
        return cudaErrorLaunchFailure;
    }
    return cudaGetLastError();
}
