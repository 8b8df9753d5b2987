/*
 * engine_cuda.cu — the CUDA backend (rr_backend_cuda of src/engine/backend.h): weights
 * uploaded once, one workspace, one stream, cuBLASLt GEMMs with one algorithm per layer
 * shape, the hand-written kernels of cuda/, and a CUDA graph for every batch shape bucket.
 *
 * Precision: fp16 by default (opts->dtype F16, or F32 — the zero value — meaning "the
 * default"), bf16 when asked. Weight matrices and embedding tables in that type; biases and
 * LayerNorm parameters stay fp32 (except ELECTRA's projection bias, in T for cuBLASLt's
 * epilogue: cuda/linear.cu); every accumulation and statistic is fp32.
 *
 * One GPU batch (n_tok packed tokens, n_seq sequences; tok_cap/seq_cap ≥ them, below):
 *   embed_ln → h                                    (ELECTRA: emb → linear+bias epilogue → h)
 *   layers 0 … n_layer−2, on all tok_cap rows:
 *     qkv = h·Wqkvᵀ (one GEMM) → attention(+qkv bias) → ctx → x = ctx·Woᵀ
 *     → x = LN(x + bo + h) → f = x·W1ᵀ → f = gelu(f + b1) → y = f·W2ᵀ → y = LN(y + b2 + x)
 *   last layer, exact for a [CLS]-pooled head: K and V are needed for every token, but only
 *   the [CLS] rows go on: qkv for all rows, attention with one query row per sequence into
 *   ctx[seq_cap], gather the [CLS] rows of h as the residual, then out-proj/LN/FFN/LN on
 *   seq_cap rows, and the head on those rows → logits[seq_cap].
 *
 * Batch invariance (style habit 7, as on the CPU): every op is row-wise except attention,
 * which only reads tiles of its own sequence, and every GEMM runs the one cuBLASLt algorithm
 * its shape was planned with (split-K 1) at every row count (cuda/linear.cu says what that
 * rests on). So a pair's logit is meant to be the same bits alone, in any batch, in any
 * chunk, eager or from any graph; tests/cuda/test_cuda_model.c asserts it bitwise.
 *
 * The host path of one forward (the batch comes validated, with position ids, from the
 * front: backend.h):
 *   1. Chunks. The batch is cut, in order, into GPU batches of at most chunk_tok tokens
 *      (16384, or RERANKD_CUDA_CHUNK_TOKENS at create; at least the longest sequence, at
 *      most max_batch_tokens) and chunk_seq sequences (1024, at most chunk_tok) — K=1000
 *      pairs of ~120 tokens is 8 chunks. The activations are
 *      sized for one chunk, not for max_batch_tokens.
 *   2. Bucket. Each chunk takes the smallest captured bucket that holds it: tok_cap from the
 *      ladder 128, 192, 256, 384, … (powers of two and 1.5× them, then chunk_tok), seq_cap a
 *      power of two up to chunk_seq (then chunk_seq). Every chunk fits the largest bucket, so
 *      with graphs every chunk replays one; only if a capture failed at create (logged)
 *      does a chunk run eagerly, at its exact size.
 *   3. Pack into one pinned staging block laid out exactly like the device batch block for
 *      that bucket (batch_layout): counts (full tiles, [CLS] tiles), (token, type, position)
 *      per token padded with zeros to tok_cap, [CLS] row indices padded to seq_cap, the
 *      [CLS] tile list, then the full tile list last — so the used bytes are one prefix.
 *   4. One cudaMemcpyAsync of that prefix (K=1: about 1.7 KB; was five copies), an event
 *      saying the staging block is free again, the graph launch (or the eager launches),
 *      and one cudaMemcpyAsync of the chunk's logits back into pinned memory.
 *   5. After the last chunk, one stream synchronize and a memcpy to the caller.
 * Double-buffered staging: two pinned blocks, used alternately by chunks. The host packs
 * chunk i+1 into the other block while the GPU runs chunk i (its copy, its graph): what
 * overlaps is the host's packing and enqueueing of chunk i+1 with the GPU work of chunk i.
 * Before packing chunk i+2 into a block, the host waits on the event recorded after chunk
 * i's copy out of it. One device batch block serves all chunks: chunk i+1's copy is ordered
 * after chunk i's kernels on the stream. Not overlapped: the front's validation, the packing
 * of the first chunk, and anything across forwards — rr_engine_forward is synchronous and
 * the scheduler calls it from one thread (src/sched/sched.c), so a batch of one chunk
 * (≤ 16384 tokens) overlaps nothing.
 *
 * Graphs: captured at create for every bucket (each kernel's grid sized for the bucket's
 * upper bound; GEMMs on tok_cap or seq_cap rows; the only per-batch quantities a kernel must
 * know exactly — the tile counts — read from device memory; all device addresses fixed).
 * At most MAX_GRAPHS; for max_batch_tokens ≥ 16384: 126 buckets for 512-position models,
 * 154 for XLM-R's 8192 — create time est. well under 1 s on an H100 (≈55 nodes a graph;
 * not yet measured: the count and the time are printed at create). No graph is instantiated
 * after create. RERANKD_CUDA_GRAPHS=0 in the environment at create turns graphs off (every
 * chunk eager at its exact size): for a driver whose capture misbehaves, and for the tests'
 * eager-vs-graph comparison. Rows past the batch in a bucket hold finite values (padding
 * tokens, or stale LayerNorm/GEMM/GELU outputs of finite inputs; the workspace is zeroed at
 * create) and are never read back.
 *
 * Memory: all device memory is allocated in create (weights: one allocation carved by a
 * table; activations + the batch block: one allocation sized for one chunk; the cuBLASLt
 * workspace; the graphs), and the pinned staging. forward allocates nothing and creates no
 * handle. Errors: create returns a status and a message; a failure inside forward is a
 * device fault and aborts after logging the statement, function and place (style habit 8).
 * Measured: not yet — compiled, not run on a device (no GPU in this session). Run on the CPU
 * over tests/cuda/host's fake runtime and cuBLASLt (test_cuda_model_host, quick mode: 57/0,
 * bitwise invariance including a 4-chunk forward and graph vs eager), which checks the host
 * path and the copies' bounds, not cuBLASLt's device kernels or timing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

extern "C" {
#include "engine/backend.h"
#include "model/model.h"
#include "util/util.h"
}

#define ALIGN 256
#define LT_WS_BYTES ((size_t)32 << 20) /* cuBLASLt workspace (split-K 1 needs little) */
#define CHUNK_TOK 16384                /* most tokens of one GPU batch (see the top) */
#define CHUNK_SEQ 1024                 /* most sequences of one GPU batch */
#define MAX_LADDER 64
#define MAX_GRAPHS 192

typedef struct layer_dev {
    void *qkv_w, *ao_w, *ff1_w, *ff2_w; /* T */
    float *qkv_b, *ao_b, *ln1_g, *ln1_b, *ff1_b, *ff2_b, *ln2_g, *ln2_b;
} layer_dev;

/* Where each part of one GPU batch lives, in the device batch block and (same offsets) in a
 * pinned staging block: counts[2] at 0, then toks[tok_cap], cls_rows[seq_cap],
 * cls_tiles[seq_cap], tiles[tile_cap]. bytes: the end of tiles[tile_cap]. */
typedef struct batch_layout {
    int tok_cap, seq_cap, tile_cap;
    size_t toks, cls_rows, cls_tiles, tiles, bytes;
} batch_layout;

typedef struct bucket {
    batch_layout L;
    cudaGraphExec_t exec;
} bucket;

typedef struct cuda_engine {
    int device;
    rr_dtype dt;
    char desc[320];
    int d_model, d_embed, n_layer, n_head, d_head, d_ff, n_labels, max_tok, electra;
    int chunk_tok, chunk_seq; /* the largest GPU batch (see the top) */
    float eps;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *lt_ws;
    rr_linear_plan p_proj, p_qkv, p_ao, p_ff1, p_ff2; /* one cuBLASLt algorithm per shape */

    void *weights; /* device: every weight, carved below */
    void *word, *pos, *type, *proj_w, *proj_b, *head_w, *out_w;
    float *emb_g, *emb_b, *head_b, *out_b;
    layer_dev *layers;

    void *work; /* device: activations and the batch block */
    void *emb, *h, *x, *y, *qkv, *ctx, *ff;
    float *logits_dev;  /* [chunk_seq, n_labels] */
    char *batch_dev;    /* one batch_layout at a time */
    size_t batch_bytes; /* the largest layout's bytes */

    void *pinned;          /* host, page-locked: stage[0], stage[1], logits_h */
    char *stage[2];        /* double-buffered staging, each batch_bytes */
    cudaEvent_t copied[2]; /* recorded after the copy out of stage[i] */
    float *logits_h;       /* [max_tok, n_labels]: a forward's logits, chunk by chunk */
    int32_t *cu_h;         /* host [chunk_seq + 1]: one chunk's cu_seqlens from 0 */

    bucket buckets[MAX_GRAPHS]; /* captured, ascending (tok_cap, seq_cap) */
    int n_buckets;

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
        e->proj_b = up_mat(u, w->emb_proj_b, d); /* in T: cuBLASLt's bias epilogue (linear.cu) */
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

static size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static batch_layout layout_for(int tok_cap, int seq_cap, int tile_cap)
{
    batch_layout L;
    size_t off = align16(2 * sizeof(int32_t));
    L.tok_cap = tok_cap, L.seq_cap = seq_cap, L.tile_cap = tile_cap;
    L.toks = off, off = align16(off + (size_t)tok_cap * sizeof(rr_tok3));
    L.cls_rows = off, off = align16(off + (size_t)seq_cap * sizeof(int32_t));
    L.cls_tiles = off, off = align16(off + (size_t)seq_cap * sizeof(rr_attn_tile));
    L.tiles = off, L.bytes = off + (size_t)tile_cap * sizeof(rr_attn_tile);
    return L;
}

/* An upper bound on the full tiles of any batch of ≤ tok_cap tokens in ≤ seq_cap sequences. */
static int tile_cap_for(int tok_cap, int seq_cap)
{
    return (tok_cap + (RR_ATTN_BQ - 1) * seq_cap + RR_ATTN_BQ - 1) / RR_ATTN_BQ;
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

static cudaError_t enqueue(cuda_engine *e, const batch_layout *B)
{
    const rr_dtype dt = e->dt;
    const int d = e->d_model, f = e->d_ff, tok_cap = B->tok_cap, seq_cap = B->seq_cap;
    cudaStream_t st = e->stream;
    void *h = e->h, *x = e->x, *y = e->y;
    const int32_t *counts = (const int32_t *)e->batch_dev; /* [0] full, [1] [CLS] tiles */
    const rr_tok3 *toks = (const rr_tok3 *)(e->batch_dev + B->toks);
    const int32_t *cls_rows = (const int32_t *)(e->batch_dev + B->cls_rows);
    const rr_attn_tile *cls_tiles = (const rr_attn_tile *)(e->batch_dev + B->cls_tiles);
    const rr_attn_tile *tiles = (const rr_attn_tile *)(e->batch_dev + B->tiles);

    if (e->proj_w) {
        TRY(rr_embed_ln_cuda(toks, tok_cap, e->word, e->pos, e->type, e->emb_g, e->emb_b, e->eps,
                             e->d_embed, e->emb, dt, st));
        TRY(rr_linear_cuda(&e->p_proj, e->emb, e->proj_w, e->proj_b, tok_cap, h, st));
    } else {
        TRY(rr_embed_ln_cuda(toks, tok_cap, e->word, e->pos, e->type, e->emb_g, e->emb_b, e->eps, d,
                             h, dt, st));
    }
    for (int l = 0; l < e->n_layer; l++) {
        const layer_dev *L = &e->layers[l];
        TRY(rr_linear_cuda(&e->p_qkv, h, L->qkv_w, NULL, tok_cap, e->qkv, st));
        if (l + 1 < e->n_layer) {
            TRY(rr_attention_cuda(e->qkv, L->qkv_b, tiles, counts, B->tile_cap, e->n_head,
                                  e->d_head, e->ctx, dt, st));
            TRY(rr_linear_cuda(&e->p_ao, e->ctx, L->ao_w, NULL, tok_cap, x, st));
            TRY(rr_bias_residual_ln_cuda(x, L->ao_b, h, L->ln1_g, L->ln1_b, e->eps, tok_cap, d, dt,
                                         st));
            TRY(rr_linear_cuda(&e->p_ff1, x, L->ff1_w, NULL, tok_cap, e->ff, st));
            TRY(rr_bias_gelu_cuda(e->ff, L->ff1_b, tok_cap, f, dt, st));
            TRY(rr_linear_cuda(&e->p_ff2, e->ff, L->ff2_w, NULL, tok_cap, y, st));
            TRY(rr_bias_residual_ln_cuda(y, L->ff2_b, x, L->ln2_g, L->ln2_b, e->eps, tok_cap, d, dt,
                                         st));
            void *t = h;
            h = y;
            y = t;
        } else {
            /* [CLS] rows only; y first holds the gathered residual, then the FFN output. */
            TRY(rr_attention_cuda(e->qkv, L->qkv_b, cls_tiles, counts + 1, seq_cap, e->n_head,
                                  e->d_head, e->ctx, dt, st));
            TRY(rr_gather_rows_cuda(h, cls_rows, seq_cap, d, y, dt, st));
            TRY(rr_linear_cuda(&e->p_ao, e->ctx, L->ao_w, NULL, seq_cap, x, st));
            TRY(rr_bias_residual_ln_cuda(x, L->ao_b, y, L->ln1_g, L->ln1_b, e->eps, seq_cap, d, dt,
                                         st));
            TRY(rr_linear_cuda(&e->p_ff1, x, L->ff1_w, NULL, seq_cap, e->ff, st));
            TRY(rr_bias_gelu_cuda(e->ff, L->ff1_b, seq_cap, f, dt, st));
            TRY(rr_linear_cuda(&e->p_ff2, e->ff, L->ff2_w, NULL, seq_cap, y, st));
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

/* ---- buckets --------------------------------------------------------------------------- */

/* 128, 192, 256, 384, … below top, then top (padding ≤ 50 %, ≈ 20 % on average). */
static int tok_ladder(int top, int *out)
{
    int n = 0;
    for (int base = 128; base < top && n + 2 < MAX_LADDER; base *= 2) {
        out[n++] = base;
        if (base + base / 2 < top) out[n++] = base + base / 2;
    }
    out[n++] = top;
    return n;
}

/* 1, 2, 4, … below top, then top. The sequence count only sizes the last layer's rows. */
static int seq_ladder(int top, int *out)
{
    int n = 0;
    for (int s = 1; s < top && n + 1 < MAX_LADDER; s *= 2)
        out[n++] = s;
    out[n++] = top;
    return n;
}

/* The smallest captured bucket holding n_tok tokens in n_seq sequences, or NULL. */
static const bucket *bucket_for(const cuda_engine *e, int n_tok, int n_seq)
{
    for (int i = 0; i < e->n_buckets; i++)
        if (e->buckets[i].L.tok_cap >= n_tok && e->buckets[i].L.seq_cap >= n_seq)
            return &e->buckets[i];
    return NULL;
}

/* Records enqueue(L) into a graph and instantiates and uploads it; on failure *what names
 * the call. */
static cudaError_t capture(cuda_engine *e, const batch_layout *L, cudaGraphExec_t *exec,
                           const char **what)
{
    cudaGraph_t graph = NULL;
    *exec = NULL;
    *what = "cudaStreamBeginCapture";
    cudaError_t ce = cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal);
    if (ce == cudaSuccess) {
        cudaError_t ce1 = enqueue(e, L);
        ce = cudaStreamEndCapture(e->stream, &graph);
        *what = ce1 != cudaSuccess ? e->fail_stmt : "cudaStreamEndCapture";
        if (ce1 != cudaSuccess) ce = ce1;
    }
    if (ce == cudaSuccess)
        *what = "cudaGraphInstantiate", ce = cudaGraphInstantiate(exec, graph, 0);
    /* Upload now, so the first request of each bucket does not pay for it. */
    if (ce == cudaSuccess) *what = "cudaGraphUpload", ce = cudaGraphUpload(*exec, e->stream);
    if (graph) cudaGraphDestroy(graph);
    if (ce != cudaSuccess && *exec) {
        cudaGraphExecDestroy(*exec);
        *exec = NULL;
    }
    return ce;
}

/* ---- create / destroy ------------------------------------------------------------------ */

static void cuda_destroy(void *impl)
{
    cuda_engine *e = (cuda_engine *)impl;
    if (!e) return;
    if (e->device >= 0) cudaSetDevice(e->device);
    for (int i = 0; i < e->n_buckets; i++)
        if (e->buckets[i].exec) cudaGraphExecDestroy(e->buckets[i].exec);
    rr_linear_plan_free(&e->p_proj);
    rr_linear_plan_free(&e->p_qkv);
    rr_linear_plan_free(&e->p_ao);
    rr_linear_plan_free(&e->p_ff1);
    rr_linear_plan_free(&e->p_ff2);
    if (e->lt) cublasLtDestroy(e->lt);
    for (int i = 0; i < 2; i++)
        if (e->copied[i]) cudaEventDestroy(e->copied[i]);
    if (e->stream) cudaStreamDestroy(e->stream);
    cudaFree(e->lt_ws);
    cudaFree(e->weights);
    cudaFree(e->work);
    cudaFreeHost(e->pinned);
    rr_free(e->cu_h);
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
    e->eps = mi->layer_norm_eps;
    /* engine.c guarantees max_batch_tokens ≥ max_seq, so one sequence always fits a chunk.
     * RERANKD_CUDA_CHUNK_TOKENS moves the chunk size (tests: several chunks per forward
     * without 16k-token batches on the host fake; the device check: the overlap/GEMM-size
     * trade-off). */
    {
        const char *env = getenv("RERANKD_CUDA_CHUNK_TOKENS");
        const long want = env && atol(env) > 0 ? atol(env) : CHUNK_TOK;
        e->chunk_tok = want < mi->max_seq ? mi->max_seq : want > INT32_MAX ? INT32_MAX : (int)want;
    }
    if (e->chunk_tok > e->max_tok) e->chunk_tok = e->max_tok;
    e->chunk_seq = e->chunk_tok < CHUNK_SEQ ? e->chunk_tok : CHUNK_SEQ;
    e->cu_h = (int32_t *)rr_malloc((size_t)(e->chunk_seq + 1) * sizeof *e->cu_h);
    if (!e->cu_h) {
        st = rr_set_error(err, RR_E_NOMEM, "out of memory creating the CUDA engine");
        goto fail;
    }

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
    for (int i = 0; i < 2; i++)
        CK(cudaEventCreateWithFlags(&e->copied[i], cudaEventDisableTiming), "cudaEventCreate");
    if (cublasLtCreate(&e->lt) != CUBLAS_STATUS_SUCCESS) {
        st = rr_set_error(err, RR_E_DEVICE, "cuda:%d: cublasLtCreate failed", o->device);
        goto fail;
    }
    CK(cudaMalloc(&e->lt_ws, LT_WS_BYTES), "cudaMalloc(cuBLASLt workspace)");
    {
        /* One cuBLASLt algorithm per GEMM shape, for every row count up to a chunk. */
        const int d = e->d_model, f = e->d_ff, R = e->chunk_tok;
        const rr_dtype dt = e->dt;
        const char *bad = NULL;
        if (w->emb_proj_w && rr_linear_plan_init(&e->p_proj, e->lt, e->d_embed, d, 1, R, dt,
                                                 e->lt_ws, LT_WS_BYTES) != cudaSuccess)
            bad = "embeddings_project";
        else if (rr_linear_plan_init(&e->p_qkv, e->lt, d, 3 * d, 0, R, dt, e->lt_ws, LT_WS_BYTES) !=
                 cudaSuccess)
            bad = "QKV";
        else if (rr_linear_plan_init(&e->p_ao, e->lt, d, d, 0, R, dt, e->lt_ws, LT_WS_BYTES) !=
                 cudaSuccess)
            bad = "attention output";
        else if (rr_linear_plan_init(&e->p_ff1, e->lt, d, f, 0, R, dt, e->lt_ws, LT_WS_BYTES) !=
                 cudaSuccess)
            bad = "FFN1";
        else if (rr_linear_plan_init(&e->p_ff2, e->lt, f, d, 0, R, dt, e->lt_ws, LT_WS_BYTES) !=
                 cudaSuccess)
            bad = "FFN2";
        if (bad) {
            st = rr_set_error(err, RR_E_DEVICE,
                              "cuda:%d: no batch-invariant cuBLASLt algorithm for the %s GEMM of "
                              "%s (see stderr)",
                              o->device, bad, mi->path);
            goto fail;
        }
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

    /* Workspace: activations for one chunk, the logits, then the batch block — one
     * allocation. Pinned: the two staging blocks and the logits of a whole forward. */
    {
        const size_t T = rr_cuda_dtype_size(e->dt), n = (size_t)e->chunk_tok;
        const size_t d = (size_t)e->d_model;
        const batch_layout big =
            layout_for(e->chunk_tok, e->chunk_seq, tile_cap_for(e->chunk_tok, e->chunk_seq));
        size_t off = 0, o_emb = 0, o_h, o_x, o_y, o_qkv, o_ctx, o_ff, o_lg, o_bat;
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
        o_lg = off, off = align_up(off + (size_t)e->chunk_seq * e->n_labels * sizeof(float));
        o_bat = off, off = align_up(off + big.bytes);
        CK(cudaMalloc(&e->work, off), "cudaMalloc(workspace)");
        CK(cudaMemset(e->work, 0, off), "cudaMemset(workspace)");
        char *b = (char *)e->work;
        e->emb = w->emb_proj_w ? b + o_emb : NULL;
        e->h = b + o_h, e->x = b + o_x, e->y = b + o_y, e->qkv = b + o_qkv;
        e->ctx = b + o_ctx, e->ff = b + o_ff;
        e->logits_dev = (float *)(b + o_lg);
        e->batch_dev = b + o_bat;
        e->batch_bytes = big.bytes;

        const size_t sb = align_up(big.bytes);
        CK(cudaHostAlloc(&e->pinned, 2 * sb + (size_t)e->max_tok * e->n_labels * sizeof(float),
                         cudaHostAllocDefault),
           "cudaHostAlloc(staging)");
        e->stage[0] = (char *)e->pinned;
        e->stage[1] = (char *)e->pinned + sb;
        e->logits_h = (float *)((char *)e->pinned + 2 * sb);
        memset(e->pinned, 0, 2 * sb);
    }
    /* The weight copy and the memset ran on the legacy stream, which our non-blocking
     * stream does not wait for: finish them before anything is enqueued. */
    CK(cudaDeviceSynchronize(), "weight upload / workspace clear");

    /* One eager forward of the smallest shape first: lazy module loading and cuBLASLt's
     * first launches happen outside any capture, and a failure here (the eager path runs
     * the same launches as every graph) is a failure of the engine. The batch block is
     * zeroed, so its tile counts are 0 and its tokens valid. */
    {
        int tl[MAX_LADDER], sl[MAX_LADDER];
        const int n_tl = tok_ladder(e->chunk_tok, tl), n_sl = seq_ladder(e->chunk_seq, sl);
        const batch_layout warm = layout_for(tl[0], 1, tile_cap_for(tl[0], 1));
        ce = enqueue(e, &warm);
        if (ce == cudaSuccess) ce = cudaStreamSynchronize(e->stream);
        if (ce != cudaSuccess) {
            st = rr_set_error(err, RR_E_DEVICE,
                              "cuda:%d: warm-up forward (%d tokens, 1 sequence) failed at "
                              "engine_cuda.cu:%d %s: %s",
                              o->device, tl[0], e->fail_line, e->fail_stmt ? e->fail_stmt : "",
                              cudaGetErrorString(ce));
            goto fail;
        }
        /* Graphs for every (tok_cap, seq_cap) bucket some chunk could take. A failed capture
         * only costs speed: it is logged and the chunks no graph holds run eagerly. */
        const char *env = getenv("RERANKD_CUDA_GRAPHS");
        const int graphs = !(env && strcmp(env, "0") == 0);
        const uint64_t t0 = rr_now_ns();
        for (int i = 0; graphs && i < n_tl; i++) {
            const int tc = tl[i], prev_tc = i ? tl[i - 1] : 0;
            for (int j = 0; j < n_sl; j++) {
                const int sc = sl[j];
                if (j && sl[j - 1] >= tc) break; /* n_seq ≤ n_tok: a smaller one holds it */
                /* A chunk of ≤ sc sequences with more than prev_tc tokens cannot exist. */
                if ((long)sc * mi->max_seq <= prev_tc) continue;
                if (e->n_buckets == MAX_GRAPHS) {
                    fprintf(stderr,
                            "rerankd: cuda:%d: more than %d graph buckets; the rest run "
                            "eagerly\n",
                            o->device, MAX_GRAPHS);
                    goto graphs_done;
                }
                bucket *g = &e->buckets[e->n_buckets];
                const char *what = "";
                g->L = layout_for(tc, sc, tile_cap_for(tc, sc));
                ce = capture(e, &g->L, &g->exec, &what);
                if (ce != cudaSuccess) {
                    fprintf(stderr,
                            "rerankd: cuda:%d: CUDA graph capture for %d tokens / %d sequences "
                            "failed (%s: %s); %d graphs kept, chunks no graph holds run eagerly\n",
                            o->device, tc, sc, what ? what : "", cudaGetErrorString(ce),
                            e->n_buckets);
                    (void)cudaGetLastError(); /* a failed capture leaves no sticky error */
                    CK(cudaStreamSynchronize(e->stream), "stream after a failed capture");
                    goto graphs_done;
                }
                e->n_buckets++;
            }
        }
    graphs_done:
        CK(cudaStreamSynchronize(e->stream), "graph upload");
        if (graphs)
            fprintf(stderr,
                    "rerankd: cuda:%d: %d CUDA graphs (up to %d tokens / %d sequences) captured "
                    "in %.0f ms\n",
                    o->device, e->n_buckets, e->chunk_tok, e->chunk_seq,
                    (double)(rr_now_ns() - t0) / 1e6);
    }
    *impl = e;
    return RR_OK;
fail:
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

/* Packs sequences s0 … s1-1 of b into the staging block `stage` laid out as L (the file
 * comment, step 3) and returns the bytes to copy: everything up to the last used tile. */
static size_t pack(cuda_engine *e, const rr_batch *b, const int32_t *pos, int s0, int s1,
                   const batch_layout *L, char *stage)
{
    const int t0 = b->cu_seqlens[s0], n_tok = b->cu_seqlens[s1] - t0, n_seq = s1 - s0;
    int32_t *counts = (int32_t *)stage;
    rr_tok3 *toks = (rr_tok3 *)(stage + L->toks);
    int32_t *cls_rows = (int32_t *)(stage + L->cls_rows);
    rr_attn_tile *cls_tiles = (rr_attn_tile *)(stage + L->cls_tiles);
    rr_attn_tile *tiles = (rr_attn_tile *)(stage + L->tiles);
    const int32_t *tok = b->tokens + t0, *typ = b->type_ids + t0, *p = pos + t0;

    for (int t = 0; t < n_tok; t++)
        toks[t] = (rr_tok3){tok[t], typ[t], p[t]};
    memset(toks + n_tok, 0, (size_t)(L->tok_cap - n_tok) * sizeof *toks);
    for (int s = 0; s <= n_seq; s++)
        e->cu_h[s] = b->cu_seqlens[s0 + s] - t0;
    memcpy(cls_rows, e->cu_h, (size_t)n_seq * sizeof *cls_rows); /* [CLS] = first token */
    memset(cls_rows + n_seq, 0, (size_t)(L->seq_cap - n_seq) * sizeof *cls_rows);
    const int n_tiles = rr_attention_tiles(e->cu_h, n_seq, 0, tiles, L->tile_cap);
    const int n_cls = rr_attention_tiles(e->cu_h, n_seq, 1, cls_tiles, L->seq_cap);
    if (n_tiles < 0 || n_cls != n_seq) { /* tile_cap_for is an upper bound: a bug if hit */
        fprintf(stderr, "rerankd: fatal: %d tokens in %d sequences need more than %d tiles\n",
                n_tok, n_seq, L->tile_cap);
        abort();
    }
    counts[0] = n_tiles;
    counts[1] = n_cls;
    return L->tiles + (size_t)n_tiles * sizeof(rr_attn_tile);
}

static rr_status cuda_forward(void *impl, const rr_batch *b, const int32_t *positions,
                              float *logits)
{
    cuda_engine *e = (cuda_engine *)impl;
    const int32_t *cu = b->cu_seqlens;
    cudaStream_t st = e->stream;
    RR_CUDA_FATAL(cudaSetDevice(e->device));
    for (int s0 = 0, c = 0; s0 < b->n_seq; c++) {
        /* Chunk c: sequences s0 … s1-1, as many as fit (one always does: engine.c). */
        int s1 = s0 + 1;
        while (s1 < b->n_seq && s1 - s0 < e->chunk_seq && cu[s1 + 1] - cu[s0] <= e->chunk_tok)
            s1++;
        const int n_tok = cu[s1] - cu[s0], n_seq = s1 - s0;
        const bucket *g = bucket_for(e, n_tok, n_seq);
        const batch_layout L = g ? g->L : layout_for(n_tok, n_seq, tile_cap_for(n_tok, n_seq));
        char *stage = e->stage[c & 1];
        /* stage[c & 1] last fed chunk c-2's copy (the stream may still be running it). */
        if (c >= 2) RR_CUDA_FATAL(cudaEventSynchronize(e->copied[c & 1]));
        const size_t bytes = pack(e, b, positions, s0, s1, &L, stage);
        RR_CUDA_FATAL(cudaMemcpyAsync(e->batch_dev, stage, bytes, cudaMemcpyHostToDevice, st));
        RR_CUDA_FATAL(cudaEventRecord(e->copied[c & 1], st));
        if (g)
            RR_CUDA_FATAL(cudaGraphLaunch(g->exec, st));
        else
            FATAL_ENQUEUE(enqueue(e, &L));
        RR_CUDA_FATAL(cudaMemcpyAsync(e->logits_h + (size_t)s0 * e->n_labels, e->logits_dev,
                                      (size_t)n_seq * e->n_labels * sizeof(float),
                                      cudaMemcpyDeviceToHost, st));
        s0 = s1;
    }
    RR_CUDA_FATAL(cudaStreamSynchronize(st));
    memcpy(logits, e->logits_h, (size_t)b->n_seq * e->n_labels * sizeof(float));
    return RR_OK;
}

static const char *cuda_describe(const void *impl)
{
    return ((const cuda_engine *)impl)->desc;
}

extern "C" const rr_backend rr_backend_cuda = {
    "cuda", cuda_create, cuda_forward, cuda_describe, cuda_destroy,
};
