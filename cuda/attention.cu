/*
 * attention.cu — fused varlen multi-head self-attention over packed sequences.
 *
 * For one tile (up to 64 query rows of one sequence; rr_attention_tiles) and one head h:
 *   ctx[out_row + i, h·dh:(h+1)·dh] = softmax(q_i·Kᵀ/√dh)·V over the sequence's keys,
 * with Q, K, V read from the fused QKV GEMM output [*, 3·n_head·dh] plus its fp32 bias
 * (added on load, rounded to T as the GEMM output was). Lengths 1…512 (any length works:
 * keys stream in blocks), dh ∈ {32, 64}.
 *
 * Launch: grid (max_tiles, n_head), 128 threads = 4 warps; warp w owns query rows
 * 16w…16w+15 of the tile (warps with no valid row skip the math but keep the barriers).
 * Blocks with blockIdx.x ≥ *n_tiles (read on the device) exit at once, which keeps a CUDA
 * graph captured for a bucket's upper bound exact for every batch in the bucket.
 * Per block of BK = 32 keys (flash-attention style, online softmax):
 *   1. all threads stage K and V rows (16-byte loads, zero rows past the sequence) in smem;
 *   2. each warp computes S = Q·Kᵀ (16 × 32) with wmma 16×16×16 (fp16/bf16 in, fp32 acc),
 *      Q fragments held in registers for the whole tile, and stores S to its smem slice;
 *   3. lane pair (2r, 2r+1) owns row r: masked max, running max m, rescale α = 2^(m_old −
 *      m_new), P = 2^(s·log2e/√dh − m) written as T over S (same smem), running sum l in
 *      fp32, and the row's fp32 output accumulator O (smem) scaled by α;
 *   4. O += P·V with wmma, the accumulator fragments loaded from and stored back to O.
 * Finally ctx = O / l (T), coalesced by rows. Nothing of size L×L leaves the SM.
 * Shared memory (static, < 48 KiB so no opt-in is needed on any target):
 *   dh 32: Q 5120 + K 2560 + V 2560 + S/P 9216 + O 9216 = 28672 B;
 *   dh 64: Q 9216 + K 4608 + V 4608 + S/P 9216 + O 17408 = 45056 B.
 * ptxas (CUDA 13.0 -Xptxas -v, RelWithDebInfo; registers sm_80 / 86 / 89 / 90, static smem,
 * spill stores/loads 0 on every arch):
 *   <fp16, 32>  91 / 99 / 99 / 72   28672 B      <bf16, 32>  96 / 100 / 100 / 78   28672 B
 *   <fp16, 64> 105 / 101 / 101 / 96 45056 B      <bf16, 64> 120 / 120 / 120 / 96   45056 B
 * Measured: not yet — compiled, not run (no GPU in this session).
 * Design choices: wmma rather than raw mma.sync because the S and O round trips through
 * shared memory make the fragment layout irrelevant (right by construction); 4 warps × 16
 * rows fits the typical 119-token pair in two tiles; a key block of 32 keeps the shared
 * memory static. Candidates once measured: mma.sync with register-resident O (no smem
 * round trip), a 2-tile-per-block layout for head_dim 32, and Q-projection for the CLS rows
 * only in the last layer.
 */
#include <mma.h>
#include <string.h>

#include "common.cuh"

using namespace nvcuda;

#define ATT_BK 32
#define ATT_WARPS (RR_ATTN_BQ / 16)
#define ATT_THREADS (32 * ATT_WARPS)

/* dst[0..7] = src[0..7] (+ bias[0..7]) as one 16-byte load and store; zeros when !valid. */
template <typename T>
__device__ __forceinline__ void load_chunk8(T *dst, const T *src, const float *bias, bool valid)
{
    uint4 raw = make_uint4(0u, 0u, 0u, 0u);
    if (valid) {
        raw = *reinterpret_cast<const uint4 *>(src);
        if (bias) {
            T v[8];
            memcpy(v, &raw, sizeof raw);
#pragma unroll
            for (int j = 0; j < 8; j++)
                v[j] = rr_from_f32<T>(rr_to_f32(v[j]) + bias[j]);
            memcpy(&raw, v, sizeof raw);
        }
    }
    *reinterpret_cast<uint4 *>(dst) = raw;
}

template <typename T, int DH>
__global__ void __launch_bounds__(ATT_THREADS)
    attention_kernel(const T *__restrict__ qkv, const float *__restrict__ qkv_b,
                     const rr_attn_tile *__restrict__ tiles, const int32_t *__restrict__ n_tiles,
                     int n_head, float scale_log2, T *__restrict__ ctx)
{
    constexpr int LDT = DH + 8;     /* T; Q/K/V smem row stride (16-byte multiple) */
    constexpr int LDS = ATT_BK + 4; /* float; S row stride */
    constexpr int LDP = ATT_BK + 8; /* T; P row stride, P overlays S */
    constexpr int LDO = DH + 4;     /* float; O row stride */
    constexpr int CH = DH / 8;      /* 16-byte chunks per head row */
    __shared__ __align__(128) T q_s[RR_ATTN_BQ * LDT];
    __shared__ __align__(128) T k_s[ATT_BK * LDT];
    __shared__ __align__(128) T v_s[ATT_BK * LDT];
    __shared__ __align__(128) float s_s[ATT_WARPS][16 * LDS];
    __shared__ __align__(128) float o_s[ATT_WARPS][16 * LDO];

    if ((int)blockIdx.x >= *n_tiles) return;
    const rr_attn_tile tile = tiles[blockIdx.x];
    const int h = blockIdx.y;
    const int d = n_head * DH;
    const size_t ld = 3 * (size_t)d;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const float *qb = qkv_b ? qkv_b + h * DH : nullptr;
    const float *kb_ = qkv_b ? qkv_b + d + h * DH : nullptr;
    const float *vb = qkv_b ? qkv_b + 2 * d + h * DH : nullptr;

    for (int i = tid; i < RR_ATTN_BQ * CH; i += ATT_THREADS) {
        const int r = i / CH, c = (i % CH) * 8;
        const bool ok = r < tile.q_count;
        const T *src = qkv + (size_t)(tile.q_begin + (ok ? r : 0)) * ld + h * DH + c;
        load_chunk8(q_s + r * LDT + c, src, qb ? qb + c : nullptr, ok);
    }

    float *s_w = s_s[warp];
    T *p_w = reinterpret_cast<T *>(s_w);
    float *o_w = o_s[warp];
    for (int i = lane; i < 16 * LDO; i += 32)
        o_w[i] = 0.0f;
    const bool active = warp * 16 < tile.q_count;
    const int r = lane >> 1, half = lane & 1;
    float m_r = -INFINITY, l_r = 0.0f;

    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qa[DH / 16];
    __syncthreads();
    if (active) {
#pragma unroll
        for (int kk = 0; kk < DH / 16; kk++)
            wmma::load_matrix_sync(qa[kk], q_s + warp * 16 * LDT + kk * 16, LDT);
    }

    for (int kb = 0; kb < tile.kv_len; kb += ATT_BK) {
        __syncthreads(); /* previous key block fully consumed */
        for (int i = tid; i < ATT_BK * CH; i += ATT_THREADS) {
            const int j = i / CH, c = (i % CH) * 8;
            const bool ok = kb + j < tile.kv_len;
            const T *src = qkv + (size_t)(tile.kv_begin + (ok ? kb + j : 0)) * ld + h * DH + c;
            load_chunk8(k_s + j * LDT + c, src + d, kb_ ? kb_ + c : nullptr, ok);
            load_chunk8(v_s + j * LDT + c, src + 2 * d, vb ? vb + c : nullptr, ok);
        }
        __syncthreads();
        if (!active) continue;

#pragma unroll
        for (int j = 0; j < ATT_BK / 16; j++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> sacc;
            wmma::fill_fragment(sacc, 0.0f);
#pragma unroll
            for (int kk = 0; kk < DH / 16; kk++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;
                wmma::load_matrix_sync(kf, k_s + j * 16 * LDT + kk * 16, LDT);
                wmma::mma_sync(sacc, qa[kk], kf, sacc);
            }
            wmma::store_matrix_sync(s_w + j * 16, sacc, LDS, wmma::mem_row_major);
        }
        __syncwarp();

        /* Online softmax for row r, columns half·16 … half·16+15 of this key block. Key kb
         * is always valid, so the pair's max is finite and no row ever sees 0/0. */
        float sv[16];
        float mx = -INFINITY;
        const float *srow = s_w + r * LDS + half * 16;
#pragma unroll
        for (int c = 0; c < 16; c++) {
            const bool ok = kb + half * 16 + c < tile.kv_len;
            sv[c] = ok ? srow[c] * scale_log2 : -INFINITY;
            mx = fmaxf(mx, sv[c]);
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        const float m_new = fmaxf(m_r, mx);
        const float alpha = exp2f(m_r - m_new);
        float sum = 0.0f;
#pragma unroll
        for (int c = 0; c < 16; c++) {
            sv[c] = exp2f(sv[c] - m_new);
            sum += sv[c];
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l_r = l_r * alpha + sum;
        m_r = m_new;
        __syncwarp(); /* every lane has read S before P overwrites it */
        T *prow = p_w + r * LDP + half * 16;
#pragma unroll
        for (int c = 0; c < 16; c++)
            prow[c] = rr_from_f32<T>(sv[c]);
        float *orow = o_w + r * LDO + half * (DH / 2);
#pragma unroll
        for (int c = 0; c < DH / 2; c++)
            orow[c] *= alpha;
        __syncwarp();

#pragma unroll
        for (int n = 0; n < DH / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> oacc;
            wmma::load_matrix_sync(oacc, o_w + n * 16, LDO, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < ATT_BK / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pf;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vf;
                wmma::load_matrix_sync(pf, p_w + kk * 16, LDP);
                wmma::load_matrix_sync(vf, v_s + kk * 16 * LDT + n * 16, LDT);
                wmma::mma_sync(oacc, pf, vf, oacc);
            }
            wmma::store_matrix_sync(o_w + n * 16, oacc, LDO, wmma::mem_row_major);
        }
        __syncwarp();
    }

    if (!active) return;
#pragma unroll 1
    for (int i = 0; i < 16; i++) {
        const float l = __shfl_sync(0xffffffffu, l_r, 2 * i);
        const int row = warp * 16 + i;
        if (row >= tile.q_count) break;
        T *dst = ctx + (size_t)(tile.out_row + row) * d + h * DH;
        const float inv = 1.0f / l;
        for (int c = lane; c < DH; c += 32)
            dst[c] = rr_from_f32<T>(o_w[i * LDO + c] * inv);
    }
}

template <typename T, int DH>
static cudaError_t launch(const void *qkv, const float *qkv_b, const rr_attn_tile *tiles,
                          const int32_t *n_tiles, int max_tiles, int n_head, void *ctx,
                          cudaStream_t stream)
{
    const float scale_log2 = 1.4426950408889634f / sqrtf((float)DH);
    const dim3 grid((unsigned)max_tiles, (unsigned)n_head);
    attention_kernel<T, DH><<<grid, ATT_THREADS, 0, stream>>>((const T *)qkv, qkv_b, tiles, n_tiles,
                                                              n_head, scale_log2, (T *)ctx);
    return cudaGetLastError();
}

extern "C" cudaError_t rr_attention_cuda(const void *qkv, const float *qkv_b,
                                         const rr_attn_tile *tiles, const int32_t *n_tiles,
                                         int max_tiles, int n_head, int d_head, void *ctx,
                                         rr_dtype dt, cudaStream_t stream)
{
    RR_LAUNCH_REQUIRE(qkv && tiles && n_tiles && ctx && qkv != ctx);
    RR_LAUNCH_REQUIRE(max_tiles >= 1 && n_head >= 1 && n_head <= 65535);
    RR_LAUNCH_REQUIRE(d_head == 32 || d_head == 64);
    if (dt == RR_DTYPE_F16)
        return d_head == 32
                   ? launch<__half, 32>(qkv, qkv_b, tiles, n_tiles, max_tiles, n_head, ctx, stream)
                   : launch<__half, 64>(qkv, qkv_b, tiles, n_tiles, max_tiles, n_head, ctx, stream);
    if (dt == RR_DTYPE_BF16)
        return d_head == 32 ? launch<__nv_bfloat16, 32>(qkv, qkv_b, tiles, n_tiles, max_tiles,
                                                        n_head, ctx, stream)
                            : launch<__nv_bfloat16, 64>(qkv, qkv_b, tiles, n_tiles, max_tiles,
                                                        n_head, ctx, stream);
    return cudaErrorInvalidValue;
}
