#!/usr/bin/env python3
"""make_golden_xlmr.py — writes the XLM-R (Unigram) golden fixtures of tests/golden/.

Runs in .venv-oracle (torch CPU, transformers, sentence-transformers, tokenizers; plus
sentencepiece and protobuf for the converter check), offline, on the xlmr-small and
xlmr-long folders built by scripts/make_models.py. Deterministic: texts are literals below,
seeded generators and tests/golden/corpus.py; torch runs on one thread.

Two tokenizations are recorded, because they differ and both are "the HF reference":
  - the tokenizer.json pipeline, run by `tokenizers.Tokenizer.from_file` (Precompiled +
    Replace(" {2,}" -> " ") + Metaspace): what the file specifies, what transformers 4.x's
    AutoTokenizer and text-embeddings-inference run. Fields without a suffix.
  - transformers 5.x's AutoTokenizer, which CrossEncoder uses: for XLMRobertaTokenizer it
    keeps only the vocab, the charsmap and the post-processor of tokenizer.json and rebuilds
    the rest itself (normalizer Precompiled alone, pre-tokenizer WhitespaceSplit + Metaspace;
    transformers/models/xlm_roberta/tokenization_xlm_roberta.py). Trailing spaces, spaces
    between added tokens and U+0085 then tokenize differently. Fields `*_transformers`,
    written only where the ids differ from the first.

Writes (format: tests/golden/README.md):
  xlmr_tokens.jsonl            {"text", "ids", "offsets"[, "ids_transformers"]} per text,
                               add_special_tokens=False.
  xlmr_pair_tokens.jsonl       {"query", "doc", "max_length", "input_ids"[,
                               "input_ids_transformers"]}: pairs with <s> </s> </s> </s>,
                               truncation longest_first at max_length.
  xlmr-small/pairs.jsonl,      {"qid", "query", "doc", "input_ids", "token_type_ids" (all 0),
  xlmr-long/pairs.jsonl         "logit"[, "input_ids_transformers", "logit_transformers"],
                               "score"}: transformers fp32 logits for each tokenization, and
                               the CrossEncoder score (its default activation, Sigmoid).
  xlmr-small/layers.json       hidden states for one pair, as <model>/layers.json.

Also checks (asserts) that: tokenizers reads each tokenizer.json back to the same JSON;
every part of tokenizer.json but the normalizer equals what transformers'
XLMRobertaConverter writes for sentencepiece.bpe.model; both folders tokenize identically
(their files differ only in the Metaspace JSON form); CrossEncoder loads the folders, picks
max_length 512 / 8192 and Sigmoid, and its logits equal transformers'.

Usage: HF_HUB_OFFLINE=1 .venv-oracle/bin/python tests/golden/make_golden_xlmr.py
       [--models models]
"""

import argparse
import base64
import json
import math
import os
import random
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import CrossEncoder  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import corpus  # noqa: E402
import xlmr_corpus  # noqa: E402
from make_golden import f32, round7, write_jsonl  # noqa: E402  (the same number formats)

SEED = 20261207
FILE_CAP = 4 * 1024 * 1024  # nothing committed may reach 4 MiB
CE_TOL = 1e-5  # relative to max(1, |logit|), as make_golden.py
PAIR_MAX_LENGTHS = (16, 32, 512)
MODELS = {"xlmr-small": 512, "xlmr-long": 8192}  # name: CrossEncoder's max_length

# Real sentences in many languages, written for this file (not in the training text).
SENTENCES = [
    "How many people live in Berlin?",
    "Berlin is well known for its museums.",
    "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 "
    "square kilometers.",
    "The quick brown fox jumps over the lazy dog.",
    "Wie viele Menschen leben in Berlin? Die Stadt hat etwa 3,7 Millionen Einwohner.",
    "Größere Städte wie München und Köln haben U-Bahnen; Straßenbahnen fahren überall.",
    "Combien de personnes vivent à Paris ? L'agglomération compte plus de dix millions "
    "d'habitants.",
    "Le cœur a ses raisons que la raison ne connaît point.",
    "¿Cuántas personas viven en Madrid? Más de tres millones, según el censo de 2021.",
    "A ação da polícia foi elogiada pela população de São Paulo.",
    "La città di Firenze è famosa per il Rinascimento e per la sua università.",
    "Hoeveel mensen wonen er in Amsterdam? Ongeveer negenhonderdduizend.",
    "Ile osób mieszka w Warszawie? Około 1,8 miliona; źródło: GUS.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "İstanbul'da kaç kişi yaşıyor? Yaklaşık on altı milyon kişi.",
    "Hà Nội là thủ đô của nước Cộng hòa Xã hội chủ nghĩa Việt Nam.",
    "Сколько людей живёт в Москве? Около тринадцати миллионов человек.",
    "Київ — столиця України, місто на Дніпрі.",
    "София е столицата на България.",
    "Πόσοι άνθρωποι ζουν στην Αθήνα; Περίπου τρία εκατομμύρια.",
    "Ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν.",
    "كم عدد سكان القاهرة؟ يبلغ عدد سكانها أكثر من عشرين مليون نسمة.",
    "مرحبًا بالعالم! هذه جملة باللغة العربية مع تشكيل: كَتَبَ الوَلَدُ الدَّرْسَ.",
    "כמה אנשים גרים בירושלים? כמיליון תושבים.",
    "تهران پایتخت ایران است.",
    "दिल्ली में कितने लोग रहते हैं? लगभग तीन करोड़।",
    "ঢাকা বাংলাদেশের রাজধানী।",
    "சென்னை தமிழ்நாட்டின் தலைநகரம்.",
    "กรุงเทพมหานครมีประชากรประมาณสิบล้านคน",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ แต่เว้นวรรคระหว่างประโยค",
    "北京有多少人口？大约两千一百万人。",
    "柏林以其博物馆而闻名。",
    "東京には何人住んでいますか？約千四百万人です。",
    "カタカナとひらがなと漢字が混ざった日本語の文章。",
    "서울에는 몇 명이 살고 있습니까? 약 천만 명입니다.",
    "თბილისი საქართველოს დედაქალაქია.",
    "Երևանը Հայաստանի մայրաքաղաքն է։",
    "አዲስ አበባ የኢትዮጵያ ዋና ከተማ ናት።",
    "ພາສາລາວ", "မြန်မာဘာသာ", "ភាសាខ្មែរ", "བོད་ཡིག", "සිංහල",
    "Reykjavík er höfuðborg Íslands.",
    "Helsinki on Suomen pääkaupunki.",
    "Budapest Magyarország fővárosa.",
    "București este capitala României.",
    "Tiếng Việt có dấu: ắ ằ ẳ ẵ ặ ố ồ ổ ỗ ộ.",
    "def rerank(query: str, docs: list[str]) -> list[float]:",
    "SELECT id, score FROM results WHERE score > 0.5 ORDER BY score DESC LIMIT 10;",
    "https://huggingface.co/BAAI/bge-reranker-v2-m3?x=1&y=2#readme",
    "Email me at jane.doe@example.com or call +49 30 1234567.",
    "Price: €1.299,00 (incl. 19 % MwSt.) — or $1,399.00 in the US.",
    "Mixed: Berlin 柏林 Берлин برلين ברלין बर्लिन เบอร์ลิน 베를린 ベルリン.",
]

# The adversarial texts of the brief (fidelity spec §6): normalization, whitespace, special
# tokens, lattice corner cases.
ADVERSARIAL = [
    # combining marks; the grapheme quirk of spec §6.2 (fullwidth letter + combining acute)
    "e\u0301", "cafe\u0301", "Ａ\u0301", "Ａ\u0301Ｂ\u0301", "ｅ\u0301ｘ", "x Ａ\u0301 y",
    "a\u0301\u0302\u0303\u0304", "\u0301", " \u0301", "ก\u0e31\u0e49", "ñ n\u0303",
    "Ｇ\u0308ｒｏ\u0308ß", "ｶ\u3099", "ｶﾞ", "か\u3099", "Å Å Å", "\u1100\u1161\u11a8",
    "한\u0301", "ﾊﾟﾝ", "ア\u0301", "Ω\u0301", "\u0915\u093c", "\u0929",
    # NFKC-sensitive compatibility characters
    "ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ", "① ② ⑩ ⑳ ㉑", "㎏ ㎞ ㎝ ㎡ ㏄", "x² y³ z⁴ ⁰¹ₐ ₂", "½ ⅓ ¼ ⅞", "Ⅻ ⅻ",
    "㈱ ㍻ ㋿", "℡ № ™ ℃ ℉", "ＡＢＣ１２３ｘｙｚ", "！？（）［］｛｝", "ｶﾀｶﾅ ﾊﾝｶｸ", "ｰ",
    "\u3000全角スペース\u3000", "𝐛𝐨𝐥𝐝 𝔘𝔫𝔦 𝟘𝟙𝟚", "ǅ ǈ ǋ", "ŉ ſ ẛ", "…", "‥", "‼ ⁇ ⁈",
    "µ Ω K Å", "\ufb01\u0301", "ﬁ\u0301", "Ⓐⓑⓒ", "㋀ ㏠", "⒈ ⒉ ⑴", "㍱", "ﾟﾞ",
    # control characters, zero-width, BOM, soft hyphen, odd spaces
    "tab\there", "new\nline", "cr\rhere", "a\r\nb", "nul\x00here", "\x00", "vt\x0bhere",
    "us\x1fhere", "del\x7fhere", "zw\u200bsp", "\u200b", "zwnj\u200cx", "zwj\u200dx",
    "\ufeffbom", "bom\ufeffmid", "soft\u00adhyphen", "\u00ad", "nel\u0085x", "c1\u0080\u009fx",
    "nbsp\u00a0x", "ideo\u3000x", "ls\u2028ps\u2029x", "thin\u2009x", "ogham\u1680x",
    "narrow\u202fx", "\u2066isolate\u2069", "\u202ertl\u202c", "lrm\u200ex\u200f",
    "\ufffd", "a\ufffdb", "\U000e0041tag", "\ue000pua", "\U0010ffff", "\ud7ff",
    # runs of spaces, leading and trailing spaces, whitespace only
    "two  spaces", "three   spaces", "many          spaces", " leading", "  leading two",
    "trailing ", "trailing two  ", " both ", "   ", " ", "\t", "\n", " \t\n ", "\u3000",
    "a \t b", "a\t\tb", "a \n\n b", "end\n", "x  \u3000  y",
    # literal special tokens (added tokens are matched before normalization)
    "<s>", "</s>", "<pad>", "<unk>", "<mask>", "a <mask>", "a     <mask> b", "a\t<mask>",
    "a <mask><mask> b", "<mask>start", " <mask>", "x<s>y", "x </s> y", "<s></s><pad>",
    "<unk> <pad>", "q <pad> d", "<pad><pad>x", "<S>", "< s >", "<s", "s>", "<<s>>",
    "＜s＞", "＜/s＞", "＜mask＞", "＜pad＞ x", "x＜unk＞", "<ｓ>",
    # the ▁ character itself
    "▁", "▁▁", "▁x", "x▁y", "x ▁ y", "▁ ▁", "__init__", "a▁▁▁b",
    # emoji and ZWJ sequences
    "😀", "👍🏽", "👨\u200d👩\u200d👧\u200d👦 family", "🏳️\u200d🌈", "🇩🇪🇫🇷🇯🇵", "❤️", "❤\ufe0f",
    "1\ufe0f\u20e3", "🧑🏿\u200d🚀", "hello😀world", "😀😀😀😀😀", "🫠🫡🩷",
    # long words, repeated characters
    "a" * 100, "a" * 1000, "ab" * 300, "中" * 200, "Donaudampfschifffahrtsgesellschaftskapitän",
    "pneumonoultramicroscopicsilicovolcanoconiosis", "x" + "\u0301" * 50,
    "ก" * 150, "1" * 80, "3.14159265358979323846264338327950288419716939937510",
    "-" * 60, "!!!???...,,,;;;", "....", "«»„“”‘’", "$$$ ### @@@",
    # empty
    "",
]


def log(msg):
    print(f"make_golden_xlmr: {msg}", flush=True)


# ---------------------------------------------------------------------------------------
# Texts


def generated_sentences(n):
    """n sentences from xlmr_corpus's word lists with another seed than the training text."""
    rng = random.Random(SEED)
    langs = sorted(xlmr_corpus.WORDS)
    draws = {lang: xlmr_corpus._zipf_sampler(rng, xlmr_corpus.WORDS[lang].split())
             for lang in langs}
    return [xlmr_corpus._sentence(rng, lang, draws[lang])
            for lang in (langs[i % len(langs)] for i in range(n))]


def long_text(rng, pool, n_chars):
    parts, n = [], 0
    while n < n_chars:
        p = rng.choice(pool)
        parts.append(p)
        n += len(p) + 1
    return " ".join(parts)


def golden_texts():
    """(texts, long texts). Several hundred: real sentences, generated sentences, the
    adversarial list, corpus.CATALOGUE (the BERT set, many scripts), 120 of corpus.py's
    seeded mixtures; long texts from ~600 to over 9000 tokens."""
    gen = generated_sentences(200)
    prose = corpus.prose()
    mixtures = corpus.adversarial(prose)[len(corpus.CATALOGUE):][:120]
    texts = SENTENCES + ADVERSARIAL + gen + list(corpus.CATALOGUE) + mixtures
    rng = random.Random(SEED + 1)
    pool = SENTENCES + gen
    longs = [long_text(rng, pool, n) for n in (2500, 8000, 20000, 45000)]
    longs.append(long_text(rng, [p for p in prose if len(p) > 200], 40000))
    seen, out = set(), []
    for t in texts + longs:
        if t not in seen:
            seen.add(t)
            out.append(t)
    train = set(xlmr_corpus.lines())
    used = [t for t in out if t in train]
    assert not used, f"golden texts that are training lines: {used[:5]}"
    return out


# ---------------------------------------------------------------------------------------
# Tokenizer checks


def ulps_apart(a, b):
    ia = np.array([a], np.float64).view(np.int64)[0]
    ib = np.array([b], np.float64).view(np.int64)[0]
    return abs(int(ia) - int(ib))


def check_tokenizer_files(models_dir):
    """Asserts the tokenizer.json files are what tokenizers and transformers' converter
    make of them; returns the parsed files."""
    small = os.path.join(models_dir, "xlmr-small")
    with open(os.path.join(small, "tokenizer.json"), encoding="utf-8") as f:
        text = f.read()
    mine = json.loads(text)
    back = json.loads(Tokenizer.from_file(os.path.join(small, "tokenizer.json")).to_str())
    # tokenizers parses floats with serde_json's fast path, which is not always correctly
    # rounded: a score can come back 1 ULP away (then it also prints differently).
    n_off = 0
    for (p1, s1), (p2, s2) in zip(mine["model"]["vocab"], back["model"]["vocab"]):
        assert p1 == p2 and ulps_apart(s1, s2) <= 1, (p1, s1, s2)
        n_off += s1 != s2
    log(f"tokenizers read {n_off} of {len(mine['model']['vocab'])} scores 1 ULP away from "
        "the decimal in the file (serde_json float parsing)")
    mine_cmp = dict(mine, model=dict(mine["model"], vocab=None))
    back_cmp = dict(back, model=dict(back["model"], vocab=None))
    assert mine_cmp == back_cmp, "tokenizers does not read tokenizer.json back unchanged"

    # transformers' converter on the SentencePiece model (needs sentencepiece + protobuf).
    from transformers.convert_slow_tokenizer import XLMRobertaConverter

    class Original:  # the slow-tokenizer attributes the converter reads
        vocab_file = os.path.join(small, "sentencepiece.bpe.model")
        add_prefix_space = True
        legacy = True

        @staticmethod
        def convert_tokens_to_ids(t):
            return {"<s>": 0, "</s>": 2}[t]

    conv = json.loads(XLMRobertaConverter(Original()).converted().to_str())
    assert conv["model"]["vocab"] == [list(v) for v in mine["model"]["vocab"]], "vocab differs"
    for key in ("type", "unk_id", "byte_fallback"):
        assert conv["model"][key] == mine["model"][key], key
    for key in ("post_processor", "pre_tokenizer", "decoder"):
        assert conv[key] == mine[key], f"{key}: converter {conv[key]} vs file {mine[key]}"
    conv_norm = conv["normalizer"]["normalizers"]
    assert conv_norm[0] == mine["normalizer"]["normalizers"][0], "precompiled charsmap differs"
    log(f"converter normalizer after Precompiled: {conv_norm[1:]}; ours (bge-reranker-v2-m3's): "
        f"{mine['normalizer']['normalizers'][1:]}")
    for t in conv["added_tokens"]:  # the converter adds SentencePiece's control pieces
        assert t in mine["added_tokens"], t
    charsmap = base64.b64decode(conv_norm[0]["precompiled_charsmap"])
    log(f"vocab {len(mine['model']['vocab'])}, charsmap {len(charsmap)} bytes")

    lng = json.loads(open(os.path.join(models_dir, "xlmr-long", "tokenizer.json"),
                          encoding="utf-8").read())
    assert lng["pre_tokenizer"].get("add_prefix_space") is True
    assert dict(lng, pre_tokenizer=None, decoder=None) == dict(mine, pre_tokenizer=None,
                                                               decoder=None)
    return mine


# ---------------------------------------------------------------------------------------
# Reference runs


def file_tokenizer(models_dir, name):
    return Tokenizer.from_file(os.path.join(models_dir, name, "tokenizer.json"))


def exact_score_tokenizer(models_dir):
    """The xlmr-small tokenizer with the vocab scores handed over as Python floats (exactly
    the decimals of the file, as a C strtod reads them) instead of parsed by serde_json (1 ULP
    off for a quarter of them): if both give the same ids, the fixtures do not depend on it."""
    from tokenizers.models import Unigram
    path = os.path.join(models_dir, "xlmr-small", "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        model = json.load(f)["model"]
    tk = Tokenizer.from_file(path)
    tk.model = Unigram([tuple(v) for v in model["vocab"]], unk_id=model["unk_id"],
                       byte_fallback=model["byte_fallback"])
    return tk


def token_rows(models_dir, texts):
    tk = file_tokenizer(models_dir, "xlmr-small")
    tk_long = file_tokenizer(models_dir, "xlmr-long")
    tk_exact = exact_score_tokenizer(models_dir)
    at = AutoTokenizer.from_pretrained(os.path.join(models_dir, "xlmr-small"))
    assert at.is_fast
    rows, n_diff = [], 0
    for t in texts:
        enc = tk.encode(t, add_special_tokens=False)
        assert tk_long.encode(t, add_special_tokens=False).ids == enc.ids, repr(t)
        assert tk_exact.encode(t, add_special_tokens=False).ids == enc.ids, \
            f"a 1-ULP score difference changes the ids of {t!r}"
        row = {"text": t, "ids": enc.ids, "offsets": [list(o) for o in enc.offsets]}
        auto = at(t, add_special_tokens=False)["input_ids"]
        if auto != enc.ids:
            row["ids_transformers"] = auto
            n_diff += 1
        rows.append(row)
    log(f"{len(rows)} texts, {n_diff} where transformers' AutoTokenizer differs from "
        "tokenizer.json")
    return rows


def pair_encode(tk, at, q, d, max_length):
    """(tokenizer.json ids, AutoTokenizer ids) of one pair truncated longest_first. The
    AutoTokenizer call is the batch call CrossEncoder makes (see make_golden.pair_ids)."""
    tk.enable_truncation(max_length, strategy="longest_first")
    ids = tk.encode(q, d).ids
    auto = at([q], [d], truncation=True, max_length=max_length)["input_ids"][0]
    return ids, auto


def pair_token_rows(models_dir, texts):
    rng = random.Random(SEED + 2)
    tk = file_tokenizer(models_dir, "xlmr-small")
    at = AutoTokenizer.from_pretrained(os.path.join(models_dir, "xlmr-small"))
    short = [t for t in texts if len(t) < 400]
    longs = [t for t in texts if len(t) >= 2000]
    pairs = [(short[i], short[i + 1]) for i in range(0, 160, 2)]
    pairs += [(rng.choice(short), rng.choice(longs)) for _ in range(10)]
    pairs += [(longs[0], longs[1]), (longs[1], longs[0]), (longs[2], longs[3]),
              ("", ""), ("", "x"), ("x", ""), (" ", " "), ("q <pad>", "<mask> d")]
    rows = []
    for q, d in pairs:
        for m in PAIR_MAX_LENGTHS:
            if m < 512 and min(len(q), len(d)) >= 2000:
                # Rust truncation builds every (A window, B window) overflow combination
                # even when nobody asks for them: two 9k-token texts cut at 16 tokens need
                # millions of encodings and exhaust the memory. Long pairs get 512 only.
                continue
            ids, auto = pair_encode(tk, at, q, d, m)
            row = {"query": q, "doc": d, "max_length": m, "input_ids": ids}
            if auto != ids:
                row["input_ids_transformers"] = auto
            rows.append(row)
    # the long model's limit: pairs over 8192 tokens
    for q, d in [(short[5], longs[3]), (longs[2], longs[4]), (longs[1], longs[3])]:
        ids, auto = pair_encode(tk, at, q, d, 8192)
        row = {"query": q, "doc": d, "max_length": 8192, "input_ids": ids}
        if auto != ids:
            row["input_ids_transformers"] = auto
        rows.append(row)
    assert sum(len(r["input_ids"]) == 8192 for r in rows) >= 3
    return rows


def model_pairs(texts, name):
    """A few dozen multilingual pairs; qid groups share a query. Includes a literal <pad>
    (spec §4.6 positions), special tokens, empty texts and, for xlmr-long, documents far
    over 512 tokens (and one over 8192)."""
    rng = random.Random(SEED + 3)
    short = [t for t in SENTENCES if len(t) > 20]
    adv = ADVERSARIAL
    longs = [t for t in texts if len(t) >= 2000]
    queries = ["How many people live in Berlin?", "Сколько людей живёт в Москве?",
               "北京有多少人口？", "كم عدد سكان القاهرة؟", "¿Cuántas personas viven en Madrid?",
               "q <pad> with a literal pad", ""]
    pairs = []
    for qid, q in enumerate(queries):
        docs = [rng.choice(short) for _ in range(4)] + [rng.choice(adv)]
        if qid == 0:
            docs[0] = "Berlin is well known for its museums."
            docs[1] = "Berlin <pad> is <pad> well known <pad> for its museums."
        if qid == 5:
            docs[2] = "<pad>" + docs[2]
        if qid == 6:
            docs[3] = ""
        if name == "xlmr-long":
            docs.append(longs[qid % len(longs)])
        pairs.extend({"qid": qid, "query": q, "doc": d} for d in docs)
    if name == "xlmr-small":
        pairs.extend({"qid": 7, "query": queries[0], "doc": d} for d in longs[:2])
    return pairs


def logits_of(model, ids_list):
    """fp32 logits, one pair at a time (no padding; XLM-R positions come from the ids)."""
    out = []
    for ids in ids_list:
        t = torch.tensor([ids])
        with torch.inference_mode():
            out.append(float(model(input_ids=t, attention_mask=torch.ones_like(t))
                             .logits[0, 0]))
    return np.asarray(out, np.float32)


def model_fixtures(models_dir, name, pairs):
    path = os.path.join(models_dir, name)
    max_length = MODELS[name]
    tk = file_tokenizer(models_dir, name)
    at = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()
    assert type(model).__name__ == "XLMRobertaForSequenceClassification"
    enc = [pair_encode(tk, at, p["query"], p["doc"], max_length) for p in pairs]
    logits = logits_of(model, [e[0] for e in enc])
    diff = [i for i, (ids, auto) in enumerate(enc) if ids != auto]
    logits_tf = logits.copy()
    if diff:
        logits_tf[diff] = logits_of(model, [enc[i][1] for i in diff])

    ce = CrossEncoder(path, device="cpu")
    assert ce.max_length == max_length, f"{name}: CrossEncoder max_length {ce.max_length}"
    batch = 1 if name == "xlmr-long" else 8  # long pairs alone: no padding to 8192
    qd = [(p["query"], p["doc"]) for p in pairs]
    scores = np.asarray(ce.predict(qd, batch_size=batch, show_progress_bar=False), np.float32)
    ce_id = CrossEncoder(path, device="cpu", activation_fn=torch.nn.Identity())
    raw = np.asarray(ce_id.predict(qd, batch_size=batch, show_progress_bar=False), np.float32)
    excess = np.abs(raw - logits_tf) / np.maximum(1.0, np.abs(logits_tf))
    assert excess.max() <= CE_TOL, f"{name}: CrossEncoder vs transformers {excess.max()}"
    # The default activation must be Sigmoid (stored in xlmr-small's config.json, CrossEncoder's
    # num_labels-1 default for xlmr-long); compared on CrossEncoder's own logits.
    sig = 1.0 / (1.0 + np.exp(-raw.astype(np.float64)))
    assert np.abs(scores - sig).max() < 1e-6, \
        f"{name}: CrossEncoder activation is not Sigmoid ({np.abs(scores - sig).max()})"

    rows, n_long = [], 0
    for p, (ids, auto), lg, lt, sc in zip(pairs, enc, logits, logits_tf, scores):
        # token_type_ids: all 0, what the model uses when the tokenizer gives none (XLM-R's
        # gives none); written so tests/engine/golden.h reads these files unchanged.
        row = {"qid": p["qid"], "query": p["query"], "doc": p["doc"], "input_ids": ids,
               "token_type_ids": [0] * len(ids), "logit": f32(lg)}
        if auto != ids:
            row["input_ids_transformers"] = auto
            row["logit_transformers"] = f32(lt)
        row["score"] = f32(sc)
        tk.no_truncation()
        n_long += len(tk.encode(p["query"], p["doc"]).ids) > 512
        rows.append(row)
    out_dir = os.path.join(HERE, name)
    os.makedirs(out_dir, exist_ok=True)
    write_jsonl(os.path.join(out_dir, "pairs.jsonl"), rows)
    log(f"{name}: {len(rows)} pairs ({n_long} over 512 tokens, {len(diff)} where the "
        f"tokenizations differ), logits [{logits.min():.3f}, {logits.max():.3f}] std "
        f"{logits.std():.3f}, CrossEncoder max |Δ| {np.abs(raw - logits_tf).max():.2e}")

    if name == "xlmr-small":
        q, d = "Wie viele Menschen leben in Berlin?", "Berlin ist für seine Museen bekannt."
        ids, auto = pair_encode(tk, at, q, d, max_length)
        assert ids == auto
        t = torch.tensor([ids])
        with torch.inference_mode():
            out = model(input_ids=t, attention_mask=torch.ones_like(t), output_hidden_states=True)
        hidden = [[round7(v) for v in h[0].numpy().reshape(-1)] for h in out.hidden_states]
        doc = {"query": q, "doc": d, "input_ids": ids, "token_type_ids": [0] * len(ids),
               "hidden": hidden,
               "logit": f32(out.logits[0, 0])}
        lpath = os.path.join(out_dir, "layers.json")
        with open(lpath, "w") as f:
            json.dump(doc, f)
            f.write("\n")
        assert os.path.getsize(lpath) < FILE_CAP
        log(f"wrote {lpath} ({len(hidden)} hidden states of {len(ids)} tokens)")
    return logits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=os.path.join(ROOT, "models"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for name in MODELS:
        if not os.path.isdir(os.path.join(args.models, name)):
            sys.exit(f"make_golden_xlmr: {args.models}/{name} missing; run scripts/make_models.py")

    check_tokenizer_files(args.models)
    texts = golden_texts()
    rows = token_rows(args.models, texts)
    assert max(len(r["ids"]) for r in rows) > 8192, "no text over 8192 tokens"
    write_jsonl(os.path.join(HERE, "xlmr_tokens.jsonl"), rows, compact=True)
    write_jsonl(os.path.join(HERE, "xlmr_pair_tokens.jsonl"),
                pair_token_rows(args.models, texts), compact=True)
    for name in MODELS:
        model_fixtures(args.models, name, model_pairs(texts, name))


if __name__ == "__main__":
    main()
