#!/usr/bin/env python3
"""peers.py — the peers of rerank-bench: sentence-transformers and Hugging Face transformers
(PyTorch) on the same checkpoint and the same requests (runs in .venv-oracle).

  peers.py INPUTS MODEL_DIR --out PEERS.json [--device cpu|cuda] [--threads N]
           [--peers sentence-transformers,transformers] [--batch-size 32]
           [--limit NAME=K ...] [--logits-max-k 100]

INPUTS is the JSON rerank-bench writes with --dump-inputs: per K, a pool of requests
(query + K passages), a warm-up count and a request count. For each peer and each K the
requests are replayed exactly as rerank-bench replays them (request i uses pool[i % len]):
warm-up requests first, then the timed ones, one at a time. A request is timed end to end,
text in, scores out, tokenization included — what rerank-bench times through gRPC and
through rr_score_query:

  sentence-transformers  CrossEncoder(MODEL_DIR).predict(pairs, batch_size=32), activation
                         Identity so it returns logits (its default for one label is sigmoid)
  transformers           AutoTokenizer + AutoModelForSequenceClassification, batches of 32
                         pairs padded to their longest (truncation longest_first, max 512),
                         under torch.inference_mode()

fp32 on the CPU with torch.set_num_threads(N) (default: all online CPUs); fp16 on a CUDA
device (`--device cuda`), where each request ends with torch.cuda.synchronize(). The logits
of pool[0] of every K up to --logits-max-k go into the output so rerank-bench can validate
all sides against each other before it reports any number (rerank-bench --validate-max-k).
--limit transformers=100 runs a peer only for K up to 100 (to fit a time budget).

Output (PEERS.json): {"environment": str, "peers": [{"name", "desc", "per_k": [{"k",
"latency_s": [..], "logits0": [..]}]}]}.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

MAX_LENGTH = 512


def progress(label, done, total):
    if not sys.stderr.isatty():
        return
    width = 30
    fill = int(width * done / total) if total else width
    sys.stderr.write("\r  [%s%s] %3d%% %-40.40s" % ("#" * fill, " " * (width - fill),
                                                     100 * done // max(total, 1), label))
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def make_st(model_dir, device, fp16, batch_size):
    from sentence_transformers import CrossEncoder
    ce = CrossEncoder(model_dir, device=device, activation_fn=torch.nn.Identity())
    max_len = getattr(ce, "max_seq_length", None) or ce.max_length
    if max_len != MAX_LENGTH:
        raise SystemExit(f"peers.py: CrossEncoder max length {max_len}, expected {MAX_LENGTH}")
    if fp16:
        ce = ce.half()
    ce.eval()

    def score(query, docs):
        out = ce.predict([(query, d) for d in docs], batch_size=batch_size,
                         show_progress_bar=False, convert_to_numpy=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return [float(x) for x in out.reshape(-1)]
    import sentence_transformers
    desc = (f"sentence_transformers.CrossEncoder.predict (v{sentence_transformers.__version__}), "
            f"batch_size {batch_size}, {'fp16' if fp16 else 'fp32'}")
    return score, desc


def make_hf(model_dir, device, fp16, batch_size):
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(device).eval()
    if fp16:
        model = model.half()

    def score(query, docs):
        out = []
        with torch.inference_mode():
            for i in range(0, len(docs), batch_size):
                chunk = docs[i:i + batch_size]
                enc = tok([query] * len(chunk), chunk, padding=True, truncation="longest_first",
                          max_length=MAX_LENGTH, return_tensors="pt").to(device)
                logits = model(**enc).logits[:, 0].float()
                out.extend(logits.cpu().tolist())
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return out
    desc = (f"transformers AutoModelForSequenceClassification (v{transformers.__version__}), "
            f"batches of {batch_size} padded to the longest, {'fp16' if fp16 else 'fp32'}")
    return score, desc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs")
    ap.add_argument("model")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--peers", default="sentence-transformers,transformers")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--limit", action="append", default=[], metavar="NAME=K")
    ap.add_argument("--logits-max-k", type=int, default=100)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    fp16 = args.device.startswith("cuda")
    with open(args.inputs) as f:
        inputs = json.load(f)
    makers = {"sentence-transformers": make_st, "transformers": make_hf}
    names = [n for n in args.peers.split(",") if n]
    limits = {}
    for lim in args.limit:
        name, _, k = lim.partition("=")
        limits[name] = int(k)
    for n in names:
        if n not in makers:
            raise SystemExit(f"peers.py: unknown peer {n!r} (known: {', '.join(makers)})")

    env = (f"torch {torch.__version__}, Python {platform.python_version()}, device {args.device}"
           + (f" ({torch.cuda.get_device_name(0)})" if fp16 else f", {args.threads} threads"))
    out = {"environment": env, "peers": []}
    for name in names:
        score, desc = makers[name](args.model, args.device, fp16, args.batch_size)
        peer = {"name": name, "desc": desc, "per_k": []}
        for kin in inputs["per_k"]:
            k = kin["k"]
            if k > limits.get(name, k):
                continue
            pool = kin["pool"]
            warm, n = kin["warmup"], kin["n_requests"]
            logits0 = score(pool[0]["query"], pool[0]["docs"]) if k <= args.logits_max_k else []
            lat = []
            for i in range(warm + n):
                q = pool[i % len(pool)]
                t0 = time.perf_counter()
                score(q["query"], q["docs"])
                t1 = time.perf_counter()
                if i >= warm:
                    lat.append(t1 - t0)
                progress(f"{name} K={k}", i + 1, warm + n)
            peer["per_k"].append({"k": k, "latency_s": lat, "logits0": logits0})
            lat_sorted = sorted(lat)
            print(f"peers.py: {name} K={k}: p50 {1e3 * lat_sorted[(len(lat) - 1) // 2]:.1f} ms "
                  f"over {len(lat)} requests", file=sys.stderr)
        out["peers"].append(peer)
    with open(args.out, "w") as f:
        json.dump(out, f)
    print(f"peers.py: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
