/*
 * tokenizer.c — rr_tokenizer_encode and rr_tokenizer_encode_offsets: the HF fast BERT
 * pipeline for one text (spec §2.1–2.4), streamed character by character with no allocation:
 *
 *   raw UTF-8 ──added-token split (leftmost-longest, raw bytes)──▶ pieces
 *   piece ──clean_text──▶ ──CJK isolation──▶ ──NFD + drop Mn──▶ ──lowercase──▶
 *         ──whitespace / punctuation split──▶ words ──WordPiece──▶ ids
 *
 * Each stage is a function that hands its output characters to the next, so no normalized
 * copy of the text exists. The only state is the current word (bounded: a word longer than
 * max_input_chars_per_word is one [UNK] whatever its content, so only that many characters
 * are kept) and, while accents are stripped, the run of kept combining characters awaiting
 * canonical reordering. Everything lives in an rr_enc on the caller's stack (~15 KiB).
 *
 * ASCII takes a table-driven path (one lookup per byte for clean_text, whitespace,
 * punctuation and lowercasing); other characters go through the Unicode 8.0 tables
 * (unicode_tables.c) and utf8proc (NFD decomposition, combining classes, lowercase), except
 * that HF's NFD is Unicode 9.0: code points assigned later are neither decomposed nor
 * reordered (rr_uc_nfd_new).
 *
 * Offsets: every normalized character comes from exactly one raw character (HF's
 * NormalizedString alignments), so the word keeps, beside each character, where that raw
 * character starts in the text; a WordPiece token covers the raw characters of its first and
 * last characters (and whatever was deleted between them), an [UNK] the whole word, an added
 * token its bytes. The one rule that is not "a character covers its own source" is canonical
 * reordering, where HF hands out sources by position (pending_src). encode() holds the loop
 * once and is inlined into both entry points with a constant flag, so rr_tokenizer_encode's
 * copy carries no offsets work in its ASCII paths or WordPiece; the rarer non-ASCII stages
 * test e->offs. First versions that tested e->offs inside WordPiece (one of them split it
 * into a search and an emit step: +1.3 % instructions by cachegrind) ran 2-5 % slower on
 * prose.
 *
 * Measured (single thread, CPU time, 2-core Debian dev VM shared with other jobs, 2026-11-28):
 * English prose in 1 KB documents 60 MB/s (38 MB/s before the ASCII word-run loop and the
 * masked hash tail load); the adversarial Unicode texts of tests/golden/tokens.jsonl
 * 46-52 MB/s. HF tokenizers 0.23.3 Tokenizer.encode on the same texts: 1.3-1.6 MB/s. Same ids.
 * With offsets (2026-12-05, a faster VM of the same kind, 2 cores shared, load average ~5;
 * CPU time, best of 30 passes of a loop over the texts): rr_tokenizer_encode before / after
 * they were added 131 / 132 MB/s on 1 MB of prose (corpus.py prose), 113 / 114 MB/s on all
 * of tokens.jsonl, 95 / 95 MB/s on its 1310 non-ASCII texts (cachegrind: 2 % fewer
 * instructions after); rr_tokenizer_encode_offsets 94, 84 and 75 MB/s (+36 % instructions
 * on prose: a source per character, a character count per piece).
 */
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode_tables.h"
#include "util/util.h"

/* Kept (non-Mn) combining characters of one reordering run. Such characters (ccc ≠ 0 but not
 * Mn, e.g. a few Mc) are rare; a run of more than this many of them is emitted unsorted
 * beyond this point, the one place where this tokenizer's ids may differ from HF on purpose. */
#define RR_ENC_MAX_PENDING 32

/* Offsets only: the non-starters of one reordering run that began a character's
 * decomposition, kept or not (see pending_src). A run with more of them falls back to each
 * kept character's own source: the offsets (never the ids) may then differ from HF. 1000
 * zalgo texts of runs up to 150 marks, 1 in 10 of them kept (Mc), all match HF; with 64
 * here, 203 of them did not. */
#define RR_ENC_MAX_RUN 256

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
    /* Offsets (rr_tokenizer_encode_offsets; offs is NULL otherwise). Every normalized
     * character comes from exactly one raw character, so a source is that character's first
     * byte in text, and its end is found by decoding the lead byte there. */
    int32_t *offs;             /* out: [start, end) per stored token, like ids */
    const unsigned char *text; /* the raw text, for source ends */
    int32_t src;               /* source of the raw character now going through the stages */
    int32_t pend_src[RR_ENC_MAX_PENDING];
    uint8_t pend_first[RR_ENC_MAX_PENDING]; /* 1: first character of its decomposition */
    uint16_t pend_arr[RR_ENC_MAX_PENDING];  /* run.n when it arrived */
    struct {
        int n; /* entries of pos/ccc; RR_ENC_MAX_RUN + 1 once overflowed */
        int32_t pos[RR_ENC_MAX_RUN];
        uint8_t ccc[RR_ENC_MAX_RUN];
    } run;

    uint16_t piece_end[RR_TOK_MAX_WORD_CHARS]; /* byte end of each piece in word */
    /* offsets: source of each character of word[]; the last slot holds the latest character
     * of a word longer than max_word_chars (its [UNK] ends there; slot 0 keeps the first one
     * even when max_word_chars is 0) */
    int32_t csrc[RR_TOK_MAX_WORD_CHARS + 1];
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

/* End (exclusive) of the raw character whose first byte is at src. */
static inline int32_t src_end(const rr_enc *e, int32_t src)
{
    unsigned b = e->text[src];
    return src + 1 + (b >= 0xC0) + (b >= 0xE0) + (b >= 0xF0);
}

/* emit for rr_tokenizer_encode_offsets (never keep_last): the token covers text[start, end). */
static inline void emit_at(rr_enc *e, int32_t id, int32_t start, int32_t end)
{
    if (e->n < e->cap) {
        e->ids[e->n] = id;
        e->offs[2 * e->n] = start;
        e->offs[2 * e->n + 1] = end;
    }
    e->n++;
}

/* A token made of word characters: from the source of the first to the end of the last's. */
static inline void emit_span(rr_enc *e, int32_t id, int32_t first_src, int32_t last_src)
{
    emit_at(e, id, first_src, src_end(e, last_src));
}

/* --- WordPiece (spec §2.4) --------------------------------------------------------------- */

/* Greedy longest-match-first over the word's characters, "##" for non-initial pieces; if some
 * position matches nothing the whole word is one [UNK]. Candidate ends start at the longest
 * vocabulary key, which skips lookups that cannot succeed without changing the result.
 * offs (a constant: wordpiece / wordpiece_offsets) adds the offsets: a piece covers the
 * sources of its first and last characters, an [UNK] the whole word, as in HF. */
static inline __attribute__((always_inline)) void wordpiece_body(rr_enc *e, int offs)
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
            if (offs)
                emit_span(e, t->unk_id, e->csrc[0], e->csrc[e->wchars - 1]);
            else
                emit(e, t->unk_id);
            return;
        }
        if (offs) e->piece_end[n_pieces] = (uint16_t)end;
        e->pieces[n_pieces++] = id;
        start = end;
    }
    if (!offs) {
        for (int i = 0; i < n_pieces; i++)
            emit(e, e->pieces[i]);
        return;
    }
    for (int i = 0, b = 0, ch = 0; i < n_pieces; i++) {
        int first = ch;
        for (; b < e->piece_end[i]; b++)
            ch += (w[b] & 0xC0) != 0x80;
        emit_span(e, e->pieces[i], e->csrc[first], e->csrc[ch - 1]);
    }
}

static void wordpiece(rr_enc *e)
{
    wordpiece_body(e, 0);
}

static void wordpiece_offsets(rr_enc *e)
{
    wordpiece_body(e, 1);
}

/* Ends the current word; offs as for word_add_byte below. */
static inline __attribute__((always_inline)) void end_word(rr_enc *e, int offs)
{
    if (e->wchars == 0) return;
    if (e->wchars > e->t->max_word_chars) {
        if (offs) /* HF: the whole pre-token, to its last character */
            emit_span(e, e->t->unk_id, e->csrc[0],
                      e->csrc[e->wchars > 1 ? RR_TOK_MAX_WORD_CHARS : 0]);
        else
            emit(e, e->t->unk_id);
    } else if (offs) {
        wordpiece_offsets(e);
    } else {
        wordpiece(e);
    }
    e->wlen = 0;
    e->wchars = 0;
}

/* Appends one ASCII character that came from the raw character at src; offs is a
 * compile-time constant where it matters (the main loop), e->offs != NULL elsewhere. */
static inline __attribute__((always_inline)) void word_add_byte(rr_enc *e, char c, int32_t src,
                                                                int offs)
{
    if (e->wchars < e->t->max_word_chars) {
        if (offs) e->csrc[e->wchars] = src;
        e->word[e->wlen++] = c;
    } else if (offs) {
        e->csrc[e->wchars ? RR_TOK_MAX_WORD_CHARS : 0] = src;
    }
    e->wchars++;
}

static void word_add(rr_enc *e, uint32_t cp)
{
    if (e->wchars < e->t->max_word_chars) {
        if (e->offs) e->csrc[e->wchars] = e->src;
        e->wlen +=
            (int)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)e->word + e->wlen);
    } else if (e->offs) {
        e->csrc[e->wchars ? RR_TOK_MAX_WORD_CHARS : 0] = e->src;
    }
    e->wchars++;
}

/* --- character classes ------------------------------------------------------------------- */

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
            end_word(e, e->offs != NULL);
        } else if (is_ascii_punct(c)) {
            end_word(e, e->offs != NULL);
            word_add_byte(e, (char)c, e->src, e->offs != NULL);
            end_word(e, e->offs != NULL);
        } else {
            word_add_byte(e, (char)c, e->src, e->offs != NULL);
        }
        return;
    }
    if (rr_is_ws_nonascii(c)) {
        end_word(e, e->offs != NULL);
    } else if (rr_uc_in(rr_uc_punct, rr_uc_punct_len, c)) {
        end_word(e, e->offs != NULL);
        word_add(e, c);
        end_word(e, e->offs != NULL);
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

/* HF's offset of a kept combining character: the source of whatever stood at its position
 * before the run was sorted. tokenizers' NFD (unicode-normalization-alignments) sorts a run's
 * characters by ccc, each with a flag saying whether it was the first of its decomposition,
 * and NormalizedString::transform then hands out sources by position: a first character
 * takes the next source in text order, any other one the source taken last. So a kept
 * character that moved takes the source of a neighbour: "a\u0301\U0001D165" is one [UNK]
 * over [0, 3), not [0, 7), because U+1D165 (ccc 216) sorted before U+0301 (230). run.pos
 * holds, in text order, the sources of the run's non-starters that begin a decomposition
 * (the run's starter always stays first). Unsorted runs give each character its own source. */
static int32_t pending_src(const rr_enc *e, int i)
{
    int n = e->run.n, ccc = e->pend_ccc[i], arr = e->pend_arr[i];
    if (n > RR_ENC_MAX_RUN) return e->pend_src[i];
    int k = 0; /* first characters of decompositions sorted before this one */
    for (int j = 0; j < n; j++)
        k += e->run.ccc[j] < ccc || (e->run.ccc[j] == ccc && j < arr);
    if (e->pend_first[i]) return e->run.pos[k];
    return k > 0 ? e->run.pos[k - 1] : e->pend_src[i];
}

/* Emits the pending combining characters, already in canonical (stable ccc) order. */
static void flush_pending(rr_enc *e)
{
    int n = e->n_pend;
    e->n_pend = 0;
    if (!e->offs) {
        for (int i = 0; i < n; i++)
            lower(e, e->pend[i]);
        return;
    }
    int32_t src = e->src;
    for (int i = 0; i < n; i++) {
        e->src = pending_src(e, i);
        lower(e, e->pend[i]);
    }
    e->src = src;
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
            e->run.n = 0;
            if (!mn) lower(e, d);
            continue;
        }
        int arr = e->run.n;
        if (e->offs && i == 0 && e->run.n <= RR_ENC_MAX_RUN) {
            if (e->run.n < RR_ENC_MAX_RUN) {
                e->run.pos[arr] = e->src;
                e->run.ccc[arr] = (uint8_t)ccc;
            }
            e->run.n++;
        }
        if (!mn) {
            if (e->n_pend == RR_ENC_MAX_PENDING) flush_pending(e);
            int j = e->n_pend++;
            while (j > 0 && e->pend_ccc[j - 1] > ccc) {
                e->pend[j] = e->pend[j - 1];
                e->pend_ccc[j] = e->pend_ccc[j - 1];
                e->pend_src[j] = e->pend_src[j - 1];
                e->pend_first[j] = e->pend_first[j - 1];
                e->pend_arr[j] = e->pend_arr[j - 1];
                j--;
            }
            e->pend[j] = d;
            e->pend_ccc[j] = (uint8_t)ccc;
            e->pend_src[j] = e->src;
            e->pend_first[j] = i == 0;
            e->pend_arr[j] = (uint16_t)(arr < RR_ENC_MAX_RUN ? arr : RR_ENC_MAX_RUN);
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
        if (rr_is_ws_nonascii(c)) c = ' ';
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
    e->run.n = 0;
    end_word(e, e->offs != NULL);
}

static inline uint32_t decode(const unsigned char *s, size_t *i)
{
    uint32_t c = rr_utf8_at(s, *i);
    *i += (size_t)rr_utf8_len(s[*i]);
    return c;
}

/* The body of both encoders. offs is a compile-time constant (each caller passes a literal
 * and this is always inlined), so rr_tokenizer_encode's loop carries no offsets work; the
 * stages past the ASCII fast paths test e->offs instead. */
static inline __attribute__((always_inline)) rr_status
encode(const rr_tokenizer *t, const char *text, size_t len, int keep_last, int32_t *ids,
       int32_t *offsets, int cap, int *n_total, const int offs)
{
    if (!t || (!text && len) || (!ids && cap > 0) || (offs && !offsets && cap > 0) || cap < 0 ||
        !n_total)
        return RR_E_INVALID;
    /* WordPiece: at most one token per input byte, so n_total fits an int (Unigram counts in
     * a long and refuses past INT32_MAX) */
    if (len > (size_t)INT32_MAX) return RR_E_TOO_LONG;
    if (rr_utf8_check(text, len) != len) return RR_E_UTF8;
    if (t->kind == RR_TOK_UNIGRAM)
        return rr_unigram_encode(t, text, len, keep_last, ids, offs ? offsets : NULL, cap, n_total);

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
    e.offs = offs ? offsets : NULL;
    e.text = (const unsigned char *)text;
    e.src = 0;
    e.run.n = 0;

    const unsigned char *s = (const unsigned char *)text;
    const uint8_t *cls = t->ascii_class, *map = t->ascii_map, *plain = t->ascii_plain;
    int has_added = t->n_added > 0;
    size_t i = 0;
    while (i < len) {
        unsigned b = s[i];
        if (plain[b]) {
            /* a run of ASCII word bytes (letters, digits): the bulk of English text */
            if (e.n_pend) flush_pending(&e);
            word_add_byte(&e, (char)map[b], (int32_t)i, offs);
            while (++i < len && plain[s[i]])
                word_add_byte(&e, (char)map[s[i]], (int32_t)i, offs);
            if (offs) e.run.n = 0; /* ASCII letters are starters */
            continue;
        }
        if (has_added && t->added_first[b]) {
            const rr_added_token *a = rr_match_added(t, text + i, len - i);
            if (a) {
                end_piece(&e);
                if (offs)
                    emit_at(&e, a->id, (int32_t)i, (int32_t)(i + a->len));
                else
                    emit(&e, a->id);
                i += a->len;
                continue;
            }
        }
        if (b < 0x80) {
            /* ASCII is a starter with no decomposition: it ends a reordering run, unless
             * clean_text deletes it (HF cleans the whole piece before NFD sees the run) */
            if (e.n_pend && cls[b] != RR_ASCII_DROP) flush_pending(&e);
            if (offs && cls[b] != RR_ASCII_DROP) e.run.n = 0;
            switch (cls[b]) {
            case RR_ASCII_KEEP:
                word_add_byte(&e, (char)map[b], (int32_t)i, offs);
                break;
            case RR_ASCII_SPACE:
                end_word(&e, offs);
                break;
            case RR_ASCII_PUNCT:
                end_word(&e, offs);
                word_add_byte(&e, (char)b, (int32_t)i, offs);
                end_word(&e, offs);
                break;
            default:
                break; /* RR_ASCII_DROP */
            }
            i++;
            continue;
        }
        if (offs) e.src = (int32_t)i;
        raw_nonascii(&e, decode(s, &i));
    }
    end_piece(&e);

    /* keep_last: the ring holds the last min(n, cap) ids, oldest at `ring`; rotate in place */
    if (keep_last && e.n > cap) rr_ring_unroll(ids, cap, e.ring);
    *n_total = (int)e.n;
    return RR_OK;
}

rr_status rr_tokenizer_encode(const rr_tokenizer *t, const char *text, size_t len, int keep_last,
                              int32_t *ids, int cap, int *n_total)
{
    return encode(t, text, len, keep_last, ids, NULL, cap, n_total, 0);
}

rr_status rr_tokenizer_encode_offsets(const rr_tokenizer *t, const char *text, size_t len,
                                      int32_t *ids, int32_t *offsets, int cap, int *n_total)
{
    return encode(t, text, len, 0, ids, offsets, cap, n_total, 1);
}
