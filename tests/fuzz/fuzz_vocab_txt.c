/*
 * fuzz_vocab_txt.c — arbitrary bytes as vocab.txt (plus optional tokenizer_config.json,
 * special_tokens_map.json and a text to encode, split at FF FF), through
 * rr_tokenizer_load_texts with no tokenizer.json: the slow-tokenizer path (universal
 * newlines, special tokens from the side files, added_tokens_decoder). Input layout and
 * invariants: fuzz_tok_load.h.
 */
#include "fuzz_tok_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_tok_load(data, size, 1);
    return 0;
}
