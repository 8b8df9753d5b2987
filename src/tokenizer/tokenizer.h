/*
 * tokenizer.h — internal accessors of the tokenizer for the rest of librerank (the model
 * loader reads the tokenizer's idea of the maximum length and of the vocabulary size) and the
 * from-memory loader the fuzzers use.
 * The public tokenizer API is in include/rerank.h.
 */
#ifndef RR_TOKENIZER_H
#define RR_TOKENIZER_H

#include <stddef.h>

#include "rerank.h"

/* tokenizer_config.json `model_max_length`, or 0 when it is absent or ≥ 1e18 (transformers
 * writes 1e30 for "unset"). Values above INT_MAX (but below 1e18) read as INT_MAX. */
int rr_tokenizer_model_max_length(const rr_tokenizer *t);

/* Number of token ids: 1 + the largest id of the vocabulary and of the added tokens
 * (30522 for uncased BERT). Every id the tokenizer emits is below it. */
int rr_tokenizer_vocab_size(const rr_tokenizer *t);

/* The texts of a model folder's tokenizer files; a NULL pointer means the file is absent.
 * Texts need not be NUL-terminated. */
typedef struct rr_tokenizer_texts {
    const char *tokenizer_json; /* preferred when present */
    size_t tokenizer_json_len;
    const char *vocab_txt; /* used when tokenizer_json is NULL */
    size_t vocab_txt_len;
    const char *tokenizer_config; /* tokenizer_config.json */
    size_t tokenizer_config_len;
    const char *special_tokens_map; /* special_tokens_map.json */
    size_t special_tokens_map_len;
} rr_tokenizer_texts;

/* rr_tokenizer_load's parsing step, from memory (rr_tokenizer_load reads the files and calls
 * this; the fuzzers call it directly). `dir` only names the files in messages
 * ("<dir>/tokenizer.json: ..."). Same results and errors as rr_tokenizer_load on a folder
 * holding these files, except that nothing is read from disk. */
rr_status rr_tokenizer_load_texts(const char *dir, const rr_tokenizer_texts *f, rr_tokenizer **out,
                                  rr_error *err);

#endif /* RR_TOKENIZER_H */
