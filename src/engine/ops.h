/*
 * ops.h — the CPU reference ops of the encoder, one function per op.
 *
 * These are the reference every CUDA kernel is tested against, op by op: each
 * rr_<op>_cpu here has a rr_<op>_cuda twin in cuda/ with the same arguments plus a stream.
 * All tensors are row-major fp32; activations are the packed token matrix [n_tok, width]
 * of a varlen batch described by cu_seqlens[n_seq + 1] (no padding anywhere). Ops do not
 * allocate; parallel ops split rows over at most n_threads threads.
 */
#ifndef RR_OPS_H
#define RR_OPS_H

#include <stddef.h>
#include <stdint.h>

/* out[t,:] = LayerNorm(word[tokens[t]] + type[type_ids[t]] + pos[p(t)]), eps inside the
 * sqrt, biased variance; p(t) = positions[t] when positions is not NULL (XLM-R, from
 * rr_seq_positions), else t - start(seq(t)). d = embedding width. */
void rr_embed_ln_cpu(const int32_t *tokens, const int32_t *type_ids, const int32_t *positions,
                     const int32_t *cu_seqlens, int n_seq, int n_tok, const float *word,
                     const float *pos, const float *type, const float *gamma, const float *beta,
                     float eps, int d, float *out);

/* y[n_tok, n_out] = x[n_tok, n_in] · w[n_out, n_in]ᵀ (+ bias[n_out] when bias != NULL).
 * OpenBLAS sgemm: the reference the CUDA linear op is tested against (the CPU engine's own
 * linears are gemm_cpu.h's packed kernels). */
void rr_linear_cpu(const float *x, const float *w, const float *bias, int n_tok, int n_in,
                   int n_out, float *y);

/* x[t,:] = LayerNorm(x[t,:] + bias + residual[t,:]) over d columns (x is the GEMM output
 * without bias; in place). */
void rr_bias_residual_ln_cpu(float *x, const float *bias, const float *residual, const float *gamma,
                             const float *beta, float eps, int n_tok, int d);

/* x[t,:] = gelu_erf(x[t,:] + bias) over d columns, in place (exact 0.5·v·(1+erf(v/√2))). */
void rr_bias_gelu_cpu(float *x, const float *bias, int n_tok, int d);

/* Multi-head self-attention within each packed sequence.
 * qkv[n_tok, 3*n_head*d_head]: per token Q (heads side by side), then K, then V — the
 * output of the fused QKV projection, bias included. ctx[n_tok, n_head*d_head] receives
 * softmax(Q·Kᵀ/√d_head)·V per head, heads side by side. Only rows listed in q_rows are
 * computed when q_rows != NULL: q_rows[n_seq] gives one query row per sequence (its
 * [CLS] token, used for the last layer), and ctx then holds n_seq rows.
 * kt_scratch: NULL, or n_threads × kt_cap floats where sequences longer than 512 keys of
 * 64 (XLM-R's 8192 positions) get their keys transposed for the 4-row kernel; without it
 * they take the one-row path (the same results within float rounding, ~2× slower). */
void rr_attention_cpu(const float *qkv, const int32_t *cu_seqlens, int n_seq, int n_head,
                      int d_head, const int32_t *q_rows, float *ctx, int n_threads,
                      float *kt_scratch, size_t kt_cap);

/* Classification head over the [CLS] rows (row cu_seqlens[s] of hidden, or row s when
 * cls_rows_packed is non-zero): h = act(dense_w·x + dense_b), logits[s, :] = out_w·h + out_b.
 * act = tanh for BERT (pooler), exact GELU for ELECTRA. */
void rr_head_cpu(const float *hidden, const int32_t *cu_seqlens, int n_seq, int cls_rows_packed,
                 int d_model, int n_labels, const float *dense_w, const float *dense_b,
                 const float *out_w, const float *out_b, int electra, float *logits);

#endif /* RR_OPS_H */
