/*
 * fuzz_tokenizer.c — arbitrary bytes through rr_tokenizer_encode and rr_pair_build with the
 * real tokenizers of models/minilm-l6-bert (WordPiece) and, when it exists, models/xlmr-small
 * (SentencePiece Unigram, XLM-R; both of its pipelines), each input through each tokenizer
 * (loaded once; skipped when minilm-l6-bert is absent).
 *
 * Invariants, for every input:
 *   - RR_OK exactly for valid UTF-8 (independent validator in fuzz.h), RR_E_UTF8 otherwise
 *     with nothing written; at most one token per byte; every id below the vocabulary size;
 *   - for caps 0, 1, 2, 3, 7, 64 and n_total + 1, both keep_last values: the same n_total,
 *     exactly min(n_total, cap) ids written, equal to the head (keep_last 0) or the tail
 *     (keep_last 1) of the full encoding, and nothing past them touched;
 *   - rr_pair_build on the input split at its first newline (query, passage), for max_length
 *     3, 4, 16, 512, truncation on and off: -1 only when the pair is too long and truncation
 *     is off; otherwise `[CLS] q' [SEP] d' [SEP]` with types 0…0 1…1, q' and d' the head or
 *     tail of the full encodings, length min(q + d + 3, max_length), the longest_first
 *     balance (a cut side keeps at least the other's count less one; two cut sides differ
 *     by at most one, in favour of the longer), nothing written past the pair. XLM-R's
 *     `<s> q' </s> </s> d' </s>` (4 special tokens, type ids all 0) is checked against the
 *     split rr_truncate_longest_first gives for its budget (the rule itself is checked on
 *     BERT's pairs above);
 *   - XLM-R also through rr_tokenizer_encode_offsets: the same ids, every offset pair a
 *     non-empty range or an empty one at a deleted character, inside the text and on
 *     character boundaries.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "fuzz.h"

static rr_tokenizer *tok; /* the tokenizer the checks below run with */
static rr_tokenizer *toks[3];
static int n_toks;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    rr_error err = {0};
    rr_status s = rr_tokenizer_load(RR_MODELS_DIR "/minilm-l6-bert", &toks[0], &err);
    if (s == RR_E_IO) fuzz_skip("fuzz_tokenizer", err.msg);
    FUZZ_CHECK(s == RR_OK, "loading minilm-l6-bert's tokenizer: %s", err.msg);
    n_toks = 1;
    static const char *const pipelines[] = {"transformers", "file"};
    for (int i = 0; i < 2; i++) {
        setenv("RERANK_TOKENIZER_PIPELINE", pipelines[i], 1);
        s = rr_tokenizer_load(RR_MODELS_DIR "/xlmr-small", &toks[n_toks], &err);
        unsetenv("RERANK_TOKENIZER_PIPELINE");
        if (s == RR_E_IO) break; /* no XLM-R test model: WordPiece only */
        FUZZ_CHECK(s == RR_OK, "loading xlmr-small's tokenizer: %s", err.msg);
        n_toks++;
    }
    return 0;
}

#define GUARD 8
#define SENTINEL (-12345)

/* Encodes with a capped buffer and checks it against the full encoding `full` of n ids. */
static void check_capped(const char *text, size_t len, const int32_t *full, int n, int cap,
                         int keep_last)
{
    int32_t buf[64 + GUARD], *ids = buf;
    if (cap + GUARD > 64 + GUARD) ids = malloc(((size_t)cap + GUARD) * sizeof *ids);
    FUZZ_CHECK(ids != NULL, "malloc");
    for (int i = 0; i < cap + GUARD; i++)
        ids[i] = SENTINEL;
    int n_total = -1;
    rr_status s = rr_tokenizer_encode(tok, text, len, keep_last, ids, cap, &n_total);
    FUZZ_CHECK(s == RR_OK && n_total == n, "cap %d keep_last %d: %s, n_total %d (full %d)", cap,
               keep_last, rr_status_name(s), n_total, n);
    int stored = n < cap ? n : cap;
    const int32_t *want = keep_last ? full + (n - stored) : full;
    for (int i = 0; i < stored; i++)
        FUZZ_CHECK(ids[i] == want[i], "cap %d keep_last %d: id %d is %d, want %d", cap, keep_last,
                   i, (int)ids[i], (int)want[i]);
    for (int i = stored; i < cap + GUARD; i++)
        FUZZ_CHECK(ids[i] == SENTINEL, "cap %d keep_last %d: slot %d written (%d ids)", cap,
                   keep_last, i, stored);
    if (ids != buf) free(ids);
}

/* Encodes `text` capped at `cap` for rr_pair_build; returns the stored count. */
static int encode_capped(const char *text, size_t len, int keep_last, int32_t *ids, int cap,
                         int *total)
{
    rr_status s = rr_tokenizer_encode(tok, text, len, keep_last, ids, cap, total);
    FUZZ_CHECK(s == RR_OK, "encode for the pair: %s", rr_status_name(s));
    return *total < cap ? *total : cap;
}

/* XLM-R's template: `<s> q' </s> </s> d' </s>`, all type ids 0. */
static void check_pair_xlmr(int n, const int32_t *ids, const int32_t *types, const int32_t *qf,
                            int q_total, const int32_t *df, int d_total, int max_length,
                            int truncate, int keep_last)
{
    long whole = (long)q_total + d_total + 4;
    if (max_length < 4 || (whole > max_length && !truncate)) {
        FUZZ_CHECK(n == -1, "XLM-R: %ld tokens at max_length %d without truncation but built %d",
                   whole, max_length, n);
        return;
    }
    int a = q_total, b = d_total;
    if (whole > max_length) rr_truncate_longest_first(q_total, d_total, max_length - 1, &a, &b);
    FUZZ_CHECK(n == a + b + 4 && n <= max_length, "XLM-R pair of %d + %d at %d: length %d", q_total,
               d_total, max_length, n);
    const int32_t cls = rr_tokenizer_cls_id(tok), sep = rr_tokenizer_sep_id(tok);
    FUZZ_CHECK(ids[0] == cls && ids[a + 1] == sep && ids[a + 2] == sep && ids[n - 1] == sep,
               "XLM-R template broken");
    const int32_t *qw = keep_last ? qf + (q_total - a) : qf;
    const int32_t *dw = keep_last ? df + (d_total - b) : df;
    for (int i = 0; i < a; i++)
        FUZZ_CHECK(ids[1 + i] == qw[i], "XLM-R query id %d differs", i);
    for (int i = 0; i < b; i++)
        FUZZ_CHECK(ids[a + 3 + i] == dw[i], "XLM-R passage id %d differs", i);
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(types[i] == 0, "XLM-R type id %d at %d", (int)types[i], i);
    for (int i = n; i < max_length + GUARD; i++)
        FUZZ_CHECK(ids[i] == SENTINEL && types[i] == SENTINEL, "slot %d written past the pair", i);
}

/* rr_tokenizer_encode_offsets: the same ids, offsets inside the text on character starts. */
static void check_offsets(const char *text, size_t len, const int32_t *full, int n)
{
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    int32_t *offs = malloc(2 * ((size_t)n + 1) * sizeof *offs);
    FUZZ_CHECK(ids && offs, "malloc");
    int total = -1;
    rr_status s = rr_tokenizer_encode_offsets(tok, text, len, ids, offs, n + 1, &total);
    FUZZ_CHECK(s == RR_OK && total == n, "offsets: %s, %d tokens (want %d)", rr_status_name(s),
               total, n);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(ids[i] == full[i], "offsets: id %d differs", i);
        int32_t a = offs[2 * i], b = offs[2 * i + 1];
        FUZZ_CHECK(a >= 0 && a <= b && (size_t)b <= len, "offsets: token %d has [%d, %d) in %zu", i,
                   a, b, len);
        FUZZ_CHECK(((size_t)a == len || ((unsigned char)text[a] & 0xC0) != 0x80) &&
                       ((size_t)b == len || ((unsigned char)text[b] & 0xC0) != 0x80),
                   "offsets: token %d [%d, %d) splits a character", i, a, b);
    }
    free(ids);
    free(offs);
}

static void check_pair_build(const int32_t *qs, int q_stored, const int32_t *qf, int q_total,
                             const int32_t *ds, int d_stored, const int32_t *df, int d_total,
                             int max_length, int truncate, int keep_last)
{
    int32_t ids[512 + GUARD], types[512 + GUARD];
    for (int i = 0; i < max_length + GUARD; i++)
        ids[i] = types[i] = SENTINEL;
    int n = rr_pair_build(tok, qs, q_stored, q_total, ds, d_stored, d_total, max_length, truncate,
                          keep_last, ids, types);
    const int sp = rr_tokenizer_pair_specials(tok);
    if (sp != 3) {
        check_pair_xlmr(n, ids, types, qf, q_total, df, d_total, max_length, truncate, keep_last);
        return;
    }
    long whole = (long)q_total + d_total + 3;
    if (whole > max_length && !truncate) {
        FUZZ_CHECK(n == -1, "too long without truncation but built %d", n);
        return;
    }
    long want_n = whole < max_length ? whole : max_length;
    FUZZ_CHECK(n == want_n, "pair of %d + %d at max_length %d: length %d, want %ld", q_total,
               d_total, max_length, n, want_n);
    int a = 0;
    while (a < n && types[a] == 0)
        a++;
    for (int i = a; i < n; i++)
        FUZZ_CHECK(types[i] == 1, "type id %d at %d after the first 1", (int)types[i], i);
    a -= 2; /* [CLS] and the first [SEP] */
    int b = n - 3 - a;
    FUZZ_CHECK(a >= 0 && b >= 0 && a <= q_total && b <= d_total, "kept %d of %d and %d of %d", a,
               q_total, b, d_total);
    FUZZ_CHECK(ids[0] == rr_tokenizer_cls_id(tok), "pair does not start with [CLS]");
    FUZZ_CHECK(ids[a + 1] == rr_tokenizer_sep_id(tok) && ids[n - 1] == rr_tokenizer_sep_id(tok),
               "[SEP] missing");
    const int32_t *qw = keep_last ? qf + (q_total - a) : qf;
    const int32_t *dw = keep_last ? df + (d_total - b) : df;
    for (int i = 0; i < a; i++)
        FUZZ_CHECK(ids[1 + i] == qw[i], "query id %d differs", i);
    for (int i = 0; i < b; i++)
        FUZZ_CHECK(ids[a + 2 + i] == dw[i], "passage id %d differs", i);
    /* longest_first: a side that is cut keeps at least the other's count less one; when
     * both are cut they differ by at most one, the extra token going to the longer side
     * (to the passage on a tie) */
    if (a < q_total && b < d_total)
        FUZZ_CHECK(a == b || (a == b + 1 && q_total > d_total) ||
                       (b == a + 1 && q_total <= d_total),
                   "%d and %d cut to %d and %d", q_total, d_total, a, b);
    else if (a < q_total)
        FUZZ_CHECK(a + 1 >= b, "only the query cut, to %d, the passage keeps %d", a, b);
    else if (b < d_total)
        FUZZ_CHECK(b + 1 >= a, "only the passage cut, to %d, the query keeps %d", b, a);
    for (int i = n; i < max_length + GUARD; i++)
        FUZZ_CHECK(ids[i] == SENTINEL && types[i] == SENTINEL, "slot %d written past the pair", i);
}

static void check_pair(const char *q, size_t qn, const int32_t *qf, int q_total, const char *d,
                       size_t dn, const int32_t *df, int d_total, int max_length, int keep_last)
{
    int32_t qs[512], ds[512];
    int qt, dt;
    int q_stored = encode_capped(q, qn, keep_last, qs, max_length, &qt);
    int d_stored = encode_capped(d, dn, keep_last, ds, max_length, &dt);
    FUZZ_CHECK(qt == q_total && dt == d_total, "pair encodes disagree with the full ones");
    for (int truncate = 0; truncate < 2; truncate++)
        check_pair_build(qs, q_stored, qf, q_total, ds, d_stored, df, d_total, max_length, truncate,
                         keep_last);
}

static int one_input(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int i = 0; i < n_toks; i++) {
        tok = toks[i];
        one_input(data, size);
    }
    return 0;
}

static int one_input(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int32_t *full = NULL;
    int n = fuzz_encode_checked(tok, text, size, &full);
    if (n < 0) {
        /* invalid UTF-8: no direction may write anything either */
        for (int keep_last = 0; keep_last < 2; keep_last++) {
            int32_t ids[3] = {SENTINEL, SENTINEL, SENTINEL};
            int n_total = -1;
            rr_status s = rr_tokenizer_encode(tok, text, size, keep_last, ids, 3, &n_total);
            FUZZ_CHECK(s == RR_E_UTF8, "keep_last %d: %s for invalid UTF-8", keep_last,
                       rr_status_name(s));
            for (int i = 0; i < 3; i++)
                FUZZ_CHECK(ids[i] == SENTINEL, "keep_last %d: RR_E_UTF8 but ids[%d] written",
                           keep_last, i);
        }
        return 0;
    }
    static const int caps[] = {0, 1, 2, 3, 7, 64};
    for (int keep_last = 0; keep_last < 2; keep_last++) {
        for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
            check_capped(text, size, full, n, caps[i], keep_last);
        check_capped(text, size, full, n, n + 1, keep_last);
    }
    if (tok->kind == RR_TOK_UNIGRAM) check_offsets(text, size, full, n);

    /* query = up to the first newline, passage = the rest (a newline is whitespace, so the
     * split never changes a token); both halves are valid UTF-8 when the whole is */
    const char *nl = memchr(text, '\n', size);
    size_t qn = nl ? (size_t)(nl - text) : size;
    const char *d = nl ? nl + 1 : text;
    size_t dn = nl ? size - qn - 1 : size;
    int32_t *qf = NULL, *df = NULL;
    int q_total = fuzz_encode_checked(tok, text, qn, &qf);
    int d_total = fuzz_encode_checked(tok, d, dn, &df);
    FUZZ_CHECK(q_total >= 0 && d_total >= 0, "a half of valid UTF-8 was refused");
    static const int max_lengths[] = {3, 4, 16, 512};
    for (size_t i = 0; i < sizeof max_lengths / sizeof max_lengths[0]; i++)
        for (int keep_last = 0; keep_last < 2; keep_last++)
            check_pair(text, qn, qf, q_total, d, dn, df, d_total, max_lengths[i], keep_last);
    free(qf);
    free(df);
    free(full);
    return 0;
}
