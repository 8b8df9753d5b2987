/*
 * strbuf.h — a growable text buffer filled printf-style, for the text the server renders
 * (the /metrics exposition, HTTP JSON answers). It grows through the allocation funnel; an
 * allocation failure sets `oom` and later appends do nothing, so a caller checks once at
 * the end. The text stays NUL-terminated. Start from {0}, or from a buffer to reuse
 * ({.p = buf, .cap = cap}, len 0): its memory is kept and grown (realloc) as needed.
 */
#ifndef RR_STRBUF_H
#define RR_STRBUF_H

#include <stddef.h>

typedef struct rr_strbuf {
    char *p; /* rr_malloc'd (rr_free), or NULL before the first append */
    size_t len, cap;
    int oom;
} rr_strbuf;

void rr_strbuf_printf(rr_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends n bytes as they are (they may hold NULs). */
void rr_strbuf_append(rr_strbuf *b, const char *s, size_t n);

#endif /* RR_STRBUF_H */
