/*
 * rerank.c — the `rerank` command-line tool: rank passages for a query, or print token ids,
 * with any supported Hugging Face model folder. A thin client of include/rerank.h.
 *
 *   rerank score    --model DIR --query TEXT [--docs FILE|-] [--top-n N] [--json]
 *                   [--device cpu|cuda:N] [--dtype f32|bf16|int8|f16] [--threads N]
 *                   [--max-length N] [--no-truncate] [--chunk] [--max-chunks N] [--chunk-overlap N]
 * [--chunk-score max|first|mean] rerank tokenize --model DIR [--query TEXT] [--docs FILE|-]
 * [--max-length N] [--no-truncate]
 *
 * Documents come one per line, or as JSONL objects with a "text" field (and an optional "id"
 * echoed back); the format is detected from the first non-empty line. Without --docs the
 * documents are read from standard input. Errors go to stderr; the exit code is 2 for bad
 * usage or input, 1 for model/engine failures.
 */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rerank.h"

enum { EXIT_USAGE = 2, EXIT_FAIL = 1 };

typedef struct doc_list {
    char **text;
    size_t *len;
    char **id; /* JSONL "id" as given (string form), or NULL */
    int n;
    int cap;
} doc_list;

typedef struct cli_opts {
    const char *cmd;
    const char *model;
    const char *query;
    const char *docs;
    const char *device;
    const char *dtype; /* NULL: the device's default (f32 CPU, f16 CUDA) */
    int top_n;
    int json;
    int threads;
    int max_length;
    int truncate;
    int chunk, max_chunks, overlap, chunk_score;
} cli_opts;

static void usage(FILE *f)
{
    fputs("usage:\n"
          "  rerank score    --model DIR --query TEXT [--docs FILE|-] [--top-n N] [--json]\n"
          "                  [--device cpu|cuda:N] [--dtype f32|bf16|int8|f16] [--threads N]\n"
          "                  [--max-length N] [--no-truncate] [--chunk] [--max-chunks N] "
          "[--chunk-overlap N]\n"
          "                  [--chunk-score max|first|mean]\n"
          "  rerank tokenize --model DIR [--query TEXT] [--docs FILE|-] [--max-length N]\n"
          "                  [--no-truncate]\n"
          "\n"
          "Documents: one per line, or JSONL with a \"text\" field (optional \"id\"); standard\n"
          "input when --docs is absent or '-'. score prints rank, index, raw logit, sigmoid\n"
          "score and text, best first; tokenize prints one JSON line per input (per pair with\n"
          "--query) with input_ids and token_type_ids. --chunk scores a document longer than\n"
          "the pair in overlapping windows (the first --max-chunks, default 10; overlap default\n"
          "1/8 window) and gives it the best window's logit (--chunk-score).\n",
          f);
}

static int parse_int(const char *s, const char *flag, int lo, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > 1000000000) {
        fprintf(stderr, "rerank: %s expects an integer ≥ %d, got '%s'\n", flag, lo, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, cli_opts *o)
{
    memset(o, 0, sizeof *o);
    o->truncate = 1;
    o->device = "cpu";
    o->max_chunks = 10;
    o->overlap = -1;
    if (argc < 2) return -1;
    o->cmd = argv[1];
    if (strcmp(o->cmd, "score") && strcmp(o->cmd, "tokenize")) {
        if (!strcmp(o->cmd, "--help") || !strcmp(o->cmd, "-h")) return 1;
        fprintf(stderr, "rerank: unknown command '%s'\n", o->cmd);
        return -1;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                               \
    do {                                                                                           \
        if (!v) {                                                                                  \
            fprintf(stderr, "rerank: %s needs a value\n", a);                                      \
            return -1;                                                                             \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "--model")) {
            NEED_VALUE();
            o->model = v;
        } else if (!strcmp(a, "--query")) {
            NEED_VALUE();
            o->query = v;
        } else if (!strcmp(a, "--docs")) {
            NEED_VALUE();
            o->docs = v;
        } else if (!strcmp(a, "--device")) {
            NEED_VALUE();
            o->device = v;
        } else if (!strcmp(a, "--dtype")) {
            NEED_VALUE();
            o->dtype = v;
        } else if (!strcmp(a, "--top-n")) {
            NEED_VALUE();
            if (parse_int(v, a, 1, &o->top_n)) return -1;
        } else if (!strcmp(a, "--threads")) {
            NEED_VALUE();
            if (parse_int(v, a, 1, &o->threads)) return -1;
        } else if (!strcmp(a, "--max-length")) {
            NEED_VALUE();
            if (parse_int(v, a, 3, &o->max_length)) return -1;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--no-truncate")) {
            o->truncate = 0;
        } else if (!strcmp(a, "--chunk")) {
            o->chunk = 1;
        } else if (!strcmp(a, "--max-chunks")) {
            NEED_VALUE();
            if (parse_int(v, a, 1, &o->max_chunks)) return -1;
        } else if (!strcmp(a, "--chunk-overlap")) {
            NEED_VALUE();
            if (parse_int(v, a, 0, &o->overlap)) return -1;
        } else if (!strcmp(a, "--chunk-score")) {
            NEED_VALUE();
            o->chunk_score = !strcmp(v, "max")     ? RR_CHUNK_MAX
                             : !strcmp(v, "first") ? RR_CHUNK_FIRST
                             : !strcmp(v, "mean")  ? RR_CHUNK_MEAN
                                                   : -1;
            if (o->chunk_score < 0) {
                fprintf(stderr, "rerank: --chunk-score is max, first or mean, got '%s'\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            return 1;
        } else {
            fprintf(stderr, "rerank: unknown option '%s'\n", a);
            return -1;
        }
#undef NEED_VALUE
    }
    if (!o->model) {
        fprintf(stderr, "rerank: --model DIR is required\n");
        return -1;
    }
    if (!strcmp(o->cmd, "score") && !o->query) {
        fprintf(stderr, "rerank: score needs --query TEXT\n");
        return -1;
    }
    return 0;
}

static void docs_free(doc_list *d)
{
    for (int i = 0; i < d->n; i++) {
        free(d->text[i]);
        free(d->id[i]);
    }
    free(d->text);
    free(d->len);
    free(d->id);
    memset(d, 0, sizeof *d);
}

static int docs_push(doc_list *d, char *text, size_t len, char *id)
{
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 64;
        char **t = realloc(d->text, (size_t)cap * sizeof *t);
        if (t) d->text = t;
        size_t *l = realloc(d->len, (size_t)cap * sizeof *l);
        if (l) d->len = l;
        char **ids = realloc(d->id, (size_t)cap * sizeof *ids);
        if (ids) d->id = ids;
        if (!t || !l || !ids) return -1;
        d->cap = cap;
    }
    d->text[d->n] = text;
    d->len[d->n] = len;
    d->id[d->n] = id;
    d->n++;
    return 0;
}

/* Reads documents: plain lines, or JSONL objects with "text" (detected on the first non-empty
 * line). Trailing '\n' (and '\r' before it) is removed from plain lines; empty plain lines are
 * skipped. Returns 0, or -1 after printing an error naming the line. */
static int read_docs(const char *path, doc_list *d)
{
    FILE *f = stdin;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, mode = -1; /* -1 unknown, 0 plain, 1 JSONL */
    int rc = -1;

    if (path && strcmp(path, "-")) {
        f = fopen(path, "rb");
        if (!f) {
            fprintf(stderr, "rerank: cannot open documents file '%s': %s\n", path, strerror(errno));
            return -1;
        }
    } else if (isatty(STDIN_FILENO)) {
        fprintf(stderr, "rerank: reading documents from the terminal (one per line, end with "
                        "Ctrl-D); use --docs FILE to read a file\n");
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0) continue;
        if (mode < 0) mode = line[0] == '{';
        if (mode == 0) {
            char *t = malloc((size_t)n + 1);
            if (!t) goto oom;
            memcpy(t, line, (size_t)n + 1);
            if (docs_push(d, t, (size_t)n, NULL)) {
                free(t);
                goto oom;
            }
            continue;
        }
        /* jansson keeps a string's length: "a\u0000b" is three characters, as on the
         * server, not the prefix "a". */
        json_error_t je;
        json_t *obj = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &je);
        json_t *text = obj ? json_object_get(obj, "text") : NULL;
        if (!json_is_string(text)) {
            fprintf(stderr,
                    "rerank: %s line %d: expected a JSON object with a string \"text\"%s%s\n",
                    path ? path : "stdin", lineno, obj ? "" : ": ", obj ? "" : je.text);
            json_decref(obj);
            goto done;
        }
        json_t *idj = json_object_get(obj, "id");
        char *id = NULL;
        if (json_is_string(idj))
            id = strdup(json_string_value(idj));
        else if (idj)
            id = json_dumps(idj, JSON_COMPACT | JSON_ENCODE_ANY);
        size_t tlen = json_string_length(text);
        char *t = malloc(tlen + 1);
        if (t) memcpy(t, json_string_value(text), tlen + 1);
        json_decref(obj);
        if (!t || docs_push(d, t, tlen, id)) {
            free(t);
            free(id);
            goto oom;
        }
    }
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "rerank: out of memory reading documents\n");
done:
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

/* Prints at most `width` bytes of s on one line, never splitting a UTF-8 sequence, with
 * control characters shown as spaces. */
static void print_clipped(const char *s, size_t len, size_t width)
{
    size_t cut = len;
    if (len > width) {
        cut = width;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
    }
    for (size_t i = 0; i < cut; i++)
        putchar((unsigned char)s[i] < 0x20 ? ' ' : s[i]);
    if (cut < len) fputs("…", stdout);
}

static int cmd_score(const cli_opts *o, const rr_model *m, const doc_list *d)
{
    const rr_model_info *info = rr_model_get_info(m);
    rr_engine_opts eo = {.device = -1, .n_threads = o->threads};
    rr_engine *e = NULL;
    rr_error err = {0};
    float *logits = NULL;
    rr_ranked *order = NULL;
    int rc = EXIT_FAIL;

    if (rr_device_parse(o->device, &eo.device, &err) != RR_OK) {
        fprintf(stderr, "rerank: --device: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (o->dtype && rr_dtype_parse(o->dtype, &eo.dtype, &err) != RR_OK) {
        fprintf(stderr, "rerank: --dtype: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (eo.device == RR_DEVICE_AUTO) { /* cuda:0 when it opens, else the CPU */
        eo.device = 0;
        if (rr_engine_init(m, &eo, &e, &err) != RR_OK) eo.device = -1;
    }
    if (!e && rr_engine_init(m, &eo, &e, &err) != RR_OK) {
        fprintf(stderr, "rerank: %s\n", err.msg);
        return EXIT_FAIL;
    }
    logits = malloc((size_t)d->n * sizeof *logits);
    order = malloc((size_t)d->n * sizeof *order);
    if (!logits || !order) {
        fprintf(stderr, "rerank: out of memory\n");
        goto done;
    }
    rr_score_opts so = {.max_length = o->max_length,
                        .truncate = o->truncate,
                        .chunk = o->chunk,
                        .max_chunks = o->max_chunks,
                        .overlap = o->overlap,
                        .chunk_score = o->chunk_score};
    rr_status st = rr_score_query(e, m, o->query, strlen(o->query), (const char *const *)d->text,
                                  d->len, d->n, &so, logits, &err);
    if (st != RR_OK) {
        fprintf(stderr, "rerank: %s\n", err.msg);
        rc =
            (st == RR_E_INVALID || st == RR_E_UTF8 || st == RR_E_TOO_LONG) ? EXIT_USAGE : EXIT_FAIL;
        goto done;
    }
    rr_rank(logits, d->n, order); /* ties in input order, as CrossEncoder.rank */
    int shown = o->top_n > 0 && o->top_n < d->n ? o->top_n : d->n;

    if (o->json) {
        json_t *root = json_object(), *results = json_array();
        json_object_set_new(root, "model", json_string(info->path));
        json_object_set_new(root, "engine", json_string(rr_engine_describe(e)));
        json_object_set_new(root, "query", json_string(o->query));
        json_object_set_new(root, "results", results);
        for (int r = 0; r < shown; r++) {
            int i = order[r].index;
            json_t *it = json_object();
            json_object_set_new(it, "index", json_integer(i));
            if (d->id[i]) json_object_set_new(it, "id", json_string(d->id[i]));
            json_object_set_new(it, "logit", json_real(logits[i]));
            json_object_set_new(it, "score", json_real(rr_sigmoid(logits[i])));
            json_object_set_new(it, "text", json_stringn(d->text[i], d->len[i]));
            json_array_append_new(results, it);
        }
        char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
        if (s) puts(s);
        free(s);
        json_decref(root);
    } else {
        printf("model:  %s (%s)\nengine: %s\nquery:  %s\n\n", info->path, info->arch_name,
               rr_engine_describe(e), o->query);
        printf("%4s  %5s  %10s  %8s  %s\n", "rank", "index", "logit", "sigmoid", "text");
        for (int r = 0; r < shown; r++) {
            int i = order[r].index;
            printf("%4d  %5d  %10.5f  %8.5f  ", r + 1, i, logits[i], rr_sigmoid(logits[i]));
            print_clipped(d->text[i], d->len[i], 72);
            putchar('\n');
        }
    }
    rc = 0;
done:
    free(logits);
    free(order);
    rr_engine_free(e);
    return rc;
}

static void print_ids_json(const int32_t *ids, const int32_t *types, int n, int index)
{
    printf("{\"index\":%d,\"input_ids\":[", index);
    for (int i = 0; i < n; i++)
        printf(i ? ",%d" : "%d", ids[i]);
    fputs("],\"token_type_ids\":[", stdout);
    for (int i = 0; i < n; i++)
        printf(i ? ",%d" : "%d", types[i]);
    fputs("]}\n", stdout);
}

/* Encodes a whole text into a growing buffer (the CLI may allocate; the server does not). */
static rr_status encode_all(const rr_tokenizer *t, const char *s, size_t len, int32_t **buf,
                            int *cap, int *n)
{
    for (;;) {
        rr_status st = rr_tokenizer_encode(t, s, len, 0, *buf, *cap, n);
        if (st != RR_OK || *n <= *cap) return st;
        int32_t *nb = realloc(*buf, (size_t)*n * sizeof **buf);
        if (!nb) return RR_E_NOMEM;
        *buf = nb;
        *cap = *n;
    }
}

static int cmd_tokenize(const cli_opts *o, const rr_model *m, const doc_list *d)
{
    const rr_tokenizer *t = rr_model_tokenizer(m);
    int max_len = o->max_length ? o->max_length : rr_model_get_info(m)->max_length;
    rr_pair_opts po = {.max_length = max_len, .truncate = o->truncate, .keep_last = 0};
    int32_t *qbuf = NULL, *x = NULL, *ids = NULL, *types = NULL;
    int x_cap = 0, x_n = 0, rc = EXIT_USAGE;
    rr_side q;
    rr_error err;
    rr_status st;

    qbuf = malloc((size_t)max_len * sizeof *qbuf);
    ids = malloc((size_t)(max_len + 2) * sizeof *ids);
    types = calloc((size_t)(max_len + 2), sizeof *types);
    if (!qbuf || !ids || !types) goto oom;
    if (o->query && rr_query_encode(t, o->query, strlen(o->query), &po, qbuf, &q, &err) != RR_OK) {
        fprintf(stderr, "rerank: %s\n", err.msg);
        goto done;
    }
    for (int i = 0; i < d->n; i++) {
        int n;
        if (o->query) { /* the server's own pair builder, with its messages */
            if (!x && !(x = malloc((size_t)max_len * sizeof *x))) goto oom;
            st = rr_pair_encode(t, &q, d->text[i], d->len[i], &po, "documents", i, x, ids, types,
                                &n, &err);
            if (st != RR_OK) {
                fprintf(stderr, "rerank: %s\n", err.msg);
                goto done;
            }
        } else {
            /* Single sequence: [CLS] text [SEP], cut to max_length like HF truncation=True. */
            st = encode_all(t, d->text[i], d->len[i], &x, &x_cap, &x_n);
            if (st == RR_E_NOMEM) goto oom;
            if (st != RR_OK) {
                fprintf(stderr, "rerank: documents[%d] is not valid UTF-8\n", i);
                goto done;
            }
            int keep = x_n;
            if (keep > max_len - 2) {
                if (!o->truncate) {
                    fprintf(stderr,
                            "rerank: documents[%d] has more than %d tokens and "
                            "--no-truncate is set\n",
                            i, max_len);
                    goto done;
                }
                keep = max_len - 2;
            }
            ids[0] = rr_tokenizer_cls_id(t);
            memcpy(ids + 1, x, (size_t)keep * sizeof *ids);
            ids[keep + 1] = rr_tokenizer_sep_id(t);
            n = keep + 2;
            memset(types, 0, (size_t)n * sizeof *types);
        }
        print_ids_json(ids, types, n, i);
    }
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "rerank: out of memory\n");
    rc = EXIT_FAIL;
done:
    free(qbuf);
    free(x);
    free(ids);
    free(types);
    return rc;
}

int main(int argc, char **argv)
{
    cli_opts o;
    doc_list d = {0};
    rr_model *m = NULL;
    rr_error err = {0};
    int rc;

    int pa = parse_args(argc, argv, &o);
    if (pa) {
        usage(pa > 0 ? stdout : stderr);
        return pa > 0 ? 0 : EXIT_USAGE;
    }
    if (read_docs(o.docs, &d)) return EXIT_USAGE;
    if (d.n == 0) {
        fprintf(stderr, "rerank: no documents given (one per line in --docs FILE or on stdin)\n");
        docs_free(&d);
        return EXIT_USAGE;
    }
    if (rr_model_load(o.model, &m, &err) != RR_OK) {
        fprintf(stderr, "rerank: cannot load model: %s\n", err.msg);
        docs_free(&d);
        return EXIT_FAIL;
    }
    const rr_model_info *info = rr_model_get_info(m);
    if (o.max_length > info->max_length) {
        fprintf(stderr, "rerank: --max-length %d exceeds the model's maximum %d\n", o.max_length,
                info->max_length);
        rc = EXIT_USAGE;
    } else {
        rc = !strcmp(o.cmd, "score") ? cmd_score(&o, m, &d) : cmd_tokenize(&o, m, &d);
    }
    rr_model_free(m);
    docs_free(&d);
    return rc;
}
