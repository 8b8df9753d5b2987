/*
 * model.c — rr_model_load: a Hugging Face folder (config.json, model.safetensors, tokenizer
 * files) → validated configuration + fp32 weights in one allocation + the tokenizer.
 *
 * Loading is table driven: every tensor the engines need is a `want` (name, expected shape,
 * destination offset in the weight blob). The table is built once from the configuration, its
 * destinations are carved out of one 64-byte-aligned allocation, and each tensor is then found
 * (with or without the `bert.` / `electra.` prefix, LayerNorm `.weight`/`.gamma` alike),
 * checked and widened to fp32. Q, K and V land side by side so they form the fused
 * [3*d_model, d_model] qkv matrix. Tensors we do not need (position_ids, ...) are ignored.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/model.h"

#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"
#include "util/util.h"

#define RR_NAME_CAP 192
#define RR_BLOB_ALIGN 64
/* config.json is a few hundred bytes; anything near this limit is not a model config. */
#define RR_CONFIG_MAX_BYTES (16u << 20)

struct rr_model {
    rr_model_info info;
    rr_hidden_act hidden_act;
    rr_weights w;
    rr_layer_weights *layers;
    float *blob; /* every weight, fp32, carved by the want table */
    char *path;
    char *model_type;
    rr_tokenizer *tok;
};

/* One tensor the engines need. */
typedef struct want {
    char name[RR_NAME_CAP]; /* without the architecture prefix */
    int prefixed;           /* 1: try "<prefix>.<name>" first, then the bare name */
    int n_dim;
    int64_t shape[2];
    size_t dst_off;      /* destination, in floats from the start of the blob */
    const float **field; /* the rr_weights pointer to set (NULL for the K/V parts of qkv) */
} want;

typedef struct want_list {
    want *v;
    int n, cap;
    size_t cursor; /* floats carved so far */
} want_list;

/* Reserves n floats in the blob, each region starting on a RR_BLOB_ALIGN boundary. */
static size_t carve(want_list *wl, size_t n)
{
    size_t align = RR_BLOB_ALIGN / sizeof(float);
    size_t off = (wl->cursor + align - 1) / align * align;
    wl->cursor = off + n;
    return off;
}

static void want_add(want_list *wl, int prefixed, const float **field, size_t dst_off, int n_dim,
                     int64_t s0, int64_t s1, const char *fmt, int layer)
{
    want *w = &wl->v[wl->n++];
    snprintf(w->name, sizeof w->name, fmt, layer);
    w->prefixed = prefixed;
    w->field = field;
    w->dst_off = dst_off;
    w->n_dim = n_dim;
    w->shape[0] = s0;
    w->shape[1] = s1;
}

/* A [rows, cols] matrix (or a vector when cols == 0) in its own region. */
static void want_region(want_list *wl, int prefixed, const float **field, int64_t rows,
                        int64_t cols, const char *fmt, int layer)
{
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    want_add(wl, prefixed, field, carve(wl, n), cols ? 2 : 1, rows, cols, fmt, layer);
}

/* ---------------------------------------------------------------------------------------
 * Files and config.json
 */

/* Reads config field `key` as a positive int; `def` < 0 means required. */
static rr_status cfg_int(const cJSON *cfg, const char *path, const char *key, int def, int *out,
                         rr_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v)) {
        if (def < 0) return rr_set_error(err, RR_E_FORMAT, "%s: missing field \"%s\"", path, key);
        *out = def;
        return RR_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1.0;
    if (!(d >= 1.0) || d > (double)INT_MAX || d != floor(d))
        return rr_set_error(err, RR_E_FORMAT, "%s: field \"%s\" must be a positive integer", path,
                            key);
    *out = (int)d;
    return RR_OK;
}

/* Maps a sentence-transformers activation class path ("torch.nn.modules.linear.Identity"). */
static rr_status parse_activation(const char *path, const char *key, const char *cls,
                                  rr_activation *out, rr_error *err)
{
    const char *dot = strrchr(cls, '.');
    const char *base = dot ? dot + 1 : cls;
    if (strcmp(base, "Identity") == 0) {
        *out = RR_ACT_IDENTITY;
    } else if (strcmp(base, "Sigmoid") == 0) {
        *out = RR_ACT_SIGMOID;
    } else {
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "%s: %s \"%.200s\" is not supported (Identity or Sigmoid only)", path,
                            key, cls);
    }
    return RR_OK;
}

/* Sizes far beyond any cross-encoder (BERT-large: 24 layers, 3.4e8 weights) are refused
 * here, so that build_wants' table size and offsets cannot overflow (a config.json with
 * hidden_size 2^31 - 1 or num_hidden_layers 2^31 - 1 used to reach signed overflow there). */
#define RR_MAX_LAYERS 4096
#define RR_MAX_WEIGHTS 1099511627776.0 /* 2^40 fp32 values: 4 TiB */

static rr_status check_sizes(const rr_model_info *in, const char *path, rr_error *err)
{
    if (in->n_layer > RR_MAX_LAYERS)
        return rr_set_error(err, RR_E_UNSUPPORTED, "%s: num_hidden_layers %d is over %d", path,
                            in->n_layer, RR_MAX_LAYERS);
    /* what build_wants carves, in double: exact enough to compare with 2^40 */
    double d = in->d_model, e = in->d_embed, f = in->d_ff;
    double n = ((double)in->vocab_size + in->max_position + in->type_vocab_size + 2) * e +
               (in->d_embed != in->d_model ? d * e + d : 0.0) +
               in->n_layer * (4 * d * d + 2 * d * f + f + 9 * d) + d * d + d +
               in->n_labels * (d + 1);
    if (n > RR_MAX_WEIGHTS)
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "%s: these sizes make %.3g weights, over the 2^40 rerankd loads", path,
                            n);
    return RR_OK;
}

static rr_status parse_config(rr_model *m, const char *path, const char *text, size_t len,
                              rr_error *err)
{
    rr_model_info *in = &m->info;
    rr_status s = RR_OK;
    cJSON *cfg = cJSON_ParseWithLength(text, len);
    if (!cfg || !cJSON_IsObject(cfg)) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: not a JSON object", path);
        goto done;
    }

    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(cfg, "architectures");
    const cJSON *a0 = cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
    if (!cJSON_IsString(a0)) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: \"architectures\" must list one class name", path);
        goto done;
    }
    if (strcmp(a0->valuestring, "BertForSequenceClassification") == 0) {
        in->arch = RR_ARCH_BERT;
        in->arch_name = "BertForSequenceClassification";
    } else if (strcmp(a0->valuestring, "ElectraForSequenceClassification") == 0) {
        in->arch = RR_ARCH_ELECTRA;
        in->arch_name = "ElectraForSequenceClassification";
    } else if (strcmp(a0->valuestring, "XLMRobertaForSequenceClassification") == 0) {
        in->arch = RR_ARCH_XLMR;
        in->arch_name = "XLMRobertaForSequenceClassification";
    } else {
        s = rr_set_error(err, RR_E_UNSUPPORTED,
                         "%s: architecture \"%.200s\" is not supported (BertForSequence"
                         "Classification, ElectraForSequenceClassification or "
                         "XLMRobertaForSequenceClassification)",
                         path, a0->valuestring);
        goto done;
    }

    static const char *const default_type[] = {"", "bert", "electra", "xlm-roberta"};
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(cfg, "model_type");
    m->model_type = rr_strdup(cJSON_IsString(mt) ? mt->valuestring : default_type[in->arch]);
    if (!m->model_type) {
        s = rr_set_error(err, RR_E_NOMEM, "out of memory reading %s", path);
        goto done;
    }
    in->model_type = m->model_type;

    if ((s = cfg_int(cfg, path, "vocab_size", -1, &in->vocab_size, err)) ||
        (s = cfg_int(cfg, path, "hidden_size", -1, &in->d_model, err)) ||
        (s = cfg_int(cfg, path, "num_hidden_layers", -1, &in->n_layer, err)) ||
        (s = cfg_int(cfg, path, "num_attention_heads", -1, &in->n_head, err)) ||
        (s = cfg_int(cfg, path, "intermediate_size", -1, &in->d_ff, err)) ||
        (s = cfg_int(cfg, path, "max_position_embeddings", -1, &in->max_position, err)) ||
        (s = cfg_int(cfg, path, "type_vocab_size", 2, &in->type_vocab_size, err)))
        goto done;
    in->pos_pad = -1;
    in->max_seq = in->max_position;
    if (in->arch == RR_ARCH_XLMR) {
        /* RobertaEmbeddings: padding_idx = pad_token_id (1), positions pad+1, pad+2, ... */
        const cJSON *pad = cJSON_GetObjectItemCaseSensitive(cfg, "pad_token_id");
        double pv = cJSON_IsNumber(pad) ? pad->valuedouble : (pad ? -1.0 : 1.0);
        if (!(pv >= 0) || pv != floor(pv) || pv + 2 > in->max_position) {
            s = rr_set_error(err, RR_E_FORMAT,
                             "%s: pad_token_id must be an integer below max_position_embeddings - "
                             "1",
                             path);
            goto done;
        }
        in->pos_pad = (int)pv;
        in->max_seq = in->max_position - in->pos_pad - 1;
    }
    in->d_embed = in->d_model;
    if (in->arch == RR_ARCH_ELECTRA &&
        (s = cfg_int(cfg, path, "embedding_size", in->d_model, &in->d_embed, err)))
        goto done;
    if (in->d_model % in->n_head != 0) {
        s = rr_set_error(err, RR_E_FORMAT,
                         "%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                         in->d_model, in->n_head);
        goto done;
    }
    in->d_head = in->d_model / in->n_head;

    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(cfg, "layer_norm_eps");
    in->layer_norm_eps = 1e-12f;
    if (eps) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0.0) || eps->valuedouble > 1.0) {
            s = rr_set_error(err, RR_E_FORMAT, "%s: layer_norm_eps must be a number in (0, 1]",
                             path);
            goto done;
        }
        in->layer_norm_eps = (float)eps->valuedouble;
    }

    const cJSON *pet = cJSON_GetObjectItemCaseSensitive(cfg, "position_embedding_type");
    if (pet && !cJSON_IsNull(pet) &&
        !(cJSON_IsString(pet) && strcmp(pet->valuestring, "absolute") == 0)) {
        s = rr_set_error(err, RR_E_UNSUPPORTED,
                         "%s: position_embedding_type \"%.100s\" is not supported (absolute "
                         "only)",
                         path, cJSON_IsString(pet) ? pet->valuestring : "?");
        goto done;
    }

    const cJSON *act = cJSON_GetObjectItemCaseSensitive(cfg, "hidden_act");
    const char *a = cJSON_IsString(act) ? act->valuestring : "gelu";
    if (act && !cJSON_IsString(act)) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: hidden_act must be a string", path);
        goto done;
    }
    if (strcmp(a, "gelu") == 0) {
        m->hidden_act = RR_HIDDEN_GELU;
    } else if (strcmp(a, "gelu_new") == 0 || strcmp(a, "gelu_pytorch_tanh") == 0 ||
               strcmp(a, "gelu_fast") == 0) {
        m->hidden_act = RR_HIDDEN_GELU_TANH;
    } else if (strcmp(a, "relu") == 0) {
        m->hidden_act = RR_HIDDEN_RELU;
    } else {
        s = rr_set_error(err, RR_E_UNSUPPORTED, "%s: hidden_act \"%.100s\" is not supported", path,
                         a);
        goto done;
    }

    /* transformers: an explicit num_labels wins, else the size of id2label, else 2. */
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(cfg, "id2label");
    int n_id2label = cJSON_IsObject(id2label) ? cJSON_GetArraySize(id2label) : 0;
    if ((s = cfg_int(cfg, path, "num_labels", n_id2label > 0 ? n_id2label : 2, &in->n_labels, err)))
        goto done;

    /* Spec §5.1: sentence_transformers.activation_fn, then the legacy key, then by labels. */
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(cfg, "sentence_transformers");
    const cJSON *st_fn =
        cJSON_IsObject(st) ? cJSON_GetObjectItemCaseSensitive(st, "activation_fn") : NULL;
    const cJSON *legacy =
        cJSON_GetObjectItemCaseSensitive(cfg, "sbert_ce_default_activation_function");
    in->default_activation = in->n_labels == 1 ? RR_ACT_SIGMOID : RR_ACT_IDENTITY;
    if (cJSON_IsString(st_fn))
        s = parse_activation(path, "sentence_transformers.activation_fn", st_fn->valuestring,
                             &in->default_activation, err);
    else if (cJSON_IsString(legacy))
        s = parse_activation(path, "sbert_ce_default_activation_function", legacy->valuestring,
                             &in->default_activation, err);
    if (s == RR_OK) s = check_sizes(in, path, err);
done:
    cJSON_Delete(cfg);
    return s;
}

/* ---------------------------------------------------------------------------------------
 * Weights
 */

static rr_status build_wants(rr_model *m, want_list *wl, rr_error *err)
{
    const rr_model_info *in = &m->info;
    int64_t d = in->d_model, e = in->d_embed, f = in->d_ff;
    rr_weights *w = &m->w;

    wl->cap = 7 + 16 * in->n_layer + 4;
    wl->v = rr_calloc((size_t)wl->cap, sizeof *wl->v);
    m->layers = rr_calloc((size_t)in->n_layer, sizeof *m->layers);
    if (!wl->v || !m->layers)
        return rr_set_error(err, RR_E_NOMEM, "out of memory for the tensor table");
    w->layers = m->layers;

    want_region(wl, 1, &w->word_emb, in->vocab_size, e, "embeddings.word_embeddings.weight", 0);
    want_region(wl, 1, &w->pos_emb, in->max_position, e, "embeddings.position_embeddings.weight",
                0);
    want_region(wl, 1, &w->type_emb, in->type_vocab_size, e,
                "embeddings.token_type_embeddings.weight", 0);
    want_region(wl, 1, &w->emb_ln_g, e, 0, "embeddings.LayerNorm.weight", 0);
    want_region(wl, 1, &w->emb_ln_b, e, 0, "embeddings.LayerNorm.bias", 0);
    if (e != d) {
        want_region(wl, 1, &w->emb_proj_w, d, e, "embeddings_project.weight", 0);
        want_region(wl, 1, &w->emb_proj_b, d, 0, "embeddings_project.bias", 0);
    }
    for (int i = 0; i < in->n_layer; i++) {
        rr_layer_weights *L = &m->layers[i];
        size_t qw = carve(wl, (size_t)(3 * d * d)), qb = carve(wl, (size_t)(3 * d));
        want_add(wl, 1, &L->qkv_w, qw, 2, d, d, "encoder.layer.%d.attention.self.query.weight", i);
        want_add(wl, 1, NULL, qw + (size_t)(d * d), 2, d, d,
                 "encoder.layer.%d.attention.self.key.weight", i);
        want_add(wl, 1, NULL, qw + (size_t)(2 * d * d), 2, d, d,
                 "encoder.layer.%d.attention.self.value.weight", i);
        want_add(wl, 1, &L->qkv_b, qb, 1, d, 0, "encoder.layer.%d.attention.self.query.bias", i);
        want_add(wl, 1, NULL, qb + (size_t)d, 1, d, 0, "encoder.layer.%d.attention.self.key.bias",
                 i);
        want_add(wl, 1, NULL, qb + (size_t)(2 * d), 1, d, 0,
                 "encoder.layer.%d.attention.self.value.bias", i);
        want_region(wl, 1, &L->ao_w, d, d, "encoder.layer.%d.attention.output.dense.weight", i);
        want_region(wl, 1, &L->ao_b, d, 0, "encoder.layer.%d.attention.output.dense.bias", i);
        want_region(wl, 1, &L->ln1_g, d, 0, "encoder.layer.%d.attention.output.LayerNorm.weight",
                    i);
        want_region(wl, 1, &L->ln1_b, d, 0, "encoder.layer.%d.attention.output.LayerNorm.bias", i);
        want_region(wl, 1, &L->ff1_w, f, d, "encoder.layer.%d.intermediate.dense.weight", i);
        want_region(wl, 1, &L->ff1_b, f, 0, "encoder.layer.%d.intermediate.dense.bias", i);
        want_region(wl, 1, &L->ff2_w, d, f, "encoder.layer.%d.output.dense.weight", i);
        want_region(wl, 1, &L->ff2_b, d, 0, "encoder.layer.%d.output.dense.bias", i);
        want_region(wl, 1, &L->ln2_g, d, 0, "encoder.layer.%d.output.LayerNorm.weight", i);
        want_region(wl, 1, &L->ln2_b, d, 0, "encoder.layer.%d.output.LayerNorm.bias", i);
    }
    if (in->arch == RR_ARCH_BERT) {
        want_region(wl, 1, &w->head_dense_w, d, d, "pooler.dense.weight", 0);
        want_region(wl, 1, &w->head_dense_b, d, 0, "pooler.dense.bias", 0);
        want_region(wl, 0, &w->head_out_w, in->n_labels, d, "classifier.weight", 0);
        want_region(wl, 0, &w->head_out_b, in->n_labels, 0, "classifier.bias", 0);
    } else { /* ELECTRA and XLM-R: classifier.dense + classifier.out_proj, no pooler */
        want_region(wl, 0, &w->head_dense_w, d, d, "classifier.dense.weight", 0);
        want_region(wl, 0, &w->head_dense_b, d, 0, "classifier.dense.bias", 0);
        want_region(wl, 0, &w->head_out_w, in->n_labels, d, "classifier.out_proj.weight", 0);
        want_region(wl, 0, &w->head_out_b, in->n_labels, 0, "classifier.out_proj.bias", 0);
    }
    return RR_OK;
}

/* IEEE half → float, exact for every input (subnormals, infinities, NaN payloads). */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0 && man == 0) {
        bits = sign;
    } else if (exp == 0) {
        uint32_t shift = 0;
        while (!(man & 0x400u)) {
            man <<= 1;
            shift++;
        }
        bits = sign | ((113u - shift) << 23) | ((man & 0x3ffu) << 13);
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Copies tensor t into dst as fp32. The mapping may be unaligned, hence memcpy per element. */
static void widen(const rr_st_tensor *t, float *dst)
{
    const uint8_t *src = t->data;
    if (t->dtype == RR_ST_F32) {
        memcpy(dst, src, (size_t)t->nbytes);
        return;
    }
    for (uint64_t i = 0; i < t->numel; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, sizeof h);
        if (t->dtype == RR_ST_F16) {
            dst[i] = f16_to_f32(h);
        } else {
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, sizeof bits);
        }
    }
}

/* Finds a wanted tensor under each accepted spelling; writes the name tried first to `shown`. */
static const rr_st_tensor *find_tensor(const rr_safetensors *st, const char *prefix, const want *w,
                                       char *shown, size_t shown_cap)
{
    char cand[RR_NAME_CAP + 32];
    size_t n = strlen(w->name);
    int is_ln = strstr(w->name, "LayerNorm.") != NULL;
    for (int pass = 0; pass < (w->prefixed ? 2 : 1); pass++) {
        for (int alias = 0; alias < (is_ln ? 2 : 1); alias++) {
            if (pass == 0 && w->prefixed)
                snprintf(cand, sizeof cand, "%s.%s", prefix, w->name);
            else
                snprintf(cand, sizeof cand, "%s", w->name);
            if (pass == 0 && alias == 0) snprintf(shown, shown_cap, "%s", cand);
            if (alias) {
                /* TF-converted checkpoints: LayerNorm.gamma / LayerNorm.beta. */
                size_t c = strlen(cand);
                if (n > 7 && strcmp(w->name + n - 7, ".weight") == 0)
                    snprintf(cand + c - 7, sizeof cand - (c - 7), ".gamma");
                else if (n > 5 && strcmp(w->name + n - 5, ".bias") == 0)
                    snprintf(cand + c - 5, sizeof cand - (c - 5), ".beta");
            }
            const rr_st_tensor *t = rr_st_find(st, cand);
            if (t) return t;
        }
    }
    return NULL;
}

static void format_shape(char *buf, size_t cap, int n_dim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n_dim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

static rr_status load_weights(rr_model *m, const char *st_path, rr_error *err)
{
    rr_safetensors st;
    want_list wl = {0};
    int has[3] = {0, 0, 0};
    static const char *const prefixes[] = {"", "bert", "electra", "roberta"};
    const char *prefix = prefixes[m->info.arch];
    rr_status s = rr_st_open(st_path, &st, err);
    if (s != RR_OK) return s;

    if ((s = build_wants(m, &wl, err)) != RR_OK) goto done;
    m->blob = rr_malloc_aligned(RR_BLOB_ALIGN, wl.cursor * sizeof(float));
    if (!m->blob) {
        s = rr_set_error(err, RR_E_NOMEM, "out of memory for %zu bytes of fp32 weights",
                         wl.cursor * sizeof(float));
        goto done;
    }
    for (int i = 0; i < wl.n; i++) {
        const want *w = &wl.v[i];
        char shown[RR_NAME_CAP + 32], got[128], expect[128];
        const rr_st_tensor *t = find_tensor(&st, prefix, w, shown, sizeof shown);
        if (!t) {
            s = rr_set_error(err, RR_E_FORMAT, "%s: missing tensor %s", st_path, shown);
            goto done;
        }
        if (t->dtype == RR_ST_OTHER) {
            s = rr_set_error(err, RR_E_UNSUPPORTED,
                             "%s: tensor %s has dtype %s (weights must be F32, F16 or BF16)",
                             st_path, t->name, t->dtype_name);
            goto done;
        }
        if (t->n_dim != w->n_dim || t->shape[0] != w->shape[0] ||
            (w->n_dim == 2 && t->shape[1] != w->shape[1])) {
            format_shape(got, sizeof got, t->n_dim, t->shape);
            format_shape(expect, sizeof expect, w->n_dim, w->shape);
            s = rr_set_error(err, RR_E_FORMAT, "%s: tensor %s has shape %s, expected %s", st_path,
                             t->name, got, expect);
            goto done;
        }
        has[t->dtype] = 1;
        widen(t, m->blob + w->dst_off);
        if (w->field) *w->field = m->blob + w->dst_off;
    }
    m->info.weights_dtype = has[RR_ST_F32] ? "F32" : has[RR_ST_F16] ? "F16" : "BF16";
done:
    rr_free(wl.v);
    rr_st_close(&st);
    return s;
}

/* ---------------------------------------------------------------------------------------
 * Public entry points
 */

rr_status rr_model_load(const char *dir, rr_model **out, rr_error *err)
{
    rr_model *m = NULL;
    char *text = NULL;
    size_t len = 0;
    char path[4096];
    struct stat sb;
    rr_status s;

    if (!out) return rr_set_error(err, RR_E_INVALID, "rr_model_load: out is NULL");
    *out = NULL;
    if (!dir) return rr_set_error(err, RR_E_INVALID, "rr_model_load: dir is NULL");
    if (stat(dir, &sb) != 0)
        return rr_set_error(err, RR_E_IO, "model folder %s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return rr_set_error(err, RR_E_IO, "model folder %s: not a directory", dir);
    if (strlen(dir) > sizeof path - 64)
        return rr_set_error(err, RR_E_INVALID, "model folder path is too long");

    m = rr_calloc(1, sizeof *m);
    if (!m) return rr_set_error(err, RR_E_NOMEM, "out of memory loading %s", dir);
    m->path = rr_strdup(dir);
    if (!m->path) {
        s = rr_set_error(err, RR_E_NOMEM, "out of memory loading %s", dir);
        goto fail;
    }
    m->info.path = m->path;

    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((s = rr_read_file(path, RR_CONFIG_MAX_BYTES, &text, &len, err)) != RR_OK) goto fail;
    if ((s = parse_config(m, path, text, len, err)) != RR_OK) goto fail;
    rr_free(text);
    text = NULL;

    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((s = load_weights(m, path, err)) != RR_OK) goto fail;

    if ((s = rr_tokenizer_load(dir, &m->tok, err)) != RR_OK) goto fail;
    int tok_vocab = rr_tokenizer_vocab_size(m->tok);
    if (tok_vocab > m->info.vocab_size) {
        s = rr_set_error(err, RR_E_FORMAT,
                         "%s: the tokenizer has %d ids but the word embeddings only %d rows", dir,
                         tok_vocab, m->info.vocab_size);
        goto fail;
    }
    int mml = rr_tokenizer_model_max_length(m->tok);
    m->info.max_length = mml > 0 && mml < m->info.max_seq ? mml : m->info.max_seq;
    if (m->info.max_length < rr_tokenizer_pair_specials(m->tok)) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: max length %d leaves no room for a pair", dir,
                         m->info.max_length);
        goto fail;
    }

    *out = m;
    return RR_OK;
fail:
    rr_free(text);
    rr_model_free(m);
    return s;
}

rr_status rr_model_parse_config(const char *name, const char *text, size_t len, rr_model **out,
                                rr_error *err)
{
    rr_status s;
    *out = NULL;
    rr_model *m = rr_calloc(1, sizeof *m);
    if (!m) return rr_set_error(err, RR_E_NOMEM, "out of memory reading %s", name);
    m->path = rr_strdup(name);
    if (!m->path) {
        s = rr_set_error(err, RR_E_NOMEM, "out of memory reading %s", name);
        goto fail;
    }
    m->info.path = m->path;
    if ((s = parse_config(m, name, text, len, err)) != RR_OK) goto fail;
    *out = m;
    return RR_OK;
fail:
    rr_model_free(m);
    return s;
}

void rr_model_free(rr_model *m)
{
    if (!m) return;
    rr_tokenizer_free(m->tok);
    rr_free(m->blob);
    rr_free(m->layers);
    rr_free(m->model_type);
    rr_free(m->path);
    rr_free(m);
}

const rr_model_info *rr_model_get_info(const rr_model *m)
{
    return &m->info;
}

const rr_tokenizer *rr_model_tokenizer(const rr_model *m)
{
    return m->tok;
}

const rr_weights *rr_model_weights(const rr_model *m)
{
    return &m->w;
}

rr_hidden_act rr_model_hidden_act(const rr_model *m)
{
    return m->hidden_act;
}
