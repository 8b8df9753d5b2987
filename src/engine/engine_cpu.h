/*
 * engine_cpu.h — internal hooks of the engine front (engine.c) and of the CPU backend
 * (engine_cpu.c) for the tests. Not part of the public API.
 */
#ifndef RR_ENGINE_CPU_H
#define RR_ENGINE_CPU_H

#include "engine/backend.h"

/* Test hook (engine.c): validates b as rr_engine_forward does (once), then runs it through
 * the CPU engine e with the LAST layer computed for every token (the production path
 * computes only the [CLS] rows there), writing logits[n_seq * n_labels] and the hidden states after
 * the embeddings (after ELECTRA's projection) and after each layer into hidden[(n_layer + 1) *
 * n_tok * d_model], layer-major, each block row-major [n_tok, d_model] — the layout of HF
 * output_hidden_states. RR_E_INVALID when e is not a CPU engine or b is invalid. Allocates nothing.
 */
rr_status rr_engine_cpu_forward_hidden(rr_engine *e, const rr_batch *b, float *logits,
                                       float *hidden);
/* The CPU backend's half of it (engine_cpu.c), on an already validated batch with its
 * position ids (backend.h). */
rr_status rr_cpu_forward_hidden(void *impl, const rr_batch *b, const int32_t *positions,
                                float *logits, float *hidden);

#endif /* RR_ENGINE_CPU_H */
