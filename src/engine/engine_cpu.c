/*
 * engine_cpu.c — the CPU backend (rr_backend_cpu): a BERT/ELECTRA/XLM-R encoder forward over a
 * packed varlen batch in fp32, built from the ops of ops.h.
 *
 * Per batch: embeddings + LayerNorm (+ ELECTRA embeddings_project) → per layer: fused QKV
 * linear, attention within each sequence, out-proj + bias + residual + LayerNorm, FF1 + bias
 * + activation, FF2 + bias + residual + LayerNorm → head on the [CLS] rows.
 *
 * Last-layer shortcut: only the [CLS] rows feed the head, so the last layer computes K and V
 * for every token (they are attended to) but Q, attention, out-proj and the FFN for the n_seq
 * [CLS] rows only. This is exact (the other rows of the last layer are never read) and removes
 * about 2/3 of the last layer's FLOPs at ~100-token pairs.
 *
 * Bitwise batch invariance: every GEMM is called once per sequence (and once per [CLS] row
 * in the last layer) and per 128-column slice, never over the whole packed batch. OpenBLAS
 * rounds a row differently depending on how many rows its sgemm call has and where the row
 * sits (0.3.21, ZEN kernels: a few ulps per GEMM, ~1e-5 on a logit after 6 layers), so a
 * batch-wide call made a pair's score depend on its neighbours. Each (sequence, slice) sgemm
 * runs single-threaded inside an OpenMP thread, so a pair's arithmetic is the same alone, in
 * any batch and with any thread count; the other ops already work row by row. Measured with
 * bench/cpu (128 pairs of ~120 tokens, 2 threads, two runs each): 31.0/28.9 pairs/s with one
 * multi-threaded sgemm per GEMM, 36.7/34.9 pairs/s this way — OpenBLAS's own threading of
 * small-M calls costs more than the repacking.
 *
 * All activations live in one workspace sized for max_batch_tokens in create; forward
 * allocates nothing. Threads: OpenMP uses n_threads; OpenBLAS is set to 1 thread.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/engine_cpu.h"
#include "engine/ops.h"
#include "model/model.h"
#include "util/util.h"

typedef struct cpu_engine {
    const rr_model *model;
    const rr_model_info *info;
    const rr_weights *w;
    rr_hidden_act act;
    int n_threads;
    int max_tok;
    float *ws;    /* the one workspace allocation */
    float *x;     /* [max_tok, d_model] hidden state */
    float *qkv;   /* [max_tok, 3 * d_model] */
    float *ctx;   /* [max_tok, d_model] attention output */
    float *tmp;   /* [max_tok, d_model] post-attention state */
    float *ff;    /* [max_tok, d_ff] */
    float *emb;   /* [max_tok, d_embed] before ELECTRA's projection (NULL when none) */
    int32_t *pos; /* [max_tok] XLM-R position ids (NULL for BERT: position = index) */
    float *kt;    /* attention's transposed keys past 512 × 64, kt_cap floats per thread */
    size_t kt_cap;
    char desc[64];
} cpu_engine;

static rr_status cpu_create(const rr_model *m, const rr_engine_opts *opts, void **impl,
                            rr_error *err)
{
    const rr_model_info *in = rr_model_get_info(m);
    if (opts->dtype != RR_DTYPE_F32)
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "the CPU engine computes in f32; %s is not available on the CPU",
                            rr_dtype_name(opts->dtype));
    cpu_engine *c = rr_calloc(1, sizeof *c);
    if (!c) return rr_set_error(err, RR_E_NOMEM, "out of memory creating the CPU engine");
    c->model = m;
    c->info = in;
    c->w = rr_model_weights(m);
    c->act = rr_model_hidden_act(m);
    c->n_threads = opts->n_threads > 0 ? opts->n_threads : 1;
    c->max_tok = opts->max_batch_tokens;

    size_t T = (size_t)c->max_tok, d = (size_t)in->d_model;
    size_t n_emb = c->w->emb_proj_w ? T * (size_t)in->d_embed : 0;
    size_t total = T * d * 6 + T * (size_t)in->d_ff + n_emb;
    c->ws = rr_malloc_aligned(64, total * sizeof(float));
    if (!c->ws) {
        rr_free(c);
        return rr_set_error(err, RR_E_NOMEM,
                            "out of memory for the CPU workspace (%zu MiB for %d tokens)",
                            total * sizeof(float) >> 20, opts->max_batch_tokens);
    }
    c->x = c->ws;
    c->qkv = c->x + T * d;
    c->ctx = c->qkv + 3 * T * d;
    c->tmp = c->ctx + T * d;
    c->ff = c->tmp + T * d;
    c->emb = n_emb ? c->ff + T * (size_t)in->d_ff : NULL;
    /* Models with more positions than BERT's 512 (XLM-R: 8192) give attention a scratch per
     * thread for their long sequences' transposed keys: the stack holds 512 × 64. */
    if ((size_t)in->max_seq * (size_t)in->d_head > (size_t)64 * 512) {
        c->kt_cap = (size_t)in->max_seq * (size_t)in->d_head;
        c->kt = rr_malloc_aligned(64, (size_t)c->n_threads * c->kt_cap * sizeof(float));
        if (!c->kt) {
            rr_free(c->ws);
            rr_free(c);
            return rr_set_error(err, RR_E_NOMEM, "out of memory for the attention scratch");
        }
    }
    if (in->pos_pad >= 0) {
        c->pos = rr_malloc(T * sizeof *c->pos);
        if (!c->pos) {
            rr_free(c->kt);
            rr_free(c->ws);
            rr_free(c);
            return rr_set_error(err, RR_E_NOMEM, "out of memory for the CPU workspace");
        }
    }
    snprintf(c->desc, sizeof c->desc, "cpu (%d thread%s, fp32)", c->n_threads,
             c->n_threads == 1 ? "" : "s");
    *impl = c;
    return RR_OK;
}

static void cpu_destroy(void *impl)
{
    cpu_engine *c = impl;
    rr_free(c->pos);
    rr_free(c->kt);
    rr_free(c->ws);
    rr_free(c);
}

static const char *cpu_describe(const void *impl)
{
    return ((const cpu_engine *)impl)->desc;
}

/* Output columns per sgemm work item: 384-wide projections give 3 items per sequence,
 * the 1536-wide FFN 12, enough to keep the threads busy even for a single sequence. */
#define RR_COL_SLICE 128

/* y[r, 0..n_out) (row stride ldy) = x[r, :]·wᵀ (+ bias) over row groups: sequence s is rows
 * cu[s] .. cu[s+1]-1, or, when cu is NULL, every row is its own group. One sgemm per group is
 * what makes the engine batch invariant (see the file comment). */
static void seq_linear(const float *x, const float *w, const float *bias, const int32_t *cu,
                       int n_groups, int n_in, int n_out, float *y, int ldy)
{
    /* Work items are (group, column slice): parallel even for one sequence, and the slices
     * depend only on n_out, never on the batch. Each sgemm runs single-threaded inside an
     * OpenMP thread (OpenBLAS is set to 1 thread), so a row's arithmetic is fixed. */
    const int n_slices = (n_out + RR_COL_SLICE - 1) / RR_COL_SLICE;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int s = 0; s < n_groups; s++) {
        for (int j = 0; j < n_slices; j++) {
            const int r0 = cu ? cu[s] : s, m = cu ? cu[s + 1] - cu[s] : 1;
            const int c0 = j * RR_COL_SLICE;
            const int nc = n_out - c0 < RR_COL_SLICE ? n_out - c0 : RR_COL_SLICE;
            float *yr = y + (size_t)r0 * ldy + c0;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nc, n_in, 1.0f,
                        x + (size_t)r0 * n_in, n_in, w + (size_t)c0 * n_in, n_in, 0.0f, yr, ldy);
            if (bias)
                for (int t = 0; t < m; t++)
                    for (int i = 0; i < nc; i++)
                        yr[(size_t)t * ldy + i] += bias[c0 + i];
        }
    }
}

/* x[n, d] = act(x + bias) for the configured hidden_act. */
static void bias_act(const cpu_engine *c, float *x, const float *bias, int n, int d)
{
    if (c->act == RR_HIDDEN_GELU) {
        rr_bias_gelu_cpu(x, bias, n, d);
        return;
    }
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (size_t i = 0; i < (size_t)n * d; i++) {
        float v = x[i] + bias[i % (size_t)d];
        x[i] = c->act == RR_HIDDEN_RELU
                   ? (v > 0.0f ? v : 0.0f)
                   : 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

/* The encoder layer body from the attention context on: out-proj + residual + LN into tmp,
 * FFN + residual + LN into x. Works on n rows whose residual input is x, in the row groups
 * of seq_linear (cu, n_groups). */
static void layer_tail(const cpu_engine *c, const rr_layer_weights *L, const int32_t *cu,
                       int n_groups, int n)
{
    const rr_model_info *in = c->info;
    const int d = in->d_model, f = in->d_ff;
    const float eps = in->layer_norm_eps;
    seq_linear(c->ctx, L->ao_w, NULL, cu, n_groups, d, d, c->tmp, d);
    rr_bias_residual_ln_cpu(c->tmp, L->ao_b, c->x, L->ln1_g, L->ln1_b, eps, n, d);
    seq_linear(c->tmp, L->ff1_w, NULL, cu, n_groups, d, f, c->ff, f);
    bias_act(c, c->ff, L->ff1_b, n, f);
    seq_linear(c->ff, L->ff2_w, NULL, cu, n_groups, f, d, c->x, d);
    rr_bias_residual_ln_cpu(c->x, L->ff2_b, c->tmp, L->ln2_g, L->ln2_b, eps, n, d);
}

/* The last layer for the [CLS] rows only (see the file comment). On return x[0..n_seq) holds
 * the final hidden state of each sequence's [CLS] token. */
static void last_layer_cls(const cpu_engine *c, const rr_layer_weights *L, const rr_batch *b)
{
    const int d = c->info->d_model, n_seq = b->n_seq;
    const size_t ld = 3 * (size_t)d;

    /* K and V of every token straight into columns d..3d of the qkv rows. */
    seq_linear(c->x, L->qkv_w + (size_t)d * d, L->qkv_b + d, b->cu_seqlens, n_seq, d, 2 * d,
               c->qkv + d, (int)ld);
    /* Compact the [CLS] rows to the top of x (row cu[s] >= s, so nothing unread is hit). */
    for (int s = 0; s < n_seq; s++)
        memmove(c->x + (size_t)s * d, c->x + (size_t)b->cu_seqlens[s] * d, d * sizeof(float));
    /* Q of the [CLS] rows, scattered into their qkv rows for the attention op. */
    seq_linear(c->x, L->qkv_w, L->qkv_b, NULL, n_seq, d, d, c->ctx, d);
    for (int s = 0; s < n_seq; s++)
        memcpy(c->qkv + (size_t)b->cu_seqlens[s] * ld, c->ctx + (size_t)s * d, d * sizeof(float));
    rr_attention_cpu(c->qkv, b->cu_seqlens, n_seq, c->info->n_head, c->info->d_head, b->cu_seqlens,
                     c->ctx, c->n_threads, c->kt, c->kt_cap);
    layer_tail(c, L, NULL, n_seq, n_seq);
}

/* The forward pass. hidden == NULL: production path (last layer on [CLS] rows only);
 * otherwise every layer is computed in full and copied out (engine_cpu.h). */
static rr_status cpu_run(cpu_engine *c, const rr_batch *b, float *logits, float *hidden)
{
    const rr_model_info *in = c->info;
    const rr_weights *w = c->w;
    const int n = b->n_tok, d = in->d_model, n_layer = in->n_layer;
    const size_t block = (size_t)n * d;

    omp_set_num_threads(c->n_threads);
    openblas_set_num_threads(1);

    if (c->pos)
        for (int s = 0; s < b->n_seq; s++)
            rr_seq_positions(b->tokens + b->cu_seqlens[s], b->cu_seqlens[s + 1] - b->cu_seqlens[s],
                             in->pos_pad, c->pos + b->cu_seqlens[s]);
    if (w->emb_proj_w) {
        rr_embed_ln_cpu(b->tokens, b->type_ids, c->pos, b->cu_seqlens, b->n_seq, n, w->word_emb,
                        w->pos_emb, w->type_emb, w->emb_ln_g, w->emb_ln_b, in->layer_norm_eps,
                        in->d_embed, c->emb);
        seq_linear(c->emb, w->emb_proj_w, w->emb_proj_b, b->cu_seqlens, b->n_seq, in->d_embed, d,
                   c->x, d);
    } else {
        rr_embed_ln_cpu(b->tokens, b->type_ids, c->pos, b->cu_seqlens, b->n_seq, n, w->word_emb,
                        w->pos_emb, w->type_emb, w->emb_ln_g, w->emb_ln_b, in->layer_norm_eps, d,
                        c->x);
    }
    if (hidden) memcpy(hidden, c->x, block * sizeof(float));

    int full_layers = hidden ? n_layer : n_layer - 1;
    for (int l = 0; l < full_layers; l++) {
        const rr_layer_weights *L = &w->layers[l];
        seq_linear(c->x, L->qkv_w, L->qkv_b, b->cu_seqlens, b->n_seq, d, 3 * d, c->qkv, 3 * d);
        rr_attention_cpu(c->qkv, b->cu_seqlens, b->n_seq, in->n_head, in->d_head, NULL, c->ctx,
                         c->n_threads, c->kt, c->kt_cap);
        layer_tail(c, L, b->cu_seqlens, b->n_seq, n);
        if (hidden) memcpy(hidden + (size_t)(l + 1) * block, c->x, block * sizeof(float));
    }
    if (!hidden) last_layer_cls(c, &w->layers[n_layer - 1], b);

    rr_head_cpu(c->x, b->cu_seqlens, b->n_seq, hidden ? 0 : 1, d, in->n_labels, w->head_dense_w,
                w->head_dense_b, w->head_out_w, w->head_out_b, in->arch == RR_ARCH_ELECTRA, logits);
    return RR_OK;
}

static rr_status cpu_forward(void *impl, const rr_batch *b, float *logits)
{
    return cpu_run(impl, b, logits, NULL);
}

rr_status rr_cpu_forward_hidden(void *impl, const rr_batch *b, float *logits, float *hidden)
{
    return cpu_run(impl, b, logits, hidden);
}

const rr_backend rr_backend_cpu = {
    .name = "cpu",
    .create = cpu_create,
    .forward = cpu_forward,
    .describe = cpu_describe,
    .destroy = cpu_destroy,
};
