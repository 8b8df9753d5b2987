/*
 * common.cuh — what every kernel file of the CUDA engine shares: the two storage types
 * (fp16 and bf16) with their fp32 conversions, warp reductions, and the error macros.
 *
 * Precision contract of the engine: activations and weight matrices are stored in T
 * (__half or __nv_bfloat16); biases, LayerNorm gamma/beta and every statistic (LN mean
 * and variance, softmax max and sum, dot-product accumulators) are fp32.
 *
 * Launcher template (llm.c's llmc/ headers' style), for every rr_<op>_cuda:
 *     RR_NVTX_RANGE(__func__);            // first statement: names the launch in nsys
 *     RR_LAUNCH_REQUIRE(x && n_tok >= 1); // one per precondition, named when it fails
 *     ... kernel<<<...>>>(...);
 *     return cudaGetLastError();
 */
#ifndef RR_CUDA_COMMON_CUH
#define RR_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <nvtx3/nvToolsExt.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Launchers: return cudaErrorInvalidValue on a broken precondition, else the launch status.
 * A broken precondition is a caller bug, so the launcher and the condition's text go to
 * stderr ("rerankd: rr_head_cuda: precondition failed: d_model <= 1024") before the error
 * code, which alone would not say which check failed. Use inside the launcher itself, so
 * __func__ names it. */
#define RR_LAUNCH_REQUIRE(cond)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "rerankd: %s: precondition failed: %s\n", __func__, #cond);            \
            return cudaErrorInvalidValue;                                                          \
        }                                                                                          \
    } while (0)

/* An NVTX range over the rest of the enclosing scope (push now, pop on return), so an
 * nsys timeline names each launcher's host-side enqueue and, projected onto the stream,
 * its kernels. nvtx3 is header-only (no library to link); without a profiler attached a
 * push/pop is a load and a branch. Under graph replay the ranges are seen once, at
 * capture. The host emulation (tests/cuda/host) compiles the same header. */
struct rr_nvtx_scope {
    explicit rr_nvtx_scope(const char *name)
    {
        nvtxRangePushA(name);
    }
    ~rr_nvtx_scope()
    {
        nvtxRangePop();
    }
    rr_nvtx_scope(const rr_nvtx_scope &) = delete;
    rr_nvtx_scope &operator=(const rr_nvtx_scope &) = delete;
};
#define RR_NVTX_RANGE(name) rr_nvtx_scope rr_nvtx_scope_(name)

/* True when p is 16-byte aligned: the vector (uint4 / float4) paths need it of every row
 * base. cudaMalloc returns 256-byte aligned memory and the engine carves its weights and
 * workspace at 256 bytes, so with d % 8 == 0 every row of T qualifies. */
static inline bool rr_aligned16(const void *p)
{
    return ((uintptr_t)p & 15u) == 0;
}

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

/* 8 consecutive values as fp32, one 16-byte load (LDG.E.128); p must be 16-byte aligned.
 * The memcpy between the loaded uint4 and T[8] is a register move on the device. */
template <typename T> __device__ __forceinline__ void rr_load8(const T *p, float (&f)[8])
{
    const uint4 raw = *reinterpret_cast<const uint4 *>(p);
    T h[8];
    memcpy(h, &raw, sizeof raw);
#pragma unroll
    for (int j = 0; j < 8; j++)
        f[j] = rr_to_f32(h[j]);
}
__device__ __forceinline__ void rr_load8(const float *p, float (&f)[8])
{
    const float4 a = reinterpret_cast<const float4 *>(p)[0];
    const float4 b = reinterpret_cast<const float4 *>(p)[1];
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w;
    f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}
/* p[0..7] = f rounded to T, one 16-byte store; p 16-byte aligned. */
template <typename T> __device__ __forceinline__ void rr_store8(T *p, const float (&f)[8])
{
    T h[8];
#pragma unroll
    for (int j = 0; j < 8; j++)
        h[j] = rr_from_f32<T>(f[j]);
    uint4 raw;
    memcpy(&raw, h, sizeof raw);
    *reinterpret_cast<uint4 *>(p) = raw;
}

/* The 16-byte twin of rr_warp_row_ln, for d % 8 == 0 and 16-byte aligned rows, gamma and
 * beta: lane `lane` holds the chunks of 8 columns 8·(lane + 32·i) … +7 (i < NC, chunks at
 * or past d absent) in v[i][]. Same two passes and fixed reduction order (a lane sums its
 * chunks in order, then the butterfly), so a row still never depends on other rows; the
 * order differs from the scalar core, hence results may differ from it in the last bits. */
template <int NC, typename T>
__device__ __forceinline__ void rr_warp_row_ln8(const float (&v)[NC][8], int d, const float *gamma,
                                                const float *beta, float eps, T *out_row, int lane)
{
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < NC; i++)
        if (8 * (lane + 32 * i) < d) {
#pragma unroll
            for (int j = 0; j < 8; j++)
                s += v[i][j];
        }
    const float mean = rr_warp_sum(s) / (float)d;
    float q = 0.0f;
#pragma unroll
    for (int i = 0; i < NC; i++)
        if (8 * (lane + 32 * i) < d) {
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const float t = v[i][j] - mean;
                q += t * t;
            }
        }
    const float rstd = rsqrtf(rr_warp_sum(q) / (float)d + eps);
#pragma unroll
    for (int i = 0; i < NC; i++) {
        const int c = 8 * (lane + 32 * i);
        if (c >= d) continue;
        float g[8], b[8], o[8];
        rr_load8(gamma + c, g);
        rr_load8(beta + c, b);
#pragma unroll
        for (int j = 0; j < 8; j++)
            o[j] = (v[i][j] - mean) * rstd * g[j] + b[j];
        rr_store8(out_row + c, o);
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

/* Runs the statement(s) given with NC = chunks of 8 columns per lane covering d (d ≤ 1024,
 * so 1 … 4): MiniLM's 384 → 2 (lanes 16-31 hold one chunk), BERT-base's 768 → 3. */
#define RR_DISPATCH_NC(d, ...)                                                                     \
    do {                                                                                           \
        const int rr_nc_ = ((d) + 255) / 256;                                                      \
        if (rr_nc_ <= 1) {                                                                         \
            constexpr int NC = 1;                                                                  \
            __VA_ARGS__;                                                                           \
        } else if (rr_nc_ <= 2) {                                                                  \
            constexpr int NC = 2;                                                                  \
            __VA_ARGS__;                                                                           \
        } else if (rr_nc_ <= 3) {                                                                  \
            constexpr int NC = 3;                                                                  \
            __VA_ARGS__;                                                                           \
        } else {                                                                                   \
            constexpr int NC = 4;                                                                  \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
    } while (0)

#endif /* RR_CUDA_COMMON_CUH */
