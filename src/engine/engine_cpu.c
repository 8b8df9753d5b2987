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
 * Linear layers: weights packed once in create for gemm_cpu.c's kernels, as f32 (the
 * reference), bf16 or int8 (opts->dtype; embeddings, attention, LayerNorm and the head stay
 * f32). Each GEMM is one call over the whole packed batch: every output element is one FMA
 * (or exact integer) chain in k order, so a pair's score is the same bits alone or in any
 * batch, with any thread count, on AVX-512, AVX2 or the generic path (gemm_cpu.h). Before
 * (OpenBLAS sgemm, one call per sequence and 128-column slice to stay batch invariant), the
 * weights were re-packed on every call: ~13 % of a K=10 forward.
 *
 * All activations live in one workspace sized for max_batch_tokens in create; forward
 * allocates nothing. Threads: OpenMP uses n_threads.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/engine_cpu.h"
#include "engine/gemm_cpu.h"
#include "engine/ops.h"
#include "model/model.h"
#include "util/util.h"

/* One layer's linears, packed (gemm_cpu.h). The last layer also has Q and KV apart: the
 * production path projects K and V for every token but Q for the [CLS] rows only. */
typedef struct packed_layer {
    rr_packed qkv, ao, ff1, ff2;
    rr_packed q, kv;
} packed_layer;

typedef struct cpu_engine {
    const rr_model *model;
    const rr_model_info *info;
    const rr_weights *w;
    rr_hidden_act act;
    int n_threads;
    int max_tok;
    float *ws;  /* the one workspace allocation */
    float *x;   /* [max_tok, d_model] hidden state */
    float *qkv; /* [max_tok, 3 * d_model] */
    float *ctx; /* [max_tok, d_model] attention output */
    float *tmp; /* [max_tok, d_model] post-attention state */
    float *ff;  /* [max_tok, d_ff] */
    float *emb; /* [max_tok, d_embed] before ELECTRA's projection (NULL when none) */
    float *kt;  /* attention's transposed keys past 512 × 64, kt_cap floats per thread */
    size_t kt_cap;
    rr_dtype dt;
    packed_layer *layers; /* [n_layer] */
    rr_packed emb_proj;   /* ELECTRA's embeddings_project (f32), when present */
    void *scratch;        /* the reduced paths' rounded activations (gemm_cpu.h) */
    char desc[96];
} cpu_engine;

static void cpu_destroy(void *impl);

/* Packs every linear of the encoder as c->dt (the ELECTRA projection stays f32). */
static rr_status pack_all(cpu_engine *c, rr_error *err)
{
    const rr_model_info *in = c->info;
    const int d = in->d_model, f = in->d_ff;
    rr_status s = RR_OK;
    c->layers = rr_calloc((size_t)in->n_layer, sizeof *c->layers);
    if (!c->layers) return rr_set_error(err, RR_E_NOMEM, "out of memory packing the weights");
    for (int l = 0; l < in->n_layer && !s; l++) {
        const rr_layer_weights *L = &c->w->layers[l];
        packed_layer *P = &c->layers[l];
        s = rr_pack_weights(L->qkv_w, 3 * d, d, c->dt, &P->qkv, err);
        if (!s) s = rr_pack_weights(L->ao_w, d, d, c->dt, &P->ao, err);
        if (!s) s = rr_pack_weights(L->ff1_w, f, d, c->dt, &P->ff1, err);
        if (!s) s = rr_pack_weights(L->ff2_w, d, f, c->dt, &P->ff2, err);
        if (!s && l == in->n_layer - 1) {
            s = rr_pack_weights(L->qkv_w, d, d, c->dt, &P->q, err);
            if (!s) s = rr_pack_weights(L->qkv_w + (size_t)d * d, 2 * d, d, c->dt, &P->kv, err);
        }
    }
    if (!s && c->w->emb_proj_w)
        s = rr_pack_weights(c->w->emb_proj_w, d, in->d_embed, RR_DTYPE_F32, &c->emb_proj, err);
    return s;
}

static rr_status cpu_create(const rr_model *m, const rr_engine_opts *opts, void **impl,
                            rr_error *err)
{
    const rr_model_info *in = rr_model_get_info(m);
    const rr_cpu_caps caps = rr_cpu_caps_get();
    if (opts->dtype == RR_DTYPE_F16)
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "f16 is a CUDA precision; the CPU engine runs f32, bf16 or int8");
    if (opts->dtype == RR_DTYPE_BF16 && !caps.bf16)
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "bf16 on the CPU needs AVX512-BF16, which this CPU does not have "
                            "(%s); use f32 or int8",
                            rr_cpu_isa_name(caps.isa));
    if (opts->dtype != RR_DTYPE_F32 && opts->dtype != RR_DTYPE_BF16 && opts->dtype != RR_DTYPE_INT8)
        return rr_set_error(err, RR_E_INVALID, "CPU engine: unknown dtype %d", (int)opts->dtype);
    cpu_engine *c = rr_calloc(1, sizeof *c);
    if (!c) return rr_set_error(err, RR_E_NOMEM, "out of memory creating the CPU engine");
    c->model = m;
    c->info = in;
    c->w = rr_model_weights(m);
    c->act = rr_model_hidden_act(m);
    c->n_threads = opts->n_threads > 0 ? opts->n_threads : 1;
    c->max_tok = opts->max_batch_tokens;
    c->dt = opts->dtype;

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
    size_t sb =
        rr_gemm_scratch_bytes(c->dt, c->max_tok, in->d_ff > in->d_model ? in->d_ff : in->d_model);
    if (sb && !(c->scratch = rr_malloc_aligned(64, sb))) {
        cpu_destroy(c);
        return rr_set_error(err, RR_E_NOMEM, "out of memory for the CPU workspace");
    }
    rr_status st = pack_all(c, err);
    if (st != RR_OK) {
        cpu_destroy(c);
        return st;
    }
    const char *ext = c->dt == RR_DTYPE_BF16                ? "+bf16"
                      : c->dt == RR_DTYPE_INT8 && caps.vnni ? "+vnni"
                                                            : "";
    snprintf(c->desc, sizeof c->desc, "cpu (%d thread%s, %s, %s%s)", c->n_threads,
             c->n_threads == 1 ? "" : "s",
             c->dt == RR_DTYPE_F32    ? "fp32"
             : c->dt == RR_DTYPE_BF16 ? "bf16"
                                      : "int8",
             rr_cpu_isa_name(caps.isa), ext);
    *impl = c;
    return RR_OK;
}

static void cpu_destroy(void *impl)
{
    cpu_engine *c = impl;
    if (c->layers)
        for (int l = 0; l < c->info->n_layer; l++) {
            rr_packed_free(&c->layers[l].qkv);
            rr_packed_free(&c->layers[l].ao);
            rr_packed_free(&c->layers[l].ff1);
            rr_packed_free(&c->layers[l].ff2);
            rr_packed_free(&c->layers[l].q);
            rr_packed_free(&c->layers[l].kv);
        }
    rr_free(c->layers);
    rr_packed_free(&c->emb_proj);
    rr_free(c->scratch);
    rr_free(c->kt);
    rr_free(c->ws);
    rr_free(c);
}

static const char *cpu_describe(const void *impl)
{
    return ((const cpu_engine *)impl)->desc;
}

/* y[0..n) (row stride ldy) = x[0..n)·wᵀ (+ bias), x rows n_in apart. */
static void linear(const cpu_engine *c, const float *x, const rr_packed *w, const float *bias,
                   int n, float *y, int ldy)
{
    rr_gemm_packed(x, (size_t)w->n_in, n, w, bias, y, (size_t)ldy, c->scratch, c->n_threads);
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
 * FFN + residual + LN into x. Works on n rows whose residual input is x. */
static void layer_tail(const cpu_engine *c, const rr_layer_weights *L, const packed_layer *P, int n)
{
    const rr_model_info *in = c->info;
    const int d = in->d_model, f = in->d_ff;
    const float eps = in->layer_norm_eps;
    linear(c, c->ctx, &P->ao, NULL, n, c->tmp, d);
    rr_bias_residual_ln_cpu(c->tmp, L->ao_b, c->x, L->ln1_g, L->ln1_b, eps, n, d);
    linear(c, c->tmp, &P->ff1, NULL, n, c->ff, f);
    bias_act(c, c->ff, L->ff1_b, n, f);
    linear(c, c->ff, &P->ff2, NULL, n, c->x, d);
    rr_bias_residual_ln_cpu(c->x, L->ff2_b, c->tmp, L->ln2_g, L->ln2_b, eps, n, d);
}

/* The last layer for the [CLS] rows only (see the file comment). On return x[0..n_seq) holds
 * the final hidden state of each sequence's [CLS] token. */
static void last_layer_cls(const cpu_engine *c, const rr_layer_weights *L, const packed_layer *P,
                           const rr_batch *b)
{
    const int d = c->info->d_model, n_seq = b->n_seq;
    const size_t ld = 3 * (size_t)d;

    /* K and V of every token straight into columns d..3d of the qkv rows. */
    linear(c, c->x, &P->kv, L->qkv_b + d, b->n_tok, c->qkv + d, (int)ld);
    /* Compact the [CLS] rows to the top of x (row cu[s] >= s, so nothing unread is hit). */
    for (int s = 0; s < n_seq; s++)
        memmove(c->x + (size_t)s * d, c->x + (size_t)b->cu_seqlens[s] * d, d * sizeof(float));
    /* Q of the [CLS] rows, scattered into their qkv rows for the attention op. */
    linear(c, c->x, &P->q, L->qkv_b, n_seq, c->ctx, d);
    for (int s = 0; s < n_seq; s++)
        memcpy(c->qkv + (size_t)b->cu_seqlens[s] * ld, c->ctx + (size_t)s * d, d * sizeof(float));
    rr_attention_cpu(c->qkv, b->cu_seqlens, n_seq, c->info->n_head, c->info->d_head, b->cu_seqlens,
                     c->ctx, c->n_threads, c->kt, c->kt_cap);
    layer_tail(c, L, P, n_seq);
}

/* The forward pass. hidden == NULL: production path (last layer on [CLS] rows only);
 * otherwise every layer is computed in full and copied out (engine_cpu.h). pos: the
 * front's position ids (backend.h). */
static rr_status cpu_run(cpu_engine *c, const rr_batch *b, const int32_t *pos, float *logits,
                         float *hidden)
{
    const rr_model_info *in = c->info;
    const rr_weights *w = c->w;
    const int n = b->n_tok, d = in->d_model, n_layer = in->n_layer;
    const size_t block = (size_t)n * d;

    omp_set_num_threads(c->n_threads);

    if (w->emb_proj_w) {
        rr_embed_ln_cpu(b->tokens, b->type_ids, pos, b->cu_seqlens, b->n_seq, n, w->word_emb,
                        w->pos_emb, w->type_emb, w->emb_ln_g, w->emb_ln_b, in->layer_norm_eps,
                        in->d_embed, c->emb);
        linear(c, c->emb, &c->emb_proj, w->emb_proj_b, n, c->x, d);
    } else {
        rr_embed_ln_cpu(b->tokens, b->type_ids, pos, b->cu_seqlens, b->n_seq, n, w->word_emb,
                        w->pos_emb, w->type_emb, w->emb_ln_g, w->emb_ln_b, in->layer_norm_eps, d,
                        c->x);
    }
    if (hidden) memcpy(hidden, c->x, block * sizeof(float));

    int full_layers = hidden ? n_layer : n_layer - 1;
    for (int l = 0; l < full_layers; l++) {
        const rr_layer_weights *L = &w->layers[l];
        linear(c, c->x, &c->layers[l].qkv, L->qkv_b, n, c->qkv, 3 * d);
        rr_attention_cpu(c->qkv, b->cu_seqlens, b->n_seq, in->n_head, in->d_head, NULL, c->ctx,
                         c->n_threads, c->kt, c->kt_cap);
        layer_tail(c, L, &c->layers[l], n);
        if (hidden) memcpy(hidden + (size_t)(l + 1) * block, c->x, block * sizeof(float));
    }
    if (!hidden) last_layer_cls(c, &w->layers[n_layer - 1], &c->layers[n_layer - 1], b);

    rr_head_cpu(c->x, b->cu_seqlens, b->n_seq, hidden ? 0 : 1, d, in->n_labels, w->head_dense_w,
                w->head_dense_b, w->head_out_w, w->head_out_b, in->arch == RR_ARCH_ELECTRA, logits);
    return RR_OK;
}

static rr_status cpu_forward(void *impl, const rr_batch *b, const int32_t *positions, float *logits)
{
    return cpu_run(impl, b, positions, logits, NULL);
}

rr_status rr_cpu_forward_hidden(void *impl, const rr_batch *b, const int32_t *positions,
                                float *logits, float *hidden)
{
    return cpu_run(impl, b, positions, logits, hidden);
}

const rr_backend rr_backend_cpu = {
    .name = "cpu",
    .create = cpu_create,
    .forward = cpu_forward,
    .describe = cpu_describe,
    .destroy = cpu_destroy,
};
