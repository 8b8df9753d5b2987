/*
 * head.cu — the classification head over the [CLS] rows, and the row gather that collects
 * those rows for the [CLS]-only last layer.
 *
 * head: for each of n_seq rows x (T): h = act(dense_w·x + dense_b) (act = tanh for the BERT
 * pooler, exact GELU for ELECTRA's classifier.dense), logits[s,:] = out_w·h + out_b, fp32.
 * Two kernels, so that K = 1 is not one block walking d_model output rows in series:
 *   - head_dense_kernel: grid (n_seq, ceil(d/HEAD_ROWS)), 256 threads; the block stages x
 *     (fp32) in shared memory and each of its 8 warps computes 4 output rows of h at once
 *     (all four rows' weight loads in flight together), lanes striding the input dimension;
 *     x and the weights move as 16-byte loads when d % 8 == 0 and hidden and dense_w are
 *     16-byte aligned (else 2-byte loads); h goes to the caller's fp32 scratch `work`.
 *     MiniLM (d 384): 12 blocks per row.
 *   - head_out_kernel: one 128-thread block per row, a warp per label: logits = out_w·h +
 *     out_b (n_labels is 1 for every reranker we serve).
 * Summation order, fixed so a row's logits never depend on the other rows: a lane adds its
 * own columns in increasing order (in chunks of 8 on the vector path), then the warp's xor
 * butterfly (rr_warp_sum) adds the 32 lane sums; then + bias, then act.
 * At K = 1000 the dense weights are re-read per row from L2 (MiniLM: 0.3 MB) — a GEMM would
 * be cheaper above K ≈ 10⁴, which the engine never reaches (max_batch_tokens bounds n_seq).
 * Was (before 2026-12): one 256-thread block per row doing both products, each warp 48
 * dense rows one after another (one or two L2 round trips each): ≈17-42 µs at every K by
 * the review's estimate.
 * gather: out[s,:] = in[rows[s],:], one block per row.
 * ptxas: cuda/README.md lists registers for every instance (0 spills, no local memory).
 * Measured: not yet — compiled, not run (no GPU in this session).
 */
#include "common.cuh"

#define HEAD_THREADS 256
#define HEAD_RPW 4                               /* dense rows per warp, loads in flight together */
#define HEAD_ROWS (HEAD_RPW * HEAD_THREADS / 32) /* dense rows per block: 32 */

template <typename T, bool VEC>
__global__ void __launch_bounds__(HEAD_THREADS)
    head_dense_kernel(const T *__restrict__ hidden, int d, const T *__restrict__ dense_w,
                      const float *__restrict__ dense_b, int electra, float *__restrict__ h)
{
    __shared__ __align__(16) float xs[1024];
    const int s = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const T *x = hidden + (size_t)s * d;
    if (VEC) {
        for (int c = 8 * threadIdx.x; c < d; c += 8 * HEAD_THREADS) {
            float f[8];
            rr_load8(x + c, f);
#pragma unroll
            for (int e = 0; e < 8; e++)
                xs[c + e] = f[e];
        }
    } else {
        for (int c = threadIdx.x; c < d; c += HEAD_THREADS)
            xs[c] = rr_to_f32(x[c]);
    }
    __syncthreads();
    const int j0 = blockIdx.y * HEAD_ROWS + warp * HEAD_RPW;
    if (j0 >= d) return; /* after the only barrier */
    float acc[HEAD_RPW];
    const T *w[HEAD_RPW];
#pragma unroll
    for (int r = 0; r < HEAD_RPW; r++) {
        acc[r] = 0.0f;
        /* rows past d re-read row j0 (valid) and are never stored: no branch around loads */
        w[r] = dense_w + (size_t)(j0 + r < d ? j0 + r : j0) * d;
    }
    if (VEC) {
        for (int k = 8 * lane; k < d; k += 8 * 32) {
            float xv[8];
            rr_load8(xs + k, xv);
#pragma unroll
            for (int r = 0; r < HEAD_RPW; r++) {
                float wv[8];
                rr_load8(w[r] + k, wv);
#pragma unroll
                for (int e = 0; e < 8; e++)
                    acc[r] += wv[e] * xv[e];
            }
        }
    } else {
        for (int k = lane; k < d; k += 32) {
            const float xv = xs[k];
#pragma unroll
            for (int r = 0; r < HEAD_RPW; r++)
                acc[r] += rr_to_f32(w[r][k]) * xv;
        }
    }
#pragma unroll
    for (int r = 0; r < HEAD_RPW; r++) {
        const float a = rr_warp_sum(acc[r]);
        const int j = j0 + r;
        if (lane == 0 && j < d) {
            const float v = a + dense_b[j];
            h[(size_t)s * d + j] = electra ? rr_gelu_erf(v) : tanhf(v);
        }
    }
}

template <typename T>
__global__ void __launch_bounds__(128)
    head_out_kernel(const float *__restrict__ h, int d, int n_labels, const T *__restrict__ out_w,
                    const float *__restrict__ out_b, float *__restrict__ logits)
{
    const int s = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const float *hs = h + (size_t)s * d;
    for (int l = warp; l < n_labels; l += 128 / 32) {
        const T *w = out_w + (size_t)l * d;
        float acc = 0.0f;
        for (int k = lane; k < d; k += 32)
            acc += rr_to_f32(w[k]) * hs[k];
        acc = rr_warp_sum(acc);
        if (lane == 0) logits[(size_t)s * n_labels + l] = acc + out_b[l];
    }
}

template <typename T>
__global__ void __launch_bounds__(128)
    gather_rows_kernel(const T *__restrict__ in, const int32_t *__restrict__ rows, int d,
                       T *__restrict__ out)
{
    const int s = blockIdx.x;
    const T *src = in + (size_t)rows[s] * d;
    T *dst = out + (size_t)s * d;
    for (int c = threadIdx.x; c < d; c += blockDim.x)
        dst[c] = src[c];
}

template <typename T>
static cudaError_t launch_head(const void *hidden, int n_seq, int d, int n_labels,
                               const void *dense_w, const float *dense_b, const void *out_w,
                               const float *out_b, int electra, float *logits, float *work,
                               cudaStream_t stream)
{
    const dim3 grid(n_seq, (d + HEAD_ROWS - 1) / HEAD_ROWS);
    if (d % 8 == 0 && rr_aligned16(hidden) && rr_aligned16(dense_w))
        head_dense_kernel<T, true><<<grid, HEAD_THREADS, 0, stream>>>(
            (const T *)hidden, d, (const T *)dense_w, dense_b, electra, work);
    else
        head_dense_kernel<T, false><<<grid, HEAD_THREADS, 0, stream>>>(
            (const T *)hidden, d, (const T *)dense_w, dense_b, electra, work);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    head_out_kernel<T>
        <<<n_seq, 128, 0, stream>>>(work, d, n_labels, (const T *)out_w, out_b, logits);
    return cudaGetLastError();
}

extern "C" cudaError_t rr_head_cuda(const void *hidden, int n_seq, int d_model, int n_labels,
                                    const void *dense_w, const float *dense_b, const void *out_w,
                                    const float *out_b, int electra, float *logits, float *work,
                                    rr_dtype dt, cudaStream_t stream)
{
    RR_NVTX_RANGE(__func__);
    RR_LAUNCH_REQUIRE(hidden && dense_w && dense_b && out_w && out_b && logits && work);
    RR_LAUNCH_REQUIRE(n_seq >= 1 && d_model >= 1 && n_labels >= 1);
    RR_LAUNCH_REQUIRE(d_model <= 1024);
    RR_LAUNCH_REQUIRE(dt == RR_DTYPE_F16 || dt == RR_DTYPE_BF16);
    if (dt == RR_DTYPE_F16)
        return launch_head<__half>(hidden, n_seq, d_model, n_labels, dense_w, dense_b, out_w, out_b,
                                   electra, logits, work, stream);
    return launch_head<__nv_bfloat16>(hidden, n_seq, d_model, n_labels, dense_w, dense_b, out_w,
                                      out_b, electra, logits, work, stream);
}

extern "C" cudaError_t rr_gather_rows_cuda(const void *in, const int32_t *rows, int n_rows, int d,
                                           void *out, rr_dtype dt, cudaStream_t stream)
{
    RR_NVTX_RANGE(__func__);
    RR_LAUNCH_REQUIRE(in && rows && out);
    RR_LAUNCH_REQUIRE(in != out);
    RR_LAUNCH_REQUIRE(n_rows >= 1 && d >= 1);
    RR_LAUNCH_REQUIRE(dt == RR_DTYPE_F16 || dt == RR_DTYPE_BF16);
    if (dt == RR_DTYPE_F16)
        gather_rows_kernel<__half>
            <<<n_rows, 128, 0, stream>>>((const __half *)in, rows, d, (__half *)out);
    else
        gather_rows_kernel<__nv_bfloat16>
            <<<n_rows, 128, 0, stream>>>((const __nv_bfloat16 *)in, rows, d, (__nv_bfloat16 *)out);
    return cudaGetLastError();
}
