/*
 * engine.c — the engine front: chooses a backend, validates every batch once, and
 * forwards. Validation lives here (not in the backends) so the CPU and CUDA engines reject
 * exactly the same inputs with exactly the same messages. The same pass fills each token's
 * position id (backend.h), so the backends receive the batch with its positions and never
 * recompute them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend.h"
#include "engine/engine_cpu.h"
#include "util/util.h"

struct rr_engine {
    const rr_model *model;
    const rr_backend *backend;
    void *impl;
    int max_batch_tokens;
    rr_dtype dtype;
    int vocab_size;
    int type_vocab_size;
    int max_seq;  /* longest sequence the position table allows (rr_model_info.max_seq) */
    int pos_pad;  /* rr_model_info.pos_pad: XLM-R position ids when >= 0 (backend.h) */
    int32_t *pos; /* [max_batch_tokens] position ids of the batch being forwarded */
};

rr_status rr_engine_init(const rr_model *m, const rr_engine_opts *opts, rr_engine **out,
                         rr_error *err)
{
    rr_engine_opts o = {.device = -1};
    rr_engine *e = NULL;
    rr_status st;

    *out = NULL;
    if (!m) return rr_set_error(err, RR_E_INVALID, "rr_engine_init: model is NULL");
    if (opts) o = *opts;
    if (o.max_batch_tokens <= 0) o.max_batch_tokens = 16384;
    if (o.n_threads <= 0) o.n_threads = rr_cpu_count();

    const rr_model_info *info = rr_model_get_info(m);
    if (o.max_batch_tokens < info->max_seq)
        return rr_set_error(err, RR_E_INVALID,
                            "max_batch_tokens %d is below the model's longest sequence %d",
                            o.max_batch_tokens, info->max_seq);

    e = rr_calloc(1, sizeof *e);
    if (!e) return rr_set_error(err, RR_E_NOMEM, "out of memory creating the engine");
    e->model = m;
    e->max_batch_tokens = o.max_batch_tokens;
    /* CUDA: F16 unless BF16 is asked (F32, the zero value, means its default). */
    e->dtype = o.device >= 0 && o.dtype != RR_DTYPE_BF16 && o.dtype != RR_DTYPE_INT8 ? RR_DTYPE_F16
                                                                                     : o.dtype;
    e->vocab_size = info->vocab_size;
    e->type_vocab_size = info->type_vocab_size;
    e->max_seq = info->max_seq;
    e->pos_pad = info->pos_pad;
    e->pos = rr_malloc((size_t)o.max_batch_tokens * sizeof *e->pos);
    if (!e->pos) {
        st = rr_set_error(err, RR_E_NOMEM, "out of memory creating the engine");
        goto fail;
    }

    if (o.device < 0) {
        e->backend = &rr_backend_cpu;
    } else {
#ifdef RERANK_HAVE_CUDA
        e->backend = &rr_backend_cuda;
#else
        st = rr_set_error(err, RR_E_DEVICE,
                          "cuda:%d requested but this build has no CUDA engine "
                          "(configured with RERANK_CUDA=OFF or without nvcc)",
                          o.device);
        goto fail;
#endif
    }
    st = e->backend->create(m, &o, &e->impl, err);
    if (st != RR_OK) goto fail;
    *out = e;
    return RR_OK;
fail:
    if (e) rr_free(e->pos);
    rr_free(e);
    return st;
}

int rr_engine_has_cuda(void)
{
#ifdef RERANK_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

void rr_engine_free(rr_engine *e)
{
    if (!e) return;
    if (e->impl) e->backend->destroy(e->impl);
    rr_free(e->pos);
    rr_free(e);
}

const char *rr_engine_describe(const rr_engine *e)
{
    return e ? e->backend->describe(e->impl) : "(none)";
}

/* Checks the packed-batch contract of rerank.h and fills e->pos[0..n_tok) with the position
 * ids (backend.h); returns RR_OK or RR_E_INVALID. The lengths are checked first, so the
 * positions are only computed over a well-formed cu_seqlens. */
static rr_status validate_batch(rr_engine *e, const rr_batch *b)
{
    if (!b || !b->tokens || !b->type_ids || !b->cu_seqlens) return RR_E_INVALID;
    if (b->n_seq < 1 || b->n_tok < 1 || b->n_tok > e->max_batch_tokens) return RR_E_INVALID;
    if (b->cu_seqlens[0] != 0 || b->cu_seqlens[b->n_seq] != b->n_tok) return RR_E_INVALID;
    for (int s = 0; s < b->n_seq; s++) {
        int len = b->cu_seqlens[s + 1] - b->cu_seqlens[s];
        if (len < 1 || len > e->max_seq) return RR_E_INVALID;
    }
    for (int t = 0; t < b->n_tok; t++) {
        if (b->tokens[t] < 0 || b->tokens[t] >= e->vocab_size) return RR_E_INVALID;
        if (b->type_ids[t] < 0 || b->type_ids[t] >= e->type_vocab_size) return RR_E_INVALID;
    }
    for (int s = 0; s < b->n_seq; s++)
        rr_seq_positions(b->tokens + b->cu_seqlens[s], b->cu_seqlens[s + 1] - b->cu_seqlens[s],
                         e->pos_pad, e->pos + b->cu_seqlens[s]);
    return RR_OK;
}

rr_status rr_engine_forward(rr_engine *e, const rr_batch *b, float *logits)
{
    if (!e || !logits) return RR_E_INVALID;
    rr_status st = validate_batch(e, b);
    if (st != RR_OK) return st;
    return e->backend->forward(e->impl, b, e->pos, logits);
}

int rr_engine_max_batch_tokens(const rr_engine *e)
{
    return e->max_batch_tokens;
}

rr_dtype rr_engine_dtype(const rr_engine *e)
{
    return e->dtype;
}

const char *rr_dtype_name(rr_dtype d)
{
    switch (d) {
    case RR_DTYPE_F32:
        return "F32";
    case RR_DTYPE_F16:
        return "F16";
    case RR_DTYPE_BF16:
        return "BF16";
    case RR_DTYPE_INT8:
        return "INT8";
    }
    return "unknown";
}

rr_status rr_engine_cpu_forward_hidden(rr_engine *e, const rr_batch *b, float *logits,
                                       float *hidden)
{
    if (!e || e->backend != &rr_backend_cpu || !logits || !hidden) return RR_E_INVALID;
    rr_status st = validate_batch(e, b);
    if (st != RR_OK) return st;
    return rr_cpu_forward_hidden(e->impl, b, e->pos, logits, hidden);
}

rr_status rr_dtype_parse(const char *s, rr_dtype *out, rr_error *err)
{
    static const struct {
        const char *name;
        rr_dtype d;
    } names[] = {{"f32", RR_DTYPE_F32},   {"fp32", RR_DTYPE_F32},      {"float32", RR_DTYPE_F32},
                 {"f16", RR_DTYPE_F16},   {"fp16", RR_DTYPE_F16},      {"float16", RR_DTYPE_F16},
                 {"bf16", RR_DTYPE_BF16}, {"bfloat16", RR_DTYPE_BF16}, {"int8", RR_DTYPE_INT8}};
    if (!s) s = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].d;
            return RR_OK;
        }
    return rr_set_error(err, RR_E_INVALID, "dtype '%s': expected f32, f16, bf16 or int8", s);
}

rr_status rr_device_parse(const char *s, int *device, rr_error *err)
{
    if (!s) s = "";
    if (strcmp(s, "cpu") == 0)
        *device = -1;
    else if (strcmp(s, "auto") == 0)
        *device = RR_DEVICE_AUTO;
    else if (strcmp(s, "cuda") == 0)
        *device = 0;
    else if (strncmp(s, "cuda:", 5) == 0 && s[5] >= '0' && s[5] <= '9') {
        char *end;
        long n = strtol(s + 5, &end, 10);
        if (*end || n > 1024) goto bad;
        *device = (int)n;
    } else {
        goto bad;
    }
    return RR_OK;
bad:
    return rr_set_error(err, RR_E_INVALID, "device '%s': expected auto, cpu, cuda or cuda:N", s);
}
