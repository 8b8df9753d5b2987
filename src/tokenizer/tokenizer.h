/*
 * tokenizer.h — internal accessors of the tokenizer for the rest of librerank (the model
 * loader reads the tokenizer's idea of the maximum length and of the vocabulary size).
 * The public tokenizer API is in include/rerank.h.
 */
#ifndef RR_TOKENIZER_H
#define RR_TOKENIZER_H

#include "rerank.h"

/* tokenizer_config.json `model_max_length`, or 0 when it is absent or ≥ 1e18 (transformers
 * writes 1e30 for "unset"). Values above INT_MAX (but below 1e18) read as INT_MAX. */
int rr_tokenizer_model_max_length(const rr_tokenizer *t);

/* Number of token ids: 1 + the largest id of the vocabulary and of the added tokens
 * (30522 for uncased BERT). Every id the tokenizer emits is below it. */
int rr_tokenizer_vocab_size(const rr_tokenizer *t);

#endif /* RR_TOKENIZER_H */
