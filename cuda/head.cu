/*
 * head.cu — the classification head over the [CLS] rows, and the row gather that collects
 * those rows for the [CLS]-only last layer.
 *
 * head: for each of n_seq rows x (T): h = act(dense_w·x + dense_b) (act = tanh for the BERT
 * pooler, exact GELU for ELECTRA's classifier.dense), logits[s,:] = out_w·h + out_b, fp32.
 * Launch: one 256-thread block per row; x and h live in shared memory as fp32
 * (2·d_model floats ≤ 8 KiB); warp w computes outputs w, w+8, … with lanes striding the
 * input dimension (coalesced weight rows) and a shuffle reduction in a fixed order, so a
 * row's logits never depend on the other rows. At K = 1000 the dense weights are re-read
 * per row from L2 (MiniLM: 0.3 MB each) — a GEMM would be cheaper above K ≈ 10⁴, which
 * the engine never reaches (max_batch_tokens bounds n_seq).
 * gather: out[s,:] = in[rows[s],:], one block per row.
 * ptxas (CUDA 13.0 -Xptxas -v; registers sm_80 / 86 / 89 / 90; 0 spills on every arch):
 * head_kernel fp16 32 / 40 / 40 / 32, bf16 32 / 39 / 39 / 32, 8192 B static smem;
 * gather_rows_kernel 16 on every arch, no shared memory.
 * Measured: not yet — compiled, not run (no GPU in this session).
 */
#include "common.cuh"

#define HEAD_THREADS 256

template <typename T>
__global__ void __launch_bounds__(HEAD_THREADS)
    head_kernel(const T *__restrict__ hidden, int d, int n_labels, const T *__restrict__ dense_w,
                const float *__restrict__ dense_b, const T *__restrict__ out_w,
                const float *__restrict__ out_b, int electra, float *__restrict__ logits)
{
    __shared__ float xs[1024], hs[1024];
    const int s = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int n_warps = HEAD_THREADS / 32;
    const T *x = hidden + (size_t)s * d;
    for (int c = threadIdx.x; c < d; c += HEAD_THREADS)
        xs[c] = rr_to_f32(x[c]);
    __syncthreads();
    for (int j = warp; j < d; j += n_warps) {
        const T *w = dense_w + (size_t)j * d;
        float acc = 0.0f;
        for (int k = lane; k < d; k += 32)
            acc += rr_to_f32(w[k]) * xs[k];
        acc = rr_warp_sum(acc) + dense_b[j];
        if (lane == 0) hs[j] = electra ? rr_gelu_erf(acc) : tanhf(acc);
    }
    __syncthreads();
    for (int l = warp; l < n_labels; l += n_warps) {
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

extern "C" cudaError_t rr_head_cuda(const void *hidden, int n_seq, int d_model, int n_labels,
                                    const void *dense_w, const float *dense_b, const void *out_w,
                                    const float *out_b, int electra, float *logits, rr_dtype dt,
                                    cudaStream_t stream)
{
    RR_LAUNCH_REQUIRE(hidden && dense_w && dense_b && out_w && out_b && logits);
    RR_LAUNCH_REQUIRE(n_seq >= 1 && d_model >= 1 && d_model <= 1024 && n_labels >= 1);
    if (dt == RR_DTYPE_F16)
        head_kernel<__half><<<n_seq, HEAD_THREADS, 0, stream>>>(
            (const __half *)hidden, d_model, n_labels, (const __half *)dense_w, dense_b,
            (const __half *)out_w, out_b, electra, logits);
    else if (dt == RR_DTYPE_BF16)
        head_kernel<__nv_bfloat16><<<n_seq, HEAD_THREADS, 0, stream>>>(
            (const __nv_bfloat16 *)hidden, d_model, n_labels, (const __nv_bfloat16 *)dense_w,
            dense_b, (const __nv_bfloat16 *)out_w, out_b, electra, logits);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}

extern "C" cudaError_t rr_gather_rows_cuda(const void *in, const int32_t *rows, int n_rows, int d,
                                           void *out, rr_dtype dt, cudaStream_t stream)
{
    RR_LAUNCH_REQUIRE(in && rows && out && in != out && n_rows >= 1 && d >= 1);
    if (dt == RR_DTYPE_F16)
        gather_rows_kernel<__half>
            <<<n_rows, 128, 0, stream>>>((const __half *)in, rows, d, (__half *)out);
    else if (dt == RR_DTYPE_BF16)
        gather_rows_kernel<__nv_bfloat16>
            <<<n_rows, 128, 0, stream>>>((const __nv_bfloat16 *)in, rows, d, (__nv_bfloat16 *)out);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}
