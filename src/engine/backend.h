/*
 * backend.h — the seam between the engine front (engine.c: validation, dispatch) and its
 * backends: the CPU engine (engine_cpu.c) and the CUDA engine (engine_cuda.cu).
 *
 * engine.c validates every batch before it reaches a backend, so backends may assume:
 * 1 ≤ n_seq, n_tok ≤ max_batch_tokens, cu_seqlens strictly increasing from 0 to n_tok,
 * every sequence length ≤ max_position, token ids < vocab_size, type ids < type_vocab_size.
 * A backend's forward allocates nothing; everything is sized in create.
 *
 * The packed batch a backend sees is the caller's rr_batch plus positions[n_tok]: each
 * token's position id, filled once by the front while it validates (rr_seq_positions
 * below), so no backend recomputes it (TEI's Batch carries position_ids the same way) and
 * the CPU and CUDA engines cannot disagree on the rule. The array belongs to the front and
 * is valid for the duration of the call.
 */
#ifndef RR_BACKEND_H
#define RR_BACKEND_H

#include "rerank.h"

typedef struct rr_backend {
    const char *name;
    rr_status (*create)(const rr_model *m, const rr_engine_opts *opts, void **impl, rr_error *err);
    rr_status (*forward)(void *impl, const rr_batch *b, const int32_t *positions, float *logits);
    const char *(*describe)(const void *impl);
    void (*destroy)(void *impl);
} rr_backend;

/* Position ids of one sequence of len tokens (spec §4.6): the index for BERT (pos_pad < 0);
 * for XLM-R, pos_pad + 1 + the number of non-pad tokens before, and pos_pad for a pad token
 * (a literal <pad> in a text shifts the positions after it, as in transformers).
 * rr_position is one token of it, `next` starting at pos_pad + 1 for each sequence. The
 * front (engine.c) is their one caller on the request path. */
static inline int rr_position(int32_t token, int index, int pos_pad, int *next)
{
    return pos_pad < 0 ? index : token == pos_pad ? pos_pad : (*next)++;
}

static inline void rr_seq_positions(const int32_t *tokens, int len, int pos_pad, int32_t *pos)
{
    int next = pos_pad + 1;
    for (int i = 0; i < len; i++)
        pos[i] = rr_position(tokens[i], i, pos_pad, &next);
}

extern const rr_backend rr_backend_cpu;
#ifdef RERANK_HAVE_CUDA
extern const rr_backend rr_backend_cuda; /* defined in engine_cuda.cu */
#endif

#endif /* RR_BACKEND_H */
