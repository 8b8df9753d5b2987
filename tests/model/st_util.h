/*
 * st_util.h — test-side safetensors helpers, independent of src/model: read a whole file,
 * parse its header with cJSON, widen a tensor to fp32 (F16 through the compiler's _Float16,
 * BF16 by a 16-bit shift), and write a patched copy (new header + chosen data bytes).
 * Header-only (static inline functions) so each model test is one translation unit.
 */
#ifndef RR_TEST_ST_UTIL_H
#define RR_TEST_ST_UTIL_H

#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct st_file {
    unsigned char *bytes;
    size_t size;
    cJSON *header;
    const unsigned char *data; /* start of the data section */
    size_t data_size;
} st_file;

static inline unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = 0;
    fclose(f);
    *size = (size_t)n;
    return b;
}

static inline int write_all(const char *path, const void *a, size_t na, const void *b, size_t nb)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(a, 1, na, f) == na && (nb == 0 || fwrite(b, 1, nb, f) == nb);
    return fclose(f) == 0 && ok;
}

static inline int st_load(const char *path, st_file *s)
{
    memset(s, 0, sizeof *s);
    s->bytes = read_all(path, &s->size);
    if (!s->bytes || s->size < 8) return 0;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | s->bytes[i];
    s->header = cJSON_ParseWithLength((const char *)s->bytes + 8, (size_t)n);
    s->data = s->bytes + 8 + n;
    s->data_size = s->size - 8 - n;
    return s->header != NULL;
}

static inline void st_free(st_file *s)
{
    cJSON_Delete(s->header);
    free(s->bytes);
    memset(s, 0, sizeof *s);
}

/* Widens tensor `name` into a fresh malloc'd fp32 array (*n elements); NULL if absent. */
static inline float *st_widen(const st_file *s, const char *name, size_t *n)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s->header, name);
    if (!t) return NULL;
    const char *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype")->valuestring;
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
    size_t e = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    size_t esize = strcmp(dt, "F32") == 0 ? 4 : 2;
    *n = (e - b) / esize;
    float *out = malloc(*n * sizeof *out + 1);
    for (size_t i = 0; i < *n; i++) {
        const unsigned char *p = s->data + b + i * esize;
        if (esize == 4) {
            memcpy(&out[i], p, 4);
        } else if (strcmp(dt, "F16") == 0) {
            _Float16 h;
            memcpy(&h, p, 2);
            out[i] = (float)h;
        } else {
            uint32_t bits = (uint32_t)(p[0] | p[1] << 8) << 16;
            memcpy(&out[i], &bits, 4);
        }
    }
    return out;
}

/* Writes `path` = header JSON (padded with spaces to a multiple of 8) + data[0..data_size). */
static inline int st_write(const char *path, const cJSON *header, const void *data,
                           size_t data_size)
{
    char *json = cJSON_PrintUnformatted(header);
    size_t n = strlen(json), padded = (n + 7) / 8 * 8;
    unsigned char *buf = malloc(8 + padded);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, json, n);
    memset(buf + 8 + n, ' ', padded - n);
    int ok = write_all(path, buf, 8 + padded, data, data_size);
    free(buf);
    free(json);
    return ok;
}

#endif /* RR_TEST_ST_UTIL_H */
