/*
 * file.c — rr_read_file: a whole small file into one NUL-terminated allocation.
 *
 * The model loader (config.json) and the tokenizer loader (tokenizer.json, vocab.txt, the
 * JSON side files) each had a copy of this with different error wordings; this is the one
 * both use. The allocation goes through rr_malloc so the allocation-failure tests reach it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util/util.h"

rr_status rr_read_file(const char *path, size_t max_bytes, char **out, size_t *len, rr_error *err)
{
    struct stat sb;
    char *buf = NULL;
    rr_status s;
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return rr_set_error(err, RR_E_IO, "%s: cannot open: %s", path, strerror(errno));
    /* fopen succeeds on a directory; its "size" is meaningless, so ask fstat, not ftell */
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        s = rr_set_error(err, RR_E_IO, "%s: not a readable regular file", path);
        goto fail;
    }
    size_t n = (size_t)sb.st_size;
    if ((uint64_t)sb.st_size > (uint64_t)max_bytes) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: %lld bytes, over the limit of %zu for this file",
                         path, (long long)sb.st_size, max_bytes);
        goto fail;
    }
    buf = rr_malloc(n + 1);
    if (!buf) {
        s = rr_set_error(err, RR_E_NOMEM, "%s: out of memory reading %zu bytes", path, n);
        goto fail;
    }
    if (fread(buf, 1, n, f) != n) {
        s = rr_set_error(err, RR_E_IO, "%s: read error", path);
        goto fail;
    }
    buf[n] = '\0';
    fclose(f);
    *out = buf;
    *len = n;
    return RR_OK;
fail:
    rr_free(buf);
    fclose(f);
    return s;
}
