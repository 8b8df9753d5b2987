/*
 * test_model_bad.c — rr_model_load refuses every malformed folder with the right status and a
 * message naming the file / tensor / field, and never crashes or leaks (the suite also runs
 * under ASan+UBSan, whose leak checker sees every path here). The bad folders are built in a
 * temp dir from tiny-bert-random's real files (config and tokenizer copied, model.safetensors
 * rewritten with one defect each). Then allocation-failure injection at every allocation of a
 * load (and of an engine init): each attempt returns RR_E_NOMEM until one succeeds.
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_util.h"
#include "test.h"
#include "util/util.h"

static char src[512];
static char dir[] = "/tmp/rr_model_bad_XXXXXX";
static st_file orig;
static char *orig_config;

static void path_in(char *out, size_t cap, const char *file)
{
    snprintf(out, cap, "%s/%s", dir, file);
}

/* Loads `dir` expecting status `want` and every substring of `needles` (NULL-terminated). */
static void expect_fail(const char *what, rr_status want, const char *n1, const char *n2)
{
    rr_model *m = NULL;
    rr_error err = {0};
    rr_status s = rr_model_load(dir, &m, &err);
    CHECK_MSG(s == want, "%s: got %s, want %s (%s)", what, rr_status_name(s), rr_status_name(want),
              err.msg);
    CHECK_MSG(m == NULL, "%s: model returned on failure", what);
    CHECK_MSG(err.status == want, "%s: err.status %d", what, (int)err.status);
    CHECK_MSG(!n1 || strstr(err.msg, n1), "%s: message \"%s\" lacks \"%s\"", what, err.msg, n1);
    CHECK_MSG(!n2 || strstr(err.msg, n2), "%s: message \"%s\" lacks \"%s\"", what, err.msg, n2);
    printf("%-34s %-16s %s\n", what, rr_status_name(s), err.msg);
    rr_model_free(m);
}

static void put_st(const cJSON *h, const void *data, size_t n)
{
    char p[600];
    path_in(p, sizeof p, "model.safetensors");
    CHECK(st_write(p, h, data, n));
}

static void put_raw(const void *a, size_t na, const void *b, size_t nb)
{
    char p[600];
    path_in(p, sizeof p, "model.safetensors");
    CHECK(write_all(p, a, na, b, nb));
}

static void put_config(const char *text)
{
    char p[600];
    path_in(p, sizeof p, "config.json");
    CHECK(write_all(p, text, strlen(text), NULL, 0));
}

static void restore(void)
{
    put_config(orig_config);
    put_st(orig.header, orig.data, orig.data_size);
}

static void set_offsets(cJSON *t, double b, double e)
{
    cJSON *o = cJSON_GetObjectItem(t, "data_offsets");
    cJSON_SetNumberValue(cJSON_GetArrayItem(o, 0), b);
    cJSON_SetNumberValue(cJSON_GetArrayItem(o, 1), e);
}

static double off_of(const cJSON *t, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(t, "data_offsets"), i)->valuedouble;
}

/* The tensor whose data comes last in the file. */
static cJSON *last_tensor(cJSON *h)
{
    cJSON *best = NULL;
    for (cJSON *it = h->child; it; it = it->next)
        if (strcmp(it->string, "__metadata__") != 0 && (!best || off_of(it, 0) > off_of(best, 0)))
            best = it;
    return best;
}

static void config_cases(void)
{
    char p[600];
    cJSON *cfg = cJSON_Parse(orig_config);
    char *text;

    put_config("{ \"architectures\": [\"BertForSequenceClassification\", ");
    expect_fail("config.json not JSON", RR_E_FORMAT, "config.json", NULL);

    cJSON *c = cJSON_Duplicate(cfg, 1);
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(c, "architectures"), 0,
                             cJSON_CreateString("DebertaV2ForSequenceClassification"));
    put_config(text = cJSON_Print(c));
    free(text);
    cJSON_Delete(c);
    expect_fail("unsupported architecture", RR_E_UNSUPPORTED, "DebertaV2ForSequenceClassification",
                NULL);

    c = cJSON_Duplicate(cfg, 1);
    cJSON_ReplaceItemInObject(c, "position_embedding_type", cJSON_CreateString("relative_key"));
    put_config(text = cJSON_Print(c));
    free(text);
    cJSON_Delete(c);
    expect_fail("relative position embeddings", RR_E_UNSUPPORTED, "relative_key", NULL);

    c = cJSON_Duplicate(cfg, 1);
    cJSON_ReplaceItemInObject(c, "hidden_act", cJSON_CreateString("swish"));
    put_config(text = cJSON_Print(c));
    free(text);
    cJSON_Delete(c);
    expect_fail("unsupported hidden_act", RR_E_UNSUPPORTED, "hidden_act", "swish");

    c = cJSON_Duplicate(cfg, 1);
    cJSON_DeleteItemFromObject(c, "hidden_size");
    put_config(text = cJSON_Print(c));
    free(text);
    cJSON_Delete(c);
    expect_fail("config without hidden_size", RR_E_FORMAT, "hidden_size", NULL);

    c = cJSON_Duplicate(cfg, 1);
    cJSON_AddItemToObject(c, "sbert_ce_default_activation_function",
                          cJSON_CreateString("torch.nn.modules.activation.Tanh"));
    put_config(text = cJSON_Print(c));
    free(text);
    cJSON_Delete(c);
    expect_fail("unsupported stored activation", RR_E_UNSUPPORTED, "Tanh", NULL);

    path_in(p, sizeof p, "config.json");
    unlink(p);
    expect_fail("missing config.json", RR_E_IO, "config.json", NULL);
    cJSON_Delete(cfg);
    restore();
}

static void safetensors_cases(void)
{
    const unsigned char *b = orig.bytes;
    uint64_t n = orig.size - 8 - orig.data_size;
    unsigned char len8[8];
    cJSON *h;
    char p[600];

    path_in(p, sizeof p, "model.safetensors");
    unlink(p);
    expect_fail("missing model.safetensors", RR_E_IO, "model.safetensors", NULL);

    put_raw(b, 5, NULL, 0);
    expect_fail("file shorter than 8 bytes", RR_E_FORMAT, "model.safetensors", "too short");

    put_raw(b, 8 + n / 2, NULL, 0);
    expect_fail("header cut in half", RR_E_FORMAT, "header length", NULL);

    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)orig.size >> (8 * i));
    put_raw(len8, 8, b + 8, orig.size - 8);
    expect_fail("header length > file size", RR_E_FORMAT, "header length", NULL);

    {
        unsigned char *g = malloc(8 + n);
        memcpy(g, b, 8);
        memset(g + 8, ' ', n);
        memcpy(g + 8, "{\"bert.x\": {\"dtype\": [", 22);
        put_raw(g, 8 + n, orig.data, orig.data_size);
        expect_fail("garbage header JSON", RR_E_FORMAT, "header", NULL);
        memcpy(g + 8, "{}  xx", 6);
        put_raw(g, 8 + n, orig.data, orig.data_size);
        expect_fail("bytes after the header JSON", RR_E_FORMAT, "trailing", NULL);
        free(g);
    }

    h = cJSON_Duplicate(orig.header, 1);
    cJSON *t = cJSON_GetObjectItem(h, "bert.encoder.layer.0.attention.self.value.weight");
    double sz = off_of(t, 1) - off_of(t, 0);
    set_offsets(t, (double)orig.data_size, (double)orig.data_size + sz);
    put_st(h, orig.data, orig.data_size);
    cJSON_Delete(h);
    expect_fail("offsets out of bounds", RR_E_FORMAT,
                "bert.encoder.layer.0.attention.self.value.weight", "outside");

    /* Gap: 8 zero bytes inserted before the last tensor. */
    h = cJSON_Duplicate(orig.header, 1);
    t = last_tensor(h);
    double lb = off_of(t, 0), le = off_of(t, 1);
    set_offsets(t, lb + 8, le + 8);
    {
        unsigned char *d = calloc(1, orig.data_size + 8);
        memcpy(d, orig.data, (size_t)lb);
        memcpy(d + (size_t)lb + 8, orig.data + (size_t)lb, orig.data_size - (size_t)lb);
        put_st(h, d, orig.data_size + 8);
        expect_fail("gap between tensors", RR_E_FORMAT, t->string, "gap");
        free(d);
    }
    /* Overlap: the last tensor moved 4 bytes into its predecessor, file 4 bytes shorter. */
    set_offsets(t, lb - 4, le - 4);
    put_st(h, orig.data, orig.data_size - 4);
    expect_fail("overlapping tensors", RR_E_FORMAT, t->string, "overlap");
    /* Trailing bytes after the last tensor. */
    set_offsets(t, lb, le);
    {
        unsigned char *d = calloc(1, orig.data_size + 16);
        memcpy(d, orig.data, orig.data_size);
        put_st(h, d, orig.data_size + 16);
        expect_fail("unused bytes after the tensors", RR_E_FORMAT, "data section", NULL);
        /* Duplicate name: a second entry for the last tensor covering 16 new bytes would not
         * tile, so point it at a same-sized copy appended to the data. */
        size_t tsz = (size_t)(le - lb);
        unsigned char *d2 = malloc(orig.data_size + tsz);
        memcpy(d2, orig.data, orig.data_size);
        memcpy(d2 + orig.data_size, orig.data + (size_t)lb, tsz);
        cJSON *dup = cJSON_Duplicate(t, 1);
        set_offsets(dup, (double)orig.data_size, (double)(orig.data_size + tsz));
        cJSON_AddItemToObject(h, t->string, dup);
        put_st(h, d2, orig.data_size + tsz);
        expect_fail("duplicate tensor name", RR_E_FORMAT, "duplicate", t->string);
        free(d2);
        free(d);
    }
    cJSON_Delete(h);

    h = cJSON_Duplicate(orig.header, 1);
    t = cJSON_GetObjectItem(h, "bert.encoder.layer.1.output.dense.bias");
    cJSON_SetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(t, "shape"), 0),
                         cJSON_GetArrayItem(cJSON_GetObjectItem(t, "shape"), 0)->valuedouble - 1);
    put_st(h, orig.data, orig.data_size);
    cJSON_Delete(h);
    expect_fail("numel x dtype != byte span", RR_E_FORMAT, "bert.encoder.layer.1.output.dense.bias",
                "need");

    h = cJSON_Duplicate(orig.header, 1);
    t = cJSON_GetObjectItem(h, "bert.encoder.layer.0.intermediate.dense.weight");
    cJSON *shape = cJSON_GetObjectItem(t, "shape");
    double r = cJSON_GetArrayItem(shape, 0)->valuedouble,
           c = cJSON_GetArrayItem(shape, 1)->valuedouble;
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 0), c);
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 1), r);
    put_st(h, orig.data, orig.data_size);
    cJSON_Delete(h);
    char want[128];
    snprintf(want, sizeof want, "expected [%.0f, %.0f]", r, c);
    expect_fail("transposed weight", RR_E_FORMAT, "bert.encoder.layer.0.intermediate.dense.weight",
                want);

    h = cJSON_Duplicate(orig.header, 1);
    t = cJSON_GetObjectItem(h, "bert.encoder.layer.1.output.LayerNorm.weight");
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString("I64"));
    shape = cJSON_GetObjectItem(t, "shape");
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 0),
                         cJSON_GetArrayItem(shape, 0)->valuedouble / 2);
    put_st(h, orig.data, orig.data_size);
    cJSON_Delete(h);
    expect_fail("I64 weight", RR_E_UNSUPPORTED, "bert.encoder.layer.1.output.LayerNorm.weight",
                "I64");

    h = cJSON_Duplicate(orig.header, 1);
    t = cJSON_DetachItemFromObject(h, "bert.encoder.layer.1.attention.self.key.bias");
    cJSON_AddItemToObject(h, "bert.encoder.layer.1.attention.self.kee.bias", t);
    put_st(h, orig.data, orig.data_size);
    cJSON_Delete(h);
    expect_fail("missing tensor", RR_E_FORMAT, "missing tensor",
                "bert.encoder.layer.1.attention.self.key.bias");
    restore();
}

static void tokenizer_case(void)
{
    char p[600], q[600];
    path_in(p, sizeof p, "tokenizer.json");
    path_in(q, sizeof q, "vocab.txt");
    unlink(p);
    unlink(q);
    expect_fail("no tokenizer.json / vocab.txt", RR_E_IO, NULL, NULL);
}

/* Fails allocation k = 0, 1, 2, ... of a load until the load succeeds. */
static void alloc_failures(void)
{
    long k, steps = 0;
    int bad = 0;
    rr_model *m = NULL;
    for (k = 0; k < 200000; k++) {
        rr_error err = {0};
        rr_alloc_fail_after(k);
        rr_status s = rr_model_load(src, &m, &err);
        rr_alloc_fail_after(-1);
        steps++;
        if (s == RR_OK) break;
        if (s != RR_E_NOMEM) {
            bad++;
            fprintf(stderr, "allocation %ld failed: %s %s\n", k, rr_status_name(s), err.msg);
        }
    }
    CHECK_MSG(bad == 0, "%d injected failures did not return RR_E_NOMEM", bad);
    CHECK(m != NULL);
    printf("model load: %ld allocation failure points, each RR_E_NOMEM\n", steps - 1);

    rr_engine *e = NULL;
    rr_engine_opts o = {.device = -1, .max_batch_tokens = 2048, .n_threads = 1};
    bad = 0;
    for (k = 0; k < 1000; k++) {
        rr_alloc_fail_after(k);
        rr_status s = rr_engine_init(m, &o, &e, NULL);
        rr_alloc_fail_after(-1);
        if (s == RR_OK) break;
        bad += s != RR_E_NOMEM;
    }
    CHECK(bad == 0 && e != NULL);
    printf("engine init: %ld allocation failure points, each RR_E_NOMEM\n", k);
    rr_engine_free(e);
    rr_model_free(m);
}

int main(void)
{
    struct stat sb;
    char cmd[4096], p[600];
    size_t n;
    snprintf(src, sizeof src, "%s/tiny-bert-random", RR_MODELS_DIR);
    if (stat(src, &sb) != 0)
        return test_skip("test_model_bad",
                         "models/tiny-bert-random absent (run scripts/make_models.py)");
    snprintf(p, sizeof p, "%s/model.safetensors", src);
    CHECK(st_load(p, &orig));
    snprintf(p, sizeof p, "%s/config.json", src);
    orig_config = (char *)read_all(p, &n);
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cmd, sizeof cmd,
             "cp '%s'/tokenizer.json '%s'/tokenizer_config.json '%s'/special_tokens_map.json "
             "'%s'/vocab.txt '%s'/",
             src, src, src, src, dir);
    CHECK(system(cmd) == 0);

    {
        rr_model *m = NULL;
        rr_error err = {0};
        CHECK(rr_model_load("/nonexistent/rerankd-model", &m, &err) == RR_E_IO);
        CHECK(strstr(err.msg, "/nonexistent/rerankd-model") != NULL);
        printf("%-34s %-16s %s\n", "missing folder", rr_status_name(err.status), err.msg);
    }
    restore();
    {
        rr_model *m = NULL;
        rr_error err = {0};
        CHECK_MSG(rr_model_load(dir, &m, &err) == RR_OK, "pristine copy: %s", err.msg);
        rr_model_free(m);
    }
    config_cases();
    safetensors_cases();
    tokenizer_case();
    alloc_failures();

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    st_free(&orig);
    free(orig_config);
    return test_summary("test_model_bad");
}
