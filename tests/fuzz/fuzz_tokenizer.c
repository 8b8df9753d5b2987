/*
 * fuzz_tokenizer.c — arbitrary bytes through rr_tokenizer_encode and rr_pair_build with the
 * real tokenizer of models/minilm-l6-bert (loaded once; skipped when the model is absent).
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
 *     by at most one, in favour of the longer), nothing written past the pair.
 */
#include "fuzz.h"

static rr_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    rr_error err = {0};
    rr_status s = rr_tokenizer_load(RR_MODELS_DIR "/minilm-l6-bert", &tok, &err);
    if (s == RR_E_IO) fuzz_skip("fuzz_tokenizer", err.msg);
    FUZZ_CHECK(s == RR_OK, "loading minilm-l6-bert's tokenizer: %s", err.msg);
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

static void check_pair_build(const int32_t *qs, int q_stored, const int32_t *qf, int q_total,
                             const int32_t *ds, int d_stored, const int32_t *df, int d_total,
                             int max_length, int truncate, int keep_last)
{
    int32_t ids[512 + GUARD], types[512 + GUARD];
    for (int i = 0; i < max_length + GUARD; i++)
        ids[i] = types[i] = SENTINEL;
    int n = rr_pair_build(tok, qs, q_stored, q_total, ds, d_stored, d_total, max_length, truncate,
                          keep_last, ids, types);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
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
