/*
 * common.cuh — what every kernel file of the CUDA engine shares: the two storage types
 * (fp16 and bf16) with their fp32 conversions, warp reductions, and the error macros.
 *
 * Precision contract of the engine: activations and weight matrices are stored in T
 * (__half or __nv_bfloat16); biases, LayerNorm gamma/beta and every statistic (LN mean
 * and variance, softmax max and sum, dot-product accumulators) are fp32.
 */
#ifndef RR_CUDA_COMMON_CUH
#define RR_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>

#include "kernels.h"

__device__ __forceinline__ float rr_to_f32(__half v)
{
    return __half2float(v);
}
__device__ __forceinline__ float rr_to_f32(__nv_bfloat16 v)
{
    return __bfloat162float(v);
}

template <typename T> __device__ __forceinline__ T rr_from_f32(float v);
template <> __device__ __forceinline__ __half rr_from_f32<__half>(float v)
{
    return __float2half_rn(v);
}
template <> __device__ __forceinline__ __nv_bfloat16 rr_from_f32<__nv_bfloat16>(float v)
{
    return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float rr_warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float rr_warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Exact GELU as transformers' "gelu": 0.5·v·(1 + erf(v/√2)). */
__device__ __forceinline__ float rr_gelu_erf(float v)
{
    return 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f));
}

/* Launchers: return cudaErrorInvalidValue on a broken precondition, else the launch status. */
#define RR_LAUNCH_REQUIRE(cond)                                                                    \
    do {                                                                                           \
        if (!(cond)) return cudaErrorInvalidValue;                                                 \
    } while (0)

/* Style habit 8: a device fault in the middle of a forward pass is fatal. The engine thread
 * cannot recover a poisoned context, so log the statement, function and place, and abort
 * for the supervisor to restart the process. */
#define RR_CUDA_FATAL(stmt)                                                                        \
    do {                                                                                           \
        cudaError_t rr_e_ = (stmt);                                                                \
        if (rr_e_ != cudaSuccess) {                                                                \
            fprintf(stderr, "rerankd: fatal CUDA error in %s (%s:%d): %s: %s\n", __func__,         \
                    __FILE__, __LINE__, #stmt, cudaGetErrorString(rr_e_));                         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Row-per-warp LayerNorm, the shared core of embed_ln and bias_residual_ln. Lane `lane`
 * holds columns lane + 32·i (i < NV, columns ≥ d absent) of one row in v[]; writes
 * gamma·(v − mean)·rstd + beta to out_row. Two passes over registers (mean, then the
 * biased variance of the centred values) so the statistics are as exact as fp32 allows;
 * the reduction order is fixed, so a row's result never depends on other rows. */
template <int NV, typename T>
__device__ __forceinline__ void rr_warp_row_ln(const float (&v)[NV], int d, const float *gamma,
                                               const float *beta, float eps, T *out_row, int lane)
{
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < NV; i++)
        if (lane + 32 * i < d) s += v[i];
    const float mean = rr_warp_sum(s) / (float)d;
    float q = 0.0f;
#pragma unroll
    for (int i = 0; i < NV; i++) {
        if (lane + 32 * i < d) {
            const float t = v[i] - mean;
            q += t * t;
        }
    }
    const float rstd = rsqrtf(rr_warp_sum(q) / (float)d + eps);
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int c = lane + 32 * i;
        if (c < d) out_row[c] = rr_from_f32<T>((v[i] - mean) * rstd * gamma[c] + beta[c]);
    }
}

/* Rows per block of the row-per-warp kernels. */
#define RR_ROWS_PER_BLOCK 4

/* Runs the statement(s) given with NV = the smallest supported register count per lane covering d
 * columns (d ≤ 1024), so MiniLM (384 → 12) and BERT-base (768 → 24) waste nothing. */
#define RR_DISPATCH_NV(d, ...)                                                                     \
    do {                                                                                           \
        const int rr_nv_ = ((d) + 31) / 32;                                                        \
        if (rr_nv_ <= 4) {                                                                         \
            constexpr int NV = 4;                                                                  \
            __VA_ARGS__;                                                                           \
        } else if (rr_nv_ <= 8) {                                                                  \
            constexpr int NV = 8;                                                                  \
            __VA_ARGS__;                                                                           \
        } else if (rr_nv_ <= 12) {                                                                 \
            constexpr int NV = 12;                                                                 \
            __VA_ARGS__;                                                                           \
        } else if (rr_nv_ <= 16) {                                                                 \
            constexpr int NV = 16;                                                                 \
            __VA_ARGS__;                                                                           \
        } else if (rr_nv_ <= 24) {                                                                 \
            constexpr int NV = 24;                                                                 \
            __VA_ARGS__;                                                                           \
        } else {                                                                                   \
            constexpr int NV = 32;                                                                 \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
    } while (0)

#endif /* RR_CUDA_COMMON_CUH */
