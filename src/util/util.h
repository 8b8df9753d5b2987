/*
 * util.h — small shared helpers of librerank: the allocation funnel, error formatting,
 * the monotonic clock. Everything here is internal (not part of include/rerank.h).
 */
#ifndef RR_UTIL_H
#define RR_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "rerank.h"

/* Allocation funnel: every heap allocation of librerank goes through these, so tests can
 * inject failures (rr_alloc_fail_after) and so the request path can be audited for
 * allocations (rr_alloc_count). rr_malloc_aligned returns memory aligned to `align`
 * (a power of two ≥ sizeof(void*)) that must be released with rr_free. */
void *rr_malloc(size_t n);
void *rr_calloc(size_t count, size_t size);
void *rr_realloc(void *p, size_t n);
void *rr_malloc_aligned(size_t align, size_t n);
void rr_free(void *p);
char *rr_strdup(const char *s);

/* Growing arrays. rr_grow_cap: the capacity to grow `cap` to so that it holds `need`
 * items: doubling from max(cap, first) (cap when it already suffices). rr_realloc_array:
 * resizes the array *pp (a T** passed as void*) to n items of `elem` bytes, checking the
 * multiplication; 1 on success (*pp updated), 0 on overflow or out of memory (*pp kept). */
size_t rr_grow_cap(size_t cap, size_t need, size_t first);
int rr_realloc_array(void *pp, size_t n, size_t elem);

/* Test hook: after `n` more successful allocations every allocation fails (n < 0 turns the
 * injection off). Returns the number of allocations so far (monotone counter). */
void rr_alloc_fail_after(long n);
long rr_alloc_count(void);

/* Fill err (may be NULL) with a status and a printf-style message; returns the status so
 * callers can write `return rr_set_error(err, RR_E_FORMAT, "...", ...)`. */
rr_status rr_set_error(rr_error *err, rr_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Length of the longest valid UTF-8 prefix of s[0..n) (strict: no overlong forms, no
 * surrogates, nothing above U+10FFFF); equals n when the whole text is valid. utf8.c. */
size_t rr_utf8_check(const char *s, size_t n);
/* Code points of valid UTF-8 s[0..n) (bytes that are not continuation bytes). */
size_t rr_utf8_chars(const char *s, size_t n);

/* Monotonic time in nanoseconds. */
uint64_t rr_now_ns(void);

/* Number of online CPUs (≥ 1). */
int rr_cpu_count(void);

#endif /* RR_UTIL_H */
