/*
 * tokenizer_impl.h — the private layout of rr_tokenizer, shared by the loader
 * (tokenizer_load.c), the encoder (tokenizer.c) and the pair builder (pair.c). Nothing
 * outside src/tokenizer/ includes it.
 *
 * A loaded tokenizer is immutable; every field is written once by rr_tokenizer_load.
 */
#ifndef RR_TOKENIZER_IMPL_H
#define RR_TOKENIZER_IMPL_H

#include <stdint.h>
#include <string.h>

#include "rerank.h"
#include "util/util.h"

/* Longest pre-token WordPiece will look at. HF's max_input_chars_per_word is 100 for every
 * BERT-family tokenizer; a pre-token longer than it is one [UNK], so the encoder's per-word
 * buffer is bounded by this. Configurations asking for more are refused at load. */
#define RR_TOK_MAX_WORD_CHARS 1024

/* One slot of the open-addressing vocabulary table (linear probing). A vocabulary string is
 * stored once in `pool`; a token starting with the continuing-subword prefix ("##") gets a
 * second slot keyed by the rest of the string with cont = 1, so WordPiece looks up
 * "##" + piece without building that string. An empty slot has id = -1. */
typedef struct rr_vocab_slot {
    uint32_t hash; /* full 32-bit hash of (cont, bytes) */
    int32_t id;    /* token id; -1 marks an empty slot */
    uint32_t off;  /* key bytes in pool */
    uint16_t len;  /* key length in bytes */
    uint8_t cont;  /* 1: continuation key (prefix stripped) */
} rr_vocab_slot;

/* An added token matched on the raw text before normalization (HF normalized: false).
 * lstrip / rstrip (Unigram tokenizers only: XLM-R's <mask>): the match also swallows the
 * whitespace before / after it, as HF's AddedVocabulary does. */
typedef struct rr_added_token {
    uint32_t off; /* content bytes in pool */
    uint32_t len;
    int32_t id;
    uint8_t lstrip, rstrip;
} rr_added_token;

/* Which tokenizer pipeline a tokenizer.json describes. */
enum {
    RR_TOK_WORDPIECE = 0, /* BertNormalizer + BertPreTokenizer + WordPiece (BERT, ELECTRA) */
    RR_TOK_UNIGRAM = 1,   /* Precompiled/Strip/Replace + Metaspace + Unigram (XLM-R) */
};

/* Unigram (unigram.c, unigram_load.c). The vocabulary is a trie over code points stored as a
 * hash table of edges (parent node, code point) -> (child node, id), so the Viterbi's
 * common-prefix search costs one probe per character and finds the piece's id in the same
 * cache line; id is the vocabulary id of the piece ending at the child (the last entry of
 * that string, as HF's token_to_ids map keeps) or -1. (A byte trie cost three probes per CJK
 * character and a second miss for the id: 28 MB/s instead of 37 on tests/golden's texts.) */
typedef struct rr_trie_edge {
    uint64_t key;   /* parent << 21 | code point; 0 marks an empty slot (the root is node 1) */
    uint32_t child; /* node index */
    int32_t id;
} rr_trie_edge;

typedef struct rr_unigram {
    rr_trie_edge *edges; /* capacity edge_mask + 1 */
    uint32_t edge_mask;
    uint32_t n_nodes;
    double *scores; /* [n_pieces] score of vocabulary entry i */
    int32_t n_pieces;
    double unk_score;  /* min score - 10 (HF's K_UNK_PENALTY) */
    int byte_fallback; /* an unknown piece becomes its <0xXX> byte tokens when all exist */
    int32_t byte_id[256];

    /* Precompiled normalizer: the SentencePiece charsmap (a Darts-clone double array and a
     * pool of NUL-terminated replacements), checked at load; NULL when absent. */
    uint32_t *cm_units;
    uint32_t cm_n_units;
    char *cm_pool;
    uint32_t cm_pool_len;
    uint32_t cm_max_rep; /* longest replacement in bytes: bounds a character's growth */
    /* The charsmap's answer for each ASCII character alone (pool offset, or -1: none), so a
     * run of ASCII skips the grapheme rules and the trie; and the trie root's children. */
    int32_t cm_ascii[128];
    rr_trie_edge root_ascii[128]; /* the root's edges for ASCII, without hashing */

    /* The normalizers after Precompiled, in file order. */
    int n_norm;
    struct rr_norm_step {
        uint8_t kind; /* RR_NORM_* */
        uint8_t strip_left, strip_right;
        uint32_t pat_off, pat_len; /* Replace: literal pattern in pool (RR_NORM_REPLACE_STR) */
        uint32_t rep_off, rep_len; /* Replace: content in pool */
    } norm[8];

    /* transformers >= 5 rebuilds an XLM-R tokenizer from the file's vocabulary and charsmap
     * with its own pipeline (Precompiled; WhitespaceSplit + Metaspace; scores read by Python's
     * json); 0: the file's pipeline as written, as the tokenizers library and TEI run it.
     * RERANK_TOKENIZER_PIPELINE=file|transformers chooses; see rr_tokenizer_load_texts. */
    int transformers;

    /* Metaspace */
    int prepend;          /* RR_PREPEND_* */
    int split;            /* split at each replacement character (MergedWithNext) */
    int whitespace_split; /* Sequence[WhitespaceSplit, Metaspace] */
} rr_unigram;

enum { RR_NORM_STRIP = 1, RR_NORM_REPLACE_SPACES = 2, RR_NORM_REPLACE_STR = 3 };
enum { RR_PREPEND_ALWAYS = 0, RR_PREPEND_FIRST = 1, RR_PREPEND_NEVER = 2 };

/* Per-ASCII-byte behaviour of the normalizer + pre-tokenizer, precomputed from the flags. */
enum {
    RR_ASCII_KEEP = 0,  /* part of a word; `ascii_map` holds the (lowercased) byte */
    RR_ASCII_DROP = 1,  /* deleted by clean_text */
    RR_ASCII_SPACE = 2, /* whitespace: ends the current word */
    RR_ASCII_PUNCT = 3, /* punctuation: a pre-token of its own */
};

struct rr_tokenizer {
    int kind;   /* RR_TOK_* */
    char *pool; /* vocabulary and added-token strings */
    size_t pool_len;

    rr_vocab_slot *slots; /* capacity mask + 1 (a power of two, load factor ≤ 0.5) */
    uint32_t mask;
    int max_key_len[2]; /* longest key in bytes: [0] word-initial, [1] continuation */
    int n_ids;          /* 1 + largest id */

    rr_added_token *added; /* sorted by length, longest first */
    int n_added;
    uint8_t added_first[256]; /* 1 where some added token starts with this byte */

    int32_t cls_id, sep_id, pad_id, unk_id;

    /* The pair template: `cls A sep B sep` (BERT, type ids 0 0 0 1 1) or `cls A sep sep B
     * sep` (XLM-R, all type ids 0: its transformers tokenizer returns no token_type_ids, so
     * the model sees zeros). n_special = tokens the template adds (3 or 4). */
    int n_mid_sep;
    int b_type;
    int n_special;

    rr_unigram uni; /* kind == RR_TOK_UNIGRAM */

    /* WordPiece */
    int max_word_chars;

    /* BertNormalizer flags, after tokenizer_config.json overrides */
    int clean_text;
    int handle_chinese_chars;
    int strip_accents; /* effective value (null already resolved to lowercase) */
    int lowercase;

    uint8_t ascii_class[128];
    uint8_t ascii_map[128];
    uint8_t ascii_plain[256]; /* 1: ASCII, RR_ASCII_KEEP and no added token starts with it */

    int model_max_length; /* 0: unset */
};

/* The replacement of the first (shortest) charsmap key that prefixes s[0..n) (the search
 * stops at a NUL byte, as SentencePiece's does), or NULL. A unit index or replacement offset
 * out of bounds ends the search with no match (HF would panic on such a file; the load
 * checks what can be checked without walking the trie). */
static inline const char *rr_cm_lookup(const rr_unigram *u, const unsigned char *s, size_t n,
                                       size_t *rlen)
{
    const uint32_t *a = u->cm_units;
    const uint32_t na = u->cm_n_units;
    uint32_t unit = a[0];
    uint32_t pos = (unit >> 10) << ((unit & 0x200) >> 6);
    for (size_t i = 0; i < n && s[i]; i++) {
        pos ^= s[i];
        if (pos >= na) return NULL;
        unit = a[pos];
        if ((unit & (0x80000000u | 0xFFu)) != s[i]) return NULL;
        pos ^= (unit >> 10) << ((unit & 0x200) >> 6);
        if (unit >> 8 & 1) {
            if (pos >= na) return NULL;
            uint32_t v = a[pos] & 0x7FFFFFFFu;
            if (v >= u->cm_pool_len || ((unsigned char)u->cm_pool[v] & 0xC0) == 0x80) return NULL;
            *rlen = strlen(u->cm_pool + v); /* the pool ends with a NUL */
            return u->cm_pool + v;
        }
    }
    return NULL;
}

/* Appends len bytes to buf at *n, all coming from raw [s0, s1). */
static inline void put_bytes(char *buf, int32_t *src, size_t *n, const char *p, size_t len,
                             int32_t s0, int32_t s1)
{
    memcpy(buf + *n, p, len);
    if (src)
        for (size_t k = 0; k < len; k++) {
            src[2 * (*n + k)] = s0;
            src[2 * (*n + k) + 1] = s1;
        }
    *n += len;
}

/* --- helpers both encoders share (tokenizer.c: WordPiece, unigram.c: Unigram) ------------- */

/* Bytes of the UTF-8 character whose lead byte is b (valid UTF-8 only). */
static inline int rr_utf8_len(unsigned char b)
{
    return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

/* The code point of the (valid UTF-8) character starting at s[i]. */
static inline uint32_t rr_utf8_at(const unsigned char *s, size_t i)
{
    uint32_t c = s[i];
    if (c < 0x80) return c;
    if (c < 0xE0) return (c & 0x1F) << 6 | (s[i + 1] & 0x3F);
    if (c < 0xF0) return (c & 0x0F) << 12 | (s[i + 1] & 0x3Fu) << 6 | (s[i + 2] & 0x3F);
    return (c & 0x07) << 18 | (s[i + 1] & 0x3Fu) << 12 | (s[i + 2] & 0x3Fu) << 6 |
           (s[i + 3] & 0x3F);
}

/* Rust's char::is_whitespace (the White_Space property), non-ASCII part. */
static inline int rr_is_ws_nonascii(uint32_t c)
{
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Longest added token starting at s[0..n) (the list is sorted longest first), or NULL. */
static inline const rr_added_token *rr_match_added(const struct rr_tokenizer *t, const char *s,
                                                   size_t n)
{
    for (int i = 0; i < t->n_added; i++) {
        const rr_added_token *a = &t->added[i];
        if (a->len <= n && memcmp(s, t->pool + a->off, a->len) == 0) return a;
    }
    return NULL;
}

static inline void rr_reverse_ids(int32_t *a, int n)
{
    for (int i = 0, j = n - 1; i < j; i++, j--) {
        int32_t x = a[i];
        a[i] = a[j];
        a[j] = x;
    }
}

/* keep_last's ring: ids[0, cap) holds the last cap ids with the oldest at `ring`; rotated in
 * place into order. */
static inline void rr_ring_unroll(int32_t *ids, int cap, int ring)
{
    if (cap <= 0 || ring <= 0) return;
    rr_reverse_ids(ids, ring);
    rr_reverse_ids(ids + ring, cap - ring);
    rr_reverse_ids(ids, cap);
}

/* The Unigram trie's edge from `node` by code point cp, or NULL. */
static inline const rr_trie_edge *rr_trie_edge_find(const rr_unigram *u, uint32_t node, uint32_t cp)
{
    const uint64_t key = (uint64_t)node << 21 | cp;
    for (uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & u->edge_mask;;
         h = (h + 1) & u->edge_mask) {
        if (u->edges[h].key == key) return &u->edges[h];
        if (u->edges[h].key == 0) return NULL;
    }
}

struct cJSON;
/* unigram_load.c: the Unigram model, its normalizers and pre-tokenizer from tokenizer.json's
 * root object and its raw text[0, len) (`path` names the file in messages). Strings the normalizers
 * need go into the tokenizer's pool through add(ctx, bytes, len), which returns their offset or -1.
 * Sets t->uni and t->unk_id. */
rr_status rr_unigram_load(const struct cJSON *root, const char *text, size_t len, const char *path,
                          struct rr_tokenizer *t, long (*add)(void *ctx, const char *s, size_t len),
                          void *ctx, rr_error *err);
void rr_unigram_free(rr_unigram *u);

/* unigram.c: rr_tokenizer_encode / rr_tokenizer_encode_offsets for kind RR_TOK_UNIGRAM, with
 * the same contract (offsets may be NULL). */
rr_status rr_unigram_encode(const struct rr_tokenizer *t, const char *text, size_t len,
                            int keep_last, int32_t *ids, int32_t *offsets, int cap, int *n_total);

/* Bytes that may be read past the end of a key: the hash loads the tail of a key with one
 * unaligned 8-byte load and masks it, so every key (pool strings, the encoder's word buffer)
 * is followed by at least this much readable memory. */
#define RR_KEY_SLACK 8

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rr_vocab_hash masks tail loads assuming a little-endian target"
#endif

/* Hash of a vocabulary key: 8 bytes at a time, multiply-xorshift mixing. Vocabulary keys
 * are short (BERT: ≤ 18 bytes), so this is a couple of multiplies per lookup. Reads up to
 * RR_KEY_SLACK - 1 bytes past s + len (see above). */
static inline uint32_t rr_vocab_hash(const char *s, int len, int cont)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)len << 1) ^ (uint64_t)cont;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        s += 8;
        len -= 8;
    }
    if (len > 0) {
        uint64_t v;
        memcpy(&v, s, 8);
        v &= ~0ull >> (64 - 8 * len); /* keep the key's own len bytes */
        h = (h ^ v) * 0x94D049BB133111EBull;
        h ^= h >> 29;
    }
    h *= 0xBF58476D1CE4E5B9ull;
    return (uint32_t)(h >> 32);
}

/* Looks up a key (cont = 1: a continuation piece, without its "##"). Returns the id or -1.
 * s must be readable for len + RR_KEY_SLACK bytes. */
static inline int32_t rr_vocab_lookup(const struct rr_tokenizer *t, const char *s, int len,
                                      int cont)
{
    uint32_t h = rr_vocab_hash(s, len, cont);
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const rr_vocab_slot *slot = &t->slots[i];
        if (slot->id < 0) return -1;
        if (slot->hash == h && slot->len == len && slot->cont == cont &&
            memcmp(t->pool + slot->off, s, (size_t)len) == 0)
            return slot->id;
    }
}

#endif /* RR_TOKENIZER_IMPL_H */
