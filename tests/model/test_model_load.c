/*
 * test_model_load.c — rr_model_load on every test model folder present: the info fields
 * against config.json / tokenizer_config.json read here with cJSON, and every fp32 weight the
 * engines see against an independent read of model.safetensors (st_util.h: F16 widened by the
 * compiler's _Float16 conversion, BF16 by a bit shift) — bitwise. Then the F16/BF16 copies of
 * minilm-l6-bert must score like the F32 original, and a copy of tiny-bert-random rewritten
 * with bare tensor names and LayerNorm.gamma/.beta must load to identical weights.
 * Skips (77) when no model folder exists (scripts/make_models.py builds them).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "st_util.h"
#include "test.h"

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static cJSON *read_json(const char *dir, const char *file)
{
    char path[1024];
    size_t n;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char *text = (char *)read_all(path, &n);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

static int json_int(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static void check_info(const char *dir, const rr_model *m)
{
    const rr_model_info *in = rr_model_get_info(m);
    cJSON *cfg = read_json(dir, "config.json"), *tc = read_json(dir, "tokenizer_config.json");
    CHECK(cfg != NULL);
    if (!cfg) return;
    const char *arch =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cfg, "architectures"), 0)->valuestring;
    CHECK_MSG(strcmp(in->arch_name, arch) == 0, "%s: arch %s vs %s", dir, in->arch_name, arch);
    CHECK(in->arch == (strstr(arch, "Electra") ? RR_ARCH_ELECTRA : RR_ARCH_BERT));
    CHECK(strcmp(in->model_type, cJSON_GetObjectItem(cfg, "model_type")->valuestring) == 0);
    CHECK(strcmp(in->path, dir) == 0);
    CHECK(in->vocab_size == json_int(cfg, "vocab_size"));
    CHECK(in->d_model == json_int(cfg, "hidden_size"));
    CHECK(in->n_layer == json_int(cfg, "num_hidden_layers"));
    CHECK(in->n_head == json_int(cfg, "num_attention_heads"));
    CHECK(in->d_head * in->n_head == in->d_model);
    CHECK(in->d_ff == json_int(cfg, "intermediate_size"));
    CHECK(in->max_position == json_int(cfg, "max_position_embeddings"));
    CHECK(in->type_vocab_size == json_int(cfg, "type_vocab_size"));
    int e = json_int(cfg, "embedding_size");
    CHECK(in->d_embed == (e > 0 ? e : in->d_model));
    int n_labels = cJSON_GetArraySize(cJSON_GetObjectItem(cfg, "id2label"));
    CHECK(in->n_labels == n_labels);
    CHECK(fabsf(in->layer_norm_eps -
                (float)cJSON_GetObjectItem(cfg, "layer_norm_eps")->valuedouble) == 0.0f);
    /* None of the test models stores an activation: spec §5.1 step 4. */
    CHECK(in->default_activation == (n_labels == 1 ? RR_ACT_SIGMOID : RR_ACT_IDENTITY));
    int mml = tc ? json_int(tc, "model_max_length") : -1;
    int expect_ml = mml > 0 && mml < in->max_position ? mml : in->max_position;
    CHECK_MSG(in->max_length == expect_ml, "%s: max_length %d, expected %d", dir, in->max_length,
              expect_ml);
    CHECK(rr_model_hidden_act(m) == RR_HIDDEN_GELU);
    cJSON_Delete(cfg);
    cJSON_Delete(tc);
}

/* Compares n floats of the model with tensor `name` of the file, bitwise. */
static int same_tensor(const st_file *f, const char *name, const float *got, size_t n)
{
    size_t fn = 0;
    float *ref = st_widen(f, name, &fn);
    int ok = ref && fn == n && got && memcmp(ref, got, n * sizeof *ref) == 0;
    if (!ok) fprintf(stderr, "tensor %s differs (file %zu elements, want %zu)\n", name, fn, n);
    free(ref);
    return ok;
}

/* Every tensor of the model against the file; `prefix` "bert"/"electra" or "" for bare names,
 * `gamma` when LayerNorm parameters are spelled gamma/beta. Returns the number of mismatches. */
static int check_weights(const st_file *f, const rr_model *m, const char *prefix, int gamma)
{
    const rr_model_info *in = rr_model_get_info(m);
    const rr_weights *w = rr_model_weights(m);
    size_t d = (size_t)in->d_model, e = (size_t)in->d_embed, ff = (size_t)in->d_ff;
    const char *dot = *prefix ? "." : "", *lg = gamma ? "gamma" : "weight",
               *lb = gamma ? "beta" : "bias";
    char name[256];
    int bad = 0;
#define T(ptr, n, ...)                                                                             \
    do {                                                                                           \
        snprintf(name, sizeof name, __VA_ARGS__);                                                  \
        bad += !same_tensor(f, name, ptr, n);                                                      \
    } while (0)
    T(w->word_emb, in->vocab_size * e, "%s%sembeddings.word_embeddings.weight", prefix, dot);
    T(w->pos_emb, in->max_position * e, "%s%sembeddings.position_embeddings.weight", prefix, dot);
    T(w->type_emb, in->type_vocab_size * e, "%s%sembeddings.token_type_embeddings.weight", prefix,
      dot);
    T(w->emb_ln_g, e, "%s%sembeddings.LayerNorm.%s", prefix, dot, lg);
    T(w->emb_ln_b, e, "%s%sembeddings.LayerNorm.%s", prefix, dot, lb);
    CHECK((w->emb_proj_w != NULL) == (e != d));
    for (int l = 0; l < in->n_layer; l++) {
        const rr_layer_weights *L = &w->layers[l];
        const char *q[3] = {"query", "key", "value"};
        for (int k = 0; k < 3; k++) {
            T(L->qkv_w + k * d * d, d * d, "%s%sencoder.layer.%d.attention.self.%s.weight", prefix,
              dot, l, q[k]);
            T(L->qkv_b + k * d, d, "%s%sencoder.layer.%d.attention.self.%s.bias", prefix, dot, l,
              q[k]);
        }
        T(L->ao_w, d * d, "%s%sencoder.layer.%d.attention.output.dense.weight", prefix, dot, l);
        T(L->ao_b, d, "%s%sencoder.layer.%d.attention.output.dense.bias", prefix, dot, l);
        T(L->ln1_g, d, "%s%sencoder.layer.%d.attention.output.LayerNorm.%s", prefix, dot, l, lg);
        T(L->ln1_b, d, "%s%sencoder.layer.%d.attention.output.LayerNorm.%s", prefix, dot, l, lb);
        T(L->ff1_w, ff * d, "%s%sencoder.layer.%d.intermediate.dense.weight", prefix, dot, l);
        T(L->ff1_b, ff, "%s%sencoder.layer.%d.intermediate.dense.bias", prefix, dot, l);
        T(L->ff2_w, d * ff, "%s%sencoder.layer.%d.output.dense.weight", prefix, dot, l);
        T(L->ff2_b, d, "%s%sencoder.layer.%d.output.dense.bias", prefix, dot, l);
        T(L->ln2_g, d, "%s%sencoder.layer.%d.output.LayerNorm.%s", prefix, dot, l, lg);
        T(L->ln2_b, d, "%s%sencoder.layer.%d.output.LayerNorm.%s", prefix, dot, l, lb);
    }
    size_t nl = (size_t)in->n_labels;
    if (in->arch == RR_ARCH_BERT) {
        T(w->head_dense_w, d * d, "%s%spooler.dense.weight", prefix, dot);
        T(w->head_dense_b, d, "%s%spooler.dense.bias", prefix, dot);
        T(w->head_out_w, nl * d, "classifier.weight");
        T(w->head_out_b, nl, "classifier.bias");
    } else {
        T(w->head_dense_w, d * d, "classifier.dense.weight");
        T(w->head_dense_b, d, "classifier.dense.bias");
        T(w->head_out_w, nl * d, "classifier.out_proj.weight");
        T(w->head_out_b, nl, "classifier.out_proj.bias");
    }
#undef T
    return bad;
}

static void test_folder(const char *name)
{
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/%s", RR_MODELS_DIR, name);
    if (!exists(dir)) {
        printf("%s: absent, not checked\n", name);
        return;
    }
    rr_model *m = NULL;
    rr_error err = {0};
    rr_status s = rr_model_load(dir, &m, &err);
    CHECK_MSG(s == RR_OK, "%s: %s", name, err.msg);
    if (s != RR_OK) return;
    check_info(dir, m);
    st_file f;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(st_load(path, &f));
    const rr_model_info *in = rr_model_get_info(m);
    int bad = check_weights(&f, m, in->arch == RR_ARCH_BERT ? "bert" : "electra", 0);
    CHECK_MSG(bad == 0, "%s: %d tensors differ from the file", name, bad);
    const char *expect_dtype = strstr(name, "-bf16")  ? "BF16"
                               : strstr(name, "-f16") ? "F16"
                                                      : "F32";
    CHECK_MSG(strcmp(in->weights_dtype, expect_dtype) == 0, "%s: weights_dtype %s", name,
              in->weights_dtype);
    printf("%s: loaded (%s, %s weights, max_length %d), weights identical to the file\n", name,
           in->arch_name, in->weights_dtype, in->max_length);
    st_free(&f);
    rr_model_free(m);
}

/* A few pairs from the tokenizer of `m` → logits of one batch. */
static void score_some(const rr_model *m, float *logits, int *n_out)
{
    static const char *const texts[][2] = {
        {"how many people live in berlin?", "Berlin had a population of 3,520,031 registered "
                                            "inhabitants in an area of 891.82 square kilometers."},
        {"how many people live in berlin?", "Berlin is well known for its museums."},
        {"what is a cross-encoder", "A cross-encoder scores a query and a passage together."},
        {"tallest mountain", "Mount Everest is Earth's highest mountain above sea level."},
    };
    const rr_tokenizer *t = rr_model_tokenizer(m);
    int32_t tokens[512], types[512], cu[8] = {0}, q[128], d[128];
    int n = 4;
    for (int i = 0; i < n; i++) {
        int qt, dt;
        rr_tokenizer_encode(t, texts[i][0], strlen(texts[i][0]), 0, q, 128, &qt);
        rr_tokenizer_encode(t, texts[i][1], strlen(texts[i][1]), 0, d, 128, &dt);
        int len = rr_pair_build(t, q, qt, qt, d, dt, dt, 128, 1, 0, tokens + cu[i], types + cu[i]);
        cu[i + 1] = cu[i] + len;
    }
    rr_engine *e = NULL;
    rr_engine_opts o = {.device = -1, .max_batch_tokens = 1024, .n_threads = 2};
    CHECK(rr_engine_init(m, &o, &e, NULL) == RR_OK);
    rr_batch b = {
        .n_seq = n, .n_tok = cu[n], .tokens = tokens, .type_ids = types, .cu_seqlens = cu};
    CHECK(rr_engine_forward(e, &b, logits) == RR_OK);
    rr_engine_free(e);
    *n_out = n;
}

/* F16 and BF16 copies of minilm-l6-bert must score like the F32 original. Tolerances are
 * those of weight rounding, not of our arithmetic: F16 keeps 11 significant bits (relative
 * rounding 2^-12 per weight), BF16 8 bits (2^-9); through 6 layers that moves a logit by
 * roughly 1e-3 resp. 1e-2 of its scale, so we allow 1e-2·(1+|logit|) and 5e-2·(1+|logit|). */
static void test_half_logits(void)
{
    char dir[1024];
    rr_model *m32 = NULL, *mh = NULL;
    float ref[8], got[8];
    int n = 0;
    snprintf(dir, sizeof dir, "%s/minilm-l6-bert", RR_MODELS_DIR);
    if (!exists(dir) || rr_model_load(dir, &m32, NULL) != RR_OK) return;
    score_some(m32, ref, &n);
    const char *var[2] = {"minilm-l6-bert-f16", "minilm-l6-bert-bf16"};
    const double tol[2] = {1e-2, 5e-2};
    for (int k = 0; k < 2; k++) {
        snprintf(dir, sizeof dir, "%s/%s", RR_MODELS_DIR, var[k]);
        if (!exists(dir)) continue;
        CHECK(rr_model_load(dir, &mh, NULL) == RR_OK);
        if (!mh) continue;
        score_some(mh, got, &n);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            double dlt = fabs((double)got[i] - ref[i]);
            if (dlt > worst) worst = dlt;
            CHECK_MSG(dlt <= tol[k] * (1 + fabs(ref[i])), "%s pair %d: %g vs f32 %g", var[k], i,
                      got[i], ref[i]);
        }
        printf("%s: max |logit - f32 logit| = %.3g over %d pairs\n", var[k], worst, n);
        rr_model_free(mh);
        mh = NULL;
    }
    rr_model_free(m32);
}

/* tiny-bert-random rewritten with bare names and LayerNorm.gamma/.beta. */
static void test_aliases(void)
{
    char src[512], dir[] = "/tmp/rr_model_alias_XXXXXX", path[1200], cmd[8192];
    snprintf(src, sizeof src, "%s/tiny-bert-random", RR_MODELS_DIR);
    if (!exists(src) || !mkdtemp(dir)) return;
    snprintf(cmd, sizeof cmd,
             "cp '%s'/config.json '%s'/tokenizer.json '%s'/tokenizer_config.json "
             "'%s'/special_tokens_map.json '%s'/vocab.txt '%s'/",
             src, src, src, src, src, dir);
    CHECK(system(cmd) == 0);
    st_file f;
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    CHECK(st_load(path, &f));
    cJSON *h = cJSON_CreateObject();
    for (cJSON *it = f.header->child; it; it = it->next) {
        char name[256];
        const char *base = strncmp(it->string, "bert.", 5) == 0 ? it->string + 5 : it->string;
        snprintf(name, sizeof name, "%s", base);
        char *ln = strstr(name, "LayerNorm.");
        if (ln && strcmp(ln + 10, "weight") == 0) strcpy(ln + 10, "gamma");
        if (ln && strcmp(ln + 10, "bias") == 0) strcpy(ln + 10, "beta");
        cJSON_AddItemToObject(h, name, cJSON_Duplicate(it, 1));
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(st_write(path, h, f.data, f.data_size));
    st_file g;
    CHECK(st_load(path, &g));
    rr_model *m = NULL;
    rr_error err = {0};
    CHECK_MSG(rr_model_load(dir, &m, &err) == RR_OK, "%s", err.msg);
    if (m) {
        CHECK_MSG(check_weights(&g, m, "", 1) == 0, "bare/gamma names load different weights");
        printf("bare names + LayerNorm.gamma/beta: loaded, weights identical\n");
    }
    rr_model_free(m);
    st_free(&g);
    st_free(&f);
    cJSON_Delete(h);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    static const char *const folders[] = {"minilm-l6-bert", "minilm-l6-electra",
                                          "minilm-l6-bert-f16", "minilm-l6-bert-bf16",
                                          "tiny-bert-random"};
    if (!exists(RR_MODELS_DIR "/minilm-l6-bert") && !exists(RR_MODELS_DIR "/tiny-bert-random"))
        return test_skip("test_model_load", "no test models (run scripts/make_models.py)");
    for (size_t i = 0; i < sizeof folders / sizeof folders[0]; i++)
        test_folder(folders[i]);
    test_half_logits();
    test_aliases();
    return test_summary("test_model_load");
}
