#!/usr/bin/env python3
"""peer_worker.py — the persistent Python peers of bench/cpu/compare.py: PyTorch and ONNX Runtime.

  peer_worker.py ENGINE MODEL_DIR N_THREADS [--onnx-dir DIR]

ENGINE (the graphs come from bench/cpu/setup-ort.sh, in DIR = bench/out/ort/<model name>):
  torch        transformers AutoModelForSequenceClassification fp32, torch.set_num_threads(N),
               inference_mode (runs in .venv-oracle)
  ort-fused    ONNX Runtime on fused.onnx (attention, LayerNorm, GELU fusions), fp32
  ort-int8     ONNX Runtime on int8.onnx (quantize_dynamic of fused.onnx, QInt8 weights)
  ort-int8pc   ONNX Runtime on int8pc.onnx (the same with per_channel=True)
  ort-plain    ONNX Runtime on model.onnx (the export as is; ORT's own session optimizations)
ORT sessions: graph_optimization_level ORT_ENABLE_ALL, intra_op_num_threads N,
inter_op_num_threads 1, CPUExecutionProvider. The ORT engines import numpy, tokenizers and
onnxruntime only (they run in .venv-ort, which has no torch).

Every engine scores a request the way sentence-transformers' CrossEncoder.predict does:
batches of 32 (query, doc) pairs in input order, each tokenized with the model folder's HF
fast tokenizer (truncation longest_first, max_length 512) and padded to its longest pair.
The whole of it is timed: text in, logits out. The tokenizer's batch encoding runs on
N_THREADS threads too (RAYON_NUM_THREADS), as it would in a server given N cores.

Protocol (rr-bench-cpu worker speaks the same): after loading, one line "READY <what>" (or
"UNAVAILABLE <why>", exit 0, when the engine cannot start: a graph missing, a package
missing). Then per stdin line "IN_PATH OUT_PATH": IN_PATH is JSONL {"query", "docs": [...]};
the first request is scored once untimed (warm-up, its documents cut to 100), then every
request is timed; OUT_PATH gets "<seconds> <logit> ..." per request, stdout "OK <n> <sum s>"
or "ERROR <message>".
"""

import os
import sys
import time

BATCH = 32
MAX_LENGTH = 512
WARMUP_DOCS = 100


def torch_engine(model_dir, n_threads):
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    torch.set_num_threads(n_threads)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir,
                                                               dtype=torch.float32).eval()

    def score(query, docs):
        out = []
        with torch.inference_mode():
            for i in range(0, len(docs), BATCH):
                chunk = docs[i:i + BATCH]
                enc = tok([query] * len(chunk), chunk, truncation=True, max_length=MAX_LENGTH,
                          padding=True, return_tensors="pt")
                out.extend(model(**enc).logits[:, 0].tolist())
        return out

    what = (f"torch {torch.__version__} fp32, transformers {transformers.__version__}, "
            f"{n_threads} threads, attention {model.config._attn_implementation}")
    return score, what


def ort_engine(graph, model_dir, n_threads):
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer
    if not os.path.exists(graph):
        raise FileNotFoundError(f"{graph} missing; run bench/cpu/setup-ort.sh")
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    # The MiniLM tokenizer.json stores truncation 128 / padding Fixed(128); transformers
    # overrides both on every call (max_length 512, pad to the batch's longest), and so do we.
    tok.enable_truncation(MAX_LENGTH, strategy="longest_first")
    pad_id = tok.token_to_id("[PAD]")
    tok.enable_padding(pad_id=pad_id if pad_id is not None else 0, pad_token="[PAD]")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = n_threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}

    def score(query, docs):
        out = []
        for i in range(0, len(docs), BATCH):
            encs = tok.encode_batch([(query, d) for d in docs[i:i + BATCH]])
            feed = {"input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                    "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64)}
            logits = sess.run(["logits"], {k: v for k, v in feed.items() if k in names})[0]
            out.extend(logits[:, 0].tolist())
        return out

    what = (f"onnxruntime {ort.__version__} {os.path.basename(graph)}, {n_threads} threads, "
            f"ORT_ENABLE_ALL")
    return score, what


def run(score, in_path, out_path):
    import json
    with open(in_path) as f:
        reqs = [json.loads(s) for s in f if s.strip()]
    if not reqs:
        return f"ERROR {in_path} holds no requests"
    score(reqs[0]["query"], reqs[0]["docs"][:WARMUP_DOCS])
    total = 0.0
    with open(out_path, "w") as f:
        for r in reqs:
            t0 = time.perf_counter()
            logits = score(r["query"], r["docs"])
            dt = time.perf_counter() - t0
            total += dt
            f.write(f"{dt:.9f} " + " ".join(f"{x:.9g}" for x in logits) + "\n")
    return f"OK {len(reqs)} {total:.9f}"


def main():
    import argparse
    ap = argparse.ArgumentParser(description="persistent PyTorch / ONNX Runtime peer")
    ap.add_argument("engine", choices=["torch", "ort-fused", "ort-int8", "ort-int8pc", "ort-plain"])
    ap.add_argument("model")
    ap.add_argument("threads", type=int)
    ap.add_argument("--onnx-dir", default=None)
    args = ap.parse_args()
    # Before tokenizers starts its thread pool: its batch encoding gets the engine's threads.
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    onnx_dir = args.onnx_dir or os.path.join("bench", "out", "ort",
                                              os.path.basename(os.path.normpath(args.model)))
    graphs = {"ort-fused": "fused.onnx", "ort-int8": "int8.onnx", "ort-int8pc": "int8pc.onnx",
              "ort-plain": "model.onnx"}
    try:
        if args.engine == "torch":
            score, what = torch_engine(args.model, args.threads)
        else:
            score, what = ort_engine(os.path.join(onnx_dir, graphs[args.engine]), args.model,
                                     args.threads)
    except Exception as e:  # the driver marks the column "not available"
        print(f"UNAVAILABLE {type(e).__name__}: {e}".replace("\n", " "), flush=True)
        return
    print(f"READY {what}", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        try:
            reply = run(score, parts[0], parts[1]) if len(parts) == 2 else \
                'ERROR expected "IN_PATH OUT_PATH"'
        except Exception as e:
            reply = f"ERROR {type(e).__name__}: {e}".replace("\n", " ")
        print(reply, flush=True)


if __name__ == "__main__":
    main()
