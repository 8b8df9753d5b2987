/*
 * gemm_epilogue.h — a kernel variant under study (bench/kernels/, llm.c dev/cuda style): GEMMs
 * of our own with the elementwise work of the layer fused into their epilogue, so the FFN1
 * output and the pre-LayerNorm tensor never travel through global memory.
 *
 *   rr_gemm_bias_gelu_cuda:         y = gelu_erf(x·wᵀ + bias)                 (FFN1)
 *   rr_gemm_bias_residual_ln_cuda:  y = LayerNorm(x·wᵀ + bias + residual)     (O-proj, FFN2)
 *
 * Layouts as in the engine: x[n_tok, n_in] row-major (T), w[n_out, n_in] row-major as PyTorch
 * stores a Linear weight (T), y and residual [n_tok, n_out] (T), bias/gamma/beta fp32; T is
 * fp16 or bf16 (dt). Products are accumulated in fp32 on the tensor cores (wmma 16×16×16);
 * the epilogue is fp32 (exact erf GELU; LayerNorm with a two-pass mean/variance) and rounds
 * to T once, at the store.
 *
 * Batch invariance is structural: the tile that holds a row (rows m0 … m0+BM−1, m0 a multiple
 * of BM), the k-order of its dot products and the order of the LayerNorm sums are fixed by
 * the kernel and the row index alone, never by n_tok, so row t of the result is bitwise the
 * same whatever the other rows of the call are and however many there are. Rows ≥ n_tok are
 * never read or written (the engine's buffers are sized exactly).
 *
 * Preconditions (cudaErrorInvalidValue otherwise): n_tok ≥ 1; n_in a multiple of 32;
 * n_out a multiple of 16 (≤ 1024 for the LayerNorm GEMM, whose CTA owns whole rows);
 * x, w, y, residual 16-byte aligned; y does not overlap x or w. y may equal residual (each
 * CTA reads its residual rows before it writes the same rows). The reference functions
 * rr_gemm_*_ref (gemm_epilogue_ref.c) compute the same math in double.
 */
#ifndef RR_BENCH_GEMM_EPILOGUE_H
#define RR_BENCH_GEMM_EPILOGUE_H

#include <cuda_runtime_api.h>

#include "rerank.h"

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t rr_gemm_bias_gelu_cuda(const void *x, const void *w, const float *bias, int n_tok,
                                   int n_in, int n_out, void *y, rr_dtype dt, cudaStream_t stream);

cudaError_t rr_gemm_bias_residual_ln_cuda(const void *x, const void *w, const float *bias,
                                          const void *residual, const float *gamma,
                                          const float *beta, float eps, int n_tok, int n_in,
                                          int n_out, void *y, rr_dtype dt, cudaStream_t stream);

/* References in double over the same (already rounded) inputs given as fp32: y[n_tok, n_out]. */
void rr_gemm_bias_gelu_ref(const float *x, const float *w, const float *bias, int n_tok, int n_in,
                           int n_out, double *y);
void rr_gemm_bias_residual_ln_ref(const float *x, const float *w, const float *bias,
                                  const float *residual, const float *gamma, const float *beta,
                                  float eps, int n_tok, int n_in, int n_out, double *y);

#ifdef __cplusplus
}
#endif
#endif /* RR_BENCH_GEMM_EPILOGUE_H */
