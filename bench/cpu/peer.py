#!/usr/bin/env python3
"""peer.py — the Hugging Face side of the CPU benchmark (runs in .venv-oracle).

  peer.py tokenize MODEL_DIR TEXT_FILE REF_OUT [--repeats R]
      HF `tokenizers` (the Rust fast tokenizer), one thread (TOKENIZERS_PARALLELISM=false,
      RAYON_NUM_THREADS=1), no special tokens, over every line of TEXT_FILE: encode() per line
      in a loop AND encode_batch() over all lines; reports the faster. Writes REF_OUT with
      "n_tokens fnv1a" per line for rr-bench-cpu to validate against.
  peer.py engine MODEL_DIR PAIRS_IN PAIRS_OUT N_THREADS [--repeats R]
      transformers fp32 AutoModelForSequenceClassification, torch.set_num_threads(N), over the
      {"query", "doc"} pairs of PAIRS_IN in batches of 32 padded to the longest pair, as
      CrossEncoder.predict does. Only the model is timed: the batches are tokenized once
      beforehand (rr-bench-cpu likewise times rr_engine_forward on ready ids), so this
      compares the two forward passes; tokenization has its own benchmark above.
      Writes PAIRS_OUT (JSONL input_ids, token_type_ids, logit) for rr-bench-cpu.

Timing: a warm-up pass, then R timed passes (default 5); best and median reported. The last
line printed is machine-readable, like rr-bench-cpu's:
  RESULT tokenize bytes=.. tokens=.. best_s=.. median_s=.. mb_s=.. tok_s=.. method=..
  RESULT engine pairs=.. tokens=.. threads=.. best_s=.. median_s=.. pairs_s=..
"""

import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

BATCH = 32
MAX_LENGTH = 512


def fnv1a(ids):
    h = 2166136261
    for i in ids:
        h = ((h ^ i) * 16777619) & 0xFFFFFFFF
    return h


def timed(fn, repeats, warm_up=True):
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def bench_tokenize(args):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    # The MiniLM tokenizer.json stores truncation 128 / padding Fixed(128); transformers
    # overrides both on every call, and so do we.
    tok.no_truncation()
    tok.no_padding()
    with open(args.text, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    n_bytes = sum(len(s.encode("utf-8")) for s in lines)
    encs = tok.encode_batch(lines, add_special_tokens=False)
    with open(args.ref_out, "w") as f:
        for e in encs:
            f.write(f"{len(e.ids)} {fnv1a(e.ids)}\n")
    n_tokens = sum(len(e.ids) for e in encs)

    def loop():
        for s in lines:
            tok.encode(s, add_special_tokens=False)

    def batch():
        tok.encode_batch(lines, add_special_tokens=False)

    results = {"encode": timed(loop, args.repeats), "encode_batch": timed(batch, args.repeats)}
    for name, (best, med) in results.items():
        print(f"tokenize {name}: best {best:.4f} s, median {med:.4f} s")
    method = min(results, key=lambda k: results[k][0])
    best, med = results[method]
    print(f"RESULT tokenize bytes={n_bytes} tokens={n_tokens} best_s={best:.6f} "
          f"median_s={med:.6f} mb_s={n_bytes / best / 1e6:.3f} tok_s={n_tokens / best:.0f} "
          f"method={method}")


def bench_engine(args):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model,
                                                               dtype=torch.float32).eval()
    with open(args.pairs_in) as f:
        pairs = [json.loads(s) for s in f if s.strip()]
    queries = [p["query"] for p in pairs]
    docs = [p["doc"] for p in pairs]

    batches = [tok(queries[i:i + BATCH], docs[i:i + BATCH], truncation=True,
                   max_length=MAX_LENGTH, padding=True, return_tensors="pt")
               for i in range(0, len(pairs), BATCH)]

    def run():
        out = []
        with torch.inference_mode():
            for enc in batches:
                out.extend(model(**enc).logits[:, 0].tolist())
        return out

    logits = run()
    n_tokens = 0
    with open(args.pairs_out, "w") as f:
        for q, d, logit in zip(queries, docs, logits):
            enc = tok(q, d, truncation=True, max_length=MAX_LENGTH)
            n_tokens += len(enc["input_ids"])
            f.write(json.dumps({"input_ids": enc["input_ids"],
                                "token_type_ids": enc["token_type_ids"], "logit": logit}) + "\n")
    best, med = timed(run, args.repeats, warm_up=False)  # run() above was the warm-up
    print(f"RESULT engine pairs={len(pairs)} tokens={n_tokens} threads={args.threads} "
          f"best_s={best:.6f} median_s={med:.6f} pairs_s={len(pairs) / best:.1f}")


def main():
    ap = argparse.ArgumentParser(description="HF peer of rr-bench-cpu")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tokenize")
    t.add_argument("model")
    t.add_argument("text")
    t.add_argument("ref_out")
    t.add_argument("--repeats", type=int, default=5)
    e = sub.add_parser("engine")
    e.add_argument("model")
    e.add_argument("pairs_in")
    e.add_argument("pairs_out")
    e.add_argument("threads", type=int)
    e.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    bench_tokenize(args) if args.cmd == "tokenize" else bench_engine(args)


if __name__ == "__main__":
    main()
