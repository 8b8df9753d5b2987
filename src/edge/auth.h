/*
 * auth.h — the API key of rerankd (--api-key / --api-key-file), protocol-neutral: each wing
 * hands over the Authorization value it received (HTTP header, gRPC metadata) and turns a
 * refusal into its own answer (401 / UNAUTHENTICATED). Semantics follow TEI's --api-key: the
 * value must be `Bearer <key>`; we also accept the scheme in any case (RFC 7235 §2.1).
 *
 * The key lives in a fixed buffer (no allocation on the request path). With a file, the
 * file is looked at again at most once a second and re-read when its mtime or size changed;
 * a trailing newline is stripped. A rotation that fails (unreadable, empty, too long) keeps
 * the old key and says why on stderr.
 */
#ifndef RR_EDGE_AUTH_H
#define RR_EDGE_AUTH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RR_AUTH_MAX_KEY 1024

typedef enum { RR_AUTH_GRPC, RR_AUTH_HTTP, RR_AUTH_PROTOCOLS } rr_auth_protocol;

typedef struct rr_auth {
    int on;             /* a key is required */
    int protect_ops;    /* --api-key-protect-ops: /metrics and /info need it too */
    const char *file;   /* --api-key-file; NULL with --api-key */
    pthread_mutex_t mu; /* guards key, key_len and the file's state below */
    char key[RR_AUTH_MAX_KEY];
    size_t key_len;
    struct timespec mtime;
    long long size;
    uint64_t checked_ns; /* last look at the file */
    atomic_uint_fast64_t refused[RR_AUTH_PROTOCOLS];
} rr_auth;

/* key: the key itself, or NULL; file: a file holding it, or NULL (at most one is set; none:
 * no key is required). Returns 1, or 0 with a one-line message on stderr (a missing, empty or
 * too long file or key). rr_auth_free accepts a never-initialised (zeroed) rr_auth. */
int rr_auth_init(rr_auth *a, const char *key, const char *file, int protect_ops);
void rr_auth_free(rr_auth *a);

/* 1 when no key is required or `value` (n bytes, not terminated; NULL = absent) is
 * `Bearer <key>`; else 0 and the refusal is counted for `proto`. The key is compared in time
 * that depends on the key's length only, never on where the value differs. */
int rr_auth_check(rr_auth *a, rr_auth_protocol proto, const char *value, size_t n);

#endif /* RR_EDGE_AUTH_H */
