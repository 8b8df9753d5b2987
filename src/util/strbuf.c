/*
 * strbuf.c — growable printf buffer (contract in strbuf.h).
 */
#include "util/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

void rr_strbuf_printf(rr_strbuf *b, const char *fmt, ...)
{
    /* At most two passes: the second has room for what the first measured. */
    for (int pass = 0; pass < 2 && !b->oom; pass++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? 2 * b->cap : 4096) + (size_t)n + 1;
        char *p = rr_realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void rr_strbuf_append(rr_strbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (!b->p || b->cap - b->len <= n) {
        size_t cap = rr_grow_cap(b->cap, b->len + n + 1, 4096);
        char *p = rr_realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
