/*
 * auth.c — the API key (contract in auth.h): loading it from the flag or the file, the
 * once-a-second look at the file for a rotation, and the constant-time comparison.
 */
#define _POSIX_C_SOURCE 200809L
#include "edge/auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util/util.h"

#define RECHECK_NS 1000000000ull

/* Reads `file` into out (RR_AUTH_MAX_KEY bytes), one trailing "\n" or "\r\n" stripped.
 * Returns the key's length, or -1 with why (a static string or errno's text). */
static long read_key(const char *file, char *out, struct stat *st, const char **why)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        *why = strerror(errno);
        return -1;
    }
    char buf[RR_AUTH_MAX_KEY + 2];
    size_t n = fread(buf, 1, sizeof buf, f);
    int err = ferror(f);
    int ok = !err && fstat(fileno(f), st) == 0;
    fclose(f);
    if (!ok) {
        *why = "cannot read it";
        return -1;
    }
    if (n > 0 && buf[n - 1] == '\n') n--;
    if (n > 0 && buf[n - 1] == '\r') n--;
    if (n == 0) {
        *why = "it is empty";
        return -1;
    }
    if (n > RR_AUTH_MAX_KEY) {
        *why = "the key is longer than 1024 bytes";
        return -1;
    }
    memcpy(out, buf, n);
    return (long)n;
}

int rr_auth_init(rr_auth *a, const char *key, const char *file, int protect_ops)
{
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    for (int p = 0; p < RR_AUTH_PROTOCOLS; p++)
        atomic_init(&a->refused[p], 0);
    a->protect_ops = protect_ops;
    if (key && file) {
        fprintf(stderr, "rerankd: --api-key and --api-key-file are exclusive\n");
        return 0;
    }
    if (key) {
        size_t n = strlen(key);
        if (n == 0 || n > RR_AUTH_MAX_KEY) {
            fprintf(stderr, "rerankd: --api-key needs 1 ... %d bytes\n", RR_AUTH_MAX_KEY);
            return 0;
        }
        memcpy(a->key, key, n);
        a->key_len = n;
        a->on = 1;
    } else if (file) {
        struct stat st;
        const char *why = "";
        long n = read_key(file, a->key, &st, &why);
        if (n < 0) {
            fprintf(stderr, "rerankd: --api-key-file %s: %s\n", file, why);
            return 0;
        }
        a->key_len = (size_t)n;
        a->file = file;
        a->mtime = st.st_mtim;
        a->size = (long long)st.st_size;
        a->checked_ns = rr_now_ns();
        a->on = 1;
    }
    if (protect_ops && !a->on) {
        fprintf(stderr, "rerankd: --api-key-protect-ops needs --api-key or --api-key-file\n");
        return 0;
    }
    return 1;
}

void rr_auth_free(rr_auth *a)
{
    if (!a) return;
    pthread_mutex_destroy(&a->mu);
    memset(a->key, 0, sizeof a->key);
}

/* Under a->mu: at most once a second, re-reads the file when its mtime or size changed. */
static void maybe_reload(rr_auth *a)
{
    uint64_t now = rr_now_ns();
    if (!a->file || now - a->checked_ns < RECHECK_NS) return;
    a->checked_ns = now;
    struct stat st;
    if (stat(a->file, &st) != 0) {
        if (a->size != -1)
            fprintf(stderr, "rerankd: --api-key-file %s: %s; keeping the current key\n", a->file,
                    strerror(errno));
        a->size = -1; /* say it once; a file that comes back counts as changed */
        return;
    }
    if (st.st_mtim.tv_sec == a->mtime.tv_sec && st.st_mtim.tv_nsec == a->mtime.tv_nsec &&
        (long long)st.st_size == a->size)
        return;
    char key[RR_AUTH_MAX_KEY];
    const char *why = "";
    long n = read_key(a->file, key, &st, &why);
    a->mtime = st.st_mtim;
    a->size = (long long)st.st_size;
    if (n < 0) {
        fprintf(stderr, "rerankd: --api-key-file %s: %s; keeping the current key\n", a->file, why);
        return;
    }
    memcpy(a->key, key, (size_t)n);
    a->key_len = (size_t)n;
    memset(key, 0, sizeof key);
    fprintf(stderr, "rerankd: --api-key-file %s: new key loaded\n", a->file);
}

int rr_auth_check(rr_auth *a, rr_auth_protocol proto, const char *value, size_t n)
{
    if (!a->on) return 1;
    /* "Bearer" in any case, one space, then the key. */
    int ok = value && n > 7 && strncasecmp(value, "bearer ", 7) == 0;
    const unsigned char *given = ok ? (const unsigned char *)value + 7 : (const unsigned char *)"";
    size_t given_len = ok ? n - 7 : 0;
    pthread_mutex_lock(&a->mu);
    maybe_reload(a);
    /* Every byte of the key is compared, whatever the value holds: the time depends on the
     * key's length only. A shorter value is compared as zeros past its end. */
    unsigned diff = given_len != a->key_len;
    for (size_t i = 0; i < a->key_len; i++) {
        unsigned char g = i < given_len ? given[i] : 0;
        diff |= (unsigned)(a->key[i] ^ g);
    }
    pthread_mutex_unlock(&a->mu);
    ok = ok && diff == 0;
    if (!ok) atomic_fetch_add_explicit(&a->refused[proto], 1, memory_order_relaxed);
    return ok;
}
