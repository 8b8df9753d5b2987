/*
 * rerank.h — the public API of librerank, written as a specification.
 *
 * librerank loads a Hugging Face cross-encoder folder, tokenizes (query, passage) pairs
 * exactly as the HF fast tokenizer does, and scores packed varlen batches on the CPU
 * (fp32 reference) or, where built and present, on a CUDA device. The rerankd server,
 * the `rerank` CLI, bench/ and tests/ are all clients of this header and of nothing else
 * in src/.
 *
 * Conventions for every function below:
 *   - Functions that can fail return rr_status; RR_OK is 0. Where an rr_error* is taken
 *     it may be NULL; when non-NULL and the call fails, err->msg holds one line of
 *     English naming what was wrong (a file, a tensor, a field, an index).
 *   - Handles are opaque. X_init/X_load create, X_free destroys and accepts NULL.
 *   - Lengths are counts of elements; text lengths are bytes of UTF-8.
 *   - Dimensions use one vocabulary: n_seq, n_tok, d_model, n_head, d_head, d_ff,
 *     cu_seqlens (prefix sums of sequence lengths, n_seq + 1 entries, cu_seqlens[0] = 0).
 *   - Thread safety: a loaded rr_model and its rr_tokenizer are immutable and may be
 *     used from any number of threads. An rr_engine is owned by one thread at a time.
 */
#ifndef RERANK_H
#define RERANK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * Status and errors
 */

typedef enum rr_status {
    RR_OK = 0,
    RR_E_INVALID = 1,     /* bad argument or bad input: the caller's fault */
    RR_E_IO = 2,          /* a file is missing or unreadable */
    RR_E_FORMAT = 3,      /* a file is present but malformed (JSON, safetensors, vocab) */
    RR_E_UNSUPPORTED = 4, /* well-formed, but not something rerankd runs (architecture, dtype) */
    RR_E_NOMEM = 5,       /* an allocation failed (only at start-up; never on the request path) */
    RR_E_UTF8 = 6,        /* text is not valid UTF-8 */
    RR_E_TOO_LONG = 7,    /* input over the length limit while truncation is off */
    RR_E_DEVICE = 8,      /* no such device, CUDA not built in, or a device-side failure */
} rr_status;

#define RR_ERROR_MSG_CAP 512

typedef struct rr_error {
    rr_status status;
    char msg[RR_ERROR_MSG_CAP];
} rr_error;

/* Stable upper-case name of a status ("RR_E_FORMAT"); never NULL. */
const char *rr_status_name(rr_status s);

/* ---------------------------------------------------------------------------------------
 * Model: a Hugging Face model folder
 *
 * A folder holds config.json, model.safetensors and tokenizer files (tokenizer.json, or
 * vocab.txt; plus tokenizer_config.json and special_tokens_map.json when present).
 * Supported architectures: BertForSequenceClassification (MiniLM, TinyBERT, BERT),
 * ElectraForSequenceClassification and XLMRobertaForSequenceClassification (bge-reranker-*,
 * multilingual MiniLM cross-encoders). Anything else is refused with RR_E_UNSUPPORTED and a
 * message naming what is unsupported. Weights may be stored as F32, F16 or BF16; they are
 * widened to fp32 once at load time into one allocation.
 */

typedef struct rr_model rr_model;

typedef enum rr_arch {
    RR_ARCH_BERT = 1,    /* BertForSequenceClassification: pooler tanh + classifier */
    RR_ARCH_ELECTRA = 2, /* ElectraForSequenceClassification: dense + GELU + out_proj */
    RR_ARCH_XLMR = 3,    /* XLMRobertaForSequenceClassification: dense + tanh + out_proj */
} rr_arch;

/* What sentence-transformers' CrossEncoder applies to the logit by default (spec §5.1). */
typedef enum rr_activation {
    RR_ACT_IDENTITY = 0,
    RR_ACT_SIGMOID = 1,
} rr_activation;

typedef struct rr_model_info {
    rr_arch arch;
    const char *arch_name;     /* "BertForSequenceClassification", ... */
    const char *model_type;    /* config.json model_type: "bert", "electra" */
    const char *path;          /* the folder it was loaded from */
    const char *weights_dtype; /* dtype stored on disk: "F32", "F16", "BF16" (mixed: widest) */
    int vocab_size;
    int d_model;
    int n_layer;
    int n_head;
    int d_head; /* d_model / n_head */
    int d_ff;
    int d_embed; /* ELECTRA embedding_size; == d_model otherwise */
    int max_position;
    int pos_pad; /* XLM-R: padding_idx (pad_token_id); token positions start at pos_pad + 1
                    and pad tokens get pos_pad (spec §4.6). -1: position = index (BERT) */
    int max_seq; /* longest sequence the position table allows: max_position, or
                    max_position - pos_pad - 1 for XLM-R (512 for 514, 8192 for 8194) */
    int type_vocab_size;
    int n_labels;
    float layer_norm_eps;
    int max_length; /* effective pair length: min(tokenizer model_max_length, max_seq) */
    rr_activation default_activation;
} rr_model_info;

/* Load and validate a model folder. On success *out owns the weights (fp32), the config and
 * the tokenizer; nothing in the folder is needed afterwards. Errors: RR_E_IO (missing or
 * unreadable file, named), RR_E_FORMAT (bad JSON, bad safetensors header, offsets out of
 * bounds, wrong tensor shape, missing tensor — each named), RR_E_UNSUPPORTED (architecture,
 * dtype, position_embedding_type, hidden_act), RR_E_NOMEM. */
rr_status rr_model_load(const char *dir, rr_model **out, rr_error *err);
void rr_model_free(rr_model *m);
const rr_model_info *rr_model_get_info(const rr_model *m);

/* ---------------------------------------------------------------------------------------
 * Tokenizer: the HF fast tokenizers, exactly — BERT WordPiece and SentencePiece Unigram (XLM-R)
 */

typedef struct rr_tokenizer rr_tokenizer;

/* The model's tokenizer; owned by the model, valid until rr_model_free. */
const rr_tokenizer *rr_model_tokenizer(const rr_model *m);

/* Load only the tokenizer from a model folder (tokenizer.json preferred, else vocab.txt;
 * tokenizer_config.json flags override the normalizer as transformers does). */
rr_status rr_tokenizer_load(const char *dir, rr_tokenizer **out, rr_error *err);
void rr_tokenizer_free(rr_tokenizer *t);

/* Special token ids of this tokenizer. */
int32_t rr_tokenizer_cls_id(const rr_tokenizer *t);
int32_t rr_tokenizer_sep_id(const rr_tokenizer *t);
int32_t rr_tokenizer_pad_id(const rr_tokenizer *t);
int32_t rr_tokenizer_unk_id(const rr_tokenizer *t);

/* Encode one text (no special tokens added) into token ids.
 *   text, len   UTF-8 bytes (need not be NUL-terminated; embedded NULs are characters).
 *   keep_last   0: ids receives the first min(n_total, cap) tokens;
 *               1: ids receives the last min(n_total, cap) tokens, in order.
 *   ids, cap    caller's buffer of cap int32 (cap ≥ 0).
 *   n_total     out: the number of tokens of the whole text, which may exceed cap.
 * Returns RR_E_UTF8 for invalid UTF-8 (nothing written). Allocates nothing: safe on the
 * request path. Thread-safe. */
rr_status rr_tokenizer_encode(const rr_tokenizer *t, const char *text, size_t len, int keep_last,
                              int32_t *ids, int cap, int *n_total);

/* rr_tokenizer_encode with keep_last = 0, plus where each token came from in the text: the
 * offsets HF's fast tokenizer reports (return_offsets_mapping), in bytes instead of code
 * points.
 *   text, len   as rr_tokenizer_encode.
 *   ids, cap    as rr_tokenizer_encode: the first min(n_total, cap) tokens.
 *   offsets     caller's buffer of 2 * cap int32 (may be NULL when cap is 0): for each
 *               stored token k, text[offsets[2k], offsets[2k+1]) is the non-empty, half-open
 *               byte range it covers, on character boundaries. A WordPiece token covers the
 *               raw characters its first and last normalized characters came from, and
 *               everything between (a deleted control or format character, an accent:
 *               "é" → "e" covers both bytes of "é", "İ" → "i̇" covers İ); an [UNK] the whole
 *               word; an added token ("[SEP]" in the text) its own bytes. Tokens come in text
 *               order (neither starts nor ends decrease) and overlap only where one raw
 *               character gives several (a Hangul syllable gives one token per jamo, each
 *               covering the syllable).
 *   n_total     out: the number of tokens of the whole text, as rr_tokenizer_encode.
 * The ids equal rr_tokenizer_encode's and the offsets HF's, including where canonical
 * reordering moves a kept combining character (it covers the character whose place it
 * took); in a reordering run of more than 256 combining characters an offset may differ.
 * Same errors as rr_tokenizer_encode (RR_E_INVALID also for offsets NULL with cap > 0);
 * nothing is written on error. Allocates nothing: safe on the request path. Thread-safe. */
rr_status rr_tokenizer_encode_offsets(const rr_tokenizer *t, const char *text, size_t len,
                                      int32_t *ids, int32_t *offsets, int cap, int *n_total);

/* HF `longest_first` truncation (spec §2.6) for a pair of full lengths a, b and a maximum
 * total length max_length (≥ 3; includes the 3 special tokens). Writes the kept lengths. */
void rr_truncate_longest_first(int a, int b, int max_length, int *a_keep, int *b_keep);

/* Special tokens the tokenizer's pair template adds: 3 for BERT's `[CLS] q [SEP] d [SEP]`,
 * 4 for XLM-R's `<s> q </s> </s> d </s>`. Truncation budgets are max_length minus this. */
int rr_tokenizer_pair_specials(const rr_tokenizer *t);

/* Assemble the tokenizer's pair template around q and d: BERT `[CLS] q [SEP] d [SEP]` with
 * token type ids 0 for `[CLS] q [SEP]` and 1 for `d [SEP]`; XLM-R `<s> q </s> </s> d </s>`,
 * all type ids 0. Truncates longest_first to max_length when truncate is non-zero.
 *   q, q_stored, q_total   the query's ids as returned by rr_tokenizer_encode (stored count
 *                          and whole-text count); likewise d for the passage. The same
 *                          keep_last must have been used for both encodes; a stored count
 *                          must be ≥ min(total, max_length).
 *   ids, type_ids          out, capacity max_length each.
 * Returns the pair length (≥ rr_tokenizer_pair_specials), or -1 when truncate is 0 and the
 * pair is longer than max_length (RR_E_TOO_LONG territory for the caller). */
int rr_pair_build(const rr_tokenizer *t, const int32_t *q, int q_stored, int q_total,
                  const int32_t *d, int d_stored, int d_total, int max_length, int truncate,
                  int keep_last, int32_t *ids, int32_t *type_ids);

/* How a pair is built: the maximum pair length (special tokens included), whether an
 * over-long pair is truncated (HF longest_first) or refused, and which end of a text
 * truncation keeps. */
typedef struct rr_pair_opts {
    int max_length; /* the pair's special tokens (3 or 4) ... the model's max_length */
    int truncate;   /* non-zero: longest_first truncation; zero: RR_E_TOO_LONG when too long */
    int keep_last;  /* 0 keeps the start of each text (HF "right"), 1 the end ("left") */
    /* Long documents. Zero-initialised fields mean today's single truncated pair. */
    int max_doc_tokens; /* > 0: a document counts only its first (keep_last: last) this many
                           tokens before anything else (Cohere's max_tokens_per_doc) */
    int chunk;          /* non-zero: a document whose pair is over max_length is scored in
                           windows (rr_chunk_plan) instead of being truncated; `truncate` and
                           keep_last's effect on the document are then unused */
    int max_chunks;     /* chunk: the first max_chunks windows of a document are scored (≥ 1) */
    int overlap;        /* chunk: tokens consecutive windows share; < 0: ⌊window / 8⌋; at
                           most ⌊window / 2⌋ */
    int chunk_score;    /* chunk: a document's score from its windows' (rr_chunk_score) */
} rr_pair_opts;

/* How a chunked document's logit is made from its windows' logits. */
typedef enum rr_chunk_score {
    RR_CHUNK_MAX = 0,   /* the best window's (MaxP; Cohere's rule) */
    RR_CHUNK_FIRST = 1, /* the first window's */
    RR_CHUNK_MEAN = 2,  /* the mean of the scored windows' logits */
} rr_chunk_score;

/* Where the windows of one document lie. A document of d tokens (after max_doc_tokens)
 * with a query of q tokens fits one pair when q + d + 3 ≤ max_length: one window, the
 * whole document, exactly the truncate-mode pair. Otherwise the query keeps
 * q_keep = min(q, max(⌊(max_length − 3) / 2⌋, max_length − 3 − d)) tokens (its first ones,
 * or its last with keep_last: at most half the pair when the document needs more), every
 * window has room for window = max_length − 3 − q_keep document tokens, and window k
 * covers the document's tokens [k·stride, min(k·stride + window, d)), stride = window −
 * overlap, for k = 0 ... n_windows − 1; n_possible windows cover the whole document and the
 * first n_windows = min(n_possible, max_chunks) are scored. */
typedef struct rr_chunk_plan {
    int q_keep, d_tokens; /* query tokens kept; document tokens after max_doc_tokens */
    int window, stride;   /* document tokens per window; start-to-start distance */
    int n_windows;        /* scored */
    int n_possible;       /* needed to cover the document */
} rr_chunk_plan;

/* The plan for a query of q_total and a document of d_total tokens under o (o->chunk
 * non-zero, o->max_length ≥ n_special + 1, o->max_chunks ≥ 1). n_special is the template's
 * (rr_tokenizer_pair_specials): the 3 of the formulas above is n_special. Pure arithmetic:
 * the one definition the scheduler, rr_score_query, the CLI and the golden script
 * (tests/golden) follow. */
void rr_chunk_plan_make(int n_special, int q_total, int d_total, const rr_pair_opts *o,
                        rr_chunk_plan *p);

/* The most document tokens the windows under o can reach: what a document buffer for
 * rr_doc_windows must hold (max_chunks · (max_length − n_special), or max_doc_tokens if
 * less). */
int rr_chunk_doc_cap(int n_special, const rr_pair_opts *o);

/* One scored window of a document: its pair sits at ids[off ...) of the output, len tokens
 * long; it covers the document's tokens [tok_start, tok_end) and, when offsets were asked
 * for, the bytes [byte_start, byte_end) of its text (the span of those tokens' HF offsets:
 * from the first source byte of any of them to the last; an empty window is [0, 0)). */
typedef struct rr_window {
    long off;
    int len;
    int tok_start, tok_end;
    int byte_start, byte_end;
} rr_window;

/* One side of a pair as rr_query_encode leaves it: ids[0 .. stored) are the kept tokens
 * (the first or the last ones of the text, by keep_last), total the text's whole count. */
typedef struct rr_side {
    const int32_t *ids;
    int stored, total;
} rr_side;

/* Encodes the query of pairs built with `o`. ids: caller's buffer of o->max_length int32;
 * *q points into it. RR_E_UTF8 ("query is not valid UTF-8") writes nothing. Allocates
 * nothing. */
rr_status rr_query_encode(const rr_tokenizer *t, const char *text, size_t len,
                          const rr_pair_opts *o, int32_t *ids, rr_side *q, rr_error *err);

/* Encodes one document and assembles its pair with the query q (encoded with the same o):
 * `[CLS] q [SEP] d [SEP]`, truncated longest_first to o->max_length when o->truncate.
 *   dbuf             scratch of o->max_length int32 (the document's ids);
 *   ids, type_ids    out, o->max_length each; *n_out the pair's length.
 * Errors name the document "<field>[<index>]": RR_E_UTF8 ("documents[3] is not valid
 * UTF-8"), RR_E_TOO_LONG ("documents[3]: the pair is 700 tokens, over max_length 512, and
 * truncation is disabled"), RR_E_INVALID for bad options. This is the one place pairs are
 * made: the server's scheduler, rr_score_query and the CLI all call it. Allocates nothing. */
rr_status rr_pair_encode(const rr_tokenizer *t, const rr_side *q, const char *doc, size_t len,
                         const rr_pair_opts *o, const char *field, int index, int32_t *dbuf,
                         int32_t *ids, int32_t *type_ids, int *n_out, rr_error *err);

/* Encodes one document and builds the pairs of its windows with the query q (encoded with
 * the same o) under o->chunk (rr_chunk_plan_make): pair k is `[CLS] q' [SEP] window_k [SEP]`
 * with q' the q_keep kept query tokens, laid end to end at ids / type_ids (capacity
 * o->max_chunks · o->max_length each); win[k] says where (capacity o->max_chunks); *plan
 * the plan. dbuf holds the document's ids, dcap ≥ rr_chunk_doc_cap(o); doffs, when not
 * NULL, 2 · dcap int32 for their offsets (rr_tokenizer_encode_offsets), which fill each
 * window's byte span (else the spans are [0, 0)). Errors as
 * rr_pair_encode, naming the document; RR_E_INVALID for max_length < n_special + 1 or
 * max_chunks < 1.
 * Allocates nothing. */
rr_status rr_doc_windows(const rr_tokenizer *t, const rr_side *q, const char *doc, size_t len,
                         const rr_pair_opts *o, const char *field, int index, int32_t *dbuf,
                         int32_t *doffs, int dcap, int32_t *ids, int32_t *type_ids, rr_window *win,
                         rr_chunk_plan *plan, rr_error *err);

/* Combines one document's window logits (n ≥ 1) by rule (rr_chunk_score); *best gets the
 * best window (the first among equals; NaN counts as best so it is never hidden). */
float rr_chunk_combine(const float *logits, int n, int rule, int *best);

/* ---------------------------------------------------------------------------------------
 * Engine: packed varlen batch → logits
 */

typedef struct rr_engine rr_engine;

typedef enum rr_dtype {
    RR_DTYPE_F32 = 0,  /* CPU engine */
    RR_DTYPE_F16 = 1,  /* CUDA default */
    RR_DTYPE_BF16 = 2, /* CUDA, selectable; CPU opt-in (AVX512-BF16, else refused) */
    RR_DTYPE_INT8 = 3, /* CPU opt-in: weights quantized at load (VNNI, else AVX2) */
} rr_dtype;

typedef struct rr_engine_opts {
    int device;           /* -1: CPU; ≥ 0: CUDA device ordinal */
    int max_batch_tokens; /* workspace size in tokens; 0 → 16384 */
    int n_threads;        /* CPU threads; 0 → the CPUs this process may use: affinity and
                             cgroup CPU quota (rounded up) */
    rr_dtype dtype;       /* precision: CUDA F16 (default there) or BF16; CPU F32 (the
                             reference), BF16 or INT8. RR_E_UNSUPPORTED for a pair the
                             device does not run, naming why */
} rr_engine_opts;

/* A device name as the tools take it: "cpu" → -1, "cuda" → 0, "cuda:N" → N, "auto" →
 * RR_DEVICE_AUTO (the caller tries cuda:0, then the CPU). RR_E_INVALID naming the text
 * otherwise. */
#define RR_DEVICE_AUTO (-2)
rr_status rr_device_parse(const char *s, int *device, rr_error *err);

/* 1 when this build contains the CUDA engine (configured with nvcc and RERANK_CUDA=ON), else
 * 0. Lets "auto" pick the CPU of a CPU-only build without trying, and without a warning. */
int rr_engine_has_cuda(void);

/* A packed batch: n_seq sequences laid end to end, no padding. tokens[n_tok],
 * type_ids[n_tok], cu_seqlens[n_seq + 1] with cu_seqlens[0] = 0, cu_seqlens[n_seq] = n_tok,
 * each sequence 1 … max_position tokens and starting with [CLS]. */
typedef struct rr_batch {
    int n_seq;
    int n_tok;
    const int32_t *tokens;
    const int32_t *type_ids;
    const int32_t *cu_seqlens;
} rr_batch;

/* Create an engine for a loaded model (which must outlive it). All memory the forward pass
 * needs is allocated here, sized for opts->max_batch_tokens. RR_E_DEVICE when a CUDA device
 * is asked for and CUDA is not built in or the ordinal does not exist. */
rr_status rr_engine_init(const rr_model *m, const rr_engine_opts *opts, rr_engine **out,
                         rr_error *err);
void rr_engine_free(rr_engine *e);

/* Scores a packed batch: logits[n_seq * n_labels], raw (no activation). Validates the batch
 * (RR_E_INVALID: n_tok over max_batch_tokens, a sequence of length 0 or over max_position,
 * a token id ≥ vocab_size, a type id ≥ type_vocab_size, non-monotone cu_seqlens). A pair's
 * logit does not depend on the rest of its batch. Allocates nothing. */
rr_status rr_engine_forward(rr_engine *e, const rr_batch *b, float *logits);

/* One-line description of where the engine runs ("cpu (2 threads, fp32)",
 * "cuda:0 NVIDIA H200 (fp16)"). */
const char *rr_engine_describe(const rr_engine *e);

/* The most tokens one batch may carry (opts.max_batch_tokens after defaults): the budget a
 * batcher packs to. */
int rr_engine_max_batch_tokens(const rr_engine *e);

/* The precision the engine computes in: RR_DTYPE_F32 on the CPU, opts.dtype on CUDA. */
rr_dtype rr_engine_dtype(const rr_engine *e);

/* "F32", "F16", "BF16", "INT8". */
const char *rr_dtype_name(rr_dtype d);

/* A precision as the tools take it (case-insensitive): "f32"/"fp32"/"float32",
 * "f16"/"fp16"/"float16", "bf16"/"bfloat16", "int8". RR_E_INVALID naming the text otherwise. */
rr_status rr_dtype_parse(const char *s, rr_dtype *out, rr_error *err);

/* ---------------------------------------------------------------------------------------
 * Convenience: score one query against n_docs passages (CLI, tests, benchmarks)
 *
 * Tokenizes the query once and each passage once, packs pairs into batches within the
 * engine's max_batch_tokens, and writes logits[n_docs] in input order. max_length 0 means
 * the model's; truncate 0 makes an over-long pair an RR_E_TOO_LONG error naming its
 * document index. With opts->chunk each document is scored in its windows (rr_doc_windows)
 * and logits[i] is their combination by opts->chunk_score. Allocates working buffers (not
 * for the server's request path).
 */
typedef rr_pair_opts rr_score_opts; /* max_length 0 → the model's */

rr_status rr_score_query(rr_engine *e, const rr_model *m, const char *query, size_t query_len,
                         const char *const *docs, const size_t *doc_lens, int n_docs,
                         const rr_score_opts *opts, float *logits, rr_error *err);

/* sigmoid(x) computed as sentence-transformers does for num_labels == 1. */
float rr_sigmoid(float x);

/* A document's place in a ranking. */
typedef struct rr_ranked {
    float logit;
    int32_t index;
} rr_ranked;

/* Ranks n logits best first into out[n]: descending logit, ties in input order (as
 * CrossEncoder.rank), NaN last. */
void rr_rank(const float *logits, int n, rr_ranked *out);

#ifdef __cplusplus
}
#endif
#endif /* RERANK_H */
