/*
 * layernorm.cu — bias + residual + LayerNorm, the epilogue of the attention output
 * projection and of the second FFN GEMM.
 *
 * x[t,:] = LayerNorm(x[t,:] + bias + residual[t,:]) in place; x is the GEMM output (T, no
 * bias), residual T, bias/gamma/beta fp32, statistics fp32 (two passes over registers).
 * Launch: one warp per row, RR_ROWS_PER_BLOCK rows per 128-thread block. One read of x and
 * residual, one write of x.
 * Two paths, chosen per call by the launcher:
 *   - vector (d % 8 == 0 and x, residual, bias, gamma, beta 16-byte aligned — every
 *     supported model, since the engine carves at 256 B): each lane holds NC = ceil(d/256)
 *     chunks of 8 columns; x, residual and the fp32 vectors move as 16-byte loads/stores
 *     (LDG.E.128 / STG.E.128, asserted by tests/cuda/sass_check.sh);
 *   - scalar (any other d ≤ 1024): NV = ceil(d/32) values per lane, 2-byte accesses.
 * Both keep the values in registers (NV, NC template parameters: no local memory).
 * Tried: a cuBLASLt bias epilogue + separate LN — one more pass over [n_tok, d] for no gain.
 * Was (before 2026-12): the scalar path only; the review estimated 2-byte loads at
 * ≈0.25 ms of the K=1000 forward.
 * ptxas: cuda/README.md lists registers for every instance (0 spills, no local memory).
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

template <typename T, int NC>
__global__ void __launch_bounds__(32 * RR_ROWS_PER_BLOCK)
    bias_residual_ln_vec_kernel(T *__restrict__ x, const float *__restrict__ bias,
                                const T *__restrict__ residual, const float *__restrict__ gamma,
                                const float *__restrict__ beta, float eps, int n_tok, int d)
{
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * RR_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= n_tok) return;
    T *xr = x + (size_t)row * d;
    const T *rr = residual + (size_t)row * d;
    float v[NC][8];
#pragma unroll
    for (int i = 0; i < NC; i++) {
        const int c = 8 * (lane + 32 * i);
        if (c < d) {
            float a[8], r[8], b[8];
            rr_load8(xr + c, a);
            rr_load8(rr + c, r);
            rr_load8(bias + c, b);
#pragma unroll
            for (int j = 0; j < 8; j++)
                v[i][j] = a[j] + b[j] + r[j];
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++)
                v[i][j] = 0.0f;
        }
    }
    rr_warp_row_ln8<NC>(v, d, gamma, beta, eps, xr, lane);
}

template <typename T>
static cudaError_t launch(void *x, const float *bias, const void *residual, const float *gamma,
                          const float *beta, float eps, int n_tok, int d, cudaStream_t stream)
{
    const dim3 grid((n_tok + RR_ROWS_PER_BLOCK - 1) / RR_ROWS_PER_BLOCK);
    const bool vec = d % 8 == 0 && rr_aligned16(x) && rr_aligned16(residual) &&
                     rr_aligned16(bias) && rr_aligned16(gamma) && rr_aligned16(beta);
    if (vec)
        RR_DISPATCH_NC(d, bias_residual_ln_vec_kernel<T, NC>
                       <<<grid, 32 * RR_ROWS_PER_BLOCK, 0, stream>>>(
                           (T *)x, bias, (const T *)residual, gamma, beta, eps, n_tok, d));
    else
        RR_DISPATCH_NV(d,
                       bias_residual_ln_kernel<T, NV><<<grid, 32 * RR_ROWS_PER_BLOCK, 0, stream>>>(
                           (T *)x, bias, (const T *)residual, gamma, beta, eps, n_tok, d));
    return cudaGetLastError();
}

extern "C" cudaError_t rr_bias_residual_ln_cuda(void *x, const float *bias, const void *residual,
                                                const float *gamma, const float *beta, float eps,
                                                int n_tok, int d, rr_dtype dt, cudaStream_t stream)
{
    RR_NVTX_RANGE(__func__);
    RR_LAUNCH_REQUIRE(x && bias && residual && gamma && beta);
    RR_LAUNCH_REQUIRE(x != residual);
    RR_LAUNCH_REQUIRE(n_tok >= 1 && d >= 1);
    RR_LAUNCH_REQUIRE(d <= 1024);
    RR_LAUNCH_REQUIRE(dt == RR_DTYPE_F16 || dt == RR_DTYPE_BF16);
    if (dt == RR_DTYPE_F16)
        return launch<__half>(x, bias, residual, gamma, beta, eps, n_tok, d, stream);
    return launch<__nv_bfloat16>(x, bias, residual, gamma, beta, eps, n_tok, d, stream);
}
