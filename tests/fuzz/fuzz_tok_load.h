/*
 * fuzz_tok_load.h — the body shared by fuzz_tokenizer_json and fuzz_vocab_txt: one input is
 * up to four files split at RR_FUZZ_SEP (fuzz.h),
 *
 *     main file  FF FF  tokenizer_config.json  FF FF  special_tokens_map.json  FF FF  text
 *
 * where the main file is tokenizer.json or vocab.txt, an empty side file means "absent", and
 * the text is encoded with the loaded tokenizer. rr_tokenizer_load_texts loads the files from
 * memory, exactly as rr_tokenizer_load would from a folder holding them.
 *
 * Invariants: never a crash or a sanitizer report; a failure returns no tokenizer,
 * RR_E_FORMAT / RR_E_UNSUPPORTED / RR_E_NOMEM with that status in err and a message naming a
 * file; a success yields a tokenizer whose special ids ([CLS], [SEP], [PAD], [UNK]) are
 * below its vocabulary size, whose added tokens are non-empty valid UTF-8, that encodes
 * "hello world", a few multilingual texts and the input's text (each checked by
 * fuzz_encode_checked: RR_OK exactly for valid UTF-8, ids in range, at most one token per
 * byte) and builds a pair starting with [CLS]. Texts are encoded from exact-size heap copies
 * so that ASan sees any read past their end.
 */
#ifndef RR_FUZZ_TOK_LOAD_H
#define RR_FUZZ_TOK_LOAD_H

#include "fuzz.h"
#include "tokenizer/tokenizer_impl.h"

#define FUZZ_DIR "fuzzdir"

/* Encodes a heap copy of text[0..len) of exactly len bytes. */
static inline void fuzz_encode_copy(const rr_tokenizer *t, const char *text, size_t len)
{
    char *copy = malloc(len ? len : 1);
    FUZZ_CHECK(copy != NULL, "malloc");
    if (len) memcpy(copy, text, len);
    fuzz_encode_checked(t, copy, len, NULL);
    free(copy);
}

static inline void fuzz_tok_load(const uint8_t *data, size_t size, int main_is_vocab_txt)
{
    fuzz_part part[4] = {{0}};
    int n_parts = fuzz_split(data, size, part, 4);
    rr_tokenizer_texts f = {0};
    if (main_is_vocab_txt) {
        f.vocab_txt = part[0].p;
        f.vocab_txt_len = part[0].n;
    } else {
        f.tokenizer_json = part[0].p;
        f.tokenizer_json_len = part[0].n;
    }
    if (n_parts > 1 && part[1].n) {
        f.tokenizer_config = part[1].p;
        f.tokenizer_config_len = part[1].n;
    }
    if (n_parts > 2 && part[2].n) {
        f.special_tokens_map = part[2].p;
        f.special_tokens_map_len = part[2].n;
    }

    rr_tokenizer *t = (rr_tokenizer *)&t; /* must be set to NULL on failure */
    rr_error err = {0};
    rr_status s = rr_tokenizer_load_texts(FUZZ_DIR, &f, &t, &err);
    if (s != RR_OK) {
        fuzz_check_error("tokenizer", s, &err);
        FUZZ_CHECK(t == NULL, "tokenizer returned with %s", rr_status_name(s));
        FUZZ_CHECK(s == RR_E_NOMEM || strstr(err.msg, FUZZ_DIR) || strstr(err.msg, ".json") ||
                       strstr(err.msg, ".txt"),
                   "message names no file: %s", err.msg);
        return;
    }
    FUZZ_CHECK(t != NULL, "RR_OK without a tokenizer");
    int vocab = rr_tokenizer_vocab_size(t);
    int32_t cls = rr_tokenizer_cls_id(t), sep = rr_tokenizer_sep_id(t);
    int32_t pad = rr_tokenizer_pad_id(t), unk = rr_tokenizer_unk_id(t);
    FUZZ_CHECK(vocab >= 1, "vocabulary size %d", vocab);
    FUZZ_CHECK(cls >= 0 && cls < vocab && sep >= 0 && sep < vocab && pad >= 0 && pad < vocab &&
                   unk >= 0 && unk < vocab,
               "special ids cls %d sep %d pad %d unk %d, vocabulary %d", (int)cls, (int)sep,
               (int)pad, (int)unk, vocab);
    FUZZ_CHECK(rr_tokenizer_model_max_length(t) >= 0, "model_max_length %d",
               rr_tokenizer_model_max_length(t));
    /* an added token must be whole characters: the encoder matches it on raw bytes and
     * resumes decoding right after it */
    for (int i = 0; i < t->n_added; i++)
        FUZZ_CHECK(t->added[i].len > 0 && t->added[i].id >= 0 && t->added[i].id < vocab &&
                       fuzz_utf8_valid((const uint8_t *)t->pool + t->added[i].off, t->added[i].len),
                   "added token %d: %u bytes, id %d, or not UTF-8", i, (unsigned)t->added[i].len,
                   (int)t->added[i].id);

    static const char *const texts[] = {
        "hello world",
        "Héllo, WORLD! [CLS] [SEP] [UNK] [MASK] ##ing",
        "\xe4\xb8\xad\xe6\x96\x87 caf\xc3\xa9 na\xc3\xafve \xc4\xb0stanbul \xf0\x9f\x98\x80",
        "\xea\xb0\x80 \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xe0\xa4\xa8\xe0\xa4\xae",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        fuzz_encode_copy(t, texts[i], strlen(texts[i]));
    if (n_parts > 3) fuzz_encode_copy(t, part[3].p, part[3].n);

    int32_t q[8], d[8], ids[16], types[16];
    int qn, dn;
    FUZZ_CHECK(rr_tokenizer_encode(t, "hello", 5, 0, q, 8, &qn) == RR_OK &&
                   rr_tokenizer_encode(t, "world", 5, 0, d, 8, &dn) == RR_OK,
               "encoding the pair");
    int n = rr_pair_build(t, q, qn < 8 ? qn : 8, qn, d, dn < 8 ? dn : 8, dn, 16, 1, 0, ids, types);
    /* 3 or 4 special tokens (BERT's or XLM-R's template); the second text's type is the
     * template's (1 for BERT's files, 0 for XLM-R's) */
    int sp = rr_tokenizer_pair_specials(t);
    FUZZ_CHECK((sp == 3 || sp == 4) && n >= sp && n <= 16 && ids[0] == cls && ids[n - 1] == sep &&
                   types[0] == 0 && (types[n - 1] == 1 || types[n - 1] == 0),
               "pair of \"hello\" and \"world\": length %d (%d special tokens)", n, sp);
    rr_tokenizer_free(t);
}

#endif /* RR_FUZZ_TOK_LOAD_H */
