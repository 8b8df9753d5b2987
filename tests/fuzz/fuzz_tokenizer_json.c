/*
 * fuzz_tokenizer_json.c — arbitrary bytes as tokenizer.json (plus optional
 * tokenizer_config.json, special_tokens_map.json and a text to encode, split at FF FF),
 * through rr_tokenizer_load_texts. Input layout and invariants: fuzz_tok_load.h.
 */
#include "fuzz_tok_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_tok_load(data, size, 0);
    return 0;
}
