#!/usr/bin/env python3
"""make_golden.py — writes the golden fixtures of tests/golden/ from the Hugging Face reference.

Runs in .venv-oracle (torch CPU, transformers, sentence-transformers, tokenizers), offline
(HF_HUB_OFFLINE=1), on the models built by scripts/make_models.py. Deterministic: texts come
from corpus.py (fixed seeds, CPython 3.11's own documentation), torch runs on one thread.

Writes (format: tests/golden/README.md):
  tokens.jsonl                 {"text", "ids"} for every corpus text, ids from the fast
                               tokenizer with add_special_tokens=False.
  offsets.jsonl                {"text", "ids", "offsets"} for a subset of those texts (every
                               adversarial text, every other prose text, one long text per
                               size) plus OFFSET_TEXTS: offsets from return_offsets_mapping=True,
                               [start, end) in code points as HF reports them.
  <model>/pairs.jsonl          {"qid", "query", "doc", "input_ids", "token_type_ids", "logit"}
                               ids from tokenizer([q], [d], truncation=True, max_length=512)
                               (the batch call CrossEncoder makes; see pair_ids),
                               logit from AutoModelForSequenceClassification in fp32, batches
                               of 32 padded as CrossEncoder.predict does (pairs batched in
                               length order), checked against CrossEncoder(activation_fn=
                               Identity) within 1e-5 * max(1, |logit|).
  <model>/layers.json          {"input_ids", "token_type_ids", "hidden", "logit"}: hidden
                               states (embeddings output, then each layer) for one short pair.

Usage: HF_HUB_OFFLINE=1 .venv-oracle/bin/python tests/golden/make_golden.py [--models models]
       [--only offsets | --only MODEL ...]    (--only offsets: offsets.jsonl alone, seconds)
"""

import argparse
import json
import os
import random
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import CrossEncoder  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_LENGTH = 512
BATCH = 32
CE_TOL = 1e-5  # relative to max(1, |logit|): CrossEncoder batches differ by ~1e-6
FILE_CAP = 4 * 1024 * 1024  # nothing committed may reach 4 MiB

BERLIN_QUERY = "How many people live in Berlin?"
# The spec §3 documents (published ms-marco scores do not apply: our heads are seeded).
BERLIN_DOCS = [
    "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square "
    "kilometers.",
    "Berlin is well known for its museums.",
    "Berlin has a yearly total of about 135 million day visitors, making it one of the "
    "most-visited cities in the European Union.",
    "In 2013 around 600,000 Berliners were registered in one of the more than 2,300 sport and "
    "fitness clubs.",
]
LAYERS_PAIR = (BERLIN_QUERY, BERLIN_DOCS[1])

# Every model gets pairs; the full ≥500-pair set goes to minilm-l6-bert, the others get the
# subset of qids below (~150 pairs, still holding long, adversarial and edge-case pairs).
MODELS = ["minilm-l6-bert", "minilm-l6-electra", "tiny-bert-random", "minilm-l6-bert-f16",
          "minilm-l6-bert-bf16"]
LAYER_MODELS = ["minilm-l6-bert", "minilm-l6-electra", "tiny-bert-random"]
N_QUERIES = 60
DOCS_PER_QUERY = 9

# offsets.jsonl only: canonical reordering of kept combining characters, where HF hands a
# moved character the source of the one whose place it took (the corpus has Mn marks only,
# which strip_accents deletes). U+1D165/1D16E (ccc 216), U+1D16D (226) and U+302E/302F (224)
# are Mc; U+1715 (Mc, ccc 9); U+0301 (Mn, 230), U+0316 (Mn, 220); U+1D160 decomposes to
# 1D158 1D165 1D16E.
OFFSET_TEXTS = [
    "a\u0301\U0001d165", "a\U0001d16d\u0301\U0001d165", "the\u0301\U0001d165 cat",
    "a\U0001d16d\u0000\U0001d165 b", "a\U0001d16d\u0001\U0001d165 b",
    "a\U0001d16d\u200b\U0001d165", "\u00e9\U0001d165 \u00e9\U0001d16d\U0001d165",
    "x\U0001d160\u0316y", "x\u0301\U0001d160\U0001d16d", "ka\u0301\u1715 ka\u1715\u0301",
    "\U0001d165a", "\u302e\u302f\u0301ab", "x \u0301\U0001d165", "\u4e2d\u0301\U0001d165",
    "\ud55c\u302e\uad6d\u302f\u0301", "\u0130\u0301\U0001d165", "I\u0307\u0301 i\u0301\u0307",
    "a" + "\u0301" * 40 + "\U0001d165b", "a\u0301[SEP]\U0001d165\u0301",
    "x\U0001d16d\u0316\U0001d165\u0301\U0001d16e.", "caf\u00e9\u0301\u0316\U0001d16d!",
]


def log(msg):
    print(f"make_golden: {msg}", flush=True)


def round7(x):
    return float(f"{x:.7g}")


def f32(x):
    """The shortest decimal that reads back as the same float32."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-"))


def write_jsonl(path, rows, compact=False):
    with open(path, "w") as f:
        for r in rows:
            f.write((json.dumps(r, separators=(",", ":")) if compact else json.dumps(r)) + "\n")
    size = os.path.getsize(path)
    assert size < FILE_CAP, f"{path} is {size} bytes, over the 4 MiB cap"
    log(f"wrote {path} ({len(rows)} lines, {size} bytes)")


# ---------------------------------------------------------------------------------------
# Texts and pairs


def token_texts(prose, adv, longs):
    """Texts of tokens.jsonl: all Language Reference passages, every third docstring, the
    adversarial set, the long texts, and the Berlin sentences."""
    n_topic = len(corpus.topic_passages())
    texts = prose[:n_topic] + prose[n_topic::3] + adv + longs + [BERLIN_QUERY] + BERLIN_DOCS
    seen, out = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def offset_texts(prose, adv, longs):
    """Texts of offsets.jsonl, in tokens.jsonl order. All of tokens.jsonl would pass the 4 MiB
    cap, so: every adversarial text, the Berlin sentences, every other prose text of
    token_texts, one long text per size; then OFFSET_TEXTS."""
    n_topic = len(corpus.topic_passages())
    keep = set(adv) | set(longs[::2]) | {BERLIN_QUERY, *BERLIN_DOCS}
    keep |= set((prose[:n_topic] + prose[n_topic::3])[::2])
    return [t for t in token_texts(prose, adv, longs) if t in keep] + OFFSET_TEXTS


def offset_rows(tok, texts):
    rows = []
    for t in texts:
        enc = tok(t, add_special_tokens=False, return_offsets_mapping=True)
        rows.append({"text": t, "ids": enc["input_ids"],
                     "offsets": [list(o) for o in enc["offset_mapping"]]})
    return rows


def build_pairs(prose, adv, longs):
    """60 queries × 9 docs. qid 0: the Berlin query with the spec's four documents; qid 1:
    a query over 256 tokens against long documents (longest_first cuts both sides); qid 2:
    the empty query; qids 3-7: adversarial queries; the rest: short queries taken from
    passages. Each prose query gets its source passage, two neighbours and random passages;
    every third qid gets an adversarial document, every other qid a long document (over 512
    tokens with the query)."""
    rng = random.Random(corpus.SEED + 10)
    n_topic = len(corpus.topic_passages())
    short = [p for p in prose if 20 <= len(p.split()) <= 200]
    long_passages = [p for p in prose[:n_topic] if len(p.split()) > 170]
    edge_docs = ["", " ", "\u3000\t\n", "[SEP]", "a" * 101, "\u0000"]

    def random_docs(k):
        return [rng.choice(short) for _ in range(k)]

    queries = []
    queries.append((BERLIN_QUERY, BERLIN_DOCS + random_docs(DOCS_PER_QUERY - 4)))
    long_q = " ".join((long_passages[0] + " " + long_passages[1]).split()[:300])
    queries.append((long_q, longs[:4] + [longs[-1]] + random_docs(4)))
    queries.append(("", random_docs(DOCS_PER_QUERY - 3) + edge_docs[:3]))
    for i in range(5):
        queries.append((rng.choice(adv[:len(corpus.CATALOGUE)] if i < 2 else adv),
                        random_docs(DOCS_PER_QUERY - 2) + [rng.choice(adv), edge_docs[3 + i % 3]]))
    while len(queries) < N_QUERIES:
        qid = len(queries)
        src = rng.randrange(len(short))
        docs = [short[src], short[(src + 1) % len(short)], short[src - 1]]
        docs += random_docs(DOCS_PER_QUERY - len(docs))
        if qid % 3 == 0:
            docs[4] = rng.choice(adv)
        if qid % 2 == 0:
            docs[5] = rng.choice(longs[:-2])
        rng.shuffle(docs)
        queries.append((corpus.query_from(short[src], rng), docs))
    pairs = []
    for qid, (q, docs) in enumerate(queries):
        assert len(docs) == DOCS_PER_QUERY
        pairs.extend({"qid": qid, "query": q, "doc": d} for d in docs)
    return pairs


def subset(pairs):
    """qids for the ~150-pair models: 0, 1, 2, 4 and every fourth from 8."""
    keep = {0, 1, 2, 4} | set(range(8, N_QUERIES, 4))
    return [p for p in pairs if p["qid"] in keep]


# ---------------------------------------------------------------------------------------
# Reference runs


def pair_ids(tok, q, d, **kw):
    """ids of one pair through the batch call CrossEncoder makes. Not tok(q, d): that single
    call treats an empty d as no pair at all ([CLS] q [SEP]), while the batch call encodes
    ("", "") as [CLS] [SEP] [SEP] like any other pair."""
    enc = tok([q], [d], **kw)
    return {k: v[0] for k, v in enc.items()}


def hf_logits(model, tok, pairs):
    """AutoModelForSequenceClassification logits in batches of 32 padded to the longest pair
    of each batch, as CrossEncoder.predict does."""
    out = []
    for i in range(0, len(pairs), BATCH):
        chunk = pairs[i:i + BATCH]
        enc = tok([p["query"] for p in chunk], [p["doc"] for p in chunk], truncation=True,
                  max_length=MAX_LENGTH, padding=True, return_tensors="pt")
        with torch.inference_mode():
            out.append(model(**enc).logits[:, 0].numpy())
    return np.concatenate(out)


def cross_encoder_scores(path, pairs):
    # fp32 explicitly: for the F16/BF16 folders CrossEncoder would otherwise compute in the
    # stored dtype, while librerank (and our reference logits) widen to fp32 at load time.
    ce = CrossEncoder(path, device="cpu", activation_fn=torch.nn.Identity(),
                      model_kwargs={"dtype": torch.float32})
    assert ce.max_length == MAX_LENGTH, f"{path}: CrossEncoder max_length {ce.max_length}"
    return np.asarray(ce.predict([(p["query"], p["doc"]) for p in pairs], batch_size=BATCH,
                                 show_progress_bar=False), dtype=np.float32)


def by_length(tok, pairs):
    """Indices of pairs sorted by tokenized length. Both runs batch in this order: with the
    long pairs spread over every qid, input-order batches would all pad to 512 tokens and
    cost ~4x more. A pair's logit does not depend on its batch beyond ~1e-6 (spec §0), far
    inside every tolerance, and the CrossEncoder check below bounds it."""
    lens = [len(pair_ids(tok, p["query"], p["doc"], truncation=True,
                         max_length=MAX_LENGTH)["input_ids"]) for p in pairs]
    return np.argsort(np.asarray(lens), kind="stable")


def model_fixtures(models_dir, name, pairs):
    path = os.path.join(models_dir, name)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()
    order = by_length(tok, pairs)
    ordered = [pairs[i] for i in order]
    logits, ce = np.empty(len(pairs), np.float32), np.empty(len(pairs), np.float32)
    logits[order] = hf_logits(model, tok, ordered)
    ce[order] = cross_encoder_scores(path, ordered)
    excess = np.abs(ce - logits) / np.maximum(1.0, np.abs(logits))
    worst = int(np.argmax(excess))
    assert excess[worst] <= CE_TOL, \
        f"{name}: CrossEncoder {ce[worst]} vs transformers {logits[worst]} at pair {worst}"
    rows, n_long = [], 0
    for p, logit in zip(pairs, logits):
        enc = pair_ids(tok, p["query"], p["doc"], truncation=True, max_length=MAX_LENGTH)
        full = len(pair_ids(tok, p["query"], p["doc"])["input_ids"])
        n_long += full > MAX_LENGTH
        rows.append({"qid": p["qid"], "query": p["query"], "doc": p["doc"],
                     "input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
                     "logit": f32(logit)})
    out_dir = os.path.join(HERE, name)
    os.makedirs(out_dir, exist_ok=True)
    write_jsonl(os.path.join(out_dir, "pairs.jsonl"), rows)
    log(f"{name}: {len(rows)} pairs, {n_long} over {MAX_LENGTH} tokens, logits "
        f"[{logits.min():.3f}, {logits.max():.3f}], CrossEncoder max |Δ| "
        f"{np.abs(ce - logits).max():.2e}")

    if name in LAYER_MODELS:
        enc = tok([LAYERS_PAIR[0]], [LAYERS_PAIR[1]], return_tensors="pt")
        with torch.inference_mode():
            out = model(**enc, output_hidden_states=True)
        hidden = [[round7(v) for v in h[0].numpy().reshape(-1)] for h in out.hidden_states]
        doc = {"query": LAYERS_PAIR[0], "doc": LAYERS_PAIR[1],
               "input_ids": enc["input_ids"][0].tolist(),
               "token_type_ids": enc["token_type_ids"][0].tolist(),
               "hidden": hidden, "logit": f32(out.logits[0, 0])}
        lpath = os.path.join(out_dir, "layers.json")
        with open(lpath, "w") as f:
            json.dump(doc, f)
            f.write("\n")
        assert os.path.getsize(lpath) < FILE_CAP
        log(f"wrote {lpath} ({len(hidden)} hidden states of {len(doc['input_ids'])} tokens)")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=os.path.join(HERE, "..", "..", "models"))
    ap.add_argument("--only", action="append", choices=MODELS + ["offsets"],
                    help="write only offsets.jsonl (offsets) or only this model's fixtures "
                         "(repeatable); tokens.jsonl is rewritten with any model")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    models = [m for m in args.only if m != "offsets"] if args.only else MODELS
    for name in models or MODELS[:1]:
        if not os.path.isdir(os.path.join(args.models, name)):
            sys.exit(f"make_golden: {args.models}/{name} missing; run scripts/make_models.py")

    prose = corpus.prose()
    adv = corpus.adversarial(prose)
    longs = corpus.long_texts(prose)

    tok = AutoTokenizer.from_pretrained(os.path.join(args.models, "minilm-l6-bert"))
    assert tok.is_fast
    if not args.only or "offsets" in args.only:
        rows = offset_rows(tok, offset_texts(prose, adv, longs))
        assert all(len(r["ids"]) == len(r["offsets"]) for r in rows)
        assert len(rows) >= 1500 and max(len(r["ids"]) for r in rows) > 4 * MAX_LENGTH
        write_jsonl(os.path.join(HERE, "offsets.jsonl"), rows, compact=True)
    if not models:
        return

    texts = token_texts(prose, adv, longs)
    rows = [{"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]} for t in texts]
    assert len(rows) >= 2000, len(rows)
    assert max(len(r["ids"]) for r in rows) > 4 * MAX_LENGTH, "no text was left untruncated"
    write_jsonl(os.path.join(HERE, "tokens.jsonl"), rows)

    pairs = build_pairs(prose, adv, longs)
    n_long_q = len(tok(pairs[DOCS_PER_QUERY]["query"], add_special_tokens=False)["input_ids"])
    assert n_long_q > 256, f"the long query has only {n_long_q} tokens"
    berlin = tok(BERLIN_QUERY, BERLIN_DOCS[0])["input_ids"]
    assert berlin[0] == tok.cls_token_id == 101 and berlin.count(102) == 2, berlin
    log(f"Berlin pair ids: {berlin}")
    for name in models:
        bert_rows = model_fixtures(args.models, name, pairs if name == "minilm-l6-bert"
                                   else subset(pairs))
        if name == "minilm-l6-bert":
            cut_both = [r for r in bert_rows if r["qid"] == 1 and len(r["input_ids"]) ==
                        MAX_LENGTH and r["token_type_ids"].count(0) < n_long_q + 2]
            assert cut_both, "no pair where longest_first cut the query"
            assert len(bert_rows) >= 500


if __name__ == "__main__":
    main()
