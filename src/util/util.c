/*
 * util.c — the allocation funnel, error formatting and clocks declared in util.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_long alloc_count;
static atomic_long alloc_fail_at = -1; /* allocation number from which allocations fail */

static int alloc_should_fail(void)
{
    long k = atomic_fetch_add(&alloc_count, 1);
    long at = atomic_load(&alloc_fail_at);
    return at >= 0 && k >= at;
}

void rr_alloc_fail_after(long n)
{
    atomic_store(&alloc_fail_at, n < 0 ? -1 : atomic_load(&alloc_count) + n);
}

long rr_alloc_count(void)
{
    return atomic_load(&alloc_count);
}

void *rr_malloc(size_t n)
{
    return alloc_should_fail() ? NULL : malloc(n ? n : 1);
}

void *rr_calloc(size_t count, size_t size)
{
    return alloc_should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *rr_realloc(void *p, size_t n)
{
    return alloc_should_fail() ? NULL : realloc(p, n ? n : 1);
}

void *rr_malloc_aligned(size_t align, size_t n)
{
    void *p = NULL;
    if (alloc_should_fail()) return NULL;
    if (posix_memalign(&p, align, n ? n : 1) != 0) return NULL;
    return p;
}

void rr_free(void *p)
{
    free(p);
}

char *rr_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = rr_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

rr_status rr_set_error(rr_error *err, rr_status s, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = s;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

const char *rr_status_name(rr_status s)
{
    switch (s) {
    case RR_OK:
        return "RR_OK";
    case RR_E_INVALID:
        return "RR_E_INVALID";
    case RR_E_IO:
        return "RR_E_IO";
    case RR_E_FORMAT:
        return "RR_E_FORMAT";
    case RR_E_UNSUPPORTED:
        return "RR_E_UNSUPPORTED";
    case RR_E_NOMEM:
        return "RR_E_NOMEM";
    case RR_E_UTF8:
        return "RR_E_UTF8";
    case RR_E_TOO_LONG:
        return "RR_E_TOO_LONG";
    case RR_E_DEVICE:
        return "RR_E_DEVICE";
    }
    return "RR_E_UNKNOWN";
}

uint64_t rr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

size_t rr_grow_cap(size_t cap, size_t need, size_t first)
{
    if (need <= cap) return cap;
    size_t c = cap > first ? cap : first;
    while (c < need)
        c = c > SIZE_MAX / 2 ? need : 2 * c;
    return c;
}

int rr_realloc_array(void *pp, size_t n, size_t elem)
{
    void **p = pp;
    if (elem && n > SIZE_MAX / elem) return 0;
    size_t bytes = n * elem;
    void *q = rr_realloc(*p, bytes ? bytes : 1);
    if (!q) return 0;
    *p = q;
    return 1;
}
