/*
 * engine_cuda.cu — the CUDA backend (rr_backend_cuda of src/engine/backend.h): weights
 * uploaded once, one workspace, one stream, cuBLAS GEMMs and the hand-written kernels of
 * this folder, CUDA graphs for small batches.
 *
 * Precision: fp16 by default (opts->dtype F16, or F32 — the zero value — meaning "the
 * default"), bf16 when asked. Weight matrices and embedding tables in that type; biases and
 * LayerNorm parameters stay fp32; every accumulation and statistic is fp32.
 *
 * One forward pass (n_tok packed tokens, n_seq sequences; tok_cap/seq_cap ≥ them, below):
 *   embed_ln → h                                    (ELECTRA: emb → linear + bias → h)
 *   layers 0 … n_layer−2, on all tok_cap rows:
 *     qkv = h·Wqkvᵀ (one GEMM) → attention(+qkv bias) → ctx → x = ctx·Woᵀ
 *     → x = LN(x + bo + h) → f = x·W1ᵀ → f = gelu(f + b1) → y = f·W2ᵀ → y = LN(y + b2 + x)
 *   last layer, exact for a [CLS]-pooled head: K and V are needed for every token, but only
 *   the [CLS] rows go on: qkv for all rows, attention with one query row per sequence into
 *   ctx[seq_cap], gather the [CLS] rows of h as the residual, then out-proj/LN/FFN/LN on
 *   seq_cap rows, and the head on those rows → logits[seq_cap].
 *
 * Launch and graphs. The host packs a batch into pinned staging: (token, type, position)
 * per token, padded with zeros to tok_cap; the [CLS] row indices padded to seq_cap; the
 * attention tile lists and their counts. Five async copies move these to fixed device
 * addresses, then either a CUDA graph (captured at create for a bucket) or the same launch
 * sequence issued eagerly runs, then one async copy brings logits back and the stream is
 * synchronized. A graph is captured per bucket (tok_cap ∈ 128…4096, seq_cap ∈ 1…64, powers
 * of two): every kernel's grid is sized for the bucket's upper bound, GEMMs run on tok_cap
 * (or seq_cap) rows, and the only per-batch quantity a kernel must know exactly — the
 * number of attention tiles — is read from device memory. Rows past the batch hold stale
 * but finite values (the workspace is zeroed at create and only ever holds LayerNorm,
 * GEMM and GELU outputs of finite inputs) and are never read back; since every op is
 * row-wise except attention, which only touches tiles of real sequences, a graph's
 * results for the real rows equal the eager ones up to cuBLAS choosing a different
 * algorithm for a different M. Batches above the largest bucket (K > 64 pairs or > 4096
 * tokens) run eagerly with exact sizes; at those sizes launch overhead is small.
 *
 * Memory: all device memory is allocated in create (weights: one allocation carved by a
 * table; activations + batch block: one allocation sized for max_batch_tokens; the cuBLAS
 * workspace; the graphs). forward allocates nothing and creates no handle.
 * Errors: create returns a status and a message; a failure inside forward is a device
 * fault and aborts after logging the statement, function and place (style habit 8).
 * Measured: not yet — compiled, not run (no GPU in this session).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common.cuh"

extern "C" {
#include "engine/backend.h"
#include "model/model.h"
#include "util/util.h"
}

#define ALIGN 256
#define BLAS_WS_BYTES ((size_t)32 << 20)
#define MAX_GRAPHS 64

typedef struct layer_dev {
    void *qkv_w, *ao_w, *ff1_w, *ff2_w; /* T */
    float *qkv_b, *ao_b, *ln1_g, *ln1_b, *ff1_b, *ff2_b, *ln2_g, *ln2_b;
} layer_dev;

typedef struct graph_bucket {
    int tok_cap, seq_cap, tile_cap;
    cudaGraphExec_t exec;
} graph_bucket;

typedef struct cuda_engine {
    int device;
    rr_dtype dt;
    char desc[320];
    int d_model, d_embed, n_layer, n_head, d_head, d_ff, n_labels, max_tok, electra;
    int pos_pad; /* rr_model_info.pos_pad: XLM-R position ids when >= 0 */
    float eps;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;

    void *weights; /* device: every weight, carved below */
    void *word, *pos, *type, *proj_w, *head_w, *out_w;
    float *emb_g, *emb_b, *proj_b, *head_b, *out_b;
    layer_dev *layers;

    void *work; /* device: activations and the batch block */
    void *emb, *h, *x, *y, *qkv, *ctx, *ff;
    float *logits_dev;
    rr_tok3 *toks_dev;
    int32_t *cls_rows_dev, *counts_dev; /* counts: [0] full tiles, [1] [CLS] tiles */
    rr_attn_tile *tiles_dev, *cls_tiles_dev;

    void *pinned; /* host, page-locked staging */
    rr_tok3 *toks_h;
    int32_t *cls_rows_h, *counts_h;
    rr_attn_tile *tiles_h, *cls_tiles_h;
    float *logits_h;

    graph_bucket graphs[MAX_GRAPHS];
    int n_graphs;

    const char *fail_stmt; /* where enqueue failed, for the fatal message */
    int fail_line;
} cuda_engine;

static size_t align_up(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

/* ---- weight upload: one pass measures, a second converts into host staging ---------- */

typedef struct uploader {
    char *host; /* NULL while measuring */
    char *dev;  /* device base (valid when host != NULL) */
    size_t off;
    rr_dtype dt;
} uploader;

static void *up_mat(uploader *u, const float *src, size_t n)
{
    size_t at = u->off;
    u->off = align_up(u->off + n * rr_cuda_dtype_size(u->dt));
    if (!u->host || !src) return u->host && src ? u->dev + at : NULL;
    rr_cuda_from_f32(src, u->host + at, n, u->dt);
    return u->dev + at;
}

static float *up_vec(uploader *u, const float *src, size_t n)
{
    size_t at = u->off;
    u->off = align_up(u->off + n * sizeof(float));
    if (!u->host || !src) return NULL;
    memcpy(u->host + at, src, n * sizeof(float));
    return (float *)(u->dev + at);
}

static void upload_all(cuda_engine *e, const rr_weights *w, const rr_model_info *mi, uploader *u)
{
    const size_t d = (size_t)e->d_model, de = (size_t)e->d_embed, f = (size_t)e->d_ff;
    e->word = up_mat(u, w->word_emb, (size_t)mi->vocab_size * de);
    e->pos = up_mat(u, w->pos_emb, (size_t)mi->max_position * de);
    e->type = up_mat(u, w->type_emb, (size_t)mi->type_vocab_size * de);
    e->emb_g = up_vec(u, w->emb_ln_g, de);
    e->emb_b = up_vec(u, w->emb_ln_b, de);
    if (w->emb_proj_w) {
        e->proj_w = up_mat(u, w->emb_proj_w, d * de);
        e->proj_b = up_vec(u, w->emb_proj_b, d);
    }
    for (int l = 0; l < e->n_layer; l++) {
        const rr_layer_weights *s = &w->layers[l];
        layer_dev *t = &e->layers[l];
        t->qkv_w = up_mat(u, s->qkv_w, 3 * d * d);
        t->qkv_b = up_vec(u, s->qkv_b, 3 * d);
        t->ao_w = up_mat(u, s->ao_w, d * d);
        t->ao_b = up_vec(u, s->ao_b, d);
        t->ln1_g = up_vec(u, s->ln1_g, d);
        t->ln1_b = up_vec(u, s->ln1_b, d);
        t->ff1_w = up_mat(u, s->ff1_w, f * d);
        t->ff1_b = up_vec(u, s->ff1_b, f);
        t->ff2_w = up_mat(u, s->ff2_w, d * f);
        t->ff2_b = up_vec(u, s->ff2_b, d);
        t->ln2_g = up_vec(u, s->ln2_g, d);
        t->ln2_b = up_vec(u, s->ln2_b, d);
    }
    e->head_w = up_mat(u, w->head_dense_w, d * d);
    e->head_b = up_vec(u, w->head_dense_b, d);
    e->out_w = up_mat(u, w->head_out_w, (size_t)e->n_labels * d);
    e->out_b = up_vec(u, w->head_out_b, (size_t)e->n_labels);
}

/* ---- the launch sequence (eager, or recorded into a graph) ----------------------------- */

#define TRY(stmt)                                                                                  \
    do {                                                                                           \
        cudaError_t rr_t_ = (stmt);                                                                \
        if (rr_t_ != cudaSuccess) {                                                                \
            e->fail_stmt = #stmt;                                                                  \
            e->fail_line = __LINE__;                                                               \
            return rr_t_;                                                                          \
        }                                                                                          \
    } while (0)

static cudaError_t enqueue(cuda_engine *e, int tok_cap, int seq_cap, int tile_cap)
{
    const rr_dtype dt = e->dt;
    const int d = e->d_model, f = e->d_ff;
    cudaStream_t st = e->stream;
    void *h = e->h, *x = e->x, *y = e->y;

    if (e->proj_w) {
        TRY(rr_embed_ln_cuda(e->toks_dev, tok_cap, e->word, e->pos, e->type, e->emb_g, e->emb_b,
                             e->eps, e->d_embed, e->emb, dt, st));
        TRY(rr_linear_cuda(e->emb, e->proj_w, e->proj_b, tok_cap, e->d_embed, d, h, dt, e->blas,
                           st));
    } else {
        TRY(rr_embed_ln_cuda(e->toks_dev, tok_cap, e->word, e->pos, e->type, e->emb_g, e->emb_b,
                             e->eps, d, h, dt, st));
    }
    for (int l = 0; l < e->n_layer; l++) {
        const layer_dev *L = &e->layers[l];
        TRY(rr_linear_cuda(h, L->qkv_w, NULL, tok_cap, d, 3 * d, e->qkv, dt, e->blas, st));
        if (l + 1 < e->n_layer) {
            TRY(rr_attention_cuda(e->qkv, L->qkv_b, e->tiles_dev, e->counts_dev, tile_cap,
                                  e->n_head, e->d_head, e->ctx, dt, st));
            TRY(rr_linear_cuda(e->ctx, L->ao_w, NULL, tok_cap, d, d, x, dt, e->blas, st));
            TRY(rr_bias_residual_ln_cuda(x, L->ao_b, h, L->ln1_g, L->ln1_b, e->eps, tok_cap, d, dt,
                                         st));
            TRY(rr_linear_cuda(x, L->ff1_w, NULL, tok_cap, d, f, e->ff, dt, e->blas, st));
            TRY(rr_bias_gelu_cuda(e->ff, L->ff1_b, tok_cap, f, dt, st));
            TRY(rr_linear_cuda(e->ff, L->ff2_w, NULL, tok_cap, f, d, y, dt, e->blas, st));
            TRY(rr_bias_residual_ln_cuda(y, L->ff2_b, x, L->ln2_g, L->ln2_b, e->eps, tok_cap, d, dt,
                                         st));
            void *t = h;
            h = y;
            y = t;
        } else {
            /* [CLS] rows only; y first holds the gathered residual, then the FFN output. */
            TRY(rr_attention_cuda(e->qkv, L->qkv_b, e->cls_tiles_dev, e->counts_dev + 1, seq_cap,
                                  e->n_head, e->d_head, e->ctx, dt, st));
            TRY(rr_gather_rows_cuda(h, e->cls_rows_dev, seq_cap, d, y, dt, st));
            TRY(rr_linear_cuda(e->ctx, L->ao_w, NULL, seq_cap, d, d, x, dt, e->blas, st));
            TRY(rr_bias_residual_ln_cuda(x, L->ao_b, y, L->ln1_g, L->ln1_b, e->eps, seq_cap, d, dt,
                                         st));
            TRY(rr_linear_cuda(x, L->ff1_w, NULL, seq_cap, d, f, e->ff, dt, e->blas, st));
            TRY(rr_bias_gelu_cuda(e->ff, L->ff1_b, seq_cap, f, dt, st));
            TRY(rr_linear_cuda(e->ff, L->ff2_w, NULL, seq_cap, f, d, y, dt, e->blas, st));
            TRY(rr_bias_residual_ln_cuda(y, L->ff2_b, x, L->ln2_g, L->ln2_b, e->eps, seq_cap, d, dt,
                                         st));
            /* qkv is dead after the last attention; its n·3d·T bytes (n ≥ seq_cap, T ≥ 2)
             * hold the head's fp32 scratch of seq_cap·d floats. */
            TRY(rr_head_cuda(y, seq_cap, d, e->n_labels, e->head_w, e->head_b, e->out_w, e->out_b,
                             e->electra, e->logits_dev, (float *)e->qkv, dt, st));
        }
    }
    return cudaSuccess;
}

static int tile_cap_for(int tok_cap, int seq_cap)
{
    return (tok_cap + (RR_ATTN_BQ - 1) * seq_cap + RR_ATTN_BQ - 1) / RR_ATTN_BQ;
}

/* ---- create / destroy ------------------------------------------------------------------ */

static void cuda_destroy(void *impl)
{
    cuda_engine *e = (cuda_engine *)impl;
    if (!e) return;
    if (e->device >= 0) cudaSetDevice(e->device);
    for (int i = 0; i < e->n_graphs; i++)
        if (e->graphs[i].exec) cudaGraphExecDestroy(e->graphs[i].exec);
    if (e->blas) cublasDestroy(e->blas);
    if (e->stream) cudaStreamDestroy(e->stream);
    cudaFree(e->blas_ws);
    cudaFree(e->weights);
    cudaFree(e->work);
    cudaFreeHost(e->pinned);
    rr_free(e->layers);
    rr_free(e);
}

#define CK(stmt, what)                                                                             \
    do {                                                                                           \
        cudaError_t rr_c_ = (stmt);                                                                \
        if (rr_c_ != cudaSuccess) {                                                                \
            st = rr_set_error(err, RR_E_DEVICE, "cuda:%d: %s failed: %s", o->device, what,         \
                              cudaGetErrorString(rr_c_));                                          \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static rr_status check_model(const rr_model *m, const rr_model_info *mi, rr_error *err)
{
    if (mi->d_head != 32 && mi->d_head != 64)
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "CUDA engine: d_head %d of %s is not supported (32 or 64)", mi->d_head,
                            mi->path);
    if (mi->d_model > 1024 || mi->d_embed > 1024 || mi->d_model % 8)
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "CUDA engine: d_model %d / embedding width %d of %s not supported "
                            "(at most 1024, d_model a multiple of 8)",
                            mi->d_model, mi->d_embed, mi->path);
    if (rr_model_hidden_act(m) != RR_HIDDEN_GELU)
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "CUDA engine: hidden_act of %s is not exact erf GELU", mi->path);
    if (mi->n_layer < 1 || mi->n_labels < 1)
        return rr_set_error(err, RR_E_UNSUPPORTED, "CUDA engine: %s has %d layers, %d labels",
                            mi->path, mi->n_layer, mi->n_labels);
    return RR_OK;
}

static rr_status cuda_create(const rr_model *m, const rr_engine_opts *o, void **impl, rr_error *err)
{
    const rr_model_info *mi = rr_model_get_info(m);
    const rr_weights *w = rr_model_weights(m);
    cuda_engine *e = NULL;
    char *host_w = NULL;
    cudaGraph_t graph = NULL;
    rr_status st;
    int n_dev = 0;

    *impl = NULL;
    cudaError_t ce = cudaGetDeviceCount(&n_dev);
    if (ce != cudaSuccess || o->device >= n_dev)
        return rr_set_error(err, RR_E_DEVICE, "cuda:%d requested but %s", o->device,
                            ce != cudaSuccess ? cudaGetErrorString(ce) : "no such device");
    if (o->dtype == RR_DTYPE_INT8)
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "CUDA engine: int8 is a CPU precision; CUDA runs fp16 or bf16");
    if (o->dtype != RR_DTYPE_F32 && o->dtype != RR_DTYPE_F16 && o->dtype != RR_DTYPE_BF16)
        return rr_set_error(err, RR_E_INVALID, "CUDA engine: unknown dtype %d", (int)o->dtype);
    st = check_model(m, mi, err);
    if (st != RR_OK) return st;

    e = (cuda_engine *)rr_calloc(1, sizeof *e);
    if (!e) return rr_set_error(err, RR_E_NOMEM, "out of memory creating the CUDA engine");
    e->device = -1;
    e->layers = (layer_dev *)rr_calloc((size_t)mi->n_layer, sizeof *e->layers);
    if (!e->layers) {
        st = rr_set_error(err, RR_E_NOMEM, "out of memory creating the CUDA engine");
        goto fail;
    }
    e->dt = o->dtype == RR_DTYPE_BF16 ? RR_DTYPE_BF16 : RR_DTYPE_F16;
    e->d_model = mi->d_model;
    e->d_embed = mi->d_embed;
    e->n_layer = mi->n_layer;
    e->n_head = mi->n_head;
    e->d_head = mi->d_head;
    e->d_ff = mi->d_ff;
    e->n_labels = mi->n_labels;
    e->max_tok = o->max_batch_tokens;
    e->electra = mi->arch == RR_ARCH_ELECTRA;
    e->pos_pad = mi->pos_pad;
    e->eps = mi->layer_norm_eps;

    CK(cudaSetDevice(o->device), "cudaSetDevice");
    e->device = o->device;
    {
        cudaDeviceProp prop;
        CK(cudaGetDeviceProperties(&prop, o->device), "cudaGetDeviceProperties");
        if (prop.major < 8) {
            st = rr_set_error(err, RR_E_UNSUPPORTED,
                              "cuda:%d %s is sm_%d%d; the CUDA engine needs sm_80 or newer",
                              o->device, prop.name, prop.major, prop.minor);
            goto fail;
        }
        snprintf(e->desc, sizeof e->desc, "cuda:%d %.255s (%s)", o->device, prop.name,
                 e->dt == RR_DTYPE_BF16 ? "bf16" : "fp16");
    }
    CK(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    if (cublasCreate(&e->blas) != CUBLAS_STATUS_SUCCESS) {
        st = rr_set_error(err, RR_E_DEVICE, "cuda:%d: cublasCreate failed", o->device);
        goto fail;
    }
    /* fp32 reductions only: with fp16/bf16 outputs cuBLAS may otherwise reduce split-K
     * partial sums in the output type, adding a rounding that depends on M. */
    if (cublasSetMathMode(e->blas,
                          (cublasMath_t)(CUBLAS_DEFAULT_MATH |
                                         CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)) !=
        CUBLAS_STATUS_SUCCESS) {
        st = rr_set_error(err, RR_E_DEVICE, "cuda:%d: cublasSetMathMode failed", o->device);
        goto fail;
    }
    CK(cudaMalloc(&e->blas_ws, BLAS_WS_BYTES), "cudaMalloc(cuBLAS workspace)");
    if (cublasSetStream(e->blas, e->stream) != CUBLAS_STATUS_SUCCESS ||
        cublasSetWorkspace(e->blas, e->blas_ws, BLAS_WS_BYTES) != CUBLAS_STATUS_SUCCESS) {
        st = rr_set_error(err, RR_E_DEVICE, "cuda:%d: cublasSetStream/SetWorkspace failed",
                          o->device);
        goto fail;
    }

    /* Weights: measure, allocate, convert on the host, one copy. */
    {
        uploader u = {NULL, NULL, 0, e->dt};
        upload_all(e, w, mi, &u);
        const size_t bytes = u.off;
        CK(cudaMalloc(&e->weights, bytes), "cudaMalloc(weights)");
        host_w = (char *)rr_calloc(1, bytes); /* zeroed: alignment gaps are copied too */
        if (!host_w) {
            st = rr_set_error(err, RR_E_NOMEM, "out of memory staging %zu bytes of weights", bytes);
            goto fail;
        }
        u.host = host_w;
        u.dev = (char *)e->weights;
        u.off = 0;
        upload_all(e, w, mi, &u);
        CK(cudaMemcpy(e->weights, host_w, bytes, cudaMemcpyHostToDevice), "upload of weights");
        rr_free(host_w);
        host_w = NULL;
    }

    /* Workspace: activations, then the batch block, carved from one allocation. */
    {
        const size_t T = rr_cuda_dtype_size(e->dt), n = (size_t)e->max_tok;
        const size_t d = (size_t)e->d_model;
        size_t off = 0, o_emb = 0, o_h, o_x, o_y, o_qkv, o_ctx, o_ff, o_lg, o_tok, o_cls, o_cnt,
               o_til, o_ctl;
        if (w->emb_proj_w) {
            o_emb = off;
            off = align_up(off + n * e->d_embed * T);
        }
        o_h = off, off = align_up(off + n * d * T);
        o_x = off, off = align_up(off + n * d * T);
        o_y = off, off = align_up(off + n * d * T);
        o_qkv = off, off = align_up(off + n * 3 * d * T);
        o_ctx = off, off = align_up(off + n * d * T);
        o_ff = off, off = align_up(off + n * e->d_ff * T);
        o_lg = off, off = align_up(off + n * e->n_labels * sizeof(float));
        const size_t batch_at = off;
        o_tok = off, off = align_up(off + n * sizeof(rr_tok3));
        o_cls = off, off = align_up(off + n * sizeof(int32_t));
        o_cnt = off, off = align_up(off + 2 * sizeof(int32_t));
        o_til = off, off = align_up(off + 2 * n * sizeof(rr_attn_tile));
        o_ctl = off, off = align_up(off + n * sizeof(rr_attn_tile));
        CK(cudaMalloc(&e->work, off), "cudaMalloc(workspace)");
        CK(cudaMemset(e->work, 0, off), "cudaMemset(workspace)");
        char *b = (char *)e->work;
        e->emb = w->emb_proj_w ? b + o_emb : NULL;
        e->h = b + o_h, e->x = b + o_x, e->y = b + o_y, e->qkv = b + o_qkv;
        e->ctx = b + o_ctx, e->ff = b + o_ff;
        e->logits_dev = (float *)(b + o_lg);
        e->toks_dev = (rr_tok3 *)(b + o_tok);
        e->cls_rows_dev = (int32_t *)(b + o_cls);
        e->counts_dev = (int32_t *)(b + o_cnt);
        e->tiles_dev = (rr_attn_tile *)(b + o_til);
        e->cls_tiles_dev = (rr_attn_tile *)(b + o_ctl);

        /* Pinned staging mirrors the batch block, plus the logits. */
        const size_t pin_logits = off - batch_at;
        CK(cudaHostAlloc(&e->pinned, pin_logits + n * e->n_labels * sizeof(float),
                         cudaHostAllocDefault),
           "cudaHostAlloc(staging)");
        char *p = (char *)e->pinned;
        e->toks_h = (rr_tok3 *)(p + (o_tok - batch_at));
        e->cls_rows_h = (int32_t *)(p + (o_cls - batch_at));
        e->counts_h = (int32_t *)(p + (o_cnt - batch_at));
        e->tiles_h = (rr_attn_tile *)(p + (o_til - batch_at));
        e->cls_tiles_h = (rr_attn_tile *)(p + (o_ctl - batch_at));
        e->logits_h = (float *)((char *)e->pinned + pin_logits);
        memset(e->pinned, 0, pin_logits);
    }
    /* The weight copy and the memset ran on the legacy stream, which our non-blocking
     * stream does not wait for: finish them before anything is enqueued. */
    CK(cudaDeviceSynchronize(), "weight upload / workspace clear");

    /* Graphs per (tok_cap, seq_cap) bucket. Each shape runs once eagerly first so cuBLAS
     * and lazy module loading do their one-time work outside the capture; a failure there
     * is a failure of the engine (the eager path runs the same launches). A failure of the
     * capture itself only costs speed: it is logged and the remaining batches run eagerly. */
    for (int tc = 128; tc <= 4096 && tc <= e->max_tok; tc *= 2) {
        for (int sc = 1; sc <= 64 && sc <= tc; sc *= 2) {
            if ((long)sc * mi->max_position < tc) continue; /* no batch could use it */
            if (e->n_graphs == MAX_GRAPHS) break;
            graph_bucket *g = &e->graphs[e->n_graphs];
            g->tok_cap = tc, g->seq_cap = sc, g->tile_cap = tile_cap_for(tc, sc);
            ce = enqueue(e, tc, sc, g->tile_cap);
            if (ce == cudaSuccess) ce = cudaStreamSynchronize(e->stream);
            if (ce != cudaSuccess) {
                st = rr_set_error(err, RR_E_DEVICE,
                                  "cuda:%d: warm-up forward (%d tokens, %d sequences) failed at "
                                  "engine_cuda.cu:%d %s: %s",
                                  o->device, tc, sc, e->fail_line, e->fail_stmt ? e->fail_stmt : "",
                                  cudaGetErrorString(ce));
                goto fail;
            }
            const char *what = "cudaStreamBeginCapture";
            ce = cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal);
            if (ce == cudaSuccess) {
                cudaError_t ce1 = enqueue(e, tc, sc, g->tile_cap);
                ce = cudaStreamEndCapture(e->stream, &graph);
                what = ce1 != cudaSuccess ? e->fail_stmt : "cudaStreamEndCapture";
                if (ce1 != cudaSuccess) ce = ce1;
            }
            if (ce == cudaSuccess)
                what = "cudaGraphInstantiate", ce = cudaGraphInstantiate(&g->exec, graph, 0);
            /* Upload now, so the first request of each bucket does not pay for it. */
            if (ce == cudaSuccess)
                what = "cudaGraphUpload", ce = cudaGraphUpload(g->exec, e->stream);
            if (graph) cudaGraphDestroy(graph);
            graph = NULL;
            if (ce != cudaSuccess) {
                fprintf(stderr,
                        "rerankd: cuda:%d: CUDA graph capture for %d tokens / %d sequences failed "
                        "(%s: %s); %d graphs kept, batches no graph holds run eagerly\n",
                        o->device, tc, sc, what ? what : "", cudaGetErrorString(ce), e->n_graphs);
                if (g->exec) cudaGraphExecDestroy(g->exec);
                g->exec = NULL;
                (void)cudaGetLastError(); /* a failed capture leaves no sticky error */
                CK(cudaStreamSynchronize(e->stream), "stream after a failed capture");
                goto graphs_done;
            }
            e->n_graphs++;
        }
    }
graphs_done:
    CK(cudaStreamSynchronize(e->stream), "graph upload");
    *impl = e;
    return RR_OK;
fail:
    if (graph) cudaGraphDestroy(graph);
    rr_free(host_w);
    cuda_destroy(e);
    return st;
}

/* ---- forward --------------------------------------------------------------------------- */

#define FATAL_ENQUEUE(stmt)                                                                        \
    do {                                                                                           \
        cudaError_t rr_f_ = (stmt);                                                                \
        if (rr_f_ != cudaSuccess) {                                                                \
            fprintf(stderr, "rerankd: fatal CUDA error in %s (%s:%d): %s: %s\n", __func__,         \
                    __FILE__, e->fail_line, e->fail_stmt, cudaGetErrorString(rr_f_));              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static rr_status cuda_forward(void *impl, const rr_batch *b, float *logits)
{
    cuda_engine *e = (cuda_engine *)impl;
    const int n_tok = b->n_tok, n_seq = b->n_seq;
    const graph_bucket *g = NULL;
    for (int i = 0; i < e->n_graphs && !g; i++)
        if (e->graphs[i].tok_cap >= n_tok && e->graphs[i].seq_cap >= n_seq) g = &e->graphs[i];

    /* Pack: (token, type, position) per token, [CLS] rows, attention tiles. */
    const int tok_cap = g ? g->tok_cap : n_tok, seq_cap = g ? g->seq_cap : n_seq;
    for (int s = 0; s < n_seq; s++) {
        const int begin = b->cu_seqlens[s], end = b->cu_seqlens[s + 1];
        int next = e->pos_pad + 1; /* rr_position: XLM-R's rule, or the index for BERT */
        for (int t = begin; t < end; t++)
            e->toks_h[t] = (rr_tok3){b->tokens[t], b->type_ids[t],
                                     rr_position(b->tokens[t], t - begin, e->pos_pad, &next)};
        e->cls_rows_h[s] = begin;
    }
    for (int t = n_tok; t < tok_cap; t++)
        e->toks_h[t] = (rr_tok3){0, 0, 0};
    for (int s = n_seq; s < seq_cap; s++)
        e->cls_rows_h[s] = 0;
    const int n_tiles = rr_attention_tiles(b->cu_seqlens, n_seq, 0, e->tiles_h, 2 * e->max_tok);
    const int n_cls = rr_attention_tiles(b->cu_seqlens, n_seq, 1, e->cls_tiles_h, e->max_tok);
    if (n_tiles < 0 || n_cls != n_seq) return RR_E_INVALID; /* unreachable after validation */
    if (g && n_tiles > g->tile_cap) g = NULL; /* cannot happen: tile_cap is an upper bound */
    e->counts_h[0] = n_tiles;
    e->counts_h[1] = n_cls;

    cudaStream_t st = e->stream;
    RR_CUDA_FATAL(cudaSetDevice(e->device));
    RR_CUDA_FATAL(cudaMemcpyAsync(e->toks_dev, e->toks_h, (size_t)tok_cap * sizeof(rr_tok3),
                                  cudaMemcpyHostToDevice, st));
    RR_CUDA_FATAL(cudaMemcpyAsync(e->cls_rows_dev, e->cls_rows_h, (size_t)seq_cap * sizeof(int32_t),
                                  cudaMemcpyHostToDevice, st));
    RR_CUDA_FATAL(cudaMemcpyAsync(e->tiles_dev, e->tiles_h, (size_t)n_tiles * sizeof(rr_attn_tile),
                                  cudaMemcpyHostToDevice, st));
    RR_CUDA_FATAL(cudaMemcpyAsync(e->cls_tiles_dev, e->cls_tiles_h,
                                  (size_t)n_cls * sizeof(rr_attn_tile), cudaMemcpyHostToDevice,
                                  st));
    RR_CUDA_FATAL(cudaMemcpyAsync(e->counts_dev, e->counts_h, 2 * sizeof(int32_t),
                                  cudaMemcpyHostToDevice, st));
    if (g)
        RR_CUDA_FATAL(cudaGraphLaunch(g->exec, st));
    else
        FATAL_ENQUEUE(enqueue(e, n_tok, n_seq, n_tiles));
    const size_t lbytes = (size_t)n_seq * e->n_labels * sizeof(float);
    RR_CUDA_FATAL(cudaMemcpyAsync(e->logits_h, e->logits_dev, lbytes, cudaMemcpyDeviceToHost, st));
    RR_CUDA_FATAL(cudaStreamSynchronize(st));
    memcpy(logits, e->logits_h, lbytes);
    return RR_OK;
}

static const char *cuda_describe(const void *impl)
{
    return ((const cuda_engine *)impl)->desc;
}

extern "C" const rr_backend rr_backend_cuda = {
    "cuda", cuda_create, cuda_forward, cuda_describe, cuda_destroy,
};
