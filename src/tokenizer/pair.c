/*
 * pair.c — the BERT pair template `[CLS] A [SEP] B [SEP]` and HF's longest_first
 * truncation (spec §2.5, §2.6), on ids produced by rr_tokenizer_encode; the one function
 * that turns (query ids, document text) into a pair, with the one wording of its errors,
 * for the scheduler, rr_score_query and the CLI; and its chunked twin, which turns a long
 * document into the pairs of its windows (rr_chunk_plan in rerank.h).
 */
#include <math.h>

#include "tokenizer/tokenizer_impl.h"
#include "util/util.h"

/* The Rust formula of tokenizers/src/utils/truncation.rs, not the slow tokenizer's
 * one-at-a-time loop: both can be cut, and on a tie A is the "short" side, so B gets the
 * extra token when the budget is odd. */
static void truncate_budget(int a, int b, int budget, int *a_keep, int *b_keep)
{
    if (budget < 0) budget = 0;
    if (a + b <= budget) {
        *a_keep = a;
        *b_keep = b;
        return;
    }
    int swapped = a > b;
    int s = swapped ? b : a, l = swapped ? a : b;
    l = s > budget ? s : (s > budget - s ? s : budget - s);
    if (s + l > budget) {
        s = budget / 2;
        l = s + budget % 2;
    }
    *a_keep = swapped ? l : s;
    *b_keep = swapped ? s : l;
}

void rr_truncate_longest_first(int a, int b, int max_length, int *a_keep, int *b_keep)
{
    truncate_budget(a, b, max_length - 3, a_keep, b_keep); /* [CLS], [SEP], [SEP] */
}

/* Writes the template around a (q) and b (d) tokens; returns the pair length. */
static int write_pair(const rr_tokenizer *t, const int32_t *qa, int a, const int32_t *db, int b,
                      int32_t *ids, int32_t *type_ids)
{
    int n = 0;
    ids[n] = t->cls_id;
    type_ids[n++] = 0;
    for (int i = 0; i < a; i++) {
        ids[n] = qa[i];
        type_ids[n++] = 0;
    }
    ids[n] = t->sep_id;
    type_ids[n++] = 0;
    if (t->n_mid_sep == 2) { /* XLM-R: `</s> </s>` between the texts */
        ids[n] = t->sep_id;
        type_ids[n++] = t->b_type;
    }
    for (int i = 0; i < b; i++) {
        ids[n] = db[i];
        type_ids[n++] = t->b_type;
    }
    ids[n] = t->sep_id;
    type_ids[n++] = t->b_type;
    return n;
}

int rr_tokenizer_pair_specials(const rr_tokenizer *t)
{
    return t->n_special;
}

int rr_pair_build(const rr_tokenizer *t, const int32_t *q, int q_stored, int q_total,
                  const int32_t *d, int d_stored, int d_total, int max_length, int truncate,
                  int keep_last, int32_t *ids, int32_t *type_ids)
{
    const int sp = t->n_special;
    if (max_length < sp || q_total < 0 || d_total < 0) return -1;
    int a = q_total, b = d_total;
    if ((long)a + b + sp > max_length) {
        if (!truncate) return -1;
        truncate_budget(q_total, d_total, max_length - sp, &a, &b);
    }
    /* the caller must have stored at least the tokens that survive (contract in rerank.h) */
    if (q_stored < a || d_stored < b) return -1;
    const int32_t *qa = keep_last ? q + (q_stored - a) : q;
    const int32_t *db = keep_last ? d + (d_stored - b) : d;
    return write_pair(t, qa, a, db, b, ids, type_ids);
}

static rr_status check_opts(const rr_tokenizer *t, const rr_pair_opts *o, rr_error *err)
{
    if (!o || o->max_length < t->n_special)
        return rr_set_error(err, RR_E_INVALID,
                            "pair options: max_length %d is below %d (the pair's special tokens)",
                            o ? o->max_length : 0, t->n_special);
    return RR_OK;
}

rr_status rr_query_encode(const rr_tokenizer *t, const char *text, size_t len,
                          const rr_pair_opts *o, int32_t *ids, rr_side *q, rr_error *err)
{
    rr_status st = check_opts(t, o, err);
    if (st != RR_OK) return st;
    int total = 0;
    st = rr_tokenizer_encode(t, text, len, o->keep_last, ids, o->max_length, &total);
    if (st == RR_E_UTF8) return rr_set_error(err, st, "query is not valid UTF-8");
    if (st != RR_OK)
        return rr_set_error(err, st, "query: tokenizer failed (%s)", rr_status_name(st));
    *q = (rr_side){ids, total < o->max_length ? total : o->max_length, total};
    return RR_OK;
}

rr_status rr_pair_encode(const rr_tokenizer *t, const rr_side *q, const char *doc, size_t len,
                         const rr_pair_opts *o, const char *field, int index, int32_t *dbuf,
                         int32_t *ids, int32_t *type_ids, int *n_out, rr_error *err)
{
    rr_status st = check_opts(t, o, err);
    if (st != RR_OK) return st;
    int total = 0;
    st = rr_tokenizer_encode(t, doc, len, o->keep_last, dbuf, o->max_length, &total);
    if (st == RR_E_UTF8) return rr_set_error(err, st, "%s[%d] is not valid UTF-8", field, index);
    if (st != RR_OK)
        return rr_set_error(err, st, "%s[%d]: tokenizer failed (%s)", field, index,
                            rr_status_name(st));
    int stored = total < o->max_length ? total : o->max_length;
    /* max_doc_tokens: the document is its first (last) N tokens; the pair keeps the first
     * (last) of those, which are the first (last) of the stored ones. */
    int counted = o->max_doc_tokens > 0 && total > o->max_doc_tokens ? o->max_doc_tokens : total;
    if (stored > counted) stored = counted;
    int n = rr_pair_build(t, q->ids, q->stored, q->total, dbuf, stored, counted, o->max_length,
                          o->truncate, o->keep_last, ids, type_ids);
    if (n < 0)
        return rr_set_error(err, RR_E_TOO_LONG,
                            "%s[%d]: the pair is %lld tokens, over max_length %d, and truncation "
                            "is disabled",
                            field, index, (long long)q->total + counted + t->n_special,
                            o->max_length);
    *n_out = n;
    return RR_OK;
}

void rr_chunk_plan_make(int n_special, int q_total, int d_total, const rr_pair_opts *o,
                        rr_chunk_plan *p)
{
    int budget = o->max_length - n_special;
    int d = o->max_doc_tokens > 0 && d_total > o->max_doc_tokens ? o->max_doc_tokens : d_total;
    p->d_tokens = d;
    if ((long)q_total + d <= budget) {
        *p = (rr_chunk_plan){q_total, d, d, d, 1, 1};
        return;
    }
    /* The query gets what the document leaves, but never less than half a pair when the
     * document needs more: a long query must not squeeze the windows to nothing. */
    int q_room = budget / 2 > budget - d ? budget / 2 : budget - d;
    p->q_keep = q_total < q_room ? q_total : q_room;
    p->window = budget - p->q_keep;
    if (p->window < 1) p->window = 1; /* max_length 3, which rr_doc_windows refuses */
    int ov = o->overlap < 0 ? p->window / 8 : o->overlap;
    if (ov > p->window / 2) ov = p->window / 2;
    p->stride = p->window - ov;
    long rest = (long)d - p->window;
    long n = 1 + (rest > 0 ? (rest + p->stride - 1) / p->stride : 0);
    p->n_possible = n > INT32_MAX ? INT32_MAX : (int)n;
    int cap = o->max_chunks > 0 ? o->max_chunks : 1;
    p->n_windows = p->n_possible < cap ? p->n_possible : cap;
}

int rr_chunk_doc_cap(int n_special, const rr_pair_opts *o)
{
    long cap = (long)(o->max_chunks > 0 ? o->max_chunks : 1) *
               (o->max_length > n_special ? o->max_length - n_special : 1);
    if (o->max_doc_tokens > 0 && o->max_doc_tokens < cap) cap = o->max_doc_tokens;
    return cap > INT32_MAX ? INT32_MAX : (int)cap;
}

rr_status rr_doc_windows(const rr_tokenizer *t, const rr_side *q, const char *doc, size_t len,
                         const rr_pair_opts *o, const char *field, int index, int32_t *dbuf,
                         int32_t *doffs, int dcap, int32_t *ids, int32_t *type_ids, rr_window *win,
                         rr_chunk_plan *plan, rr_error *err)
{
    rr_status st = check_opts(t, o, err);
    if (st != RR_OK) return st;
    if (o->max_length < t->n_special + 1)
        return rr_set_error(err, RR_E_INVALID,
                            "chunking needs max_length %d or more (a window of one token)",
                            t->n_special + 1);
    if (o->max_chunks < 1 || dcap < rr_chunk_doc_cap(t->n_special, o))
        return rr_set_error(err, RR_E_INVALID,
                            "chunk options: max_chunks %d, document buffer %d under %d",
                            o->max_chunks, dcap, rr_chunk_doc_cap(t->n_special, o));
    int total = 0;
    st = doffs ? rr_tokenizer_encode_offsets(t, doc, len, dbuf, doffs, dcap, &total)
               : rr_tokenizer_encode(t, doc, len, 0, dbuf, dcap, &total);
    if (st == RR_E_UTF8) return rr_set_error(err, st, "%s[%d] is not valid UTF-8", field, index);
    if (st != RR_OK)
        return rr_set_error(err, st, "%s[%d]: tokenizer failed (%s)", field, index,
                            rr_status_name(st));
    rr_chunk_plan_make(t->n_special, q->total, total, o, plan);
    const int32_t *qk = o->keep_last ? q->ids + (q->stored - plan->q_keep) : q->ids;
    long off = 0;
    for (int k = 0; k < plan->n_windows; k++) {
        int s = k * plan->stride, e = s + plan->window;
        if (e > plan->d_tokens) e = plan->d_tokens;
        int32_t *pi = ids + off, *pt = type_ids + off;
        int n = write_pair(t, qk, plan->q_keep, dbuf + s, e - s, pi, pt);
        win[k] = (rr_window){off, n, s, e, 0, 0};
        if (doffs && e > s) {
            /* HF's offsets are not monotone where combining marks are reordered or a Hangul
             * syllable splits into jamo: take the span of every token's range */
            int b0 = doffs[2 * s], b1 = doffs[2 * s + 1];
            for (int i = s + 1; i < e; i++) {
                if (doffs[2 * i] < b0) b0 = doffs[2 * i];
                if (doffs[2 * i + 1] > b1) b1 = doffs[2 * i + 1];
            }
            win[k].byte_start = b0;
            win[k].byte_end = b1;
        }
        off += n;
    }
    return RR_OK;
}

float rr_chunk_combine(const float *logits, int n, int rule, int *best)
{
    int b = 0;
    for (int k = 1; k < n; k++)
        if (!isnan(logits[b]) && (isnan(logits[k]) || logits[k] > logits[b])) b = k;
    *best = b;
    if (rule == RR_CHUNK_FIRST) return logits[0];
    if (rule == RR_CHUNK_MEAN) {
        double sum = 0;
        for (int k = 0; k < n; k++)
            sum += logits[k];
        return (float)(sum / n);
    }
    return logits[b];
}
