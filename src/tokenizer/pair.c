/*
 * pair.c — the BERT pair template `[CLS] A [SEP] B [SEP]` and HF's longest_first
 * truncation (spec §2.5, §2.6), on ids produced by rr_tokenizer_encode.
 */
#include "tokenizer/tokenizer_impl.h"

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
