/*
 * test_fake_cuda_host.cpp — the fakes of tests/cuda/host (CUDA runtime, cuBLAS, cuBLASLt)
 * against their contracts, so that test_cuda_kernels_host and test_cuda_model_host rest on
 * checked ground: the reference GEMM against a double-precision product for every
 * transpose pair, leading dimensions above the minimum and the fp16/bf16/fp32 types; the
 * BIAS epilogue; status codes for a leading dimension below the stored rows and for Lt
 * layouts that contradict the transposes; split-K recorded and read back; graph capture
 * recording pointers and scalars at capture time (a pinned value changed after capture is
 * read at replay, a GEMM's alpha is not); calls refused inside a capture; deferred stream
 * work. Label "cuda", no device, well under a second.
 */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "test.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static float frand()
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* Values of type t stored in a device buffer; host[] keeps them as they were rounded. */
static void *dev_fill(std::vector<float> &host, size_t n, cudaDataType t)
{
    host.resize(n);
    const size_t es = t == CUDA_R_32F ? 4 : 2;
    std::vector<unsigned char> raw(n * es);
    for (size_t i = 0; i < n; i++) {
        const float v = frand();
        if (t == CUDA_R_16F) {
            __half h = __float2half_rn(v);
            memcpy(&raw[i * 2], &h, 2), host[i] = __half2float(h);
        } else if (t == CUDA_R_16BF) {
            __nv_bfloat16 h = __float2bfloat16_rn(v);
            memcpy(&raw[i * 2], &h, 2), host[i] = __bfloat162float(h);
        } else {
            memcpy(&raw[i * 4], &v, 4), host[i] = v;
        }
    }
    void *d = nullptr;
    CHECK(cudaMalloc(&d, n * es) == cudaSuccess);
    CHECK(cudaMemcpy(d, raw.data(), n * es, cudaMemcpyHostToDevice) == cudaSuccess);
    return d;
}

static std::vector<float> dev_read(const void *d, size_t n, cudaDataType t)
{
    const size_t es = t == CUDA_R_32F ? 4 : 2;
    std::vector<unsigned char> raw(n * es);
    std::vector<float> out(n);
    CHECK(cudaMemcpy(raw.data(), d, n * es, cudaMemcpyDeviceToHost) == cudaSuccess);
    for (size_t i = 0; i < n; i++) {
        if (t == CUDA_R_16F)
            out[i] = __half2float(((const __half *)raw.data())[i]);
        else if (t == CUDA_R_16BF)
            out[i] = __bfloat162float(((const __nv_bfloat16 *)raw.data())[i]);
        else
            out[i] = ((const float *)raw.data())[i];
    }
    return out;
}

/* D = alpha·op(A)·op(B) + beta·C (+ bias) in double, column-major, compared with the fake's
 * D: the bound is one rounding of the output type plus fp32 summation error. */
static void check_gemm(bool lt, bool ta, bool tb, cudaDataType t, int m, int n, int k, int pad,
                       bool bias)
{
    const int lda = (ta ? k : m) + pad, ldb = (tb ? n : k) + pad, ldc = m + pad;
    std::vector<float> A, B, C, bv;
    void *a = dev_fill(A, (size_t)lda * (ta ? m : k), t);
    void *b = dev_fill(B, (size_t)ldb * (tb ? k : n), t);
    void *c = dev_fill(C, (size_t)ldc * n, t);
    void *bd = bias ? dev_fill(bv, (size_t)m, CUDA_R_32F) : nullptr;
    const float alpha = 0.75f, beta = lt ? 0.0f : 0.5f;
    cublasStatus_t st;
    if (!lt) {
        cublasHandle_t h;
        cublasCreate(&h);
        st = cublasGemmEx(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n,
                          k, &alpha, a, t, lda, b, t, ldb, &beta, c, t, ldc, CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT);
        cublasDestroy(h);
    } else {
        cublasLtHandle_t h;
        cublasLtMatmulDesc_t desc;
        cublasLtMatrixLayout_t la, lb, lc;
        cublasLtCreate(&h);
        cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
        const int32_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
        const uint32_t epi = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
        const int32_t bt = CUDA_R_32F;
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa);
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb);
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bd, sizeof bd);
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt);
        cublasLtMatrixLayoutCreate(&la, t, ta ? k : m, ta ? m : k, lda);
        cublasLtMatrixLayoutCreate(&lb, t, tb ? n : k, tb ? k : n, ldb);
        cublasLtMatrixLayoutCreate(&lc, t, m, n, ldc);
        cublasLtMatmulHeuristicResult_t r;
        int count = 0;
        CHECK(cublasLtMatmulAlgoGetHeuristic(h, desc, la, lb, lc, lc, nullptr, 1, &r, &count) ==
                  CUBLAS_STATUS_SUCCESS &&
              count == 1);
        const uint32_t splits = 1;
        uint32_t got = 0;
        CHECK(cublasLtMatmulAlgoConfigSetAttribute(&r.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                                                   &splits,
                                                   sizeof splits) == CUBLAS_STATUS_SUCCESS);
        CHECK(cublasLtMatmulAlgoConfigGetAttribute(&r.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &got,
                                                   sizeof got, nullptr) == CUBLAS_STATUS_SUCCESS &&
              got == 1);
        CHECK(cublasLtMatmulAlgoCheck(h, desc, la, lb, lc, lc, &r.algo, &r) ==
              CUBLAS_STATUS_SUCCESS);
        st = cublasLtMatmul(h, desc, &alpha, a, la, b, lb, &beta, c, lc, c, lc, &r.algo, nullptr, 0,
                            0);
        cublasLtMatrixLayoutDestroy(la), cublasLtMatrixLayoutDestroy(lb);
        cublasLtMatrixLayoutDestroy(lc), cublasLtMatmulDescDestroy(desc), cublasLtDestroy(h);
    }
    CHECK_MSG(st == CUBLAS_STATUS_SUCCESS, "%s status %d", lt ? "Lt" : "GemmEx", (int)st);
    const std::vector<float> D = dev_read(c, (size_t)ldc * n, t);
    const double ulp = t == CUDA_R_16BF ? 1.0 / 256 : t == CUDA_R_16F ? 1.0 / 2048 : 1e-6;
    double worst = 0;
    int pad_changed = 0;
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
            double s = 0, mag = 0;
            for (int l = 0; l < k; l++) {
                const double x = ta ? A[(size_t)i * lda + l] : A[(size_t)l * lda + i];
                const double y = tb ? B[(size_t)l * ldb + j] : B[(size_t)j * ldb + l];
                s += x * y, mag += fabs(x * y);
            }
            double want = alpha * s + beta * C[(size_t)j * ldc + i] + (bias ? bv[i] : 0.0);
            const double err = fabs(D[(size_t)j * ldc + i] - want);
            const double bound = ulp * fabs(want) + 1e-5 * (mag + 1);
            if (err - bound > worst) worst = err - bound;
        }
        for (int i = m; i < ldc; i++) /* rows past m belong to the caller */
            pad_changed += memcmp(&D[(size_t)j * ldc + i], &C[(size_t)j * ldc + i], 4) != 0;
    }
    CHECK_MSG(worst <= 0 && pad_changed == 0,
              "%s %s%s type %d %dx%dx%d pad %d: worst excess %.3g, padding changed %d",
              lt ? "Lt" : "GemmEx", ta ? "T" : "N", tb ? "T" : "N", (int)t, m, n, k, pad, worst,
              pad_changed);
    cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(bd);
}

static void test_status_codes()
{
    cublasHandle_t h;
    cublasCreate(&h);
    void *a = nullptr;
    cudaMalloc(&a, 1 << 16);
    const float one = 1, zero = 0;
    /* OP_N A of 8 rows stored with lda 4: invalid, as cuBLAS says. */
    CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 2, 4, &one, a, CUDA_R_16F, 4, a, CUDA_R_16F,
                       4, &zero, a, CUDA_R_16F, 8, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 8, 2, 4, &one, a, CUDA_R_16F, 4, a, CUDA_R_16F,
                       4, &zero, a, CUDA_R_16F, 4, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE); /* ldc < m */
    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 8, 2, 4, &one, a, CUDA_R_16F, 4, a, CUDA_R_16BF,
                       4, &zero, a, CUDA_R_16F, 8, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED); /* mixed types */
    cublasDestroy(h);

    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtCreate(&lt);
    cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    const int32_t op_t = CUBLAS_OP_T;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof op_t);
    cublasLtMatrixLayoutCreate(&la, CUDA_R_16F, 8, 4, 8); /* op(A) = Aᵀ is 4×8: k 8, m 4 */
    cublasLtMatrixLayoutCreate(&lb, CUDA_R_16F, 4, 2, 4); /* k 4: contradicts A */
    cublasLtMatrixLayoutCreate(&lc, CUDA_R_16F, 4, 2, 4);
    cublasLtMatmulHeuristicResult_t r;
    int count = 0;
    CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, nullptr, 1, &r, &count) ==
          CUBLAS_STATUS_INVALID_VALUE);
    const int64_t short_ld = 2, ld4 = 4, ld8 = 8; /* short_ld: below the 4 rows of C */
    const uint64_t rows8 = 8;
    cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_ROWS, &rows8, sizeof rows8);
    cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_LD, &ld8, sizeof ld8);
    CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, nullptr, 1, &r, &count) ==
          CUBLAS_STATUS_SUCCESS);
    cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_LD, &short_ld, sizeof short_ld);
    CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, nullptr, 1, &r, &count) ==
          CUBLAS_STATUS_INVALID_VALUE);
    const uint32_t gelu = CUBLASLT_EPILOGUE_GELU; /* not modelled: refused, not ignored */
    CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &gelu, sizeof gelu) ==
          CUBLAS_STATUS_SUCCESS);
    cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_LD, &ld4, sizeof ld4);
    CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, nullptr, 1, &r, &count) ==
          CUBLAS_STATUS_NOT_SUPPORTED);
    cublasLtMatrixLayoutDestroy(la), cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc), cublasLtMatmulDescDestroy(desc), cublasLtDestroy(lt);
    cudaFree(a);
}

/* Capture records pointers and scalars as given; replay reads memory at launch time. */
static void test_graphs_and_streams()
{
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
    float *pin = nullptr, *dev = nullptr, *out = nullptr;
    CHECK(cudaHostAlloc((void **)&pin, 4 * sizeof(float), cudaHostAllocDefault) == cudaSuccess);
    CHECK(cudaMalloc((void **)&dev, 4 * sizeof(float)) == cudaSuccess);
    CHECK(cudaMalloc((void **)&out, sizeof(float)) == cudaSuccess);
    cublasHandle_t h;
    cublasCreate(&h);
    cublasSetStream(h, s);
    pin[0] = pin[1] = pin[2] = pin[3] = 1.0f;

    /* Deferred: queued copies run at the synchronization, reading pinned memory then. */
    float *res = nullptr;
    CHECK(cudaHostAlloc((void **)&res, sizeof(float), cudaHostAllocDefault) == cudaSuccess);
    *res = -1.0f;
    CHECK(cudaMemcpyAsync(dev, pin, 4 * sizeof(float), cudaMemcpyHostToDevice, s) == cudaSuccess);
    CHECK(cudaMemcpyAsync(res, dev, sizeof(float), cudaMemcpyDeviceToHost, s) == cudaSuccess);
    CHECK(*res == -1.0f); /* not yet */
    pin[0] = 5.0f;        /* the queued H2D copy reads this, as a device's DMA may */
    CHECK(cudaStreamSynchronize(s) == cudaSuccess);
    CHECK(*res == 5.0f);
    cudaFreeHost(res);

    cudaGraph_t g = nullptr;
    cudaGraphExec_t x = nullptr;
    float alpha = 2.0f;
    const float beta = 0.0f;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    CHECK(cudaMemcpyAsync(dev, pin, 4 * sizeof(float), cudaMemcpyHostToDevice, s) == cudaSuccess);
    /* out = alpha · dev·dev (a 1×1×4 GEMM: a dot product). */
    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 1, 1, 4, &alpha, dev, CUDA_R_32F, 4, dev,
                       CUDA_R_32F, 4, &beta, out, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    void *tmp = nullptr;
    CHECK(cudaMalloc(&tmp, 16) == cudaErrorStreamCaptureUnsupported); /* breaks the capture */
    CHECK(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated && g == nullptr);

    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    CHECK(cudaMemcpyAsync(dev, pin, 4 * sizeof(float), cudaMemcpyHostToDevice, s) == cudaSuccess);
    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 1, 1, 4, &alpha, dev, CUDA_R_32F, 4, dev,
                       CUDA_R_32F, 4, &beta, out, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    CHECK(cudaMemcpyAsync(pin, out, sizeof(float), cudaMemcpyDeviceToHost, s) == cudaSuccess);
    CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess && g != nullptr);
    CHECK(cudaGraphInstantiate(&x, g, 0) == cudaSuccess);
    CHECK(cudaGraphDestroy(g) == cudaSuccess);
    CHECK(*(volatile float *)&pin[0] == 5.0f); /* nothing ran during the capture */
    pin[0] = pin[1] = pin[2] = pin[3] = 3.0f;  /* read at replay: 4·9·2 = 72 */
    alpha = 100.0f;                            /* baked at capture: still 2 */
    CHECK(cudaGraphLaunch(x, s) == cudaSuccess);
    CHECK(cudaStreamSynchronize(s) == cudaSuccess);
    CHECK_MSG(pin[0] == 72.0f, "graph replay gave %g, want 72", pin[0]);
    CHECK(cudaGraphExecDestroy(x) == cudaSuccess);

    cublasDestroy(h);
    cudaFree(dev), cudaFree(out), cudaFreeHost(pin);
    CHECK(cudaStreamDestroy(s) == cudaSuccess);
}

int main()
{
    const cudaDataType types[] = {CUDA_R_16F, CUDA_R_16BF, CUDA_R_32F};
    for (int lt = 0; lt < 2; lt++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (cudaDataType t : types)
                    for (int pad = 0; pad < 2; pad++)
                        check_gemm(lt, ta, tb, t, 37, 9 + pad, 53, pad * 3, lt && pad);
    test_status_codes();
    test_graphs_and_streams();
    return test_summary("test_fake_cuda_host");
}
