/*
 * embed_ln.cu — embedding gather (word + position + token type) fused with LayerNorm.
 *
 * out[t,:] = LayerNorm(word[tok] + pos[p] + type[ty]) with (tok, ty, p) = toks[t], the
 * triples the engine builds while packing (p = t − start of t's sequence). Tables in T
 * (fp16/bf16), sum and statistics in fp32, gamma/beta fp32, out in T.
 * Launch: one warp per row, RR_ROWS_PER_BLOCK rows per 128-thread block; one pass over
 * the tables, one write, coalesced. Two paths, chosen per call by the launcher:
 *   - vector (d % 8 == 0 and the three tables, gamma, beta and out 16-byte aligned):
 *     each lane holds NC = ceil(d/256) chunks of 8 columns, read and written as 16-byte
 *     accesses (LDG.E.128 / STG.E.128, asserted by tests/cuda/sass_check.sh);
 *   - scalar (any other d ≤ 1024): NV = ceil(d/32) values per lane, 2-byte accesses.
 * NV and NC are template parameters, so the row stays in registers (no local memory).
 * ptxas: cuda/README.md lists registers for every instance (0 spills, no local memory).
 * Measured: not yet — compiled, not run (no GPU in this session).
 */
#include "common.cuh"

template <typename T, int NV>
__global__ void __launch_bounds__(32 * RR_ROWS_PER_BLOCK)
    embed_ln_kernel(const rr_tok3 *__restrict__ toks, int n_tok, const T *__restrict__ word,
                    const T *__restrict__ pos, const T *__restrict__ type,
                    const float *__restrict__ gamma, const float *__restrict__ beta, float eps,
                    int d, T *__restrict__ out)
{
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * RR_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= n_tok) return;
    const rr_tok3 k = toks[row];
    const T *w = word + (size_t)k.token * d;
    const T *p = pos + (size_t)k.pos * d;
    const T *ty = type + (size_t)k.type * d;
    float v[NV];
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int c = lane + 32 * i;
        v[i] = c < d ? rr_to_f32(w[c]) + rr_to_f32(p[c]) + rr_to_f32(ty[c]) : 0.0f;
    }
    rr_warp_row_ln<NV>(v, d, gamma, beta, eps, out + (size_t)row * d, lane);
}

template <typename T, int NC>
__global__ void __launch_bounds__(32 * RR_ROWS_PER_BLOCK)
    embed_ln_vec_kernel(const rr_tok3 *__restrict__ toks, int n_tok, const T *__restrict__ word,
                        const T *__restrict__ pos, const T *__restrict__ type,
                        const float *__restrict__ gamma, const float *__restrict__ beta, float eps,
                        int d, T *__restrict__ out)
{
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * RR_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= n_tok) return;
    const rr_tok3 k = toks[row];
    const T *w = word + (size_t)k.token * d;
    const T *p = pos + (size_t)k.pos * d;
    const T *ty = type + (size_t)k.type * d;
    float v[NC][8];
#pragma unroll
    for (int i = 0; i < NC; i++) {
        const int c = 8 * (lane + 32 * i);
        if (c < d) {
            float a[8], b[8], e[8];
            rr_load8(w + c, a);
            rr_load8(p + c, b);
            rr_load8(ty + c, e);
#pragma unroll
            for (int j = 0; j < 8; j++)
                v[i][j] = a[j] + b[j] + e[j];
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++)
                v[i][j] = 0.0f;
        }
    }
    rr_warp_row_ln8<NC>(v, d, gamma, beta, eps, out + (size_t)row * d, lane);
}

template <typename T>
static cudaError_t launch(const rr_tok3 *toks, int n_tok, const void *word, const void *pos,
                          const void *type, const float *gamma, const float *beta, float eps, int d,
                          void *out, cudaStream_t stream)
{
    const dim3 grid((n_tok + RR_ROWS_PER_BLOCK - 1) / RR_ROWS_PER_BLOCK);
    const bool vec = d % 8 == 0 && rr_aligned16(word) && rr_aligned16(pos) && rr_aligned16(type) &&
                     rr_aligned16(gamma) && rr_aligned16(beta) && rr_aligned16(out);
    if (vec) {
        RR_DISPATCH_NC(d, embed_ln_vec_kernel<T, NC><<<grid, 32 * RR_ROWS_PER_BLOCK, 0, stream>>>(
                              toks, n_tok, (const T *)word, (const T *)pos, (const T *)type, gamma,
                              beta, eps, d, (T *)out));
        return cudaGetLastError();
    }
    RR_DISPATCH_NV(d, embed_ln_kernel<T, NV><<<grid, 32 * RR_ROWS_PER_BLOCK, 0, stream>>>(
                          toks, n_tok, (const T *)word, (const T *)pos, (const T *)type, gamma,
                          beta, eps, d, (T *)out));
    return cudaGetLastError();
}

extern "C" cudaError_t rr_embed_ln_cuda(const rr_tok3 *toks, int n_tok, const void *word,
                                        const void *pos, const void *type, const float *gamma,
                                        const float *beta, float eps, int d, void *out, rr_dtype dt,
                                        cudaStream_t stream)
{
    RR_NVTX_RANGE(__func__);
    RR_LAUNCH_REQUIRE(toks && word && pos && type && gamma && beta && out);
    RR_LAUNCH_REQUIRE(n_tok >= 1 && d >= 1);
    RR_LAUNCH_REQUIRE(d <= 1024);
    RR_LAUNCH_REQUIRE(dt == RR_DTYPE_F16 || dt == RR_DTYPE_BF16);
    if (dt == RR_DTYPE_F16)
        return launch<__half>(toks, n_tok, word, pos, type, gamma, beta, eps, d, out, stream);
    return launch<__nv_bfloat16>(toks, n_tok, word, pos, type, gamma, beta, eps, d, out, stream);
}
