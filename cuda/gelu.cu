/*
 * gelu.cu — elementwise epilogues of a GEMM without a bias: bias + exact erf GELU (FFN1)
 * and a plain bias add (ELECTRA's embeddings_project).
 *
 * x[t,c] = gelu_erf(x[t,c] + bias[c]) / x[t,c] + bias[c], in place; x T, bias fp32,
 * arithmetic fp32 (exact erff, as transformers' "gelu"). Memory-bound: one read and one
 * write of x. Two paths, chosen per call by the launcher:
 *   - vector (d % 8 == 0, x and bias 16-byte aligned, n_tok·d/8 < 2³¹): one thread per
 *     chunk of 8 elements of a row, 256-thread blocks over the flat chunk index, 32-bit
 *     index math (chunk i is column 8·(i mod d/8)); x moves as one 16-byte load and store,
 *     the bias as two 16-byte loads (L1-resident) — LDG.E.128 / STG.E.128, asserted by
 *     tests/cuda/sass_check.sh;
 *   - scalar (any other shape): one thread per element, 64-bit flat index.
 * Was (before 2026-12): the scalar path only — one 2-byte element per thread and a 64-bit
 * remainder per element, ≈80 SASS instructions per element (the review's R5), estimated
 * at ≈0.33 ms per layer at K=1000 against a ≈0.17 ms memory floor.
 * Tried: the cuBLASLt GELU_BIAS epilogue — its GELU is the tanh approximation, which
 * transformers' "gelu" is not (max difference ~5e-4 per element, accumulating).
 * ptxas: cuda/README.md lists registers for every instance (0 spills, no local memory).
 * Measured: not yet — compiled, not run (no GPU in this session).
 */
#include "common.cuh"

#define ACT_THREADS 256

template <typename T, bool GELU>
__global__ void __launch_bounds__(ACT_THREADS)
    bias_act_kernel(T *__restrict__ x, const float *__restrict__ bias, size_t n, int d)
{
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float v = rr_to_f32(x[i]) + bias[i % (size_t)d];
    x[i] = rr_from_f32<T>(GELU ? rr_gelu_erf(v) : v);
}

template <typename T, bool GELU>
__global__ void __launch_bounds__(ACT_THREADS)
    bias_act_vec_kernel(T *__restrict__ x, const float *__restrict__ bias, unsigned n8, unsigned d8)
{
    const unsigned i = blockIdx.x * ACT_THREADS + threadIdx.x;
    if (i >= n8) return;
    const unsigned c = 8 * (i % d8);
    float v[8], b[8];
    rr_load8(x + 8 * (size_t)i, v);
    rr_load8(bias + c, b);
#pragma unroll
    for (int j = 0; j < 8; j++)
        v[j] = GELU ? rr_gelu_erf(v[j] + b[j]) : v[j] + b[j];
    rr_store8(x + 8 * (size_t)i, v);
}

template <typename T, bool GELU>
static cudaError_t launch(void *x, const float *bias, int n_tok, int d, cudaStream_t stream)
{
    const size_t n = (size_t)n_tok * d;
    if (d % 8 == 0 && rr_aligned16(x) && rr_aligned16(bias) && n / 8 < (1u << 31)) {
        const unsigned n8 = (unsigned)(n / 8);
        bias_act_vec_kernel<T, GELU>
            <<<(n8 + ACT_THREADS - 1) / ACT_THREADS, ACT_THREADS, 0, stream>>>((T *)x, bias, n8,
                                                                               (unsigned)d / 8);
    } else {
        const unsigned blocks = (unsigned)((n + ACT_THREADS - 1) / ACT_THREADS);
        bias_act_kernel<T, GELU><<<blocks, ACT_THREADS, 0, stream>>>((T *)x, bias, n, d);
    }
    return cudaGetLastError();
}

extern "C" cudaError_t rr_bias_gelu_cuda(void *x, const float *bias, int n_tok, int d, rr_dtype dt,
                                         cudaStream_t stream)
{
    RR_NVTX_RANGE(__func__);
    RR_LAUNCH_REQUIRE(x && bias);
    RR_LAUNCH_REQUIRE(n_tok >= 1 && d >= 1);
    RR_LAUNCH_REQUIRE(dt == RR_DTYPE_F16 || dt == RR_DTYPE_BF16);
    if (dt == RR_DTYPE_F16) return launch<__half, true>(x, bias, n_tok, d, stream);
    return launch<__nv_bfloat16, true>(x, bias, n_tok, d, stream);
}

extern "C" cudaError_t rr_add_bias_cuda(void *x, const float *bias, int n_tok, int d, rr_dtype dt,
                                        cudaStream_t stream)
{
    RR_NVTX_RANGE(__func__);
    RR_LAUNCH_REQUIRE(x && bias);
    RR_LAUNCH_REQUIRE(n_tok >= 1 && d >= 1);
    RR_LAUNCH_REQUIRE(dt == RR_DTYPE_F16 || dt == RR_DTYPE_BF16);
    if (dt == RR_DTYPE_F16) return launch<__half, false>(x, bias, n_tok, d, stream);
    return launch<__nv_bfloat16, false>(x, bias, n_tok, d, stream);
}
