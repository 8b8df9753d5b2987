/*
 * pair.c — the BERT pair template `[CLS] A [SEP] B [SEP]` and HF's longest_first
 * truncation (spec §2.5, §2.6), on ids produced by rr_tokenizer_encode; and the one
 * function that turns (query ids, document text) into a pair, with the one wording of its
 * errors, for the scheduler, rr_score_query and the CLI.
 */
#include "tokenizer/tokenizer_impl.h"
#include "util/util.h"

/* The Rust formula of tokenizers/src/utils/truncation.rs, not the slow tokenizer's
 * one-at-a-time loop: both can be cut, and on a tie A is the "short" side, so B gets the
 * extra token when the budget is odd. */
void rr_truncate_longest_first(int a, int b, int max_length, int *a_keep, int *b_keep)
{
    int budget = max_length - 3; /* [CLS], [SEP], [SEP] */
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

int rr_pair_build(const rr_tokenizer *t, const int32_t *q, int q_stored, int q_total,
                  const int32_t *d, int d_stored, int d_total, int max_length, int truncate,
                  int keep_last, int32_t *ids, int32_t *type_ids)
{
    if (max_length < 3 || q_total < 0 || d_total < 0) return -1;
    int a = q_total, b = d_total;
    if ((long)a + b + 3 > max_length) {
        if (!truncate) return -1;
        rr_truncate_longest_first(q_total, d_total, max_length, &a, &b);
    }
    /* the caller must have stored at least the tokens that survive (contract in rerank.h) */
    if (q_stored < a || d_stored < b) return -1;
    const int32_t *qa = keep_last ? q + (q_stored - a) : q;
    const int32_t *db = keep_last ? d + (d_stored - b) : d;
    int n = 0;
    ids[n] = t->cls_id;
    type_ids[n++] = 0;
    for (int i = 0; i < a; i++) {
        ids[n] = qa[i];
        type_ids[n++] = 0;
    }
    ids[n] = t->sep_id;
    type_ids[n++] = 0;
    for (int i = 0; i < b; i++) {
        ids[n] = db[i];
        type_ids[n++] = 1;
    }
    ids[n] = t->sep_id;
    type_ids[n++] = 1;
    return n;
}

static rr_status check_opts(const rr_pair_opts *o, rr_error *err)
{
    if (!o || o->max_length < 3)
        return rr_set_error(err, RR_E_INVALID, "pair options: max_length %d is below 3",
                            o ? o->max_length : 0);
    return RR_OK;
}

rr_status rr_query_encode(const rr_tokenizer *t, const char *text, size_t len,
                          const rr_pair_opts *o, int32_t *ids, rr_side *q, rr_error *err)
{
    rr_status st = check_opts(o, err);
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
    rr_status st = check_opts(o, err);
    if (st != RR_OK) return st;
    int total = 0;
    st = rr_tokenizer_encode(t, doc, len, o->keep_last, dbuf, o->max_length, &total);
    if (st == RR_E_UTF8) return rr_set_error(err, st, "%s[%d] is not valid UTF-8", field, index);
    if (st != RR_OK)
        return rr_set_error(err, st, "%s[%d]: tokenizer failed (%s)", field, index,
                            rr_status_name(st));
    int stored = total < o->max_length ? total : o->max_length;
    int n = rr_pair_build(t, q->ids, q->stored, q->total, dbuf, stored, total, o->max_length,
                          o->truncate, o->keep_last, ids, type_ids);
    if (n < 0)
        return rr_set_error(err, RR_E_TOO_LONG,
                            "%s[%d]: the pair is %lld tokens, over max_length %d, and truncation "
                            "is disabled",
                            field, index, (long long)q->total + total + 3, o->max_length);
    *n_out = n;
    return RR_OK;
}
