/*
 * tokenizer_load.c — builds an rr_tokenizer from a Hugging Face model folder.
 *
 * Sources, in the order transformers' BertTokenizerFast / ElectraTokenizerFast uses them
 * (spec §1.3, §1.4):
 *   - tokenizer.json (preferred): WordPiece vocab, unk token, "##" prefix,
 *     max_input_chars_per_word, added_tokens, BertNormalizer flags, the post-processor's
 *     [CLS]/[SEP] ids. Anything that is not the BERT pipeline (a Unigram or BPE model, another
 *     normalizer or pre-tokenizer, added tokens with strip/single-word/normalized flags) is
 *     refused with RR_E_UNSUPPORTED rather than tokenized differently from HF.
 *   - else vocab.txt (id = line number, lines split with Python's universal newlines as
 *     transformers' load_vocab reads them) and the special tokens of special_tokens_map.json /
 *     tokenizer_config.json (BERT defaults otherwise), which become added tokens.
 *   - tokenizer_config.json: do_lower_case / strip_accents / tokenize_chinese_chars replace
 *     the normalizer flags (defaults True / None / True, as the transformers constructor
 *     does), and model_max_length.
 * Everything is parsed with cJSON and copied; the files are not needed afterwards. The files
 * are read by rr_tokenizer_load and parsed by rr_tokenizer_load_texts, which the fuzzers
 * call with texts from memory.
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "util/util.h"

/* Largest tokenizer file read (tokenizer.json of a big multilingual vocabulary is tens of MB;
 * the string pool's offsets are 32-bit anyway). */
#define RR_TOK_FILE_MAX_BYTES (1u << 30)

/* --- growable arrays used only while loading ------------------------------------------- */

typedef struct vocab_entry {
    uint32_t off, len;
    int32_t id;
} vocab_entry;

typedef struct builder {
    char *pool;
    size_t pool_len, pool_cap;
    vocab_entry *ents;
    int n_ents, cap_ents;
    rr_added_token *added;
    int n_added, cap_added;
    int n_ids;
} builder;

static void builder_free(builder *b)
{
    rr_free(b->pool);
    rr_free(b->ents);
    rr_free(b->added);
    memset(b, 0, sizeof *b);
}

static int grow(void *p, int *cap, int need, size_t elem)
{
    size_t n = rr_grow_cap((size_t)*cap, (size_t)need, 64);
    if (n == (size_t)*cap) return 0;
    if (n > INT_MAX || !rr_realloc_array(p, n, elem)) return -1;
    *cap = (int)n;
    return 0;
}

/* Appends bytes plus a NUL to the pool, keeping RR_KEY_SLACK zero bytes of capacity after
 * the last string; returns the offset or -1 on allocation failure. */
static long pool_add(builder *b, const char *s, size_t len)
{
    size_t n = rr_grow_cap(b->pool_cap, b->pool_len + len + 1 + RR_KEY_SLACK, 4096);
    if (n != b->pool_cap) {
        if (n > UINT32_MAX || !rr_realloc_array(&b->pool, n, 1)) return -1;
        b->pool_cap = n;
    }
    size_t off = b->pool_len;
    memcpy(b->pool + off, s, len);
    memset(b->pool + off + len, 0, 1 + RR_KEY_SLACK); /* NUL, then the hash's slack */
    b->pool_len += len + 1;
    return (long)off;
}

static rr_status add_vocab(builder *b, const char *s, size_t len, int32_t id, rr_error *err)
{
    long off = pool_add(b, s, len);
    if (off < 0 || grow(&b->ents, &b->cap_ents, b->n_ents + 1, sizeof *b->ents))
        return rr_set_error(err, RR_E_NOMEM, "out of memory loading the vocabulary");
    b->ents[b->n_ents++] = (vocab_entry){(uint32_t)off, (uint32_t)len, id};
    if (id >= b->n_ids) b->n_ids = id + 1;
    return RR_OK;
}

/* Id of a vocabulary string (last definition wins, as in a Python dict / Rust HashMap), or -1.
 * Linear: used only for a handful of special tokens at load time. */
static int32_t builder_find(const builder *b, const char *s)
{
    size_t len = strlen(s);
    for (int i = b->n_ents - 1; i >= 0; i--)
        if (b->ents[i].len == len && memcmp(b->pool + b->ents[i].off, s, len) == 0)
            return b->ents[i].id;
    return -1;
}

static int32_t builder_find_added(const builder *b, const char *s)
{
    size_t len = strlen(s);
    for (int i = 0; i < b->n_added; i++)
        if (b->added[i].len == len && memcmp(b->pool + b->added[i].off, s, len) == 0)
            return b->added[i].id;
    return -1;
}

/* `*made` (when not NULL) is the token's entry, or NULL for an empty token (it never
 * matches). A repeated token keeps its first entry and id, and `*made` is that entry: HF
 * applies the flags of the last listing of a token, so the caller overwrites them. */
static rr_status add_added_entry(builder *b, const char *s, int32_t id, rr_added_token **made,
                                 rr_error *err)
{
    if (made) *made = NULL;
    size_t len = strlen(s);
    if (len == 0) return RR_OK;
    for (int i = 0; i < b->n_added; i++)
        if (b->added[i].len == len && memcmp(b->pool + b->added[i].off, s, len) == 0) {
            if (made) *made = &b->added[i];
            return RR_OK;
        }
    long off = pool_add(b, s, len);
    if (off < 0 || grow(&b->added, &b->cap_added, b->n_added + 1, sizeof *b->added))
        return rr_set_error(err, RR_E_NOMEM, "out of memory loading added tokens");
    b->added[b->n_added] = (rr_added_token){(uint32_t)off, (uint32_t)len, id, 0, 0};
    if (made) *made = &b->added[b->n_added];
    b->n_added++;
    if (id >= b->n_ids) b->n_ids = id + 1;
    return RR_OK;
}

static rr_status add_added(builder *b, const char *s, int32_t id, rr_error *err)
{
    return add_added_entry(b, s, id, NULL, err);
}

/* --- files ------------------------------------------------------------------------------ */

/* Parses one JSON file's text; `path` names it in messages. Invalid UTF-8 is refused first,
 * as HF refuses it (Rust strings, Python's utf-8 decoding): cJSON would copy the bytes into
 * strings, and an added token that ends inside a character makes the encoder resume in the
 * middle of one and read past the end of the text. */
static rr_status parse_json(const char *path, const char *text, size_t len, cJSON **out,
                            rr_error *err)
{
    *out = NULL;
    if (rr_utf8_check(text, len) != len)
        return rr_set_error(err, RR_E_FORMAT, "%s: not valid UTF-8", path);
    *out = cJSON_ParseWithLength(text, len);
    if (!*out) return rr_set_error(err, RR_E_FORMAT, "%s: invalid JSON", path);
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return rr_set_error(err, RR_E_FORMAT, "%s: top level is not a JSON object", path);
    }
    return RR_OK;
}

/* --- JSON helpers ------------------------------------------------------------------------ */

/* A special-token entry of tokenizer_config.json / special_tokens_map.json: a string or an
 * AddedToken dict {"content": ...}. Returns NULL when absent or of another shape. */
static const char *token_string(const cJSON *v)
{
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

/* A token id written as a JSON number: an integer in [0, INT32_MAX). Returns 0 for anything
 * else, which callers refuse: converting a double outside int32's range is undefined. */
static int json_id(const cJSON *v, int32_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d < INT32_MAX) || d != (double)(int32_t)d) return 0;
    *out = (int32_t)d;
    return 1;
}

/* Reads an optional boolean; 1/0 when present as a bool, `dflt` otherwise. */
static int json_bool(const cJSON *obj, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsTrue(v)) return 1;
    if (cJSON_IsFalse(v)) return 0;
    return dflt;
}

/* The role string (e.g. "cls_token") from special_tokens_map.json, else tokenizer_config.json,
 * else the BERT default. transformers lets special_tokens_map.json win. */
static const char *role_token(const cJSON *stmap, const cJSON *tconf, const char *role,
                              const char *dflt)
{
    const char *s = stmap ? token_string(cJSON_GetObjectItemCaseSensitive(stmap, role)) : NULL;
    if (!s && tconf) s = token_string(cJSON_GetObjectItemCaseSensitive(tconf, role));
    return s ? s : dflt;
}

/* Refuses added-token flags whose HF behaviour this tokenizer does not implement. */
static rr_status check_added_flags(const cJSON *tok, const char *content, int special,
                                   int allow_strip, const char *file, rr_error *err)
{
    static const char *const flags[] = {"single_word", "lstrip", "rstrip"};
    for (int i = 0; i < (allow_strip ? 1 : 3); i++)
        if (json_bool(tok, flags[i], 0))
            return rr_set_error(err, RR_E_UNSUPPORTED, "%s: added token '%s' has %s: true", file,
                                content, flags[i]);
    /* transformers' default for a non-special added token is normalized: true */
    if (json_bool(tok, "normalized", !special))
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "%s: added token '%s' has normalized: true (matched after "
                            "normalization; not supported)",
                            file, content);
    return RR_OK;
}

/* --- tokenizer.json --------------------------------------------------------------------- */

static const char *json_type(const cJSON *obj)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* Reads the pair template's special ids from the post-processor. Two shapes are built by
 * rr_pair_build: BERT's `[CLS] $A [SEP] $B [SEP]` (type ids 0 0 0 1 1) and XLM-R's
 * `<s> $A </s> </s> $B </s>` (TemplateProcessing with its type ids, all 0 in the files
 * transformers writes; RobertaProcessing, whose ids are the same). */
static rr_status load_post_processor(const cJSON *pp, const char *file, rr_tokenizer *t,
                                     rr_error *err)
{
    const char *type = pp ? json_type(pp) : NULL;
    if (type && (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0)) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(pp, "cls");
        const cJSON *sep = cJSON_GetObjectItemCaseSensitive(pp, "sep");
        const cJSON *ci = cJSON_GetArrayItem(cls, 1), *si = cJSON_GetArrayItem(sep, 1);
        if (!json_id(ci, &t->cls_id) || !json_id(si, &t->sep_id))
            return rr_set_error(err, RR_E_FORMAT, "%s: post_processor.cls/sep malformed", file);
        int roberta = type[0] == 'R';
        t->n_mid_sep = roberta ? 2 : 1;
        /* RobertaProcessing marks B with type 1, but XLM-R's transformers tokenizer returns
         * no token_type_ids, so its models see zeros (and have a one-row type table) */
        t->b_type = roberta ? 0 : 1;
        return RR_OK;
    }
    if (!type || strcmp(type, "TemplateProcessing") != 0)
        return rr_set_error(err, RR_E_UNSUPPORTED,
                            "%s: post_processor type '%s' is not supported (a BERT or XLM-R pair "
                            "template expected)",
                            file, type ? type : "null");
    const cJSON *pair = cJSON_GetObjectItemCaseSensitive(pp, "pair");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens");
    int n = cJSON_GetArraySize(pair);
    if (!cJSON_IsArray(pair) || (n != 5 && n != 6)) goto not_pair;
    /* piece i: S = special token, A / B = sequence */
    const char *shape = n == 5 ? "SASBS" : "SASSBS";
    int32_t special_id[6] = {0};
    int type_id[6] = {0};
    for (int i = 0; i < n; i++) {
        const cJSON *piece = cJSON_GetArrayItem(pair, i);
        int is_seq = shape[i] != 'S';
        const cJSON *body =
            cJSON_GetObjectItemCaseSensitive(piece, is_seq ? "Sequence" : "SpecialToken");
        const cJSON *tid = cJSON_GetObjectItemCaseSensitive(body, "type_id");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
        if (!cJSON_IsNumber(tid) || (tid->valuedouble != 0 && tid->valuedouble != 1) ||
            !cJSON_IsString(id))
            goto not_pair;
        type_id[i] = (int)tid->valuedouble;
        if (is_seq && (id->valuestring[0] != shape[i] || id->valuestring[1] != 0)) goto not_pair;
        if (!is_seq) {
            const cJSON *sp = cJSON_GetObjectItemCaseSensitive(specials, id->valuestring);
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(sp, "ids");
            if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) != 1 ||
                !json_id(cJSON_GetArrayItem(ids, 0), &special_id[i]))
                return rr_set_error(err, RR_E_FORMAT,
                                    "%s: post_processor.special_tokens['%s'] malformed", file,
                                    id->valuestring);
        }
    }
    /* every separator is the same token; A's side (cls, A, sep) has type 0; B's side one type */
    for (int i = 3; i < n; i++)
        if (shape[i] == 'S' && special_id[i] != special_id[2]) goto not_pair;
    if (type_id[0] || type_id[1] || type_id[2]) goto not_pair;
    for (int i = 4; i < n; i++)
        if (type_id[i] != type_id[n - 1]) goto not_pair;
    if (n == 6 && type_id[3] != type_id[n - 1]) goto not_pair;
    t->cls_id = special_id[0];
    t->sep_id = special_id[2];
    t->n_mid_sep = n - 4;
    t->b_type = type_id[n - 1];
    return RR_OK;
not_pair:
    return rr_set_error(err, RR_E_UNSUPPORTED,
                        "%s: post_processor pair template is neither [CLS] $A:0 [SEP]:0 $B:1 "
                        "[SEP]:1 nor <s> $A </s> </s> $B </s> (one type per side)",
                        file);
}

/* rr_unigram_load's pool callback */
static long pool_add_cb(void *ctx, const char *s, size_t len)
{
    return pool_add(ctx, s, len);
}

static rr_status load_tokenizer_json(const char *path, const char *text, size_t len, builder *b,
                                     rr_tokenizer *t, rr_error *err)
{
    cJSON *root = NULL;
    rr_status s = parse_json(path, text, len, &root, err);
    if (s) return s;

    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const char *mtype = json_type(model);
    if (!cJSON_IsObject(model) || !mtype) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: model.type missing", path);
        goto fail;
    }
    if (strcmp(mtype, "Unigram") == 0) {
        t->kind = RR_TOK_UNIGRAM;
        const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
        int32_t id = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, vocab)
        {
            const cJSON *piece = cJSON_GetArrayItem(e, 0);
            if (!cJSON_IsString(piece)) break; /* rr_unigram_load names the entry */
            s = add_vocab(b, piece->valuestring, strlen(piece->valuestring), id++, err);
            if (s) goto fail;
        }
        s = rr_unigram_load(root, text, len, path, t, pool_add_cb, b, err);
        if (s) goto fail;
        goto added;
    }
    if (strcmp(mtype, "WordPiece") != 0) {
        s = rr_set_error(err, RR_E_UNSUPPORTED,
                         "%s: model type '%s' is not supported (WordPiece or Unigram)", path,
                         mtype);
        goto fail;
    }
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const char *ntype = json_type(norm);
    if (!ntype || strcmp(ntype, "BertNormalizer") != 0) {
        s = rr_set_error(err, RR_E_UNSUPPORTED,
                         "%s: normalizer '%s' is not supported (only BertNormalizer)", path,
                         ntype ? ntype : "null");
        goto fail;
    }
    /* lowercase / strip_accents / handle_chinese_chars are replaced by tokenizer_config's
     * values in rr_tokenizer_load; only clean_text is taken from here */
    t->clean_text = json_bool(norm, "clean_text", 1);

    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const char *ptype = json_type(pre);
    if (!ptype || strcmp(ptype, "BertPreTokenizer") != 0) {
        s = rr_set_error(err, RR_E_UNSUPPORTED,
                         "%s: pre_tokenizer '%s' is not supported (only BertPreTokenizer)", path,
                         ptype ? ptype : "null");
        goto fail;
    }

    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    if (prefix && (!cJSON_IsString(prefix) || strcmp(prefix->valuestring, "##") != 0)) {
        s = rr_set_error(err, RR_E_UNSUPPORTED,
                         "%s: model.continuing_subword_prefix must be \"##\"", path);
        goto fail;
    }
    const cJSON *maxc = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
    t->max_word_chars = 100;
    if (maxc) {
        if (!cJSON_IsNumber(maxc) || maxc->valuedouble < 0) {
            s = rr_set_error(err, RR_E_FORMAT, "%s: model.max_input_chars_per_word malformed",
                             path);
            goto fail;
        }
        if (maxc->valuedouble > RR_TOK_MAX_WORD_CHARS) {
            s = rr_set_error(err, RR_E_UNSUPPORTED,
                             "%s: model.max_input_chars_per_word %.0f is over %d", path,
                             maxc->valuedouble, RR_TOK_MAX_WORD_CHARS);
            goto fail;
        }
        t->max_word_chars = (int)maxc->valuedouble;
    }

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: model.vocab is not an object", path);
        goto fail;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab)
    {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= INT32_MAX ||
            e->valuedouble != (double)(int32_t)e->valuedouble) {
            s = rr_set_error(err, RR_E_FORMAT, "%s: model.vocab['%s'] is not a valid id", path,
                             e->string);
            goto fail;
        }
        s = add_vocab(b, e->string, strlen(e->string), (int32_t)e->valuedouble, err);
        if (s) goto fail;
    }

    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    const char *unk_s = cJSON_IsString(unk) ? unk->valuestring : "[UNK]";
    t->unk_id = builder_find(b, unk_s);
    if (t->unk_id < 0) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: unk_token '%s' is not in model.vocab", path, unk_s);
        goto fail;
    }

added:;
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added)) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: added_tokens is not an array", path);
        goto fail;
    }
    int i = 0;
    cJSON_ArrayForEach(e, added)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= INT32_MAX ||
            !cJSON_IsString(content)) {
            s = rr_set_error(err, RR_E_FORMAT, "%s: added_tokens[%d] malformed", path, i);
            goto fail;
        }
        int uni = t->kind == RR_TOK_UNIGRAM;
        s = check_added_flags(e, content->valuestring, json_bool(e, "special", 0), uni, path, err);
        if (s) goto fail;
        rr_added_token *a;
        s = add_added_entry(b, content->valuestring, (int32_t)id->valuedouble, &a, err);
        if (s) goto fail;
        if (uni && a) {
            a->lstrip = (uint8_t)json_bool(e, "lstrip", 0);
            a->rstrip = (uint8_t)json_bool(e, "rstrip", 0);
        }
        i++;
    }

    s = load_post_processor(cJSON_GetObjectItemCaseSensitive(root, "post_processor"), path, t, err);
    if (s) goto fail;

    /* [PAD]: the padding block's pad_id when tokenizer.json has one (transformers overrides
     * the rest of it, not the pad token), else the vocabulary entry of "[PAD]". */
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "padding");
    const cJSON *pad_id = cJSON_GetObjectItemCaseSensitive(pad, "pad_id");
    t->pad_id = -1;
    if (cJSON_IsNumber(pad_id) && !json_id(pad_id, &t->pad_id))
        s = rr_set_error(err, RR_E_FORMAT, "%s: padding.pad_id malformed", path);
fail:
    cJSON_Delete(root);
    return s;
}

/* --- vocab.txt -------------------------------------------------------------------------- */

static rr_status load_vocab_txt(const char *path, const char *text, size_t len, builder *b,
                                rr_tokenizer *t, rr_error *err)
{
    rr_status s = RR_OK;
    if (rr_utf8_check(text, len) != len)
        return rr_set_error(err, RR_E_FORMAT, "%s: not valid UTF-8", path);
    /* Python's readlines() in text mode: "\n", "\r\n" and "\r" all end a line; the last line
     * needs no terminator; load_vocab then strips the "\n". */
    int32_t id = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n' && text[j] != '\r')
            j++;
        s = add_vocab(b, text + i, j - i, id++, err);
        if (s) return s;
        if (j < len && text[j] == '\r' && j + 1 < len && text[j + 1] == '\n') j++;
        i = j + 1;
    }
    if (id == 0) s = rr_set_error(err, RR_E_FORMAT, "%s: empty vocabulary", path);
    t->max_word_chars = 100;
    return s;
}

/* The special tokens a slow BertTokenizer registers (they become the fast tokenizer's added
 * tokens when transformers converts it): the five roles, additional_special_tokens and
 * tokenizer_config's added_tokens_decoder. A string absent from vocab.txt gets the next id,
 * as transformers appends it. */
static rr_status vocab_txt_specials(const cJSON *stmap, const cJSON *tconf, const char *dir,
                                    builder *b, rr_tokenizer *t, rr_error *err)
{
    static const char *const roles[5][2] = {{"unk_token", "[UNK]"},
                                            {"sep_token", "[SEP]"},
                                            {"pad_token", "[PAD]"},
                                            {"cls_token", "[CLS]"},
                                            {"mask_token", "[MASK]"}};
    int32_t ids[5];
    rr_status s;
    const cJSON *dec =
        tconf ? cJSON_GetObjectItemCaseSensitive(tconf, "added_tokens_decoder") : NULL;
    const cJSON *e;
    /* keyed by id: the loop reads each member's key, which an array's items do not have */
    if (dec && !cJSON_IsObject(dec) && !cJSON_IsNull(dec))
        return rr_set_error(err, RR_E_FORMAT,
                            "%s/tokenizer_config.json: added_tokens_decoder is not an object", dir);
    cJSON_ArrayForEach(e, dec)
    {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        char *end = NULL;
        long id = strtol(e->string, &end, 10);
        if (!cJSON_IsString(content) || end == e->string || *end || id < 0 || id >= INT32_MAX)
            return rr_set_error(err, RR_E_FORMAT,
                                "%s/tokenizer_config.json: added_tokens_decoder['%s'] malformed",
                                dir, e->string);
        s = check_added_flags(e, content->valuestring, json_bool(e, "special", 0), 0,
                              "tokenizer_config.json", err);
        if (s) return s;
        s = add_added(b, content->valuestring, (int32_t)id, err);
        if (s) return s;
    }
    for (int i = 0; i < 5; i++) {
        const char *str = role_token(stmap, tconf, roles[i][0], roles[i][1]);
        int32_t id = builder_find_added(b, str);
        if (id < 0) id = builder_find(b, str);
        if (id < 0) id = b->n_ids;
        s = add_added(b, str, id, err);
        if (s) return s;
        ids[i] = id;
    }
    const cJSON *extra = NULL;
    if (stmap) extra = cJSON_GetObjectItemCaseSensitive(stmap, "additional_special_tokens");
    if (!extra && tconf)
        extra = cJSON_GetObjectItemCaseSensitive(tconf, "additional_special_tokens");
    cJSON_ArrayForEach(e, extra)
    {
        const char *str = token_string(e);
        if (!str) continue;
        int32_t id = builder_find_added(b, str);
        if (id < 0) id = builder_find(b, str);
        if (id < 0) id = b->n_ids;
        s = add_added(b, str, id, err);
        if (s) return s;
    }
    t->unk_id = builder_find(b, role_token(stmap, tconf, "unk_token", "[UNK]"));
    if (t->unk_id < 0)
        return rr_set_error(err, RR_E_FORMAT,
                            "%s/vocab.txt: unk token '%s' is not in the vocabulary", dir,
                            role_token(stmap, tconf, "unk_token", "[UNK]"));
    t->sep_id = ids[1];
    t->pad_id = ids[2];
    t->cls_id = ids[3];
    return RR_OK;
}

/* --- final tables ------------------------------------------------------------------------ */

static int is_ascii_punct(int c)
{
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
}

static void build_ascii_tables(rr_tokenizer *t)
{
    for (int c = 0; c < 128; c++) {
        uint8_t cls = RR_ASCII_KEEP;
        if (t->clean_text &&
            (c == 0 || c == 0x7F || (c < 0x20 && c != '\t' && c != '\n' && c != '\r')))
            cls = RR_ASCII_DROP;
        else if (c == ' ' || (c >= 0x09 && c <= 0x0D)) /* Rust char::is_whitespace */
            cls = RR_ASCII_SPACE;
        else if (is_ascii_punct(c))
            cls = RR_ASCII_PUNCT;
        t->ascii_class[c] = cls;
        t->ascii_plain[c] = cls == RR_ASCII_KEEP && !t->added_first[c];
        t->ascii_map[c] = (uint8_t)(t->lowercase && c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
}

static int cmp_added_len(const void *x, const void *y)
{
    const rr_added_token *a = x, *b = y;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->off < b->off ? -1 : a->off > b->off;
}

static void table_insert(rr_tokenizer *t, const char *key, int len, int cont, int32_t id)
{
    uint32_t h = rr_vocab_hash(key, len, cont);
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        rr_vocab_slot *slot = &t->slots[i];
        if (slot->id < 0) {
            *slot = (rr_vocab_slot){h, id, (uint32_t)(key - t->pool), (uint16_t)len, (uint8_t)cont};
            if (len > t->max_key_len[cont]) t->max_key_len[cont] = len;
            return;
        }
        if (slot->hash == h && slot->len == len && slot->cont == cont &&
            memcmp(t->pool + slot->off, key, (size_t)len) == 0) {
            slot->id = id; /* a later duplicate wins, as in a dict */
            return;
        }
    }
}

/* Builds the hash table over the vocabulary; takes the pool and the added tokens over. */
static rr_status finish(builder *b, rr_tokenizer *t, rr_error *err)
{
    size_t n_keys = 0;
    for (int i = 0; i < b->n_ents; i++)
        n_keys += 1 + (b->ents[i].len >= 2 && memcmp(b->pool + b->ents[i].off, "##", 2) == 0);
    size_t cap = 64;
    while (cap < 2 * n_keys)
        cap *= 2;
    t->slots = rr_malloc(cap * sizeof *t->slots);
    if (!t->slots) return rr_set_error(err, RR_E_NOMEM, "out of memory for the vocabulary table");
    for (size_t i = 0; i < cap; i++)
        t->slots[i].id = -1;
    t->mask = (uint32_t)(cap - 1);
    t->pool = b->pool;
    t->pool_len = b->pool_len;
    b->pool = NULL;
    for (int i = 0; i < b->n_ents; i++) {
        const char *key = t->pool + b->ents[i].off;
        int len = (int)b->ents[i].len;
        /* a key longer than any pre-token WordPiece looks at can never match */
        if (len > 4 * RR_TOK_MAX_WORD_CHARS + 2) continue;
        table_insert(t, key, len, 0, b->ents[i].id);
        if (len >= 2 && memcmp(key, "##", 2) == 0)
            table_insert(t, key + 2, len - 2, 1, b->ents[i].id);
    }
    /* no added tokens leaves b->added NULL, which qsort may not be given even for 0 items */
    if (b->n_added > 1) qsort(b->added, (size_t)b->n_added, sizeof *b->added, cmp_added_len);
    t->added = b->added;
    t->n_added = b->n_added;
    b->added = NULL;
    for (int i = 0; i < t->n_added; i++)
        t->added_first[(uint8_t)t->pool[t->added[i].off]] = 1;
    t->n_ids = b->n_ids;
    return RR_OK;
}

/* --- rr_tokenizer_load --------------------------------------------------------------------- */

/* Which pipeline a Unigram tokenizer.json runs (rr_unigram.transformers). transformers >= 5
 * does not run an XLM-R tokenizer.json as written: XLMRobertaTokenizer rebuilds it from the
 * vocabulary and charsmap with its own normalizer and pre-tokenizer, so sentence-transformers'
 * CrossEncoder tokenizes trailing whitespace, whitespace before a special token and a few
 * near-tie pieces differently from the tokenizers library and TEI, which run the file. The
 * default follows transformers when tokenizer_config.json names XLMRobertaTokenizer(Fast), or
 * names no class (transformers then picks XLMRobertaTokenizer from config.json's model_type,
 * the only Unigram family rerankd runs); RERANK_TOKENIZER_PIPELINE=file runs the file as
 * written, =transformers forces the rebuild. */
static int unigram_pipeline(const cJSON *tconf)
{
    const char *env = getenv("RERANK_TOKENIZER_PIPELINE");
    if (env && strcmp(env, "file") == 0) return 0;
    if (env && strcmp(env, "transformers") == 0) return 1;
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(tconf, "tokenizer_class");
    if (!cJSON_IsString(cls)) return 1;
    return strcmp(cls->valuestring, "XLMRobertaTokenizer") == 0 ||
           strcmp(cls->valuestring, "XLMRobertaTokenizerFast") == 0;
}

rr_status rr_tokenizer_load_texts(const char *dir, const rr_tokenizer_texts *f, rr_tokenizer **out,
                                  rr_error *err)
{
    rr_tokenizer *t = NULL;
    cJSON *tconf = NULL, *stmap = NULL;
    builder b = {0};
    char path[4096];
    rr_status s;

    if (!dir || !f || !out)
        return rr_set_error(err, RR_E_INVALID, "rr_tokenizer_load_texts: NULL argument");
    *out = NULL;
    t = rr_calloc(1, sizeof *t);
    if (!t) return rr_set_error(err, RR_E_NOMEM, "out of memory loading the tokenizer");

    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (f->tokenizer_config &&
        (s = parse_json(path, f->tokenizer_config, f->tokenizer_config_len, &tconf, err)))
        goto fail;
    snprintf(path, sizeof path, "%s/special_tokens_map.json", dir);
    if (f->special_tokens_map &&
        (s = parse_json(path, f->special_tokens_map, f->special_tokens_map_len, &stmap, err)))
        goto fail;

    if (f->tokenizer_json) {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        t->uni.transformers = unigram_pipeline(tconf);
        s = load_tokenizer_json(path, f->tokenizer_json, f->tokenizer_json_len, &b, t, err);
        if (s) goto fail;
        if (t->kind == RR_TOK_UNIGRAM && t->uni.transformers)
            t->uni.prepend =
                json_bool(tconf, "add_prefix_space", 1) ? RR_PREPEND_ALWAYS : RR_PREPEND_NEVER;
        if (t->pad_id < 0)
            t->pad_id = builder_find(&b, role_token(stmap, tconf, "pad_token",
                                                    t->kind == RR_TOK_UNIGRAM ? "<pad>" : "[PAD]"));
        if (t->pad_id < 0) t->pad_id = 0;
    } else {
        if (!f->vocab_txt) {
            s = rr_set_error(err, RR_E_IO, "%s/tokenizer.json and %s/vocab.txt: no such file", dir,
                             dir);
            goto fail;
        }
        snprintf(path, sizeof path, "%s/vocab.txt", dir);
        s = load_vocab_txt(path, f->vocab_txt, f->vocab_txt_len, &b, t, err);
        if (s) goto fail;
        s = vocab_txt_specials(stmap, tconf, dir, &b, t, err);
        if (s) goto fail;
        t->clean_text = 1;
        t->n_mid_sep = 1;
        t->b_type = 1;
    }
    t->n_special = 2 + t->n_mid_sep;

    /* transformers' constructor: tokenizer_config values (or their defaults True, None,
     * True) replace the normalizer's lowercase / strip_accents / handle_chinese_chars. */
    t->lowercase = json_bool(tconf, "do_lower_case", 1);
    int strip_accents = json_bool(tconf, "strip_accents", -1);
    t->handle_chinese_chars = json_bool(tconf, "tokenize_chinese_chars", 1);
    t->strip_accents = strip_accents < 0 ? t->lowercase : strip_accents;

    const cJSON *mml = tconf ? cJSON_GetObjectItemCaseSensitive(tconf, "model_max_length") : NULL;
    if (cJSON_IsNumber(mml) && mml->valuedouble > 0 && mml->valuedouble < 1e18)
        t->model_max_length = mml->valuedouble >= INT_MAX ? INT_MAX : (int)mml->valuedouble;

    s = finish(&b, t, err);
    if (s) goto fail;
    if (t->cls_id < 0 || t->cls_id >= t->n_ids || t->sep_id < 0 || t->sep_id >= t->n_ids ||
        t->pad_id >= t->n_ids) {
        s = rr_set_error(err, RR_E_FORMAT, "%s: special token id out of range (cls %d, sep %d)",
                         dir, (int)t->cls_id, (int)t->sep_id);
        goto fail;
    }
    build_ascii_tables(t);
    builder_free(&b);
    cJSON_Delete(tconf);
    cJSON_Delete(stmap);
    *out = t;
    return RR_OK;
fail:
    builder_free(&b);
    cJSON_Delete(tconf);
    cJSON_Delete(stmap);
    rr_tokenizer_free(t);
    return s;
}

/* Reads `name` from dir into *text when it exists as a regular file (absent: *text stays NULL). */
static rr_status read_optional(const char *dir, const char *name, char **text, size_t *len,
                               rr_error *err)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return RR_OK;
    return rr_read_file(path, RR_TOK_FILE_MAX_BYTES, text, len, err);
}

rr_status rr_tokenizer_load(const char *dir, rr_tokenizer **out, rr_error *err)
{
    char *tconf = NULL, *stmap = NULL, *tok_json = NULL, *vocab = NULL;
    rr_tokenizer_texts f = {0};
    rr_status s;
    struct stat st;

    if (!dir || !out) return rr_set_error(err, RR_E_INVALID, "rr_tokenizer_load: NULL argument");
    *out = NULL;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return rr_set_error(err, RR_E_IO, "model folder %s: %s", dir,
                            stat(dir, &st) != 0 ? strerror(errno) : "not a directory");
    /* Every file is read first, then parsed: the parsing is rr_tokenizer_load_texts's, shared
     * with the fuzzers. vocab.txt is read only when there is no tokenizer.json. */
    if ((s = read_optional(dir, "tokenizer_config.json", &tconf, &f.tokenizer_config_len, err)) ||
        (s = read_optional(dir, "special_tokens_map.json", &stmap, &f.special_tokens_map_len,
                           err)) ||
        (s = read_optional(dir, "tokenizer.json", &tok_json, &f.tokenizer_json_len, err)))
        goto done;
    if (!tok_json && (s = read_optional(dir, "vocab.txt", &vocab, &f.vocab_txt_len, err)))
        goto done;
    f.tokenizer_config = tconf;
    f.special_tokens_map = stmap;
    f.tokenizer_json = tok_json;
    f.vocab_txt = vocab;
    s = rr_tokenizer_load_texts(dir, &f, out, err);
done:
    rr_free(tconf);
    rr_free(stmap);
    rr_free(tok_json);
    rr_free(vocab);
    return s;
}

void rr_tokenizer_free(rr_tokenizer *t)
{
    if (!t) return;
    rr_free(t->pool);
    rr_free(t->slots);
    rr_free(t->added);
    rr_unigram_free(&t->uni);
    rr_free(t);
}

int32_t rr_tokenizer_cls_id(const rr_tokenizer *t)
{
    return t->cls_id;
}

int32_t rr_tokenizer_sep_id(const rr_tokenizer *t)
{
    return t->sep_id;
}

int32_t rr_tokenizer_pad_id(const rr_tokenizer *t)
{
    return t->pad_id;
}

int32_t rr_tokenizer_unk_id(const rr_tokenizer *t)
{
    return t->unk_id;
}

int rr_tokenizer_model_max_length(const rr_tokenizer *t)
{
    return t->model_max_length;
}

int rr_tokenizer_vocab_size(const rr_tokenizer *t)
{
    return t->n_ids;
}
