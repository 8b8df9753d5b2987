/*
 * gelu.cu — elementwise epilogues of a GEMM without a bias: bias + exact erf GELU (FFN1)
 * and a plain bias add (ELECTRA's embeddings_project).
 *
 * x[t,c] = gelu_erf(x[t,c] + bias[c]) / x[t,c] + bias[c], in place; x T, bias fp32,
 * arithmetic fp32. Launch: one thread per element, 256-thread blocks, flat index over
 * n_tok·d (c = i mod d). Memory-bound: one read and one write of x.
 * Tried: the cuBLASLt GELU_BIAS epilogue — its GELU is the tanh approximation, which
 * transformers' "gelu" is not (max difference ~5e-4 per element, accumulating).
 * ptxas (CUDA 13.0 -Xptxas -v): 20 registers on sm_80/86/89/90 for all four instances, no
 * shared memory, 0 spills.
 * Measured: not yet — compiled, not run (no GPU in this session).
 */
#include "common.cuh"

template <typename T, bool GELU>
__global__ void __launch_bounds__(256)
    bias_act_kernel(T *__restrict__ x, const float *__restrict__ bias, size_t n, int d)
{
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float v = rr_to_f32(x[i]) + bias[i % (size_t)d];
    x[i] = rr_from_f32<T>(GELU ? rr_gelu_erf(v) : v);
}

template <typename T, bool GELU>
static cudaError_t launch(void *x, const float *bias, int n_tok, int d, cudaStream_t stream)
{
    const size_t n = (size_t)n_tok * d;
    const unsigned blocks = (unsigned)((n + 255) / 256);
    bias_act_kernel<T, GELU><<<blocks, 256, 0, stream>>>((T *)x, bias, n, d);
    return cudaGetLastError();
}

extern "C" cudaError_t rr_bias_gelu_cuda(void *x, const float *bias, int n_tok, int d, rr_dtype dt,
                                         cudaStream_t stream)
{
    RR_LAUNCH_REQUIRE(x && bias && n_tok >= 1 && d >= 1);
    if (dt == RR_DTYPE_F16) return launch<__half, true>(x, bias, n_tok, d, stream);
    if (dt == RR_DTYPE_BF16) return launch<__nv_bfloat16, true>(x, bias, n_tok, d, stream);
    return cudaErrorInvalidValue;
}

extern "C" cudaError_t rr_add_bias_cuda(void *x, const float *bias, int n_tok, int d, rr_dtype dt,
                                        cudaStream_t stream)
{
    RR_LAUNCH_REQUIRE(x && bias && n_tok >= 1 && d >= 1);
    if (dt == RR_DTYPE_F16) return launch<__half, false>(x, bias, n_tok, d, stream);
    if (dt == RR_DTYPE_BF16) return launch<__nv_bfloat16, false>(x, bias, n_tok, d, stream);
    return cudaErrorInvalidValue;
}
