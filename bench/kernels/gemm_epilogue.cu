/*
 * gemm_epilogue.cu — under study: tensor-core GEMMs with fused exact epilogues (FFN1 + bias +
 * erf GELU; O-proj/FFN2 + bias + residual + LayerNorm). Contract and layouts:
 * gemm_epilogue.h; CPU reference: gemm_epilogue_ref.c; the source itself runs on the CPU in
 * tests/cuda/test_gemm_epilogue_host.cpp; device timing: bench_gemm_epilogue.cu.
 *
 * Why: cuBLAS has no exact-erf GELU epilogue (cuBLASLt's GELU_BIAS is the tanh form) and
 * no LayerNorm epilogue, so the engine writes the FFN1 output and the pre-LN tensor to
 * global memory and reads them back in separate passes (review 2026-12 §2, items 1 and 4).
 * A GEMM of our own also makes batch invariance structural (see the header).
 *
 * Shared main loop (warps as row groups × 4 column groups; wmma 16×16×16, T in, fp32
 * accumulators in registers): per k-step, the BM×BK slice of x and the BN×BK slice of w come
 * in as 16-byte loads into registers while the previous step's tensor-core work runs, then go
 * to one shared-memory buffer (rows past n_tok or n_out are zeros and are never read from
 * global memory). No cp.async: the host runtime that runs this source in CI models only
 * plain loads and static shared memory (≤ 48 KiB), and register prefetch hides the same
 * latency. Epilogue through a per-warp 16×16 fp32 staging tile (store_matrix_sync, then a
 * lane takes one row's 8 consecutive columns: one 16-byte store of T).
 *
 *   gelu: 256 threads, BM 128, BN 128, BK 32; warp tile 64×32 (4×2 fragments). Grid
 *         (n_out/128, n_tok/128). smem 10240 + 10240 + 10240 = 30720 B (static).
 *   ln:   BN = all of n_out (64·NF columns, NF = ceil(n_out/64) ∈ {2,4,6,8,12,16}), BK 16;
 *         warp tile 16 × 16·NF; BM 64 with 512 threads for NF ≤ 6 (n_out ≤ 384), BM 32 with
 *         256 threads above (the accumulators would not fit 128 registers). Grid n_tok/BM.
 *         After the k-loop three passes over the accumulators, each through the staging
 *         tile: (1) v += bias + residual, kept in the fragments, row sums; (2) Σ(v − mean)²;
 *         (3) normalise, scale, store. Per-row partial sums: a lane's 8 columns in order, its
 *         fragments in order, the two lanes of the row, then the 4 column groups in order —
 *         a fixed order, independent of n_tok.
 *         smem (NF 6, n_out 384): 3072 + 18432 + 20480 + 1536 = 43520 B; NF 16: 45312 B.
 *         The price of owning whole rows: every CTA streams all of w for only BM rows
 *         (bench/kernels/README.md estimates that L2 traffic).
 * ptxas (CUDA 13.0, sm_90, -Xptxas -v; fp16 / bf16 registers, 0 spills):
 *   gelu 157 / 162 (1 CTA per SM; __launch_bounds__(256, 2) gives 128 with a 48-B spill);
 *   ln NF 2: 62 / 56, 4: 82 / 64, 6: 118 / 94, 8: 164 / 124, 12: 237 / 238, 16: 254 / 252.
 * SASS (sm_90, cuobjdump): wmma becomes HMMA.16816.F32 (mma.sync; no wgmma), the k-slices
 * LDG.E.128 / STS.128. fp16 fragments load with LDSM (ldmatrix); bf16 fragments with
 * generic 32-bit LD.E (48 per k-step per thread in the GELU kernel) — nvcc's bf16 wmma load
 * does not use ldmatrix, so expect bf16 to be the slower type here.
 * Measured: not yet — compiled, not run (no GPU in this session).
 */
#include <mma.h>
#include <stdint.h>
#include <string.h>

#include "common.cuh"
#include "gemm_epilogue.h"

using namespace nvcuda;

#define GE_WC 4   /* column groups of warps (the row groups vary per kernel) */
#define GE_LDC 20 /* float; row stride of a warp's staging tile (16-byte multiple) */

typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> ge_acc;

/* R rows × BK columns of a row-major matrix (leading dimension ld) held as 16-byte chunks in
 * registers between its global load and its shared-memory store. Rows ≥ n_rows are zeros. */
template <typename T, int R, int BK, int NT> struct ge_slice {
    static constexpr int CPR = BK / 8; /* 16-byte chunks per row */
    static constexpr int NC = (R * CPR + NT - 1) / NT;
    uint4 v[NC];

    __device__ __forceinline__ void load(const T *src, int n_rows, int ld, int r0, int k0, int tid)
    {
#pragma unroll
        for (int i = 0; i < NC; i++) {
            const int idx = tid + i * NT;
            const int r = idx / CPR, c = idx % CPR * 8;
            v[i] = make_uint4(0u, 0u, 0u, 0u);
            if (idx < R * CPR && r0 + r < n_rows)
                v[i] = *reinterpret_cast<const uint4 *>(src + (size_t)(r0 + r) * ld + k0 + c);
        }
    }
    __device__ __forceinline__ void store(T *dst, int lds, int tid) const
    {
#pragma unroll
        for (int i = 0; i < NC; i++) {
            const int idx = tid + i * NT;
            if (idx < R * CPR)
                *reinterpret_cast<uint4 *>(dst + (idx / CPR) * lds + idx % CPR * 8) = v[i];
        }
    }
};

/* acc[FR][FC] = x[m0…m0+BM) · w[n0…n0+BN)ᵀ over all of K for this warp's tile: rows
 * 16·FR·(warp / GE_WC) …, columns 16·FC·(warp % GE_WC) … of the CTA tile. The k-order is
 * fixed (k-steps in order, 16-wide mma in order within a step). */
template <typename T, int NT, int BM, int BN, int BK, int LDA, int LDB, int FR, int FC>
__device__ __forceinline__ void ge_mainloop(const T *x, const T *w, int M, int N, int K, int m0,
                                            int n0, T *a_s, T *b_s, ge_acc (&acc)[FR][FC])
{
    const int tid = threadIdx.x, warp = tid >> 5;
    const int wr = warp / GE_WC, wc = warp % GE_WC;
#pragma unroll
    for (int i = 0; i < FR; i++)
#pragma unroll
        for (int j = 0; j < FC; j++)
            wmma::fill_fragment(acc[i][j], 0.0f);
    ge_slice<T, BM, BK, NT> ra;
    ge_slice<T, BN, BK, NT> rb;
    ra.load(x, M, K, m0, 0, tid);
    rb.load(w, N, K, n0, 0, tid);
    for (int k0 = 0; k0 < K; k0 += BK) {
        __syncthreads(); /* the previous step's fragments are loaded */
        ra.store(a_s, LDA, tid);
        rb.store(b_s, LDB, tid);
        __syncthreads();
        if (k0 + BK < K) { /* next step's loads in flight during this step's mma */
            ra.load(x, M, K, m0, k0 + BK, tid);
            rb.load(w, N, K, n0, k0 + BK, tid);
        }
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> af[FR];
#pragma unroll
            for (int i = 0; i < FR; i++)
                wmma::load_matrix_sync(af[i], a_s + (wr * FR + i) * 16 * LDA + kk, LDA);
#pragma unroll
            for (int j = 0; j < FC; j++) {
                /* w is [n, k] row-major: as the k×n operand it is column-major. */
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bf;
                wmma::load_matrix_sync(bf, b_s + (wc * FC + j) * 16 * LDB + kk, LDB);
#pragma unroll
                for (int i = 0; i < FR; i++)
                    wmma::mma_sync(acc[i][j], af[i], bf, acc[i][j]);
            }
        }
    }
}

#define GE_GELU_THREADS 256

template <typename T>
__global__ void __launch_bounds__(GE_GELU_THREADS)
    gemm_bias_gelu_kernel(const T *__restrict__ x, const T *__restrict__ w,
                          const float *__restrict__ bias, int M, int N, int K, T *__restrict__ y)
{
    constexpr int NT = GE_GELU_THREADS, BM = 128, BN = 128, BK = 32, LD = BK + 8, FR = 4, FC = 2;
    __shared__ __align__(128) T a_s[BM * LD];
    __shared__ __align__(128) T b_s[BN * LD];
    __shared__ __align__(128) float c_s[NT / 32][16 * GE_LDC];

    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    ge_acc acc[FR][FC];
    ge_mainloop<T, NT, BM, BN, BK, LD, LD, FR, FC>(x, w, M, N, K, m0, n0, a_s, b_s, acc);

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int wr = warp / GE_WC, wc = warp % GE_WC;
    /* A lane reads row lane & 15, columns 8·(lane >> 4) …: not the elements it owns in the
     * fragment (the layout is unspecified), hence the __syncwarp around every staging use. */
    const int r = lane & 15, c8 = (lane >> 4) * 8;
    float *cw = c_s[warp];
#pragma unroll
    for (int i = 0; i < FR; i++)
#pragma unroll
        for (int j = 0; j < FC; j++) {
            wmma::store_matrix_sync(cw, acc[i][j], GE_LDC, wmma::mem_row_major);
            __syncwarp();
            const int row = m0 + (wr * FR + i) * 16 + r;
            const int col = n0 + (wc * FC + j) * 16 + c8;
            if (row < M && col < N) {
                float v[8];
#pragma unroll
                for (int e = 0; e < 8; e++)
                    v[e] = rr_gelu_erf(cw[r * GE_LDC + c8 + e] + bias[col + e]);
                rr_store8(y + (size_t)row * N + col, v);
            }
            __syncwarp(); /* staging tile read before the next fragment overwrites it */
        }
}

/* Row groups of warps of the LayerNorm GEMM: 4 (BM 64, 512 threads) while a lane's
 * accumulators fit the 128 registers that 512 threads allow, else 2 (BM 32, 256 threads). */
#define GE_LN_WR(NF) ((NF) <= 6 ? 4 : 2)

template <typename T, int NF>
__global__ void __launch_bounds__(32 * GE_WC * GE_LN_WR(NF))
    gemm_bias_residual_ln_kernel(const T *__restrict__ x, const T *__restrict__ w,
                                 const float *__restrict__ bias, const T *residual,
                                 const float *__restrict__ gamma, const float *__restrict__ beta,
                                 float eps, int M, int N, int K, T *y)
{
    /* The w slice's row stride is padded (fewer bank conflicts) while the static 48 KiB allow
     * it, unpadded for n_out > 512. */
    constexpr int NT = 32 * GE_WC * GE_LN_WR(NF), BM = 16 * GE_LN_WR(NF), BN = 64 * NF, BK = 16;
    constexpr int LDA = BK + 8, LDB = NF <= 8 ? 24 : 16;
    __shared__ __align__(128) T a_s[BM * LDA];
    __shared__ __align__(128) T b_s[BN * LDB];
    __shared__ __align__(128) float c_s[NT / 32][16 * GE_LDC];
    __shared__ float part_s[BM][GE_WC];
    __shared__ float mean_s[BM], rstd_s[BM];

    const int m0 = blockIdx.x * BM;
    ge_acc acc[1][NF];
    ge_mainloop<T, NT, BM, BN, BK, LDA, LDB, 1, NF>(x, w, M, N, K, m0, 0, a_s, b_s, acc);

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wr = warp / GE_WC, wc = warp % GE_WC;
    /* A lane reads row lane & 15, columns 8·(lane >> 4) …: not the elements it owns in the
     * fragment (the layout is unspecified), hence the __syncwarp around every staging use. */
    const int r = lane & 15, c8 = (lane >> 4) * 8;
    const int rt = wr * 16 + r, row = m0 + rt; /* this lane's row in the tile, in the matrix */
    float *cw = c_s[warp];

    /* Pass 1: v = acc + bias + residual, written back into the fragments; row sums. Fragments
     * wholly past n_out (a multiple of 16) hold zeros and take no part (warp-uniform skip). */
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < NF; j++) {
        const int col0 = (wc * NF + j) * 16;
        if (col0 >= N) continue;
        wmma::store_matrix_sync(cw, acc[0][j], GE_LDC, wmma::mem_row_major);
        __syncwarp();
        const int col = col0 + c8;
        T res[8];
        uint4 raw = make_uint4(0u, 0u, 0u, 0u);
        if (row < M) raw = *reinterpret_cast<const uint4 *>(residual + (size_t)row * N + col);
        memcpy(res, &raw, sizeof raw);
#pragma unroll
        for (int e = 0; e < 8; e++) {
            const float v = cw[r * GE_LDC + c8 + e] + bias[col + e] + rr_to_f32(res[e]);
            cw[r * GE_LDC + c8 + e] = v;
            s += v;
        }
        __syncwarp();
        wmma::load_matrix_sync(acc[0][j], cw, GE_LDC, wmma::mem_row_major);
        __syncwarp();
    }
    s += __shfl_xor_sync(0xffffffffu, s, 16); /* lanes r and r + 16 share row r */
    if (lane < 16) part_s[rt][wc] = s;
    __syncthreads();
    if (tid < BM) {
        float t = 0.0f;
#pragma unroll
        for (int q = 0; q < GE_WC; q++)
            t += part_s[tid][q];
        mean_s[tid] = t / (float)N;
    }
    __syncthreads();

    /* Pass 2: the biased variance of the centred values. */
    const float mean = mean_s[rt];
    float q2 = 0.0f;
#pragma unroll
    for (int j = 0; j < NF; j++) {
        if ((wc * NF + j) * 16 >= N) continue;
        wmma::store_matrix_sync(cw, acc[0][j], GE_LDC, wmma::mem_row_major);
        __syncwarp();
#pragma unroll
        for (int e = 0; e < 8; e++) {
            const float d = cw[r * GE_LDC + c8 + e] - mean;
            q2 += d * d;
        }
        __syncwarp();
    }
    q2 += __shfl_xor_sync(0xffffffffu, q2, 16);
    if (lane < 16) part_s[rt][wc] = q2;
    __syncthreads();
    if (tid < BM) {
        float t = 0.0f;
#pragma unroll
        for (int q = 0; q < GE_WC; q++)
            t += part_s[tid][q];
        rstd_s[tid] = rsqrtf(t / (float)N + eps);
    }
    __syncthreads();

    /* Pass 3: normalise, scale, shift, store. */
    const float rstd = rstd_s[rt];
#pragma unroll
    for (int j = 0; j < NF; j++) {
        const int col0 = (wc * NF + j) * 16;
        if (col0 >= N) continue;
        wmma::store_matrix_sync(cw, acc[0][j], GE_LDC, wmma::mem_row_major);
        __syncwarp();
        const int col = col0 + c8;
        if (row < M) {
            float v[8];
#pragma unroll
            for (int e = 0; e < 8; e++)
                v[e] = (cw[r * GE_LDC + c8 + e] - mean) * rstd * gamma[col + e] + beta[col + e];
            rr_store8(y + (size_t)row * N + col, v);
        }
        __syncwarp();
    }
}

/* y overlaps [p, p + bytes)? */
static bool ge_overlap(const void *y, size_t y_bytes, const void *p, size_t bytes)
{
    const uintptr_t a = (uintptr_t)y, b = (uintptr_t)p;
    return a < b + bytes && b < a + y_bytes;
}

template <typename T>
static cudaError_t launch_gelu(const void *x, const void *w, const float *bias, int n_tok, int n_in,
                               int n_out, void *y, cudaStream_t stream)
{
    const dim3 grid((unsigned)((n_out + 127) / 128), (unsigned)((n_tok + 127) / 128));
    gemm_bias_gelu_kernel<T><<<grid, GE_GELU_THREADS, 0, stream>>>((const T *)x, (const T *)w, bias,
                                                                   n_tok, n_out, n_in, (T *)y);
    return cudaGetLastError();
}

extern "C" cudaError_t rr_gemm_bias_gelu_cuda(const void *x, const void *w, const float *bias,
                                              int n_tok, int n_in, int n_out, void *y, rr_dtype dt,
                                              cudaStream_t stream)
{
    RR_LAUNCH_REQUIRE(x && w && bias && y && n_tok >= 1 && n_tok <= 65535 * 128);
    RR_LAUNCH_REQUIRE(n_in >= 32 && n_in % 32 == 0 && n_out >= 16 && n_out % 16 == 0);
    RR_LAUNCH_REQUIRE(rr_aligned16(x) && rr_aligned16(w) && rr_aligned16(y));
    const size_t yb = (size_t)n_tok * n_out * 2;
    RR_LAUNCH_REQUIRE(!ge_overlap(y, yb, x, (size_t)n_tok * n_in * 2) &&
                      !ge_overlap(y, yb, w, (size_t)n_out * n_in * 2));
    if (dt == RR_DTYPE_F16) return launch_gelu<__half>(x, w, bias, n_tok, n_in, n_out, y, stream);
    if (dt == RR_DTYPE_BF16)
        return launch_gelu<__nv_bfloat16>(x, w, bias, n_tok, n_in, n_out, y, stream);
    return cudaErrorInvalidValue;
}

template <typename T, int NF>
static cudaError_t launch_ln_nf(const void *x, const void *w, const float *bias,
                                const void *residual, const float *gamma, const float *beta,
                                float eps, int n_tok, int n_in, int n_out, void *y,
                                cudaStream_t stream)
{
    constexpr int bm = 16 * GE_LN_WR(NF);
    const unsigned grid = (unsigned)((n_tok + bm - 1) / bm);
    gemm_bias_residual_ln_kernel<T, NF><<<grid, 32 * GE_WC * GE_LN_WR(NF), 0, stream>>>(
        (const T *)x, (const T *)w, bias, (const T *)residual, gamma, beta, eps, n_tok, n_out, n_in,
        (T *)y);
    return cudaGetLastError();
}

template <typename T>
static cudaError_t launch_ln(const void *x, const void *w, const float *bias, const void *residual,
                             const float *gamma, const float *beta, float eps, int n_tok, int n_in,
                             int n_out, void *y, cudaStream_t stream)
{
    const int nf = (n_out + 63) / 64;
#define GE_LN(NF)                                                                                  \
    return launch_ln_nf<T, NF>(x, w, bias, residual, gamma, beta, eps, n_tok, n_in, n_out, y,      \
                               stream)
    if (nf <= 2) GE_LN(2);
    if (nf <= 4) GE_LN(4);
    if (nf <= 6) GE_LN(6);
    if (nf <= 8) GE_LN(8);
    if (nf <= 12) GE_LN(12);
    GE_LN(16);
#undef GE_LN
}

extern "C" cudaError_t rr_gemm_bias_residual_ln_cuda(const void *x, const void *w,
                                                     const float *bias, const void *residual,
                                                     const float *gamma, const float *beta,
                                                     float eps, int n_tok, int n_in, int n_out,
                                                     void *y, rr_dtype dt, cudaStream_t stream)
{
    RR_LAUNCH_REQUIRE(x && w && bias && residual && gamma && beta && y && n_tok >= 1);
    RR_LAUNCH_REQUIRE(n_in >= 32 && n_in % 32 == 0 && n_out >= 16 && n_out % 16 == 0 &&
                      n_out <= 1024);
    RR_LAUNCH_REQUIRE(rr_aligned16(x) && rr_aligned16(w) && rr_aligned16(y) &&
                      rr_aligned16(residual));
    const size_t yb = (size_t)n_tok * n_out * 2;
    RR_LAUNCH_REQUIRE(!ge_overlap(y, yb, x, (size_t)n_tok * n_in * 2) &&
                      !ge_overlap(y, yb, w, (size_t)n_out * n_in * 2));
    if (dt == RR_DTYPE_F16)
        return launch_ln<__half>(x, w, bias, residual, gamma, beta, eps, n_tok, n_in, n_out, y,
                                 stream);
    if (dt == RR_DTYPE_BF16)
        return launch_ln<__nv_bfloat16>(x, w, bias, residual, gamma, beta, eps, n_tok, n_in, n_out,
                                        y, stream);
    return cudaErrorInvalidValue;
}
