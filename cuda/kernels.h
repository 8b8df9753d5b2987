/*
 * kernels.h — the launchers of the CUDA engine, callable from C (the engine and tests).
 *
 * Each rr_<op>_cuda mirrors rr_<op>_cpu of src/engine/ops.h with the stream last. What
 * differs, and why:
 *   - Activations and weight matrices are device pointers of element type `dt` (fp16 or
 *     bf16; rr_dtype of rerank.h); biases, LayerNorm gamma/beta and logits are fp32.
 *   - Sizes that vary per batch are split in two so a CUDA graph captured for a
 *     token-count bucket stays exact (see engine_cuda.cu): the host passes the bucket's
 *     upper bound (which sizes the grid) and, where a kernel must know the true count, a
 *     device pointer to it. Row-wise ops simply process every row up to the bound: rows
 *     past the batch hold stale but finite values and are never read back.
 *   - The embedding takes per-token (token, type, position) triples built by the host
 *     while packing, instead of cu_seqlens, so no kernel searches the prefix sums.
 *   - Attention takes a tile list built on the host (rr_attention_tiles) instead of
 *     cu_seqlens/q_rows, and adds the QKV bias while loading (the GEMM has no epilogue).
 * Every launcher checks its preconditions (cudaErrorInvalidValue, with the failed condition
 * printed to stderr) and returns the launch status; it never synchronizes. The row-wise
 * kernels (embedding, LayerNorm, bias+GELU, bias add, head) take a 16-byte vector path
 * when d % 8 == 0 and their pointers are 16-byte aligned, and a scalar path otherwise.
 */
#ifndef RR_CUDA_KERNELS_H
#define RR_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "rerank.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One packed token as the embedding reads it. */
typedef struct rr_tok3 {
    int32_t token, type, pos;
} rr_tok3;

/* One attention work item: up to RR_ATTN_BQ query rows of one sequence against all of
 * that sequence's keys. Query rows q_begin … q_begin+q_count-1 (packed token indices) are
 * written to ctx rows out_row … out_row+q_count-1. */
typedef struct rr_attn_tile {
    int32_t kv_begin, kv_len;
    int32_t q_begin, q_count;
    int32_t out_row, pad_;
} rr_attn_tile;

#define RR_ATTN_BQ 64 /* query rows per tile (4 warps × 16 rows) */

/* Host: builds the tile list of a packed batch. cls_only = 0: every query row, tiles of
 * RR_ATTN_BQ rows starting at multiples of RR_ATTN_BQ within each sequence (so a row's
 * tile, and hence its arithmetic, does not depend on the rest of the batch), out_row =
 * q_begin. cls_only = 1: one tile per sequence with the [CLS] row (q_count 1, out_row s).
 * Returns the number of tiles written, or -1 if more than cap would be needed. The count
 * is at most n_seq + n_tok / RR_ATTN_BQ (+1), so cap = n_tok + n_seq always suffices. */
int rr_attention_tiles(const int32_t *cu_seqlens, int n_seq, int cls_only, rr_attn_tile *tiles,
                       int cap);

/* Host conversions between fp32 and dt (round to nearest even), for weights and tests. */
void rr_cuda_from_f32(const float *src, void *dst, size_t n, rr_dtype dt);
void rr_cuda_to_f32(const void *src, float *dst, size_t n, rr_dtype dt);
size_t rr_cuda_dtype_size(rr_dtype dt);

/* out[t,:] = LayerNorm(word[tok] + pos[p] + type[ty]) for t < n_tok (the bound),
 * (tok, ty, p) = toks[t]; tables in dt, gamma/beta fp32, out dt; d ≤ 1024. */
cudaError_t rr_embed_ln_cuda(const rr_tok3 *toks, int n_tok, const void *word, const void *pos,
                             const void *type, const float *gamma, const float *beta, float eps,
                             int d, void *out, rr_dtype dt, cudaStream_t stream);

/* One linear layer shape (n_in → n_out, dt, with or without a bias) planned for cuBLASLt
 * once, at engine create: descriptors and ONE algorithm (split-K 1, no reduction) used for
 * every row count 1 … max_rows, so a row's result does not depend on the rest of the batch
 * (linear.cu states what cuBLASLt does and does not guarantee). ws/ws_bytes: the device
 * workspace every call gets (shared by all plans of one stream). rr_linear_cuda writes the
 * row count and the bias pointer into the descriptors, so one plan serves one stream at a
 * time. Fields are the plan's own; read them, do not write them. */
typedef struct rr_linear_plan {
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c; /* w, x, y (y is C and D) */
    cublasLtMatmulAlgo_t algo;
    int n_in, n_out, has_bias, max_rows;
    rr_dtype dt;
    void *ws;
    size_t ws_bytes;
} rr_linear_plan;

/* Plans *p; cudaSuccess, cudaErrorInvalidValue on a bad argument, or cudaErrorNotSupported
 * (after a line on stderr) when cuBLASLt offers no split-K-free algorithm for 1 and
 * max_rows rows. On failure *p holds nothing to free. Allocates (host descriptors): call it
 * at create, never per batch. */
cudaError_t rr_linear_plan_init(rr_linear_plan *p, cublasLtHandle_t lt, int n_in, int n_out,
                                int with_bias, int max_rows, rr_dtype dt, void *ws,
                                size_t ws_bytes);
void rr_linear_plan_free(rr_linear_plan *p); /* NULL or a zeroed plan is fine */

/* y[n_tok, n_out] = x[n_tok, n_in] · w[n_out, n_in]ᵀ (+ bias[n_out]) with p's algorithm, fp32
 * accumulation; x, w, y and the bias in dt (the bias is rounded to dt: linear.cu), all
 * 256-byte aligned on a device (the algorithm is chosen for that; 16 is checked: linear.cu);
 * 1 ≤ n_tok ≤ p->max_rows; bias non-NULL exactly when p->has_bias.
 * Allocates nothing; graph-capturable. */
cudaError_t rr_linear_cuda(const rr_linear_plan *p, const void *x, const void *w, const void *bias,
                           int n_tok, void *y, cudaStream_t stream);

/* x[t,:] = LayerNorm(x[t,:] + bias + residual[t,:]) in place, d ≤ 1024. */
cudaError_t rr_bias_residual_ln_cuda(void *x, const float *bias, const void *residual,
                                     const float *gamma, const float *beta, float eps, int n_tok,
                                     int d, rr_dtype dt, cudaStream_t stream);

/* x[t,:] = gelu_erf(x[t,:] + bias) in place. */
cudaError_t rr_bias_gelu_cuda(void *x, const float *bias, int n_tok, int d, rr_dtype dt,
                              cudaStream_t stream);

/* x[t,:] += bias in place (was ELECTRA's embeddings_project bias; the engine now fuses it
 * into the projection GEMM's epilogue, rr_linear_cuda). */
cudaError_t rr_add_bias_cuda(void *x, const float *bias, int n_tok, int d, rr_dtype dt,
                             cudaStream_t stream);

/* out[s,:] = in[rows[s],:] for s < n_rows (rows on the device). */
cudaError_t rr_gather_rows_cuda(const void *in, const int32_t *rows, int n_rows, int d, void *out,
                                rr_dtype dt, cudaStream_t stream);

/* Fused varlen multi-head self-attention, tensor cores (mma.sync), online softmax; no score
 * matrix in global memory. qkv[*, 3·n_head·d_head] (Q heads, K heads, V heads, bias NOT
 * included: qkv_b[3·n_head·d_head] fp32 is added on load; NULL = none). Runs tiles
 * 0 … *n_tiles-1 of `tiles` (device; *n_tiles read on the device, ≤ max_tiles which sizes
 * the grid). ctx[*, n_head·d_head]. d_head ∈ {32, 64}. */
cudaError_t rr_attention_cuda(const void *qkv, const float *qkv_b, const rr_attn_tile *tiles,
                              const int32_t *n_tiles, int max_tiles, int n_head, int d_head,
                              void *ctx, rr_dtype dt, cudaStream_t stream);

/* Classification head over n_seq rows of hidden (row s, i.e. cls_rows_packed = 1 of the CPU
 * op; the engine gathers the [CLS] rows first): h = act(dense_w·x + dense_b),
 * logits[s, :] = out_w·h + out_b (fp32). act = tanh (BERT pooler) or exact GELU
 * (electra != 0). d_model ≤ 1024. work: device scratch of n_seq·d_model floats for h
 * (the dense layer and the output layer are two kernels, so the dense rows spread over
 * blocks); contents on return unspecified. */
cudaError_t rr_head_cuda(const void *hidden, int n_seq, int d_model, int n_labels,
                         const void *dense_w, const float *dense_b, const void *out_w,
                         const float *out_b, int electra, float *logits, float *work, rr_dtype dt,
                         cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif /* RR_CUDA_KERNELS_H */
