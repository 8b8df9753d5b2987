#!/usr/bin/env python3
"""make_seeds.py — writes the seed corpora of the fuzz targets into tests/fuzz/corpus/.

Seeds are small: excerpts of the test models' own files (config.json whole — a few hundred
bytes; tokenizer.json with its vocabulary cut to ~150 entries; the first lines of vocab.txt;
the real safetensors headers with every dimension shrunk to at most 2 and a few bytes of
data each, never the weights) and hand-written edge cases. Deterministic: running it again
rewrites the same bytes. It only writes the files it names; the regression seeds (inputs
that once found a bug, named regress-*) are committed by hand and left alone.

    python3 tests/fuzz/make_seeds.py [--models models]

The models come from scripts/make_models.py; without them only the hand-written seeds are
written. Multi-file targets (fuzz_tokenizer_json, fuzz_vocab_txt) take their files in one
input separated by FF FF (tests/fuzz/fuzz_tok_load.h):
    main file FF FF tokenizer_config.json FF FF special_tokens_map.json FF FF text
"""
import argparse
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEP = b"\xff\xff"


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def jdump(obj):
    return json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8")


def read(models, model, name):
    p = os.path.join(models, model, name)
    if not os.path.exists(p):
        return None
    with open(p, "rb") as f:
        return f.read()


# --- fuzz_tokenizer: texts ---------------------------------------------------------------

TEXTS = {
    "empty": b"",
    "hello": b"hello world",
    "sentence": b"How many people live in Berlin? Berlin has 3,520,031 inhabitants.",
    "pair": b"how do cats purr\nCats purr with the larynx and the diaphragm, unaffably.",
    "specials": b"[CLS] query [SEP] passage [SEP] [MASK] [PAD] [UNK] [sep] [Cls]",
    "specials-glued": b"a[SEP]b[CLS][CLS]c[MASK]##ing",
    "accents": "Café naïve résumé Ångström Øre ﬁ Straße ẞ".encode(),
    "combining": "e\u0301 a\u0308\u0304 o\u0328\u0301 i\u0307 \u0130stanbul".encode(),
    "nonmn-run": ("x" + "\U0001d165\U0001d16d" * 20 + "\U0001d166 y").encode(),
    "cjk": "中文分词 日本語のテキスト 한국어 텍스트 \U00020000\U0002b920".encode(),
    "hangul": "가각갂 각".encode(),
    "emoji": "😀 👍🏽 👨‍👩‍👧 🇩🇪 ✔︎".encode(),
    "whitespace": "a\u00a0b\u3000c\u2028d\u2029e\u0085f\tg\rh\x0bi\x0cj".encode(),
    "controls": b"a\x00b\x01c\x7fd\x1be" + "\u200b\u200d\ufeff\u00ad\ufffd".encode(),
    "bidi": "\u202eabc\u202c \u200fאבג\u200e عربى".encode(),
    "punct": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ¡¿«»—–…‘’“”„•·§¶".encode(),
    "long-word-100": b"a" * 100 + b" b",
    "long-word-101": b"a" * 101 + b" b",
    "long-word-unicode": ("é" * 120 + " z").encode(),
    "wordpiece": b"unaffable unbelievably antidisestablishmentarianism tokenization ##s",
    "digits": b"3.14159 1,000,000 2024-12-31 0x1F 1e10",
    "mixed-scripts": "Москва Αθήνα ירושלים القاهرة मुंबई กรุงเทพ".encode(),
    "long-pair": b"the quick brown fox " * 40 + b"\n" + b"jumps over the lazy dog " * 40,
    "query-only": b"a b c d e f g h i j k l m n o p\n",
    "passage-only": b"\nq r s t u v w x y z",
    "invalid-overlong": b"ok \xc0\x80 \xe0\x80\x80",
    "invalid-surrogate": b"ok \xed\xa0\x80\xed\xbf\xbf",
    "invalid-above-10ffff": b"ok \xf4\x90\x80\x80",
    "invalid-truncated": b"ok \xe2\x82",
    "invalid-continuation": b"\x80 ok",
    "invalid-ff": b"ok \xff\xfe",
    "max-codepoint": "\U0010ffff \U000e0001 \U0001f9ff".encode(),
}


def seeds_tokenizer(models):
    for name, data in TEXTS.items():
        write("fuzz_tokenizer", name, data)
    # a few texts of the golden corpus (adversarial Unicode, prose)
    golden = os.path.join(HERE, "..", "golden", "tokens.jsonl")
    if os.path.exists(golden):
        with open(golden, encoding="utf-8") as f:
            rows = [json.loads(line)["text"] for line in f]
        picked = [t for t in rows if len(t.encode()) <= 600]
        for i, t in enumerate(picked[:: max(1, len(picked) // 12)][:12]):
            write("fuzz_tokenizer", "golden-%02d" % i, t)


# --- fuzz_config_json ----------------------------------------------------------------------

def seeds_config(models):
    base = None
    for m in sorted(os.listdir(models)) if os.path.isdir(models) else []:
        text = read(models, m, "config.json")
        if text is not None:
            write("fuzz_config_json", "model-" + m, text)
            if base is None and b"Bert" in text:
                base = json.loads(text)
    if base is None:
        base = {"architectures": ["BertForSequenceClassification"], "model_type": "bert",
                "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
                "num_attention_heads": 12, "intermediate_size": 1536, "hidden_act": "gelu",
                "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12}

    def variant(name, **changes):
        c = dict(base)
        for k, v in changes.items():
            if v is ...:
                c.pop(k, None)
            else:
                c[k] = v
        write("fuzz_config_json", name, jdump(c))

    variant("electra-embedding-size", architectures=["ElectraForSequenceClassification"],
            model_type="electra", embedding_size=128)
    variant("one-label-st-sigmoid", num_labels=1, id2label={"0": "LABEL_0"},
            sentence_transformers={"activation_fn": "torch.nn.modules.activation.Sigmoid"})
    variant("legacy-identity", sbert_ce_default_activation_function=
            "torch.nn.modules.linear.Identity")
    variant("st-tanh", sentence_transformers={"activation_fn": "torch.nn.Tanh"})
    variant("three-labels", id2label={"0": "a", "1": "b", "2": "c"}, label2id={})
    variant("gelu-new", hidden_act="gelu_new")
    variant("relu", hidden_act="relu")
    variant("swish", hidden_act="swish")
    variant("hidden-act-number", hidden_act=3)
    variant("relative-key", position_embedding_type="relative_key")
    variant("position-null", position_embedding_type=None)
    variant("eps-1e-5", layer_norm_eps=1e-5)
    variant("eps-zero", layer_norm_eps=0)
    variant("eps-two", layer_norm_eps=2)
    variant("no-type-vocab", type_vocab_size=...)
    variant("no-hidden-size", hidden_size=...)
    variant("heads-not-dividing", num_attention_heads=7)
    variant("sizes-as-strings", hidden_size="384", vocab_size="30522")
    variant("size-fraction", intermediate_size=1536.5)
    variant("size-huge", vocab_size=2147483647, max_position_embeddings=1e300)
    variant("size-negative", num_hidden_layers=-6)
    variant("xlm-roberta", architectures=["XLMRobertaForSequenceClassification"])
    variant("architectures-empty", architectures=[])
    variant("architectures-string", architectures="BertForSequenceClassification")
    variant("num-labels-null", num_labels=None)
    write("fuzz_config_json", "empty-object", b"{}")
    write("fuzz_config_json", "array", b"[1, 2, 3]")
    write("fuzz_config_json", "truncated", jdump(base)[:150])
    write("fuzz_config_json", "nested", b'{"a": ' * 40 + b"1" + b"}" * 40)
    write("fuzz_config_json", "escapes",
          b'{"architectures": ["Bert\\u0046orSequenceClassification"], "model_type": "\\ud83d\\ude00"}')


# --- fuzz_tokenizer_json -------------------------------------------------------------------

WORDS = ["hello", "world", "the", "cat", "##s", "##ing", "un", "##aff", "##able", "how", "do",
         "pur", "##r", "berlin", "live", "people", "many", "in", "a", "b", "c", "##a", "##b",
         "!", "?", ",", ".", "中", "文", "é", "##é", "a", "##ly", "token", "##ization"]


def small_tokenizer_json(models, model):
    text = read(models, model, "tokenizer.json")
    if text is None:
        return None
    t = json.loads(text)
    vocab = t["model"]["vocab"]
    keep = {}
    for tok, i in vocab.items():
        if i < 6 or 100 <= i <= 103 or 999 <= i <= 1040 or tok in WORDS:
            keep[tok] = i
    t["model"]["vocab"] = keep
    return t


def tok_input(main, tconf=b"", stmap=b"", text=None):
    parts = [main, tconf, stmap] + ([text] if text is not None else [])
    while len(parts) > 1 and parts[-1] == b"" and text is None:
        parts.pop()
    return SEP.join(parts)


def seeds_tokenizer_json(models):
    t = small_tokenizer_json(models, "minilm-l6-bert")
    tconf = read(models, "minilm-l6-bert", "tokenizer_config.json") or b""
    stmap = read(models, "minilm-l6-bert", "special_tokens_map.json") or b""
    if t is None:  # no models: a hand-made tokenizer.json of the same shape
        t = {"version": "1.0", "truncation": None, "padding": None,
             "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False,
                               "rstrip": False, "normalized": False, "special": True}
                              for i, c in [(0, "[PAD]"), (1, "[UNK]"), (2, "[CLS]"),
                                           (3, "[SEP]"), (4, "[MASK]")]],
             "normalizer": {"type": "BertNormalizer", "clean_text": True,
                            "handle_chinese_chars": True, "strip_accents": None,
                            "lowercase": True},
             "pre_tokenizer": {"type": "BertPreTokenizer"},
             "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
             "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
             "model": {"type": "WordPiece", "unk_token": "[UNK]",
                       "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                       "vocab": {w: i for i, w in enumerate(
                           ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS)}}}
    W = "tokenizer_json"

    def put(name, tok, tc=b"", sm=b"", text=None):
        write("fuzz_" + W, name, tok_input(jdump(tok) if not isinstance(tok, bytes) else tok,
                                           tc, sm, text))

    def changed(path, value):
        c = json.loads(json.dumps(t))
        o = c
        for k in path[:-1]:
            o = o[k]
        if value is ...:
            o.pop(path[-1], None)
        else:
            o[path[-1]] = value
        return c

    put("minilm-small", t)
    put("minilm-small-all-files", t, tconf, stmap,
        "Hello, world! Unaffable cats purr in Berlin [SEP] 中文 é".encode())
    electra = small_tokenizer_json(models, "minilm-l6-electra")
    if electra is not None and electra != t:
        put("electra-small", electra)
    put("bert-processing", changed(["post_processor"],
                                   {"type": "BertProcessing", "sep": ["[SEP]", 102],
                                    "cls": ["[CLS]", 101]}))
    put("roberta-processing", changed(["post_processor"],
                                      {"type": "RobertaProcessing", "sep": ["</s>", 2],
                                       "cls": ["<s>", 0]}))
    put("no-padding", changed(["padding"], None))
    put("no-post-processor", changed(["post_processor"], ...))
    put("unigram", changed(["model", "type"], "Unigram"))
    put("bpe-normalizer", changed(["normalizer"], {"type": "NFC"}))
    put("whitespace-pretok", changed(["pre_tokenizer"], {"type": "Whitespace"}))
    put("prefix-other", changed(["model", "continuing_subword_prefix"], "@@"))
    put("max-chars-5", changed(["model", "max_input_chars_per_word"], 5), text=b"abcdefgh abc")
    put("max-chars-huge", changed(["model", "max_input_chars_per_word"], 5000))
    put("unk-missing", changed(["model", "unk_token"], "<unk>"))
    put("clean-text-off", changed(["normalizer", "clean_text"], False), text=b"a\x01b\x00c")
    added = json.loads(json.dumps(t["added_tokens"]))
    put("added-multiword", changed(["added_tokens"], added + [
        {"id": 1000, "content": "hello world", "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": False}]), text=b"say hello world!")
    put("added-lstrip", changed(["added_tokens"], added + [
        {"id": 1001, "content": "<x>", "lstrip": True, "special": True}]))
    put("added-normalized", changed(["added_tokens"], added + [
        {"id": 1002, "content": "Abc", "special": False}]))
    put("added-unicode", changed(["added_tokens"], added + [
        {"id": 1003, "content": "é中", "normalized": False, "special": True}]),
        text="xé中y é 中".encode())
    put("added-not-array", changed(["added_tokens"], {"id": 1}))
    put("vocab-bad-id", changed(["model", "vocab", "hello"], -3))
    put("vocab-float-id", changed(["model", "vocab", "hello"], 7.5))
    put("template-single-only", changed(["post_processor", "pair"], []))
    cfg = json.loads(tconf) if tconf else {}
    cfg.update({"do_lower_case": False, "strip_accents": True, "tokenize_chinese_chars": False,
                "model_max_length": 1e30})
    put("config-overrides", t, jdump(cfg), b"", "Ünïcödé 中文 MiXeD".encode())
    put("config-invalid", t, b'{"do_lower_case": tru')
    put("stmap-dict-tokens", t, b"", b'{"pad_token": {"content": "[PAD]"}, "unk_token": "[UNK]"}')
    write("fuzz_" + W, "empty", b"")
    write("fuzz_" + W, "empty-object", b"{}")
    write("fuzz_" + W, "model-only", b'{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}}')
    write("fuzz_" + W, "minimal-valid", jdump({
        "normalizer": {"type": "BertNormalizer"}, "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
        "model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "a": 3,
                                                 "##a": 4}}}) + SEP + SEP + SEP + b"aaa b")


# --- fuzz_vocab_txt ------------------------------------------------------------------------

def seeds_vocab_txt(models):
    W = "fuzz_vocab_txt"
    text = read(models, "minilm-l6-bert", "vocab.txt")
    tconf = read(models, "minilm-l6-bert", "tokenizer_config.json") or b""
    stmap = read(models, "minilm-l6-bert", "special_tokens_map.json") or b""
    if text is not None:
        lines = text.split(b"\n")
        head = lines[:106] + lines[999:1040]
        head += [w.encode() for w in WORDS if w.encode() in lines]
    else:
        head = [b"[PAD]"] + [b"[unused%d]" % i for i in range(99)] + \
               [b"[UNK]", b"[CLS]", b"[SEP]", b"[MASK]"] + [w.encode() for w in WORDS]
    vocab = b"\n".join(head) + b"\n"
    write(W, "minilm-head", vocab)
    write(W, "minilm-head-all-files", tok_input(vocab, tconf, stmap,
                                                "Hello, unaffable world! [SEP] 中文".encode()))
    write(W, "crlf", vocab.replace(b"\n", b"\r\n"))
    write(W, "cr", vocab.replace(b"\n", b"\r"))
    write(W, "no-final-newline", vocab.rstrip(b"\n"))
    write(W, "blank-lines", vocab.replace(b"[MASK]\n", b"[MASK]\n\n\n"))
    write(W, "duplicates", vocab + b"hello\nhello\n[UNK]\n")
    write(W, "unicode-lines", vocab + "é\n##é\n中\n文\n##ß\n\u00a0\n\x00\n##\n".encode())
    write(W, "long-line", vocab + b"x" * 300 + b"\n##" + b"y" * 5000 + b"\n")
    write(W, "no-unk", b"[CLS]\n[SEP]\nthe\n")
    write(W, "minimal", b"[UNK]\n[CLS]\n[SEP]\na\n##a\n")
    write(W, "empty", b"")
    write(W, "only-newlines", b"\n\n\n")
    write(W, "invalid-utf8", vocab[:200] + b"\xc3\x28\n")
    cfg = json.loads(tconf) if tconf else {}
    cfg2 = dict(cfg, unk_token="<unk>", cls_token={"content": "<s>"},
                additional_special_tokens=["<extra>", {"content": "[X]"}])
    write(W, "config-roles", tok_input(vocab, jdump(cfg2), b"", b"<s> hi <extra> [X] <unk>"))
    cfg3 = dict(cfg, added_tokens_decoder={
        "0": {"content": "[PAD]", "lstrip": False, "normalized": False, "rstrip": False,
              "single_word": False, "special": True},
        "100": {"content": "[UNK]", "special": True, "normalized": False},
        "30522": {"content": "<new>", "special": True, "normalized": False}})
    write(W, "config-added-decoder", tok_input(vocab, jdump(cfg3), b"", b"a <new> b"))
    cfg4 = dict(cfg, added_tokens_decoder={"7": {"content": "[X]", "lstrip": True,
                                                  "special": True}})
    write(W, "config-added-lstrip", tok_input(vocab, jdump(cfg4)))
    write(W, "stmap-additional", tok_input(vocab, b"", b'{"additional_special_tokens": '
                                           b'["<a>", "<b>"], "unk_token": "[UNK]"}', b"x<a>y<b>"))
    write(W, "config-lowercase-off", tok_input(vocab, b'{"do_lower_case": false, '
                                               b'"model_max_length": 128}', b"", b"Hello World"))


# --- fuzz_safetensors ----------------------------------------------------------------------

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "U64": 8, "I32": 4, "U32": 4,
              "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1, "F8_E5M2": 1, "F8_E4M3": 1,
              "F8_E8M0": 1}


def st_file(tensors, metadata=None, pad=True, order=None):
    """tensors: list of (name, dtype, shape); data laid out in list order, filled with a
    counting byte pattern. The header lists them in `order` (default: sorted by name)."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    entries = {}
    for name, dtype, shape in tensors:
        n = DTYPE_SIZE[dtype]
        for s in shape:
            n *= s
        entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + n]}
        data += bytes((len(data) + i) & 0xFF for i in range(n))
    for name in (order or sorted(entries)):
        header[name] = entries[name]
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def real_header(models, model):
    p = os.path.join(models, model, "model.safetensors")
    if not os.path.exists(p):
        return None
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def seeds_safetensors(models):
    W = "fuzz_safetensors"
    for model in ("tiny-bert-random", "minilm-l6-bert-f16", "minilm-l6-electra"):
        h = real_header(models, model)
        if h is None:
            continue
        # the real names, dtypes and data order; every dimension shrunk to at most 2
        items = sorted(((k, v) for k, v in h.items() if k != "__metadata__"),
                       key=lambda kv: kv[1]["data_offsets"][0])
        tensors = [(k, v["dtype"], [min(s, 2) for s in v["shape"]]) for k, v in items]
        write(W, "shrunk-" + model, st_file(tensors, h.get("__metadata__"),
                                            order=[k for k, _ in items]))
    small = [("bert.embeddings.LayerNorm.weight", "F32", [2]),
             ("bert.embeddings.word_embeddings.weight", "F16", [3, 2]),
             ("classifier.bias", "BF16", [1])]
    write(W, "three", st_file(small, {"format": "pt"}))
    write(W, "three-unpadded", st_file(small, None, pad=False))
    write(W, "three-header-reversed", st_file(small, {"format": "pt"},
                                              order=[n for n, _, _ in reversed(small)]))
    write(W, "every-dtype", st_file([("t_" + d.lower(), d, [2]) for d in DTYPE_SIZE]))
    write(W, "scalar-and-empty", st_file([("s", "F32", []), ("z", "F32", [0, 4]),
                                          ("z2", "I64", [3, 0]), ("v", "U8", [3])]))
    write(W, "eight-dims", st_file([("t", "U8", [1, 1, 2, 1, 1, 1, 2, 1])]))
    write(W, "empty-header", st_file([]))
    write(W, "empty-header-tight", struct.pack("<Q", 2) + b"{}")
    write(W, "metadata-only", st_file([], {"format": "pt", "note": "x" * 20}))
    good = st_file(small, {"format": "pt"})
    n = struct.unpack("<Q", good[:8])[0]
    hdr = json.loads(good[8:8 + n])

    def mutated(name, fn, data_extra=b""):
        h2 = json.loads(json.dumps(hdr))
        fn(h2)
        hb = json.dumps(h2, separators=(",", ":")).encode()
        hb += b" " * (-len(hb) % 8)
        write(W, name, struct.pack("<Q", len(hb)) + hb + good[8 + n:] + data_extra)

    mutated("gap", lambda h: h["classifier.bias"].update(data_offsets=[16, 18]))
    mutated("overlap", lambda h: h["classifier.bias"].update(data_offsets=[6, 8]))
    mutated("offsets-outside", lambda h: h["classifier.bias"].update(data_offsets=[20, 99]))
    mutated("offsets-reversed", lambda h: h["classifier.bias"].update(data_offsets=[20, 18]))
    mutated("numel-mismatch", lambda h: h["classifier.bias"].update(shape=[2]))
    mutated("unknown-dtype", lambda h: h["classifier.bias"].update(dtype="Q4"))
    mutated("nine-dims", lambda h: h["classifier.bias"].update(shape=[1] * 9))
    mutated("negative-dim", lambda h: h["classifier.bias"].update(shape=[-1]))
    mutated("fraction-dim", lambda h: h["classifier.bias"].update(shape=[1.5]))
    mutated("huge-dims", lambda h: h["classifier.bias"].update(shape=[2 ** 40, 2 ** 40, 0]))
    mutated("entry-not-object", lambda h: h.update({"x": [1, 2]}))
    mutated("unused-tail", lambda h: None, b"\x00\x00\x00\x00")
    dup = good[:8 + n].replace(b'"classifier.bias"', b'"bert.embeddings.LayerNorm.weight"')
    write(W, "duplicate-name", dup + good[8 + n:])
    write(W, "trailing-garbage", struct.pack("<Q", n + 8) + good[8:8 + n] + b"xxxxxxxx" +
          good[8 + n:])
    write(W, "header-too-long", struct.pack("<Q", 1 << 40) + good[8:])
    write(W, "header-past-end", struct.pack("<Q", len(good)) + good[8:])
    write(W, "seven-bytes", b"\x02\x00\x00\x00\x00\x00\x00")
    write(W, "header-array", struct.pack("<Q", 8) + b"[1,2,3] ")


# --- fuzz_grpc_intake / fuzz_http_intake: requests ---------------------------------------------

def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def fb(num, data):
    """A length-delimited protobuf field."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return varint(num << 3 | 2) + varint(len(data)) + data


def fv(num, v):
    """A varint protobuf field."""
    return varint(num << 3) + varint(v)


def seeds_grpc_intake():
    """Byte 0 picks the message (fuzz_grpc_intake.c), then the message's bytes."""
    doc = lambda text, id_=None: fb(2, fb(1, text) + (fb(2, id_) if id_ is not None else b""))
    trunc = lambda disabled=0, max_length=0, direction=0: fb(5, fv(1, disabled) + fv(2, max_length) + fv(3, direction))
    rerank = {
        "plain": fb(1, "how do cats purr") + doc("Cats purr.") + doc("Tides follow the moon."),
        "ids-top-n": fb(1, "q") + doc("a", "id-1") + doc("b", "id-2") + fv(3, 1) + fv(4, 1),
        "top-n-huge": fb(1, "q") + doc("a") + fv(3, 2 ** 31),
        "top-n-negative": fb(1, "q") + doc("a") + fv(3, -1),
        "truncation": fb(1, "q") + doc("a b c") + trunc(1, 16, 1),
        "bad-direction": fb(1, "q") + doc("a") + trunc(0, 0, 7),
        "nul": fb(1, "q\x00") + doc("a\x00b", "x\x00y"),
        "bad-utf8-id": fb(1, "q") + doc("a", b"\xff\xfe"),
        "unknown-fields": fb(1, "q") + doc("a") + fv(15, 0) * 8 + fb(99, "zz"),
        # Chunking {mode CHUNK, max_chunks_per_doc, overlap, score MEAN}, max_tokens_per_doc
        "chunk": fb(1, "q") + doc("a b c d e f g h i j k l") + trunc(0, 8, 0) +
                 fb(6, fv(1, 2) + fv(2, 3) + fv(3, 1) + fv(4, 2)) + fv(7, 9),
        "chunk-bad-mode": fb(1, "q") + doc("a") + fb(6, fv(1, 7) + fv(4, 9)),
        "chunk-huge": fb(1, "q") + doc("a") + fb(6, fv(1, 2) + fv(2, 2 ** 32 - 1) + fv(3, 2 ** 32 - 1)) +
                      fv(7, 2 ** 32 - 1),
        "empty": b"",
    }
    stream = {
        "open": fb(1, fb(1, "q") + fv(2, 3) + fv(3, 1) + fb(4, fv(2, 64))),
        "open-chunk": fb(1, fb(1, "q") + fb(4, fv(2, 6)) + fb(5, fv(1, 2) + fv(2, 4)) + fv(6, 5)) +
                      fb(2, doc("one two three four five six seven eight nine")),
        "batch": fb(2, doc("a") + doc("b", "id")),
        "empty-batch": fb(2, b""),
        "two-batches": fb(2, doc("a")) + fb(2, doc("b")),
    }
    tei = {
        "plain": fb(1, "q") + fb(2, "a") + fb(2, "b") + fv(3, 1) + fv(4, 1) + fv(5, 1) + fv(6, 1),
        "no-texts": fb(1, "q"),
        "bad-direction": fb(1, "q") + fb(2, "a") + fv(6, 9),
    }
    tei_stream = {"plain": fb(1, "q") + fb(2, "a") + fv(3, 1) + fv(5, 1), "empty-query": fb(2, "a")}
    for name, m in rerank.items():
        write("fuzz_grpc_intake", "rerank-" + name, b"\x00" + m)
    for name, m in stream.items():
        write("fuzz_grpc_intake", "stream-" + name, b"\x01" + m)
    for name, m in tei.items():
        write("fuzz_grpc_intake", "tei-" + name, b"\x02" + m)
    for name, m in tei_stream.items():
        write("fuzz_grpc_intake", "tei-stream-" + name, b"\x03" + m)
    write("fuzz_grpc_intake", "health", b"\x04" + fb(1, "rerank.v1.Reranker"))
    write("fuzz_grpc_intake", "reflection", b"\x05" + fb(1, "host") + fb(4, "rerank.v1.Reranker"))


def seeds_http_intake():
    """Byte 0 picks the route (mod 3: /rerank, /v1/rerank, /v2/rerank), then the body."""
    bodies = {
        "tei": (0, {"query": "how do cats purr", "texts": ["Cats purr.", "Tides."], "raw_scores": True,
                    "return_text": True, "truncate": False, "truncation_direction": "left"}),
        "cohere": (1, {"model": "m", "query": "q", "documents": ["a", {"text": "b"}], "top_n": 1,
                       "return_documents": True}),
        "documents-on-rerank": (0, {"query": "q", "documents": ["a"]}),
        "top-n-huge": (1, {"query": "q", "documents": ["a"], "top_n": 1e300}),
        "nul": (0, {"query": "q", "texts": ["a\u0000b"]}),
        "wrong-types": (0, {"query": 3, "texts": "a"}),
        "empty": (0, {"query": "q", "texts": []}),
        "chunk-tei": (0, {"query": "q", "texts": ["a b c d e f g h i j"], "long_documents": "chunk",
                          "max_chunks_per_doc": 3, "chunk_overlap": 1, "chunk_score": "mean",
                          "max_tokens_per_doc": 7}),
        "chunk-cohere-v2": (2, {"query": "q", "documents": ["a b c d e f"], "max_chunks_per_doc": 2,
                                "max_tokens_per_doc": 4096, "return_documents": True}),
        "rank-fields": (1, {"query": "q", "documents": [{"title": "t", "text": "x", "n": 1}, "s"],
                            "rank_fields": ["title", "text", "missing"], "return_documents": True}),
        "chunk-bad": (1, {"query": "q", "documents": ["a"], "long_documents": "split",
                          "chunk_score": 7, "max_chunks_per_doc": -1}),
    }
    for name, (route, body) in bodies.items():
        write("fuzz_http_intake", name, bytes([route]) + json.dumps(body).encode())
    write("fuzz_http_intake", "nested", b"\x00" + b"[" * 40 + b"]" * 40)
    write("fuzz_http_intake", "duplicate-key", b'\x00{"query":"a","query":"b","texts":["x"]}')
    write("fuzz_http_intake", "bad-utf8", b'\x00{"query":"q","texts":["\xff"]}')
    write("fuzz_http_intake", "surrogate", b'\x01{"query":"q","documents":["\\ud800"]}')


# --- fuzz_tokenizer_json: SentencePiece Unigram (XLM-R) -------------------------------------

# A few normalization rules (hex code points, tab, replacement) compiled by SentencePiece's own
# trainer into a ~1 KB Precompiled charsmap, so the seeds carry a real double-array trie
# without XLM-R's 320 KB one: a multi-character key (fullwidth A + combining acute), a
# deletion (U+200B), an expansion (U+3392 → "kg") and whitespace folding.
CHARSMAP_RULES = "41\t61\nFF21\t41\nFF21 301\t41 301\n2460\t31\n3392\t6B 67\n200B\t\n9\t20\nA\t20\n"


def tiny_charsmap():
    try:
        import tempfile
        import sentencepiece as spm
        from sentencepiece import sentencepiece_model_pb2 as pb
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as d:
        rules, corpus = os.path.join(d, "rules.tsv"), os.path.join(d, "corpus.txt")
        with open(rules, "w") as f:
            f.write(CHARSMAP_RULES)
        with open(corpus, "w") as f:
            f.write("\n".join(["hello world a b c Berlin kg ABC"] * 50))
        spm.SentencePieceTrainer.train(input=corpus, model_prefix=os.path.join(d, "m"), vocab_size=30,
                                       model_type="unigram", normalization_rule_tsv=rules,
                                       num_threads=1, minloglevel=2, hard_vocab_limit=False)
        m = pb.ModelProto()
        with open(os.path.join(d, "m.model"), "rb") as f:
            m.ParseFromString(f.read())
        return m.normalizer_spec.precompiled_charsmap


def seeds_unigram():
    import base64
    ties = os.path.join(HERE, "..", "golden", "unigram_ties.json")
    if not os.path.exists(ties):
        return
    with open(ties, encoding="utf-8") as f:
        t = json.loads(json.load(f)["tokenizer_json"])
    W = "fuzz_tokenizer_json"
    text = "Ａ\u0301 ①㎏ a\u200bb  x <mask> y </s> ＜s＞ ▁ 東京 ".encode()
    xlmr_conf = jdump({"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512})
    file_conf = jdump({"tokenizer_class": "PreTrainedTokenizerFast", "add_prefix_space": False})

    def put(name, tok, tc=b""):
        write(W, name, tok_input(jdump(tok), tc, b"", text))

    put("unigram-ties", t)
    put("unigram-ties-file", t, file_conf)
    cm = tiny_charsmap()
    if cm is not None:
        c = json.loads(json.dumps(t))
        c["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(cm).decode()},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]}
        put("unigram-precompiled", c, xlmr_conf)
        put("unigram-precompiled-file", c, file_conf)
        c2 = json.loads(json.dumps(c))
        c2["normalizer"]["normalizers"][1:] = [
            {"type": "Strip", "strip_left": False, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "\u2581"},
            {"type": "Replace", "pattern": {"String": "``"}, "content": "\""}]
        c2["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"},
            {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}]}
        put("unigram-strip-wsplit-file", c2, file_conf)
    c3 = json.loads(json.dumps(t))
    c3["model"]["byte_fallback"] = True
    c3["model"]["vocab"] += [["<0x%02X>" % b, -20.0] for b in range(256)]
    put("unigram-byte-fallback-file", c3, file_conf)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=os.path.join(HERE, "..", "..", "models"))
    args = ap.parse_args()
    seeds_tokenizer(args.models)
    seeds_config(args.models)
    seeds_tokenizer_json(args.models)
    seeds_unigram()
    seeds_vocab_txt(args.models)
    seeds_safetensors(args.models)
    seeds_grpc_intake()
    seeds_http_intake()
    for t in sorted(os.listdir(os.path.join(HERE, "corpus"))):
        d = os.path.join(HERE, "corpus", t)
        files = os.listdir(d)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in files)
        print("%-22s %3d seeds, %6d bytes" % (t, len(files), size))


if __name__ == "__main__":
    main()
