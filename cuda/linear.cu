/*
 * linear.cu — y[n_tok, n_out] = x[n_tok, n_in] · w[n_out, n_in]ᵀ (+ bias) through cuBLAS.
 *
 * Row-major y = x·wᵀ is, read column-major, yᵀ = w·xᵀ with w [n_in × n_out] col-major
 * transposed: cublasGemmEx(OP_T, OP_N, m = n_out, n = n_tok, k = n_in, A = w (lda n_in),
 * B = x (ldb n_in), C = y (ldc n_out)). fp16/bf16 in and out, CUBLAS_COMPUTE_32F (fp32
 * accumulation), alpha/beta fp32 on the host. cuBLAS picks the algorithm from the shape,
 * which is why a row's result may differ in the last bit between batch sizes (the engine's
 * batch-invariance test states the bound). The handle's workspace is set once by the
 * engine (cublasSetWorkspace), so GEMMs allocate nothing and can be graph-captured.
 * The bias, when given, is a separate add (rr_add_bias_cuda): in the encoder layers every
 * bias is fused into the next kernel instead (attention load, bias+GELU, bias+residual+LN).
 * Tried: nothing else yet; cuBLASLt with per-M-bucket algorithm caching is the next step
 * once the device check shows GEMM time (anchors-performance §5.5).
 */
#include "common.cuh"

extern "C" cudaError_t rr_linear_cuda(const void *x, const void *w, const float *bias, int n_tok,
                                      int n_in, int n_out, void *y, rr_dtype dt,
                                      cublasHandle_t blas, cudaStream_t stream)
{
    RR_LAUNCH_REQUIRE(x && w && y && blas && x != y && n_tok >= 1 && n_in >= 1 && n_out >= 1);
    cudaDataType_t t;
    if (dt == RR_DTYPE_F16)
        t = CUDA_R_16F;
    else if (dt == RR_DTYPE_BF16)
        t = CUDA_R_16BF;
    else
        return cudaErrorInvalidValue;
    const float alpha = 1.0f, beta = 0.0f;
    cublasStatus_t st =
        cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, n_out, n_tok, n_in, &alpha, w, t, n_in, x, t,
                     n_in, &beta, y, t, n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "rr_linear_cuda: cublasGemmEx(%d x %d x %d) failed: %s\n", n_tok, n_out,
                n_in, cublasGetStatusString(st));
        return cudaErrorLaunchFailure;
    }
    if (bias) return rr_add_bias_cuda(y, bias, n_tok, n_out, dt, stream);
    return cudaGetLastError();
}
