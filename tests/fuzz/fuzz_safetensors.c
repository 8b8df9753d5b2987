/*
 * fuzz_safetensors.c — arbitrary bytes as model.safetensors, through rr_st_open_mem (the
 * validation rr_st_open applies to the mapped file).
 *
 * Each input is tried as is and, when its 8-byte header length does not already say so, with
 * the length rewritten to end at the input's last '}' (mutations rarely keep that length
 * consistent, and a wrong one stops the parse at its first check).
 *
 * Invariants: never a crash or a sanitizer report; a failure leaves the object closed (no
 * table, no tensors), returns RR_E_FORMAT / RR_E_NOMEM with that status in err and a message
 * naming the file; a success yields a table sorted by name with no duplicates, every tensor
 * found by rr_st_find, a known dtype with its element size, n_dim ≤ RR_ST_MAX_DIM,
 * numel = the product of the shape, nbytes = numel × element size, its bytes inside the data
 * section of the buffer (after the 8 + N header bytes), and the tensors tiling the data
 * section exactly. Every tensor's bytes are read once, so ASan checks them too.
 */
#include "fuzz.h"
#include "model/safetensors.h"

#define NAME "fuzzdir/model.safetensors"

static void check_one(const uint8_t *buf, size_t size)
{
    rr_safetensors st;
    rr_error err = {0};
    rr_status s = rr_st_open_mem(buf, size, NAME, &st, &err);
    if (s != RR_OK) {
        fuzz_check_error("safetensors", s, &err);
        FUZZ_CHECK(s != RR_E_UNSUPPORTED, "RR_E_UNSUPPORTED from the validator");
        FUZZ_CHECK(s == RR_E_NOMEM || strstr(err.msg, NAME) != NULL,
                   "message does not name the file: %s", err.msg);
        FUZZ_CHECK(st.tensors == NULL && st.header_json == NULL && st.n_tensors == 0 &&
                       st.map == NULL,
                   "failed open left state behind");
        return;
    }
    FUZZ_CHECK(size >= 8, "opened a %zu-byte buffer", size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | buf[i];
    FUZZ_CHECK(n <= size - 8, "header length %llu in %zu bytes", (unsigned long long)n, size);
    const uint8_t *data = buf + 8 + n, *end = buf + size;
    uint64_t sum = 0;
    unsigned char x = 0;
    FUZZ_CHECK(st.n_tensors >= 0 && st.map == NULL, "n_tensors %d", st.n_tensors);
    for (int i = 0; i < st.n_tensors; i++) {
        const rr_st_tensor *t = &st.tensors[i];
        FUZZ_CHECK(t->name != NULL, "tensor %d without a name", i);
        FUZZ_CHECK(i == 0 || strcmp(st.tensors[i - 1].name, t->name) < 0,
                   "table not sorted / duplicate at %d (%s)", i, t->name);
        FUZZ_CHECK(rr_st_find(&st, t->name) == t, "rr_st_find(%s) misses", t->name);
        FUZZ_CHECK(t->dtype_name != NULL && t->elem_size >= 1 && t->elem_size <= 8 &&
                       t->dtype >= RR_ST_F32 && t->dtype <= RR_ST_OTHER,
                   "tensor %s: dtype", t->name);
        FUZZ_CHECK(t->dtype == RR_ST_OTHER || t->elem_size == (t->dtype == RR_ST_F32 ? 4 : 2),
                   "tensor %s: %s with element size %d", t->name, t->dtype_name, t->elem_size);
        FUZZ_CHECK(t->n_dim >= 0 && t->n_dim <= RR_ST_MAX_DIM, "tensor %s: n_dim %d", t->name,
                   t->n_dim);
        uint64_t numel = 1;
        for (int k = 0; k < t->n_dim; k++) {
            FUZZ_CHECK(t->shape[k] >= 0, "tensor %s: shape[%d] %lld", t->name, k,
                       (long long)t->shape[k]);
            numel *= (uint64_t)t->shape[k];
        }
        FUZZ_CHECK(numel == t->numel && t->nbytes == numel * (uint64_t)t->elem_size,
                   "tensor %s: numel %llu / nbytes %llu", t->name, (unsigned long long)t->numel,
                   (unsigned long long)t->nbytes);
        FUZZ_CHECK(t->data >= data && t->data <= end && t->nbytes <= (uint64_t)(end - t->data),
                   "tensor %s: bytes outside the data section", t->name);
        for (uint64_t b = 0; b < t->nbytes; b++)
            x ^= t->data[b];
        sum += t->nbytes;
    }
    FUZZ_CHECK(sum == (uint64_t)(end - data), "tensors cover %llu of %llu data bytes",
               (unsigned long long)sum, (unsigned long long)(end - data));
    FUZZ_CHECK(rr_st_find(&st, "\x01 no such tensor") == NULL, "found a tensor never named");
    /* keeps the reads above from being optimized away */
    __asm__ volatile("" : : "r"(x));
    rr_st_close(&st);
    FUZZ_CHECK(st.tensors == NULL && st.n_tensors == 0, "rr_st_close left state behind");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size);

    const uint8_t *brace = NULL;
    for (size_t i = size; i > 8; i--) {
        if (data[i - 1] == '}') {
            brace = data + i - 1;
            break;
        }
    }
    if (!brace) return 0;
    uint64_t want = (uint64_t)(brace + 1 - (data + 8)), n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | data[i];
    if (n == want) return 0;
    /* an exact-size copy, so ASan still sees reads past the end */
    uint8_t *fixed = malloc(size);
    FUZZ_CHECK(fixed != NULL, "malloc");
    memcpy(fixed, data, size);
    for (int i = 0; i < 8; i++)
        fixed[i] = (uint8_t)(want >> (8 * i));
    check_one(fixed, size);
    free(fixed);
    return 0;
}
