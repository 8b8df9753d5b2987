#!/usr/bin/env python3
"""torch_bench.py — the PyTorch + transformers fp16 side of bench/gpu/gpu-check.sh.

Runs AutoModelForSequenceClassification (fp16, eval, no grad) on exactly the token ids that
bench_gpu wrote (OUT_DIR/inputs.jsonl: one query, 1000 passages), for K = 1, 10, 100, 1000,
with attn_implementation "eager" and "sdpa". Each K is one padded batch (attention mask),
as a user of transformers would run it. Timing: wall clock around host→device copy of the
ids, forward, and logits back to the host (what rerank's synchronous forward also covers),
after 10 warm-up calls; p50 and p99. Validation: per K, the logits against the CPU engine's
and the CUDA engine's (OUT_DIR/logits_{cpu,fp16}_<K>.txt from bench_gpu), printed.
Also measures the bf16 matmul peak (8192³, mean of 10 after 3 warm-ups) for the TFLOP/s
column. Writes OUT_DIR/torch.tsv (impl K p50_ms p99_ms) and prints it.
"""
import json
import os
import statistics
import sys
import time

import torch
from transformers import AutoModelForSequenceClassification


def load_inputs(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def padded(pairs):
    n = max(len(p["input_ids"]) for p in pairs)
    ids = torch.zeros((len(pairs), n), dtype=torch.long)
    tt = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(pairs):
        L = len(p["input_ids"])
        ids[i, :L] = torch.tensor(p["input_ids"])
        tt[i, :L] = torch.tensor(p["token_type_ids"])
        mask[i, :L] = 1
    return ids.pin_memory(), tt.pin_memory(), mask.pin_memory()


def run(model, batch):
    ids, tt, mask = (t.to("cuda", non_blocking=True) for t in batch)
    with torch.inference_mode():
        out = model(input_ids=ids, token_type_ids=tt, attention_mask=mask).logits
    return out.float().cpu()


def bf16_peak():
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(10):
        a @ b
    e.record()
    torch.cuda.synchronize()
    return 2 * 8192**3 / (s.elapsed_time(e) / 10 * 1e-3) / 1e12


def main():
    model_dir, out_dir = sys.argv[1], sys.argv[2]
    pairs = load_inputs(os.path.join(out_dir, "inputs.jsonl"))
    rows = [("peak_bf16_tflops", "-", f"{bf16_peak():.1f}", "-")]
    for impl in ("eager", "sdpa"):
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, dtype=torch.float16, attn_implementation=impl).cuda().eval()
        for k in (1, 10, 100, 1000):
            batch = padded(pairs[:k])
            got = run(model, batch)[:, 0]
            for name in ("cpu", "fp16"):
                p = os.path.join(out_dir, f"logits_{name}_{k}.txt")
                if os.path.exists(p):
                    r = torch.tensor([float(x) for x in open(p)])
                    print(f"# torch {impl} fp16 vs rerank {name}, K={k}: max |diff| = "
                          f"{(got - r).abs().max().item():.4g}")
            for _ in range(10):
                run(model, batch)
            times = []
            for _ in range(50 if k >= 1000 else 200):
                t0 = time.perf_counter()
                run(model, batch)
                times.append((time.perf_counter() - t0) * 1e3)
            times.sort()
            rows.append((impl, k, f"{statistics.median(times):.4f}",
                         f"{times[len(times) * 99 // 100]:.4f}"))
        del model
        torch.cuda.empty_cache()
    with open(os.path.join(out_dir, "torch.tsv"), "w") as f:
        f.write("impl\tK\tp50_ms\tp99_ms\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")
    print(open(os.path.join(out_dir, "torch.tsv")).read())


if __name__ == "__main__":
    main()
