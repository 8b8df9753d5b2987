/*
 * safetensors.c — mmap + full validation of a .safetensors file, or of the same bytes in a
 * caller's buffer (contract in safetensors.h).
 *
 * Every check mirrors huggingface/safetensors `Metadata::validate`, so a file we accept is one
 * the Python reader accepts too, and a malformed file is refused with a message naming the
 * tensor and the offending field instead of being read out of bounds.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

/* The reference reader's limit on the header size (safetensors MAX_HEADER_SIZE). */
#define ST_MAX_HEADER 100000000ull

static const struct {
    const char *name;
    int size;
    rr_st_dtype dtype;
} st_dtypes[] = {
    {"F32", 4, RR_ST_F32},       {"F16", 2, RR_ST_F16},       {"BF16", 2, RR_ST_BF16},
    {"F64", 8, RR_ST_OTHER},     {"I64", 8, RR_ST_OTHER},     {"U64", 8, RR_ST_OTHER},
    {"I32", 4, RR_ST_OTHER},     {"U32", 4, RR_ST_OTHER},     {"I16", 2, RR_ST_OTHER},
    {"U16", 2, RR_ST_OTHER},     {"I8", 1, RR_ST_OTHER},      {"U8", 1, RR_ST_OTHER},
    {"BOOL", 1, RR_ST_OTHER},    {"F8_E5M2", 1, RR_ST_OTHER}, {"F8_E4M3", 1, RR_ST_OTHER},
    {"F8_E8M0", 1, RR_ST_OTHER},
};

/* A JSON number that is a non-negative integer below 2^53 (exactly representable). */
static int json_u64(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const rr_st_tensor *)a)->name, ((const rr_st_tensor *)b)->name);
}

static int cmp_offset(const void *a, const void *b)
{
    const rr_st_tensor *x = *(const rr_st_tensor *const *)a, *y = *(const rr_st_tensor *const *)b;
    if (x->data != y->data) return x->data < y->data ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

/* Parses one tensor entry `item` into *t; data pointers are relative to `data`. */
static rr_status parse_entry(const char *path, const cJSON *item, const uint8_t *data,
                             uint64_t data_size, rr_st_tensor *t, rr_error *err)
{
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return rr_set_error(err, RR_E_FORMAT, "%s: tensor %s: header entry is not an object", path,
                            name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt))
        return rr_set_error(err, RR_E_FORMAT, "%s: tensor %s: missing or non-string dtype", path,
                            name);
    t->name = name;
    t->dtype_name = NULL;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++) {
        if (strcmp(dt->valuestring, st_dtypes[i].name) == 0) {
            t->dtype_name = st_dtypes[i].name;
            t->elem_size = st_dtypes[i].size;
            t->dtype = st_dtypes[i].dtype;
        }
    }
    if (!t->dtype_name)
        return rr_set_error(err, RR_E_FORMAT, "%s: tensor %s: unknown dtype \"%.32s\"", path, name,
                            dt->valuestring);

    if (!cJSON_IsArray(shape))
        return rr_set_error(err, RR_E_FORMAT, "%s: tensor %s: missing or non-array shape", path,
                            name);
    int n_dim = cJSON_GetArraySize(shape);
    if (n_dim > RR_ST_MAX_DIM)
        return rr_set_error(err, RR_E_FORMAT, "%s: tensor %s: %d dimensions (at most %d)", path,
                            name, n_dim, RR_ST_MAX_DIM);
    t->n_dim = n_dim;
    uint64_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < n_dim; i++) {
        uint64_t v;
        if (!json_u64(cJSON_GetArrayItem(shape, i), &v))
            return rr_set_error(err, RR_E_FORMAT,
                                "%s: tensor %s: shape[%d] is not a non-negative integer", path,
                                name, i);
        t->shape[i] = (int64_t)v;
        if (v != 0 && numel > UINT64_MAX / v) overflow = 1;
        numel *= v;
    }
    if (overflow || numel > UINT64_MAX / (uint64_t)t->elem_size)
        return rr_set_error(err, RR_E_FORMAT, "%s: tensor %s: shape overflows", path, name);
    t->numel = numel;

    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_u64(cJSON_GetArrayItem(offs, 0), &begin) ||
        !json_u64(cJSON_GetArrayItem(offs, 1), &end))
        return rr_set_error(err, RR_E_FORMAT,
                            "%s: tensor %s: data_offsets must be two non-negative integers", path,
                            name);
    if (begin > end || end > data_size)
        return rr_set_error(err, RR_E_FORMAT,
                            "%s: tensor %s: data_offsets [%llu, %llu] outside the data section "
                            "of %llu bytes",
                            path, name, (unsigned long long)begin, (unsigned long long)end,
                            (unsigned long long)data_size);
    if (end - begin != numel * (uint64_t)t->elem_size)
        return rr_set_error(err, RR_E_FORMAT,
                            "%s: tensor %s: data_offsets span %llu bytes but %llu elements of "
                            "%s need %llu",
                            path, name, (unsigned long long)(end - begin),
                            (unsigned long long)numel, t->dtype_name,
                            (unsigned long long)(numel * (uint64_t)t->elem_size));
    t->data = data + begin;
    t->nbytes = end - begin;
    return RR_OK;
}

/* Validates the `size` bytes at `bytes` (a mapping or the caller's buffer) and fills the
 * tensor table of *st, whose map fields the caller has set. Used by both rr_st_open and
 * rr_st_open_mem, so a buffer is judged exactly as the same bytes in a file would be. On
 * failure the tables are freed; the caller unmaps. */
static rr_status st_parse(const char *path, const uint8_t *bytes, uint64_t size, rr_safetensors *st,
                          rr_error *err)
{
    rr_status s = RR_OK;
    cJSON *root = NULL;
    rr_st_tensor **by_offset = NULL;

    if (size < 8)
        return rr_set_error(err, RR_E_FORMAT,
                            "%s: file is %llu bytes, too short for the 8-byte header length", path,
                            (unsigned long long)size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | bytes[i];
    if (n > ST_MAX_HEADER || n > size - 8) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: header length %llu exceeds %s (file is %llu bytes)",
                         path, (unsigned long long)n,
                         n > ST_MAX_HEADER ? "the 100,000,000-byte limit" : "the file",
                         (unsigned long long)size);
        goto fail;
    }
    const char *hdr = (const char *)bytes + 8, *hdr_end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)n, &hdr_end, 0);
    if (!root || !cJSON_IsObject(root)) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: header is not a JSON object", path);
        goto fail;
    }
    /* Writers pad the header with spaces up to a multiple of 8; anything else is garbage. */
    for (const char *p = hdr_end; p < hdr + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            s = rr_set_error(err, RR_E_FORMAT,
                             "%s: trailing bytes after the header JSON at offset %lld", path,
                             (long long)(p - (const char *)bytes));
            goto fail;
        }
    }
    st->header_json = root;

    int n_items = cJSON_GetArraySize(root), n_t = 0;
    st->tensors = rr_calloc((size_t)n_items, sizeof *st->tensors);
    by_offset = rr_calloc((size_t)n_items, sizeof *by_offset);
    if (!st->tensors || !by_offset) {
        s = rr_set_error(err, RR_E_NOMEM, "%s: out of memory for the tensor table", path);
        goto fail;
    }
    const uint8_t *data = bytes + 8 + n;
    uint64_t data_size = size - 8 - n;
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        if (strcmp(item->string, "__metadata__") == 0) continue;
        s = parse_entry(path, item, data, data_size, &st->tensors[n_t], err);
        if (s != RR_OK) goto fail;
        by_offset[n_t] = &st->tensors[n_t];
        n_t++;
    }
    st->n_tensors = n_t;

    qsort(by_offset, (size_t)n_t, sizeof *by_offset, cmp_offset);
    const uint8_t *expect = data;
    for (int i = 0; i < n_t; i++) {
        if (by_offset[i]->data != expect) {
            s = rr_set_error(err, RR_E_FORMAT,
                             "%s: tensor %s: data begins at %lld but the previous tensor ends "
                             "at %lld (%s)",
                             path, by_offset[i]->name, (long long)(by_offset[i]->data - data),
                             (long long)(expect - data),
                             by_offset[i]->data > expect ? "gap" : "overlap");
            goto fail;
        }
        expect += by_offset[i]->nbytes;
    }
    if (expect != data + data_size) {
        s = rr_set_error(err, RR_E_FORMAT,
                         "%s: tensors end at data offset %lld but the data section is %llu bytes",
                         path, (long long)(expect - data), (unsigned long long)data_size);
        goto fail;
    }

    qsort(st->tensors, (size_t)n_t, sizeof *st->tensors, cmp_name);
    for (int i = 1; i < n_t; i++) {
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0) {
            s = rr_set_error(err, RR_E_FORMAT, "%s: duplicate tensor name %s", path,
                             st->tensors[i].name);
            goto fail;
        }
    }
    rr_free(by_offset);
    return RR_OK;

fail:
    rr_free(by_offset);
    if (!st->header_json) cJSON_Delete(root);
    rr_free(st->tensors);
    cJSON_Delete(st->header_json);
    st->tensors = NULL;
    st->header_json = NULL;
    st->n_tensors = 0;
    return s;
}

rr_status rr_st_open(const char *path, rr_safetensors *st, rr_error *err)
{
    rr_status s;
    struct stat sb;

    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rr_set_error(err, RR_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return rr_set_error(err, RR_E_IO, "%s: not a readable regular file", path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) { /* mmap cannot map 0 bytes; st_parse words the error */
        close(fd);
        return st_parse(path, NULL, size, st, err);
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    int mmap_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return rr_set_error(err, RR_E_IO, "%s: mmap failed: %s", path, strerror(mmap_errno));
    st->map = map;
    st->map_size = (size_t)size;
    if ((s = st_parse(path, map, size, st, err)) != RR_OK) rr_st_close(st);
    return s;
}

rr_status rr_st_open_mem(const void *data, size_t len, const char *name, rr_safetensors *st,
                         rr_error *err)
{
    memset(st, 0, sizeof *st);
    if (!data && len) return rr_set_error(err, RR_E_INVALID, "%s: NULL buffer", name);
    return st_parse(name, data, len, st, err);
}

void rr_st_close(rr_safetensors *st)
{
    if (!st) return;
    rr_free(st->tensors);
    cJSON_Delete(st->header_json);
    if (st->map) munmap(st->map, st->map_size);
    memset(st, 0, sizeof *st);
}

const rr_st_tensor *rr_st_find(const rr_safetensors *st, const char *name)
{
    rr_st_tensor key = {.name = name};
    if (st->n_tensors == 0) return NULL;
    return bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof key, cmp_name);
}
