/*
 * safetensors.h — a validating reader for one .safetensors file (spec §1.5).
 *
 * The file is mmapped read-only (rr_st_open) or handed over as a buffer (rr_st_open_mem); both
 * parse the JSON header (cJSON) and check everything the reference reader
 * (huggingface/safetensors tensor.rs) checks: an 8-byte little-endian header length
 * N ≤ 100,000,000 with 8 + N ≤ file size, a JSON object whose keys are tensor names (plus an
 * ignored `__metadata__`), no duplicate names, a known dtype, a shape of non-negative
 * integers, data_offsets [BEGIN, END] relative to the data section with
 * END − BEGIN = numel × dtype size, and tensors that tile the data section exactly (sorted by
 * BEGIN: first at 0, no gaps, no overlaps, last END = data size).
 * Tensor data is NOT assumed aligned: readers copy it with memcpy.
 */
#ifndef RR_SAFETENSORS_H
#define RR_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "rerank.h"

#define RR_ST_MAX_DIM 8

typedef enum rr_st_dtype {
    RR_ST_F32 = 0,
    RR_ST_F16,
    RR_ST_BF16,
    RR_ST_OTHER, /* a valid safetensors dtype that we do not widen (I64, U8, F64, ...) */
} rr_st_dtype;

typedef struct rr_st_tensor {
    const char *name;       /* points into the parsed header; valid until rr_st_close */
    const char *dtype_name; /* "F32", "I64", ... (static string) */
    rr_st_dtype dtype;
    int elem_size; /* bytes per element */
    int n_dim;
    int64_t shape[RR_ST_MAX_DIM];
    uint64_t numel;
    const uint8_t *data; /* start of this tensor's bytes in the mapping */
    uint64_t nbytes;
} rr_st_tensor;

typedef struct rr_safetensors {
    void *map; /* rr_st_open's mapping; NULL after rr_st_open_mem */
    size_t map_size;
    void *header_json; /* cJSON root (owner of the tensor names) */
    int n_tensors;
    rr_st_tensor *tensors; /* sorted by name (lookup by bsearch) */
} rr_safetensors;

/* Map and validate `path`. On failure *st is left closed (nothing to free) and err names the
 * file and what is wrong: RR_E_IO (cannot open/map), RR_E_FORMAT (any violation above),
 * RR_E_NOMEM. */
rr_status rr_st_open(const char *path, rr_safetensors *st, rr_error *err);

/* The same validation over `len` bytes of a whole .safetensors file held by the caller (the
 * fuzzers; a test that builds files in memory); `name` stands for the file in messages.
 * Nothing is copied: tensor data points into `data`, which must stay valid and unchanged
 * until rr_st_close. Errors as rr_st_open's, except that there is no RR_E_IO. */
rr_status rr_st_open_mem(const void *data, size_t len, const char *name, rr_safetensors *st,
                         rr_error *err);
void rr_st_close(rr_safetensors *st);

/* The tensor called `name`, or NULL. */
const rr_st_tensor *rr_st_find(const rr_safetensors *st, const char *name);

#endif /* RR_SAFETENSORS_H */
