#!/usr/bin/env python3
"""make_windows.py — writes tests/golden/minilm-l6-bert/windows.jsonl: long documents scored
in windows ("chunk" mode, README "Long documents"), every window's pair and its logit from the
Hugging Face reference.

The window rule is re-implemented here from its specification in include/rerank.h
(rr_chunk_plan), on the fast tokenizer's own token ids, so the C test checks librerank's
windows (ids, spans, counts) and their logits against an independent reading of the rule:

  d = min(document tokens, max_doc_tokens)             (max_doc_tokens 0: all of them)
  fits when q + d + 3 <= max_length: one window, the whole pair
  else q_keep = min(q, max((max_length - 3) // 2, max_length - 3 - d))
       window = max_length - 3 - q_keep
       overlap = window // 8 when not given, at most window // 2; stride = window - overlap
       n_possible = 1 + ceil((d - window) / stride); n_windows = min(n_possible, max_chunks)
       window k = document tokens [k * stride, min(k * stride + window, d))
  pair k = [CLS] q' [SEP] window_k [SEP], q' the first q_keep query tokens (keep_last: last),
  token type 0 up to the first [SEP], 1 after.

Logits: AutoModelForSequenceClassification in fp32, eval, inference_mode, the windows of one
case in batches of 32 padded to the longest (as CrossEncoder.predict pads).

Usage: HF_HUB_OFFLINE=1 .venv-oracle/bin/python tests/golden/make_windows.py [--models models]
About a minute on two cores. Line format:
  {"name", "query", "doc", "max_length", "overlap" (-1: default), "max_chunks",
   "max_doc_tokens", "keep_last", "q_keep", "window", "stride", "n_possible",
      "windows": [{"tok_start", "tok_end", "input_ids", "char_start", "char_end", "logit"}]}
char_start / char_end: the window's span in code points of the document, from the smallest
start to the largest end of its tokens' offsets (return_offsets_mapping).
"""

import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
from make_golden import FILE_CAP, f32, write_jsonl  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = "minilm-l6-bert"
BATCH = 32


def plan(q, d_total, max_length, overlap, max_chunks, max_doc_tokens):
    budget = max_length - 3
    d = min(d_total, max_doc_tokens) if max_doc_tokens > 0 else d_total
    if q + d <= budget:
        return {"q_keep": q, "d": d, "window": d, "stride": d, "n_possible": 1, "n": 1}
    q_keep = min(q, max(budget // 2, budget - d))
    window = budget - q_keep
    ov = window // 8 if overlap < 0 else overlap
    ov = min(ov, window // 2)
    stride = window - ov
    rest = d - window
    n_possible = 1 + (-(-rest // stride) if rest > 0 else 0)
    return {"q_keep": q_keep, "d": d, "window": window, "stride": stride,
            "n_possible": n_possible, "n": min(n_possible, max_chunks)}


def windows(tok, query, doc, max_length, overlap=-1, max_chunks=10, max_doc_tokens=0,
            keep_last=False):
    q = tok(query, add_special_tokens=False)["input_ids"]
    enc = tok(doc, add_special_tokens=False, return_offsets_mapping=True)
    d, offs = enc["input_ids"], enc["offset_mapping"]
    p = plan(len(q), len(d), max_length, overlap, max_chunks, max_doc_tokens)
    qk = q[len(q) - p["q_keep"]:] if keep_last else q[:p["q_keep"]]
    out = []
    for k in range(p["n"]):
        s = k * p["stride"]
        e = min(s + p["window"], p["d"])
        ids = [tok.cls_token_id] + qk + [tok.sep_token_id] + d[s:e] + [tok.sep_token_id]
        span = offs[s:e]
        out.append({"tok_start": s, "tok_end": e, "input_ids": ids,
                    "char_start": min(a for a, _ in span) if span else 0,
                    "char_end": max(b for _, b in span) if span else 0,
                    "token_type_ids": [0] * (len(qk) + 2) + [1] * (e - s + 1)})
    return p, out


def logits(model, tok, wins):
    res = []
    for i in range(0, len(wins), BATCH):
        chunk = wins[i:i + BATCH]
        n = max(len(w["input_ids"]) for w in chunk)
        ids = torch.tensor([w["input_ids"] + [tok.pad_token_id] * (n - len(w["input_ids"]))
                            for w in chunk])
        types = torch.tensor([w["token_type_ids"] + [0] * (n - len(w["token_type_ids"]))
                              for w in chunk])
        mask = torch.tensor([[1] * len(w["input_ids"]) + [0] * (n - len(w["input_ids"]))
                             for w in chunk])
        with torch.inference_mode():
            out = model(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
        res.extend(float(x) for x in out[:, 0])
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=os.path.join(HERE, "..", "..", "models"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    path = os.path.join(args.models, MODEL)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()

    prose = corpus.prose()
    longs = sorted(corpus.long_texts(prose), key=len)
    n_tok = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in longs]
    # one document of about 5,000 tokens (the README's example), and shorter long ones
    five_k = min(range(len(longs)), key=lambda i: abs(n_tok[i] - 5000))
    mid = [i for i in range(len(longs)) if 600 <= n_tok[i] <= 2500][:4]
    short_q = "What does the interpreter do when an exception is raised inside a finally clause?"
    long_q = " ".join(longs[-1].split()[:400])  # over half of a 512-token pair
    assert len(tok(long_q, add_special_tokens=False)["input_ids"]) > 254

    cases = [("5k_default", short_q, longs[five_k], 512, -1, 10, 0, False),
             ("5k_all_windows", short_q, longs[five_k], 512, -1, 64, 0, False),
             ("5k_max_doc_tokens", short_q, longs[five_k], 512, -1, 10, 1500, False),
             ("fits_one_window", short_q, prose[0], 512, -1, 10, 0, False),
             ("long_query", long_q, longs[mid[0]], 512, -1, 10, 0, False),
             ("long_query_keep_last", long_q, longs[mid[0]], 512, -1, 10, 0, True)]
    for j, i in enumerate(mid):
        cases.append((f"ml128_overlap0_{j}", short_q, longs[i], 128, 0, 64, 0, False))
        cases.append((f"ml128_overlap16_{j}", short_q, longs[i], 128, 16, 64, 0, False))
        cases.append((f"ml64_overlap_max_{j}", short_q, longs[i], 64, 1000, 8, 0, False))
    rows, total = [], 0
    for name, q, d, ml, ov, mc, mdt, kl in cases:
        p, wins = windows(tok, q, d, ml, ov, mc, mdt, kl)
        for w, lg in zip(wins, logits(model, tok, wins)):
            w["logit"] = f32(lg)
            del w["token_type_ids"]  # 0 through the first [SEP], then 1: the C test rebuilds it
        total += len(wins)
        rows.append({"name": name, "query": q, "doc": d, "max_length": ml, "overlap": ov,
                     "max_chunks": mc, "max_doc_tokens": mdt, "keep_last": kl,
                     "q_keep": p["q_keep"], "window": p["window"], "stride": p["stride"],
                     "n_possible": p["n_possible"], "windows": wins})
    assert rows[0]["n_possible"] > 10 and len(rows[1]["windows"]) == rows[1]["n_possible"]
    out = os.path.join(HERE, MODEL, "windows.jsonl")
    write_jsonl(out, rows)
    assert os.path.getsize(out) < FILE_CAP
    print(f"make_windows: {len(rows)} documents, {total} windows; the 5k document has "
          f"{n_tok[five_k]} tokens, {rows[0]['n_possible']} windows at max_length 512")


if __name__ == "__main__":
    main()
