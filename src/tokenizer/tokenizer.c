/*
 * tokenizer.c — rr_tokenizer_encode: the HF fast BERT pipeline for one text (spec §2.1–2.4),
 * streamed character by character with no allocation:
 *
 *   raw UTF-8 ──added-token split (leftmost-longest, raw bytes)──▶ pieces
 *   piece ──clean_text──▶ ──CJK isolation──▶ ──NFD + drop Mn──▶ ──lowercase──▶
 *         ──whitespace / punctuation split──▶ words ──WordPiece──▶ ids
 *
 * Each stage is a function that hands its output characters to the next, so no normalized
 * copy of the text exists. The only state is the current word (bounded: a word longer than
 * max_input_chars_per_word is one [UNK] whatever its content, so only that many characters
 * are kept) and, while accents are stripped, the run of kept combining characters awaiting
 * canonical reordering. Everything lives in an rr_enc on the caller's stack (~9 KiB).
 *
 * ASCII takes a table-driven path (one lookup per byte for clean_text, whitespace,
 * punctuation and lowercasing); other characters go through the Unicode 8.0 tables
 * (unicode_tables.c) and utf8proc (NFD decomposition, combining classes, lowercase), except
 * that HF's NFD is Unicode 9.0: code points assigned later are neither decomposed nor
 * reordered (rr_uc_nfd_new).
 *
 * Measured (single thread, CPU time, 2-core Debian dev VM shared with other jobs, 2026-11-28):
 * English prose in 1 KB documents 60 MB/s (38 MB/s before the ASCII word-run loop and the
 * masked hash tail load); the adversarial Unicode texts of tests/golden/tokens.jsonl
 * 46-52 MB/s. HF tokenizers 0.23.3 Tokenizer.encode on the same texts: 1.3-1.6 MB/s. Same ids.
 */
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode_tables.h"
#include "util/util.h"

/* Kept (non-Mn) combining characters of one reordering run. Such characters (ccc ≠ 0 but not
 * Mn, e.g. a few Mc) are rare; a run of more than this many of them is emitted unsorted
 * beyond this point, the one place where this tokenizer may differ from HF on purpose. */
#define RR_ENC_MAX_PENDING 32

typedef struct rr_enc {
    const rr_tokenizer *t;
    int32_t *ids;
    int cap;
    int keep_last;
    int ring; /* keep_last: next write position in ids[0..cap) */
    long n;   /* tokens so far */

    int wlen;   /* bytes of the current word stored in word[] */
    int wchars; /* characters of the current word (may exceed max_word_chars) */

    int n_pend;
    uint32_t pend[RR_ENC_MAX_PENDING];
    uint8_t pend_ccc[RR_ENC_MAX_PENDING];

    char word[4 * RR_TOK_MAX_WORD_CHARS + RR_KEY_SLACK]; /* slack: see rr_vocab_hash */
    int32_t pieces[RR_TOK_MAX_WORD_CHARS];               /* WordPiece output of one word */
} rr_enc;

static inline void emit(rr_enc *e, int32_t id)
{
    if (e->keep_last) {
        if (e->cap > 0) {
            e->ids[e->ring] = id;
            if (++e->ring == e->cap) e->ring = 0;
        }
    } else if (e->n < e->cap) {
        e->ids[e->n] = id;
    }
    e->n++;
}

/* --- WordPiece (spec §2.4) --------------------------------------------------------------- */

/* Greedy longest-match-first over the word's characters, "##" for non-initial pieces; if some
 * position matches nothing the whole word is one [UNK]. Candidate ends start at the longest
 * vocabulary key, which skips lookups that cannot succeed without changing the result. */
static void wordpiece(rr_enc *e)
{
    const rr_tokenizer *t = e->t;
    const char *w = e->word;
    int len = e->wlen, n_pieces = 0, start = 0;
    while (start < len) {
        int cont = start > 0;
        int end = start + t->max_key_len[cont];
        if (end >= len) {
            end = len;
        } else {
            while (end > start && (w[end] & 0xC0) == 0x80)
                end--; /* back to a char start */
        }
        int32_t id = -1;
        while (end > start) {
            id = rr_vocab_lookup(t, w + start, end - start, cont);
            if (id >= 0) break;
            end--;
            while (end > start && (w[end] & 0xC0) == 0x80)
                end--;
        }
        if (id < 0) {
            emit(e, t->unk_id);
            return;
        }
        e->pieces[n_pieces++] = id;
        start = end;
    }
    for (int i = 0; i < n_pieces; i++)
        emit(e, e->pieces[i]);
}

static inline void end_word(rr_enc *e)
{
    if (e->wchars == 0) return;
    if (e->wchars > e->t->max_word_chars)
        emit(e, e->t->unk_id);
    else
        wordpiece(e);
    e->wlen = 0;
    e->wchars = 0;
}

static inline void word_add_byte(rr_enc *e, char c)
{
    if (e->wchars < e->t->max_word_chars) e->word[e->wlen++] = c;
    e->wchars++;
}

static void word_add(rr_enc *e, uint32_t cp)
{
    if (e->wchars < e->t->max_word_chars)
        e->wlen +=
            (int)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)e->word + e->wlen);
    e->wchars++;
}

/* --- character classes ------------------------------------------------------------------- */

/* Rust char::is_whitespace (the White_Space property), non-ASCII part. */
static inline int is_ws_nonascii(uint32_t c)
{
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static inline int is_ascii_punct(uint32_t c)
{
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
}

/* The fast tokenizer's CJK list (spec §2.2b; note U+2B920, not U+2B820). */
static inline int is_chinese(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* --- the stages, last first -------------------------------------------------------------- */

/* BertPreTokenizer: whitespace ends a word and vanishes; punctuation is a word of its own. */
static void pretok(rr_enc *e, uint32_t c)
{
    if (c < 0x80) {
        if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {
            end_word(e);
        } else if (is_ascii_punct(c)) {
            end_word(e);
            word_add_byte(e, (char)c);
            end_word(e);
        } else {
            word_add_byte(e, (char)c);
        }
        return;
    }
    if (is_ws_nonascii(c)) {
        end_word(e);
    } else if (rr_uc_in(rr_uc_punct, rr_uc_punct_len, c)) {
        end_word(e);
        word_add(e, c);
        end_word(e);
    } else {
        word_add(e, c);
    }
}

/* Lowercase: Rust char::to_lowercase = the simple mapping except U+0130 → "i\u0307". */
static void lower(rr_enc *e, uint32_t c)
{
    if (e->t->lowercase) {
        if (c == 0x130) {
            pretok(e, 'i');
            c = 0x307;
        } else {
            c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        }
    }
    pretok(e, c);
}

/* Emits the pending combining characters, already in canonical (stable ccc) order. */
static void flush_pending(rr_enc *e)
{
    int n = e->n_pend;
    e->n_pend = 0;
    for (int i = 0; i < n; i++)
        lower(e, e->pend[i]);
}

/* strip_accents: NFD, then delete Mn. Mn characters are dropped as they come; the others
 * with a non-zero combining class wait in `pend`, inserted in stable ccc order, until the
 * next starter, which is exactly the canonical reordering restricted to kept characters. */
static void strip_accents(rr_enc *e, uint32_t c)
{
    utf8proc_int32_t buf[8];
    int last_boundclass = 0;
    utf8proc_ssize_t n =
        utf8proc_decompose_char((utf8proc_int32_t)c, buf, 8, UTF8PROC_DECOMPOSE, &last_boundclass);
    /* HF's NFD is Unicode 9.0: it keeps whole what was given a decomposition later */
    if (n <= 0 || n > 8 || (n > 1 && c >= 0x7FD && rr_uc_in(rr_uc_nfd_new, rr_uc_nfd_new_len, c))) {
        buf[0] = (utf8proc_int32_t)c;
        n = 1;
    }
    for (utf8proc_ssize_t i = 0; i < n; i++) {
        uint32_t d = (uint32_t)buf[i];
        int ccc = d < 0x300 ? 0 : utf8proc_get_property((utf8proc_int32_t)d)->combining_class;
        /* ... and sees a code point unassigned in 9.0 as a starter */
        if (ccc && d >= 0x7FD && rr_uc_in(rr_uc_nfd_new, rr_uc_nfd_new_len, d)) ccc = 0;
        int mn = d >= 0x300 && rr_uc_in(rr_uc_mn, rr_uc_mn_len, d);
        if (ccc == 0) {
            if (e->n_pend) flush_pending(e);
            if (!mn) lower(e, d);
        } else if (!mn) {
            if (e->n_pend == RR_ENC_MAX_PENDING) flush_pending(e);
            int j = e->n_pend++;
            while (j > 0 && e->pend_ccc[j - 1] > ccc) {
                e->pend[j] = e->pend[j - 1];
                e->pend_ccc[j] = e->pend_ccc[j - 1];
                j--;
            }
            e->pend[j] = d;
            e->pend_ccc[j] = (uint8_t)ccc;
        }
    }
}

static inline void after_clean(rr_enc *e, uint32_t c)
{
    if (e->t->strip_accents)
        strip_accents(e, c);
    else
        lower(e, c);
}

/* clean_text and CJK isolation for one non-ASCII raw character. */
static void raw_nonascii(rr_enc *e, uint32_t c)
{
    const rr_tokenizer *t = e->t;
    if (t->clean_text) {
        if (c == 0xFFFD || rr_uc_in(rr_uc_other, rr_uc_other_len, c)) return;
        if (is_ws_nonascii(c)) c = ' ';
    }
    if (t->handle_chinese_chars && is_chinese(c)) {
        after_clean(e, ' ');
        after_clean(e, c);
        after_clean(e, ' ');
        return;
    }
    after_clean(e, c);
}

/* End of a piece (end of text or an added token): HF normalizes pieces separately. */
static void end_piece(rr_enc *e)
{
    if (e->n_pend) flush_pending(e);
    end_word(e);
}

/* Longest added token starting at s[0..n) (the list is sorted longest first), or NULL. */
static const rr_added_token *match_added(const rr_tokenizer *t, const char *s, size_t n)
{
    for (int i = 0; i < t->n_added; i++) {
        const rr_added_token *a = &t->added[i];
        if (a->len <= n && memcmp(s, t->pool + a->off, a->len) == 0) return a;
    }
    return NULL;
}

static inline uint32_t decode(const unsigned char *s, size_t *i)
{
    uint32_t c = s[*i];
    if (c < 0xE0) {
        c = ((c & 0x1F) << 6) | (s[*i + 1] & 0x3F);
        *i += 2;
    } else if (c < 0xF0) {
        c = ((c & 0x0F) << 12) | ((s[*i + 1] & 0x3Fu) << 6) | (s[*i + 2] & 0x3F);
        *i += 3;
    } else {
        c = ((c & 0x07) << 18) | ((s[*i + 1] & 0x3Fu) << 12) | ((s[*i + 2] & 0x3Fu) << 6) |
            (s[*i + 3] & 0x3F);
        *i += 4;
    }
    return c;
}

static void reverse(int32_t *a, int n)
{
    for (int i = 0, j = n - 1; i < j; i++, j--) {
        int32_t x = a[i];
        a[i] = a[j];
        a[j] = x;
    }
}

rr_status rr_tokenizer_encode(const rr_tokenizer *t, const char *text, size_t len, int keep_last,
                              int32_t *ids, int cap, int *n_total)
{
    if (!t || (!text && len) || (!ids && cap > 0) || cap < 0 || !n_total) return RR_E_INVALID;
    /* at most one token per input byte, so n_total fits an int */
    if (len > (size_t)INT32_MAX) return RR_E_TOO_LONG;
    if (rr_utf8_check(text, len) != len) return RR_E_UTF8;

    rr_enc e;
    e.t = t;
    e.ids = ids;
    e.cap = cap;
    e.keep_last = keep_last;
    e.ring = 0;
    e.n = 0;
    e.wlen = 0;
    e.wchars = 0;
    e.n_pend = 0;

    const unsigned char *s = (const unsigned char *)text;
    const uint8_t *cls = t->ascii_class, *map = t->ascii_map, *plain = t->ascii_plain;
    int has_added = t->n_added > 0;
    size_t i = 0;
    while (i < len) {
        unsigned b = s[i];
        if (plain[b]) {
            /* a run of ASCII word bytes (letters, digits): the bulk of English text */
            if (e.n_pend) flush_pending(&e);
            word_add_byte(&e, (char)map[b]);
            while (++i < len && plain[s[i]])
                word_add_byte(&e, (char)map[s[i]]);
            continue;
        }
        if (has_added && t->added_first[b]) {
            const rr_added_token *a = match_added(t, text + i, len - i);
            if (a) {
                end_piece(&e);
                emit(&e, a->id);
                i += a->len;
                continue;
            }
        }
        if (b < 0x80) {
            /* ASCII is a starter with no decomposition: it ends a reordering run, unless
             * clean_text deletes it (HF cleans the whole piece before NFD sees the run) */
            if (e.n_pend && cls[b] != RR_ASCII_DROP) flush_pending(&e);
            switch (cls[b]) {
            case RR_ASCII_KEEP:
                word_add_byte(&e, (char)map[b]);
                break;
            case RR_ASCII_SPACE:
                end_word(&e);
                break;
            case RR_ASCII_PUNCT:
                end_word(&e);
                word_add_byte(&e, (char)b);
                end_word(&e);
                break;
            default:
                break; /* RR_ASCII_DROP */
            }
            i++;
            continue;
        }
        raw_nonascii(&e, decode(s, &i));
    }
    end_piece(&e);

    /* keep_last: the ring holds the last min(n, cap) ids, oldest at `ring`; rotate in place */
    if (keep_last && e.n > cap && cap > 0 && e.ring > 0) {
        reverse(ids, e.ring);
        reverse(ids + e.ring, cap - e.ring);
        reverse(ids, cap);
    }
    *n_total = (int)e.n;
    return RR_OK;
}
