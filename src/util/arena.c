/*
 * arena.c — chunked bump allocator (contract in arena.h).
 *
 * Chunks double in size from 4 KiB (or fit one large allocation), so a message of n bytes
 * costs O(log n) chunk allocations the first time and none once the arena has grown.
 */
#include "util/arena.h"

#include <stdint.h>

#include "util/util.h"

struct rr_arena_chunk {
    rr_arena_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

#define FIRST_CHUNK 4096

void rr_arena_init(rr_arena *a, size_t retain)
{
    a->head = a->cur = NULL;
    a->retain = retain;
    a->held = a->limit = 0;
    a->over = 0;
}

void rr_arena_set_limit(rr_arena *a, size_t limit)
{
    a->limit = limit;
}

static size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

void *rr_arena_alloc(rr_arena *a, size_t n)
{
    n = align16(n ? n : 1);
    for (rr_arena_chunk *c = a->cur; c; c = c->next) {
        if (c->cap - c->used >= n) {
            void *p = c->data + c->used;
            c->used += n;
            a->cur = c;
            return p;
        }
        /* Too little room left here: later chunks are empty (only reset rewinds `cur`). */
    }
    size_t last = 0;
    rr_arena_chunk **tail = &a->head;
    while (*tail) {
        last = (*tail)->cap;
        tail = &(*tail)->next;
    }
    size_t cap = last ? 2 * last : FIRST_CHUNK;
    if (cap < n) cap = align16(n);
    if (a->limit && a->held + cap > a->limit) {
        cap = align16(n); /* the exact need may still fit under the cap */
        if (a->held + cap > a->limit) {
            a->over = 1;
            return NULL;
        }
    }
    if (cap > SIZE_MAX - sizeof(rr_arena_chunk)) return NULL;
    rr_arena_chunk *c = rr_malloc(sizeof *c + cap);
    if (!c) return NULL;
    a->held += cap;
    c->next = NULL;
    c->cap = cap;
    c->used = n;
    *tail = c;
    a->cur = c;
    return c->data;
}

void rr_arena_reset(rr_arena *a)
{
    size_t kept = 0;
    rr_arena_chunk **pp = &a->head;
    while (*pp) {
        rr_arena_chunk *c = *pp;
        if (kept + c->cap <= a->retain) {
            kept += c->cap;
            c->used = 0;
            pp = &c->next;
        } else {
            *pp = c->next;
            rr_free(c);
        }
    }
    a->cur = a->head;
    a->held = kept;
    a->over = 0;
}

void rr_arena_free(rr_arena *a)
{
    rr_arena_chunk *c = a->head;
    while (c) {
        rr_arena_chunk *next = c->next;
        rr_free(c);
        c = next;
    }
    a->head = a->cur = NULL;
    a->held = 0;
    a->over = 0;
}

size_t rr_arena_held(const rr_arena *a)
{
    return a->held;
}
