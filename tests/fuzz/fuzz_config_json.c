/*
 * fuzz_config_json.c — arbitrary bytes as a model folder's config.json, through
 * rr_model_parse_config (the config step of rr_model_load, from memory).
 *
 * Invariants: never a crash or a sanitizer report; a failure returns no model, RR_E_FORMAT /
 * RR_E_UNSUPPORTED / RR_E_NOMEM with that status in err and a message naming config.json; a
 * success yields a configuration the loader can act on: a known architecture with its name,
 * its position rule (XLM-R: a pad index and a longest sequence that fit the table), every
 * size ≥ 1, d_model = n_head × d_head, d_embed = d_model for BERT, layer_norm_eps a
 * number in [0, 1], a known activation, and a weight table rr_model_load can lay out (the
 * fp32 floats it carves, counted the way model.c's build_wants counts them, fit in 2^60 and
 * its table of 16 tensors per layer fits an int).
 */
#include <math.h>

#include "fuzz.h"
#include "model/model.h"

#define NAME "fuzzdir/config.json"

/* Floats rr_model_load would carve for this configuration (exact in long double up to 2^64;
 * beyond that only its size matters). */
static long double weight_floats(const rr_model_info *in)
{
    long double d = in->d_model, e = in->d_embed, f = in->d_ff, v = in->vocab_size;
    long double total =
        v * e + (long double)in->max_position * e + (long double)in->type_vocab_size * e + 2 * e;
    if (in->d_embed != in->d_model) total += d * e + d;
    total += (long double)in->n_layer * (4 * d * d + 2 * d * f + f + 9 * d);
    total += d * d + d + (long double)in->n_labels * (d + 1);
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rr_model *m = (rr_model *)&m; /* must be set to NULL on failure */
    rr_error err = {0};
    rr_status s = rr_model_parse_config(NAME, (const char *)data, size, &m, &err);
    if (s != RR_OK) {
        fuzz_check_error("config.json", s, &err);
        FUZZ_CHECK(m == NULL, "model returned with %s", rr_status_name(s));
        FUZZ_CHECK(s == RR_E_NOMEM || strstr(err.msg, NAME) != NULL,
                   "message does not name the file: %s", err.msg);
        return 0;
    }
    FUZZ_CHECK(m != NULL, "RR_OK without a model");
    const rr_model_info *in = rr_model_get_info(m);
    FUZZ_CHECK(
        (in->arch == RR_ARCH_BERT && strcmp(in->arch_name, "BertForSequenceClassification") == 0) ||
            (in->arch == RR_ARCH_ELECTRA &&
             strcmp(in->arch_name, "ElectraForSequenceClassification") == 0) ||
            (in->arch == RR_ARCH_XLMR &&
             strcmp(in->arch_name, "XLMRobertaForSequenceClassification") == 0),
        "architecture %d / %s", (int)in->arch, in->arch_name ? in->arch_name : "NULL");
    /* positions: BERT indexes the table from 0; XLM-R from pad + 1, so its longest sequence
     * leaves room for pad + 1 rows and is at least one token */
    FUZZ_CHECK(
        in->arch == RR_ARCH_XLMR ? in->pos_pad >= 0 && in->max_seq >= 1 &&
                                       (long)in->max_seq + in->pos_pad + 1 == in->max_position
                                 : in->pos_pad == -1 && in->max_seq == in->max_position,
        "positions: pad %d, longest sequence %d of %d", in->pos_pad, in->max_seq, in->max_position);
    FUZZ_CHECK(in->model_type != NULL && in->path != NULL && strcmp(in->path, NAME) == 0,
               "model_type / path");
    FUZZ_CHECK(in->vocab_size >= 1 && in->d_model >= 1 && in->n_layer >= 1 && in->n_head >= 1 &&
                   in->d_head >= 1 && in->d_ff >= 1 && in->d_embed >= 1 && in->max_position >= 1 &&
                   in->type_vocab_size >= 1 && in->n_labels >= 1,
               "a size below 1");
    FUZZ_CHECK((long)in->n_head * in->d_head == in->d_model, "n_head %d x d_head %d != d_model %d",
               in->n_head, in->d_head, in->d_model);
    FUZZ_CHECK(in->arch == RR_ARCH_ELECTRA || in->d_embed == in->d_model,
               "BERT with d_embed %d != d_model %d", in->d_embed, in->d_model);
    FUZZ_CHECK(isfinite(in->layer_norm_eps) && in->layer_norm_eps >= 0.0f &&
                   in->layer_norm_eps <= 1.0f,
               "layer_norm_eps %g", (double)in->layer_norm_eps);
    FUZZ_CHECK(in->default_activation == RR_ACT_IDENTITY ||
                   in->default_activation == RR_ACT_SIGMOID,
               "activation %d", (int)in->default_activation);
    rr_hidden_act act = rr_model_hidden_act(m);
    FUZZ_CHECK(act == RR_HIDDEN_GELU || act == RR_HIDDEN_GELU_TANH || act == RR_HIDDEN_RELU,
               "hidden_act %d", (int)act);
    FUZZ_CHECK(rr_model_weights(m)->word_emb == NULL && rr_model_tokenizer(m) == NULL,
               "a config-only model with weights or a tokenizer");
    FUZZ_CHECK(weight_floats(in) < 0x1p60L, "%Lg fp32 weights (%d layers, d_model %d, d_ff %d)",
               weight_floats(in), in->n_layer, in->d_model, in->d_ff);
    FUZZ_CHECK(16L * in->n_layer + 11 <= 2147483647L, "a tensor table of %ld entries",
               16L * in->n_layer + 11);
    rr_model_free(m);
    return 0;
}
