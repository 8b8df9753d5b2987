/*
 * unicode_tables.h — Unicode 8.0 category tables of the HF fast BERT tokenizer, and the code
 * points where its Unicode 9.0 NFD differs from utf8proc's (generated into unicode_tables.c
 * by tools/gen_unicode_tables.py), and their lookup.
 */
#ifndef RR_UNICODE_TABLES_H
#define RR_UNICODE_TABLES_H

#include <stdint.h>

typedef struct rr_uc_range {
    uint32_t lo, hi; /* inclusive */
} rr_uc_range;

extern const rr_uc_range rr_uc_other[]; /* Cc, Cf, Co */
extern const int rr_uc_other_len;
extern const rr_uc_range rr_uc_mn[]; /* Mn */
extern const int rr_uc_mn_len;
extern const rr_uc_range rr_uc_punct[]; /* P* */
extern const int rr_uc_punct_len;
extern const rr_uc_range rr_uc_nfd_new[]; /* after 9.0, ccc != 0 or canonical decomposition */
extern const int rr_uc_nfd_new_len;

/* 1 when cp lies in one of the n sorted ranges (binary search). */
static inline int rr_uc_in(const rr_uc_range *r, int n, uint32_t cp)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) >> 1;
        if (cp < r[mid].lo)
            hi = mid - 1;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

#endif /* RR_UNICODE_TABLES_H */
