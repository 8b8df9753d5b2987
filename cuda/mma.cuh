/*
 * mma.cuh — the warp-wide tensor-core instructions the kernels use, as thin wrappers: on the
 * device inline PTX, under RR_CUDA_HOST_EMULATION (tests/cuda/host/cuda_host.h) calls to host
 * stand-ins (tests/cuda/host/mma_sync.cpp) that implement the PTX ISA's documented fragment
 * layouts, so test_attention_host checks a kernel's fragment bookkeeping against the
 * documentation rather than against one GPU.
 *
 * Fragment layouts of mma.m16n8k16 with .f16/.bf16 inputs and .f32 accumulators (PTX ISA,
 * "Matrix Fragments for mma.m16n8k16 with floating point type"), with g = lane >> 2 (groupID)
 * and t = lane % 4 (threadID_in_group); a register holds two 16-bit elements, the lower
 * column (A, C) or row (B) in its low half:
 *   A (16×16, row): a[0] = (g, 2t..2t+1)   a[1] = (g+8, 2t..)   a[2] = (g, 2t+8..)
 *                   a[3] = (g+8, 2t+8..)
 *   B (16×8, col):  b[0] = (k 2t..2t+1, n g)   b[1] = (k 2t+8..2t+9, n g)
 *   C, D (16×8):    c[0], c[1] = (g, 2t), (g, 2t+1)   c[2], c[3] = (g+8, 2t), (g+8, 2t+1)
 * So the accumulators of two adjacent n-tiles (columns 0-7 and 8-15), rounded to T and
 * packed in pairs, are exactly an A fragment: flash attention's P never leaves registers.
 *
 * ldmatrix.m8n8.x4(.trans): lane l gives the shared-memory address of row l % 8 of matrix
 * l / 8 (16 bytes, 16-byte aligned); register r[m] of lane l receives matrix m's elements
 * (row l/4, columns 2(l%4), 2(l%4)+1), or with .trans (rows 2(l%4), 2(l%4)+1, column l/4).
 */
#ifndef RR_CUDA_MMA_CUH
#define RR_CUDA_MMA_CUH

#include <stdint.h>
#include <string.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#ifdef RR_CUDA_HOST_EMULATION
#include "mma_sync.h"
#endif

#define RR_MMA_MAX_N 8

template <typename T> struct rr_is_bf16 {
    static constexpr bool value = false;
};
template <> struct rr_is_bf16<__nv_bfloat16> {
    static constexpr bool value = true;
};

/* d[i] += a·b[i] for i < N: N mma.sync m16n8k16 (fp32 accumulate) sharing the A fragment,
 * fragments as in the header. The N instructions are independent, so the host stand-in
 * stands for all of them with one warp exchange (the emulation's cost is per exchange). */
template <typename T, int N>
__device__ __forceinline__ void rr_mma_16816_n(float (&d)[N][4], const uint32_t (&a)[4],
                                               const uint32_t (&b)[N][2])
{
    static_assert(N >= 1 && N <= RR_MMA_MAX_N, "the host stand-in carries at most 8 tiles");
#ifdef RR_CUDA_HOST_EMULATION
    rr_host_mma_16816_n(&d[0][0], a, &b[0][0], N, rr_is_bf16<T>::value);
#else
#pragma unroll
    for (int i = 0; i < N; i++) {
        if constexpr (rr_is_bf16<T>::value)
            asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
                "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                : "+f"(d[i][0]), "+f"(d[i][1]), "+f"(d[i][2]), "+f"(d[i][3])
                : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[i][0]), "r"(b[i][1]));
        else
            asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
                "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                : "+f"(d[i][0]), "+f"(d[i][1]), "+f"(d[i][2]), "+f"(d[i][3])
                : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[i][0]), "r"(b[i][1]));
    }
#endif
}

/* N ldmatrix.m8n8.x4 (16-bit elements) from shared memory: load i takes this lane's row
 * address `row` + i·stride bytes (see the header for which row a lane names); .trans
 * transposes each 8×8 matrix on the way (a row-major K×N tile → B fragments). volatile +
 * "memory": they read shared memory, so they stay between the barriers that order the
 * stores they depend on. The host stand-in reads memory when the instructions execute. */
template <int N, bool TRANS>
__device__ __forceinline__ void rr_ldmatrix_x4_n(uint32_t (&r)[N][4], const void *row, int stride)
{
#ifdef RR_CUDA_HOST_EMULATION
    rr_host_ldmatrix_x4_n(&r[0][0], row, stride, N, TRANS);
#else
    const unsigned base = (unsigned)__cvta_generic_to_shared(row);
#pragma unroll
    for (int i = 0; i < N; i++) {
        if constexpr (TRANS)
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                         : "=r"(r[i][0]), "=r"(r[i][1]), "=r"(r[i][2]), "=r"(r[i][3])
                         : "r"(base + i * stride)
                         : "memory");
        else
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                         : "=r"(r[i][0]), "=r"(r[i][1]), "=r"(r[i][2]), "=r"(r[i][3])
                         : "r"(base + i * stride)
                         : "memory");
    }
#endif
}

/* Two fp32 values rounded to T (nearest even) in one register, `lo` in the low half. */
template <typename T> __device__ __forceinline__ uint32_t rr_pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t rr_pack2<__half>(float lo, float hi)
{
    const __half2 v = __floats2half2_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}
template <> __device__ __forceinline__ uint32_t rr_pack2<__nv_bfloat16>(float lo, float hi)
{
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

#endif /* RR_CUDA_MMA_CUH */
