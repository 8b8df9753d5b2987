/*
 * model.h — the loaded model as the engines see it: configuration and fp32 weights.
 *
 * rr_model_load (model.c) reads config.json (cJSON), model.safetensors (mmap, validated:
 * header, dtypes, shapes, offsets, no gaps) and the tokenizer files, then widens every tensor
 * it needs to fp32 into ONE aligned allocation carved by a table. Q, K and V are fused at
 * load time into one [3*d_model, d_model] matrix so each layer projects them with one GEMM.
 * Engines read rr_weights and never touch the files.
 *
 * Layout convention (as HF nn.Linear): every weight matrix W is [out, in], row-major;
 * y = x·Wᵀ + b.
 */
#ifndef RR_MODEL_H
#define RR_MODEL_H

#include <stddef.h>

#include "rerank.h"

typedef enum rr_hidden_act {
    RR_HIDDEN_GELU = 0,      /* exact erf GELU ("gelu"): every target model */
    RR_HIDDEN_GELU_TANH = 1, /* "gelu_new", "gelu_pytorch_tanh", "gelu_fast" */
    RR_HIDDEN_RELU = 2,
} rr_hidden_act;

typedef struct rr_layer_weights {
    const float *qkv_w; /* [3*d_model, d_model]: rows 0..d-1 Q, d..2d-1 K, 2d..3d-1 V */
    const float *qkv_b; /* [3*d_model] */
    const float *ao_w;  /* attention.output.dense [d_model, d_model] */
    const float *ao_b;  /* [d_model] */
    const float *ln1_g; /* attention.output.LayerNorm [d_model] */
    const float *ln1_b;
    const float *ff1_w; /* intermediate.dense [d_ff, d_model] */
    const float *ff1_b; /* [d_ff] */
    const float *ff2_w; /* output.dense [d_model, d_ff] */
    const float *ff2_b; /* [d_model] */
    const float *ln2_g; /* output.LayerNorm [d_model] */
    const float *ln2_b;
} rr_layer_weights;

typedef struct rr_weights {
    const float *word_emb; /* [vocab_size, d_embed] */
    const float *pos_emb;  /* [max_position, d_embed] */
    const float *type_emb; /* [type_vocab_size, d_embed] */
    const float *emb_ln_g; /* [d_embed] */
    const float *emb_ln_b;
    const float *emb_proj_w; /* ELECTRA embeddings_project [d_model, d_embed]; NULL if none */
    const float *emb_proj_b;
    rr_layer_weights *layers; /* [n_layer] */
    /* Head. BERT: pooled = tanh(head_dense(h_cls)); ELECTRA: gelu(head_dense(h_cls)). */
    const float *head_dense_w; /* bert.pooler.dense / classifier.dense [d_model, d_model] */
    const float *head_dense_b;
    const float *head_out_w; /* classifier / classifier.out_proj [n_labels, d_model] */
    const float *head_out_b; /* [n_labels] */
} rr_weights;

/* Internal accessors (the struct rr_model itself is private to model.c). */
const rr_weights *rr_model_weights(const rr_model *m);
rr_hidden_act rr_model_hidden_act(const rr_model *m);

/* The config.json step of rr_model_load on its own, from memory (for the fuzzers and tests):
 * `text` is len bytes of config.json (no NUL needed), `name` stands for the file in messages
 * and becomes info.path. On success *out is a model with its rr_model_info and hidden
 * activation set and nothing else: no weights (every rr_weights pointer NULL) and no
 * tokenizer; release it with rr_model_free. Errors are rr_model_load's for config.json:
 * RR_E_FORMAT (not a JSON object, a missing or malformed field), RR_E_UNSUPPORTED
 * (architecture, position_embedding_type, hidden_act, activation), RR_E_NOMEM. */
rr_status rr_model_parse_config(const char *name, const char *text, size_t len, rr_model **out,
                                rr_error *err);

#endif /* RR_MODEL_H */
