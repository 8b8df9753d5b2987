/*
 * layernorm.cu — bias + residual + LayerNorm, the epilogue of the attention output
 * projection and of the second FFN GEMM.
 *
 * x[t,:] = LayerNorm(x[t,:] + bias + residual[t,:]) in place; x is the GEMM output (T, no
 * bias), residual T, bias/gamma/beta fp32, statistics fp32 (two passes over registers).
 * Launch: one warp per row, RR_ROWS_PER_BLOCK rows per 128-thread block, NV = ceil(d/32)
 * values per lane in registers. One read of x and residual, one write of x.
 * Tried: a cuBLASLt bias epilogue + separate LN — one more pass over [n_tok, d] for no gain.
 * ptxas (CUDA 13.0 -Xptxas -v; registers sm_80 / 86 / 89 / 90, same for fp16 and bf16; no
 * shared memory; 0 spills on every arch): NV 12 (d 384) 38 / 40 / 40 / 39, NV 24 (d 768)
 * 70 / 70 / 70 / 70, NV 32 (d 1024) 80 / 80 / 80 / 80; cuda/README.md lists every NV.
 * Measured: not yet — compiled, not run (no GPU in this session).
 */
#include "common.cuh"

template <typename T, int NV>
__global__ void __launch_bounds__(32 * RR_ROWS_PER_BLOCK)
    bias_residual_ln_kernel(T *__restrict__ x, const float *__restrict__ bias,
                            const T *__restrict__ residual, const float *__restrict__ gamma,
                            const float *__restrict__ beta, float eps, int n_tok, int d)
{
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * RR_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= n_tok) return;
    T *xr = x + (size_t)row * d;
    const T *rr = residual + (size_t)row * d;
    float v[NV];
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int c = lane + 32 * i;
        v[i] = c < d ? rr_to_f32(xr[c]) + bias[c] + rr_to_f32(rr[c]) : 0.0f;
    }
    rr_warp_row_ln<NV>(v, d, gamma, beta, eps, xr, lane);
}

template <typename T>
static cudaError_t launch(void *x, const float *bias, const void *residual, const float *gamma,
                          const float *beta, float eps, int n_tok, int d, cudaStream_t stream)
{
    const dim3 grid((n_tok + RR_ROWS_PER_BLOCK - 1) / RR_ROWS_PER_BLOCK);
    RR_DISPATCH_NV(d, bias_residual_ln_kernel<T, NV><<<grid, 32 * RR_ROWS_PER_BLOCK, 0, stream>>>(
                          (T *)x, bias, (const T *)residual, gamma, beta, eps, n_tok, d));
    return cudaGetLastError();
}

extern "C" cudaError_t rr_bias_residual_ln_cuda(void *x, const float *bias, const void *residual,
                                                const float *gamma, const float *beta, float eps,
                                                int n_tok, int d, rr_dtype dt, cudaStream_t stream)
{
    RR_LAUNCH_REQUIRE(x && bias && residual && gamma && beta && x != residual);
    RR_LAUNCH_REQUIRE(n_tok >= 1 && d >= 1 && d <= 1024);
    if (dt == RR_DTYPE_F16)
        return launch<__half>(x, bias, residual, gamma, beta, eps, n_tok, d, stream);
    if (dt == RR_DTYPE_BF16)
        return launch<__nv_bfloat16>(x, bias, residual, gamma, beta, eps, n_tok, d, stream);
    return cudaErrorInvalidValue;
}
