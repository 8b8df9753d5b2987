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
/* Reads the whole regular file `path` into *out, a new rr_malloc'ed buffer of *len + 1 bytes
 * whose last byte is a NUL (the text itself may contain NULs; use *len). Files larger than
 * max_bytes are refused before anything is allocated. Errors name the path: RR_E_IO (cannot
 * open, not a regular file, short read), RR_E_FORMAT (over max_bytes), RR_E_NOMEM. On error
 * *out is NULL. The caller frees *out with rr_free. */
rr_status rr_read_file(const char *path, size_t max_bytes, char **out, size_t *len, rr_error *err);

/* Monotonic time in nanoseconds. */
uint64_t rr_now_ns(void);

/* The number of CPUs this process may use (≥ 1): the CPUs of its affinity mask (taskset,
 * cpuset), capped by the CFS bandwidth quota of its cgroup and every ancestor cgroup, rounded
 * up (docker --cpus 1.5 → 2). cgroup v2 (cpu.max) and v1 (cpu.cfs_quota_us/_period_us) are
 * read; missing or unparsable files impose no cap. Reads /proc and /sys on every call, so
 * callers take it once at start-up. The default for rr_engine_opts.n_threads and the
 * tokenizer workers. Implemented in cpus.c. */
int rr_cpu_count(void);

/* The quota part of rr_cpu_count, with its files given for tests: proc_self_cgroup is a file
 * in the format of /proc/self/cgroup, cgroup_root the folder where the hierarchies are
 * mounted (/sys/fs/cgroup: the v2 hierarchy itself, or for v1 the folder holding the cpu
 * controller's mount, <root>/<controller list> such as cpu,cpuacct, else <root>/cpu). Returns
 * the smallest ceil(quota / period) over the process's cgroup and its ancestors, or 0 when
 * none sets a quota or nothing could be read. */
int rr_cpu_quota_at(const char *proc_self_cgroup, const char *cgroup_root);

#endif /* RR_UTIL_H */
