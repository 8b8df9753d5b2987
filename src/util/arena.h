/*
 * arena.h — a chunked bump allocator for memory that dies all at once (a decoded request,
 * a batch's strings). Reset keeps the chunks, so an arena that is reused for messages of a
 * steady shape stops allocating after the first few: this is how the request path stays
 * free of per-request heap traffic. Chunks come from the allocation funnel (rr_malloc).
 *
 * Not thread-safe: an arena belongs to one owner at a time (a call context, a stream slot).
 */
#ifndef RR_ARENA_H
#define RR_ARENA_H

#include <stddef.h>

typedef struct rr_arena_chunk rr_arena_chunk;

typedef struct rr_arena {
    rr_arena_chunk *head; /* chunks in allocation order */
    rr_arena_chunk *cur;  /* the chunk allocations come from */
    size_t retain;        /* bytes of chunks kept by a reset (the rest is freed) */
    size_t held;          /* bytes in chunks now */
    size_t limit;         /* 0, or the most bytes of chunks this arena may hold */
    int over;             /* an allocation failed because of `limit` (until reset) */
} rr_arena;

/* A zeroed arena that keeps up to `retain` bytes of chunks across resets. */
void rr_arena_init(rr_arena *a, size_t retain);

/* n bytes aligned to 16; NULL when out of memory. n == 0 returns a valid pointer. */
void *rr_arena_alloc(rr_arena *a, size_t n);

/* Caps the bytes of chunks the arena may hold (0: no cap) until changed; an allocation
 * beyond it returns NULL and sets `over`, so a decoder can tell "too big" from "no
 * memory". */
void rr_arena_set_limit(rr_arena *a, size_t limit);

/* Forgets every allocation; keeps the first chunks up to `retain` bytes for reuse. */
void rr_arena_reset(rr_arena *a);

/* Frees every chunk; the arena can be used again (it starts empty). */
void rr_arena_free(rr_arena *a);

/* Bytes held in chunks (for tests). */
size_t rr_arena_held(const rr_arena *a);

#endif /* RR_ARENA_H */
