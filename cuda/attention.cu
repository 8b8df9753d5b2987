/*
 * attention.cu — fused varlen multi-head self-attention over packed sequences.
 *
 * For one tile (up to 64 query rows of one sequence; rr_attention_tiles) and one head h:
 *   ctx[out_row + i, h·dh:(h+1)·dh] = softmax(q_i·Kᵀ/√dh)·V over the sequence's keys,
 * with Q, K, V read from the fused QKV GEMM output [*, 3·n_head·dh] plus its fp32 bias
 * (added on load, rounded to T as the GEMM output was). Any length (keys stream in blocks;
 * tested to 8192), dh ∈ {32, 64}.
 *
 * Launch: grid (max_tiles, n_head), 128 threads = 4 warps; warp w owns query rows
 * 16w…16w+15 of the tile (warps with no valid row skip the math but keep the barriers and
 * help stage K/V). Blocks with blockIdx.x ≥ *n_tiles (read on the device) exit at once,
 * which keeps a CUDA graph captured for a bucket's upper bound exact for every batch in the
 * bucket. Flash attention with register-resident S, P and O (mma.sync m16n8k16, mma.cuh):
 *   0. the tile's Q rows (+ bias) are staged in smem once;
 *   per block of BK = 64 keys:
 *   1. K and V rows (+ bias, zero rows past the sequence) go from registers to smem; the next
 *      block's 16-byte global loads are issued right after, so they are in flight during the
 *      math (register double buffering: the bias cannot ride cp.async);
 *   2. S = Q·Kᵀ (16 × 64 per warp) in fp32 accumulators; Q (A) and K (B) fragments by
 *      ldmatrix — Q re-read each block (4 LDSM) because holding it for the whole loop costs
 *      16 registers that the P·V phase needs (it spilled on sm_90 under the 168 cap);
 *   3. online softmax on the accumulators: keys ≥ kv_len masked, row max over the quad that
 *      shares a row (2 shuffles), running max m, α = 2^(m_old − m_new), P = 2^(s·log2e/√dh −
 *      m); the running sum l stays a per-lane partial (α is uniform over the quad) and is
 *      reduced once at the end;
 *   4. O (fp32 accumulators, 16 × dh per warp) ·= α, then O += P·V: P's accumulators are
 *      rounded to T and repacked in registers (the m16n8k16 C → A identity, mma.cuh), V
 *      fragments come by ldmatrix.trans.
 * Finally ctx = O / l (T), each quad writing its rows' 4-byte pairs. Nothing of size L×L, and
 * no S, P or O, goes through shared memory; the smem traffic is the K/V staging and the
 * ldmatrix reads (4 wavefronts per x4 with the padded stride): per warp per 32 keys at dh 32
 * ≈ 36 + 8 (its share of the staging stores) ≈ 45 wavefronts, at dh 64 ≈ 90, against ≈ 250
 * that the review counted in the wmma version's SASS at dh 32.
 * Shared memory (static): Q 64 + K 64 + V 64 rows of dh + 8 T (the pad makes the 8 rows of an
 * ldmatrix hit distinct banks): dh 32: 15360 B; dh 64: 27648 B.
 * ptxas (CUDA 13.0, -O2 -g, registers sm_80 / 86 / 89 / 90; 0 spills, 0-byte stack frame,
 * so no local memory, on every arch): dh 32: 119 / 119 / 119 / 115; dh 64: 167 / 167 / 167 /
 * 168 (fp16 and bf16 alike). __launch_bounds__(128, 3): 3 blocks (12 warps) per SM.
 * Measured: not yet — compiled, not run (no GPU in this session); the source runs on the CPU
 * in test_attention_host against rr_attention_cpu.
 * History: v1 used wmma with S/P and O round-tripping through shared memory (fragment layout
 * irrelevant, ~250 smem wavefronts per warp per 32 keys, smem-pipe bound by the review's
 * SASS count). Candidates once measured: cp.async K/V with the bias folded into the QKV
 * GEMM, key-split warps for [CLS]-only tiles (one warp works there today), one CTA of
 * 8 warps per (sequence, head) when the sequence fits (K/V staged once instead of per tile).
 */
#include <string.h>

#include "common.cuh"
#include "mma.cuh"

#define ATT_BK 64
#define ATT_WARPS (RR_ATTN_BQ / 16)
#define ATT_THREADS (32 * ATT_WARPS)
/* 3 blocks (12 warps) per SM: caps registers at 168, which d_head 64 meets without spills
 * (ptxas picks 174 on sm_80 unbounded, i.e. 2 blocks). */
#define ATT_MIN_BLOCKS 3

/* raw (8 T) + b[0..7] in fp32, rounded to T; b == nullptr: raw unchanged. */
template <typename T> __device__ __forceinline__ uint4 add_bias8(uint4 raw, const float *b)
{
    if (!b) return raw;
    T v[8];
    memcpy(v, &raw, sizeof raw);
#pragma unroll
    for (int j = 0; j < 8; j++)
        v[j] = rr_from_f32<T>(rr_to_f32(v[j]) + b[j]);
    memcpy(&raw, v, sizeof raw);
    return raw;
}

template <typename T, int DH>
__global__ void __launch_bounds__(ATT_THREADS, ATT_MIN_BLOCKS)
    attention_kernel(const T *__restrict__ qkv, const float *__restrict__ qkv_b,
                     const rr_attn_tile *__restrict__ tiles, const int32_t *__restrict__ n_tiles,
                     int n_head, float scale_log2, T *__restrict__ ctx)
{
    constexpr int LDT = DH + 8;                    /* T; smem row stride (16-byte multiple) */
    constexpr int CH = DH / 8;                     /* 16-byte chunks per head row */
    constexpr int NCH = ATT_BK * CH / ATT_THREADS; /* K (and V) chunks per thread per block */
    constexpr int NT = ATT_BK / 8;                 /* n8 key tiles of S */
    constexpr int KD = DH / 16;                    /* k16 steps over dh (Q·Kᵀ) */
    constexpr int ND = DH / 8;                     /* n8 tiles of O */
    static_assert(ATT_THREADS % CH == 0 && NCH >= 1, "a thread's chunk column must be fixed");
    __shared__ __align__(16) T q_s[RR_ATTN_BQ * LDT];
    __shared__ __align__(16) T k_s[ATT_BK * LDT];
    __shared__ __align__(16) T v_s[ATT_BK * LDT];

    if ((int)blockIdx.x >= *n_tiles) return;
    const rr_attn_tile tile = tiles[blockIdx.x];
    const int h = blockIdx.y;
    const int d = n_head * DH;
    const size_t ld = 3 * (size_t)d;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, tq = lane & 3; /* fragment groupID, threadID_in_group */

    /* This thread's staging chunks: rows r0 + i·(ATT_THREADS/CH), one fixed column c0. */
    const int c0 = (tid % CH) * 8, r0 = tid / CH;
    const float *kbias = qkv_b ? qkv_b + d + h * DH + c0 : nullptr;
    const float *vbias = qkv_b ? qkv_b + 2 * d + h * DH + c0 : nullptr;
    const T *kv_base = qkv + (size_t)tile.kv_begin * ld + d + h * DH + c0;
    uint4 kr[NCH], vr[NCH];
    auto fetch = [&](int kb) {
#pragma unroll
        for (int i = 0; i < NCH; i++) {
            const int j = kb + r0 + i * (ATT_THREADS / CH);
            kr[i] = vr[i] = make_uint4(0u, 0u, 0u, 0u);
            if (j < tile.kv_len) {
                kr[i] = *reinterpret_cast<const uint4 *>(kv_base + (size_t)j * ld);
                vr[i] = *reinterpret_cast<const uint4 *>(kv_base + (size_t)j * ld + d);
            }
        }
    };
    fetch(0);

    for (int i = tid; i < RR_ATTN_BQ * CH; i += ATT_THREADS) {
        const int r = i / CH, c = (i % CH) * 8;
        uint4 raw = make_uint4(0u, 0u, 0u, 0u);
        if (r < tile.q_count) {
            raw = *reinterpret_cast<const uint4 *>(qkv + (size_t)(tile.q_begin + r) * ld + h * DH +
                                                   c);
            raw = add_bias8<T>(raw, qkv_b ? qkv_b + h * DH + c : nullptr);
        }
        *reinterpret_cast<uint4 *>(q_s + r * LDT + c) = raw;
    }
    __syncthreads();

    const bool active = warp * 16 < tile.q_count;
    float o[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++)
        o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m_r[2] = {-INFINITY, -INFINITY}, l_r[2] = {0.0f, 0.0f}; /* rows g, g + 8 */

    for (int kb = 0; kb < tile.kv_len; kb += ATT_BK) {
        __syncthreads(); /* previous key block fully consumed */
#pragma unroll
        for (int i = 0; i < NCH; i++) {
            const int j = r0 + i * (ATT_THREADS / CH);
            const bool ok = kb + j < tile.kv_len;
            *reinterpret_cast<uint4 *>(k_s + j * LDT + c0) =
                ok ? add_bias8<T>(kr[i], kbias) : kr[i];
            *reinterpret_cast<uint4 *>(v_s + j * LDT + c0) =
                ok ? add_bias8<T>(vr[i], vbias) : vr[i];
        }
        __syncthreads();
        if (kb + ATT_BK < tile.kv_len) fetch(kb + ATT_BK);
        if (!active) continue;

        /* Q fragments are re-read from smem each block rather than held for the whole loop:
         * 16 registers (dh 64) that the P·V phase needs more (4 LDSM per block). */
        uint32_t qf[KD][4];
        rr_ldmatrix_x4_n<KD, false>(qf, q_s + (warp * 16 + (lane & 15)) * LDT + (lane >> 4) * 8,
                                    16 * (int)sizeof(T));
        float s[NT][4];
#pragma unroll
        for (int j = 0; j < NT; j++)
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            /* S += Q·Kᵀ over dims 16kk…16kk+15: ldmatrix.x4 number jp gives the B fragments
             * of key tiles 2jp and 2jp + 1 (matrices: keys 16jp… × dims 16kk…, 16kk+8…, then
             * keys 16jp+8…), 16 key rows apart; then NT mma share the Q fragment. */
            uint32_t kf[NT / 2][4], kb_[NT][2];
            rr_ldmatrix_x4_n<NT / 2, false>(
                kf, k_s + ((lane >> 4) * 8 + (lane & 7)) * LDT + kk * 16 + ((lane >> 3) & 1) * 8,
                16 * LDT * (int)sizeof(T));
#pragma unroll
            for (int j = 0; j < NT; j++)
                kb_[j][0] = kf[j / 2][2 * (j & 1)], kb_[j][1] = kf[j / 2][2 * (j & 1) + 1];
            rr_mma_16816_n<T, NT>(s, qf[kk], kb_);
        }

        /* Online softmax on the accumulators: s[j][e] is row g + 8·(e/2), key
         * kb + 8j + 2·tq + e%2. Key kb is valid, so every row's block max is finite. */
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const bool ok = kb + 8 * j + 2 * tq + (e & 1) < tile.kv_len;
                s[j][e] = ok ? s[j][e] * scale_log2 : -INFINITY;
                mx[e >> 1] = fmaxf(mx[e >> 1], s[j][e]);
            }
        float alpha[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            const float m_new = fmaxf(m_r[r], mx[r]);
            alpha[r] = exp2f(m_r[r] - m_new);
            m_r[r] = m_new;
            l_r[r] *= alpha[r];
        }
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                s[j][e] = exp2f(s[j][e] - m_r[e >> 1]);
                l_r[e >> 1] += s[j][e];
            }
#pragma unroll
        for (int n = 0; n < ND; n++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                o[n][e] *= alpha[e >> 1];

#pragma unroll
        for (int kk = 0; kk < ATT_BK / 16; kk++) {
            /* O += P·V over keys 16kk…16kk+15: P's A fragment is S tiles 2kk and 2kk + 1
             * repacked; ldmatrix.x4.trans number np gives the B fragments of dim tiles 2np and
             * 2np + 1 (matrices: keys 16kk…, 16kk+8… × dims 16np…, then dims 16np+8…), 16
             * dims apart; then ND mma share the P fragment. */
            const uint32_t pf[4] = {rr_pack2<T>(s[2 * kk][0], s[2 * kk][1]),
                                    rr_pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                                    rr_pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                    rr_pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
            uint32_t vf[ND / 2][4], vb[ND][2];
            rr_ldmatrix_x4_n<ND / 2, true>(
                vf, v_s + (16 * kk + ((lane >> 3) & 1) * 8 + (lane & 7)) * LDT + (lane >> 4) * 8,
                16 * (int)sizeof(T));
#pragma unroll
            for (int n = 0; n < ND; n++)
                vb[n][0] = vf[n / 2][2 * (n & 1)], vb[n][1] = vf[n / 2][2 * (n & 1) + 1];
            rr_mma_16816_n<T, ND>(o, pf, vb);
        }
    }

    if (!active) return;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l_r[r] += __shfl_xor_sync(0xffffffffu, l_r[r], 1);
        l_r[r] += __shfl_xor_sync(0xffffffffu, l_r[r], 2);
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = warp * 16 + g + 8 * r;
        if (row >= tile.q_count) continue;
        const float inv = 1.0f / l_r[r];
        T *dst = ctx + (size_t)(tile.out_row + row) * d + h * DH + 2 * tq;
#pragma unroll
        for (int n = 0; n < ND; n++) {
            const uint32_t v = rr_pack2<T>(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
            *reinterpret_cast<uint32_t *>(dst + 8 * n) = v; /* 4-byte aligned: even column */
        }
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
    RR_NVTX_RANGE(__func__);
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
