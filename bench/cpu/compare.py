#!/usr/bin/env python3
"""compare.py — rerankd's CPU engine side by side with ONNX Runtime and PyTorch, interleaved.

  .venv-ort/bin/python bench/cpu/compare.py [--quick] [--rounds R] [--workloads LIST]
      [--engines LIST] [--threads N] [--requests NAME=N,...] [--out FILE]

Needs bench/cpu/setup-ort.sh (.venv-ort and the ONNX graphs), .venv-oracle
(scripts/setup-oracle.sh) and models/ (scripts/make_models.py). Not part of CI.

Engines, each a persistent worker process so models stay loaded (one protocol, see
rr_bench_cpu.c's "worker" and peer_worker.py): rerankd f32 / bf16 / int8 (rr-bench-cpu
worker, rr_score_query; a dtype the engine refuses is reported "not available"), PyTorch fp32
(transformers), ORT fused fp32, ORT int8 (quantize_dynamic of the fused graph), ORT plain
fp32. Every engine gets the same requests (one query + K documents, text in → logits out,
tokenization included) and the same thread count.

Workloads are cut, seeded, from the golden corpus's prose (tests/golden/corpus.py): queries
of 12–16 tokens; K1 … K1000 with ~100-token documents (~117-token pairs); "mixed" K=100 with
log-normal document lengths clipped to 8–500 tokens (pairs 27–512); "len512" K=100 with
~600-token documents (pairs truncated to 512); len32 / len128 K=100 on request.

Method: validate first — every engine's logits on the K10 and mixed sets against rerankd f32,
max |Δ| / max(1, |x|); an fp32 engine over 1e-4 stops the run before anything is timed, the
reduced precisions are reported with their deviation, top-10 agreement and mean Kendall τ.
Then R rounds; in each round, for each workload, every engine in a shuffled order: wait (up to
--max-wait s) until other processes use < 15 % of the machine, an untimed warm-up request,
then each request timed by the worker itself. Per round, each engine's median request time;
ratio = other engine's time ÷ rerankd's, per round; reported as the median over rounds with
the min–max beside it. What other processes used during each timed run (from /proc/stat,
less the CPU time of the driver and its workers) is recorded; runs where it passed 10 % are
listed. Writes bench/results/cpu-peers-<date>.md (--quick: bench/out/compare/, a smoke test,
not a result).
"""

import argparse
import datetime
import json
import math
import os
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "bench", "out", "compare")
ORACLE_PY = os.path.join(ROOT, ".venv-oracle", "bin", "python")
ORT_PY = os.path.join(ROOT, ".venv-ort", "bin", "python")
SEED = 20261205
FP32_TOL = 1e-4
IDLE_BELOW = 0.15  # others' share of the machine we wait for before a timed run
NOISY_ABOVE = 0.10  # others' share during a run that gets the run listed

# name → (label, kind, arg, precision)
ENGINES = {
    "rr-f32": ("rerankd f32", "rr", "f32", "fp32"),
    "rr-bf16": ("rerankd bf16", "rr", "bf16", "reduced"),
    "rr-int8": ("rerankd int8", "rr", "int8", "reduced"),
    "torch": ("PyTorch fp32", "py", "torch", "fp32"),
    "ort-fused": ("ORT fused fp32", "py", "ort-fused", "fp32"),
    "ort-int8": ("ORT int8", "py", "ort-int8", "reduced"),
    "ort-int8pc": ("ORT int8 per-channel", "py", "ort-int8pc", "reduced"),
    "ort-plain": ("ORT plain fp32", "py", "ort-plain", "fp32"),
}

# name → (K, document tokens: a number, "lognormal" or ("pair", total pair length)),
# default requests per round
WORKLOADS = {
    "K1": (1, 100, 40),
    "K10": (10, 100, 16),
    "K100": (100, 100, 4),
    "K1000": (1000, 100, 1),
    "mixed": (100, "lognormal", 4),
    "len512": (100, 600, 2),
    "len32": (100, ("pair", 32), 8),
    "len128": (100, ("pair", 128), 4),
}
DEFAULT_WORKLOADS = "K1,K10,K100,K1000,mixed,len512"
VALIDATION_SETS = ("K10", "mixed")
QUICK_REQUESTS = {"K1": 8, "K10": 4, "mixed": 2}
# (ratio column title, numerator engine, denominator engine): time ÷ time, > 1 = denominator faster
RATIOS = [
    ("PyTorch fp32 ÷ rerankd f32", "torch", "rr-f32"),
    ("ORT fused fp32 ÷ rerankd f32", "ort-fused", "rr-f32"),
    ("ORT int8 ÷ rerankd f32", "ort-int8", "rr-f32"),
    ("ORT plain fp32 ÷ rerankd f32", "ort-plain", "rr-f32"),
    ("rerankd f32 ÷ rerankd bf16", "rr-f32", "rr-bf16"),
    ("rerankd f32 ÷ rerankd int8", "rr-f32", "rr-int8"),
    ("ORT int8 ÷ rerankd bf16", "ort-int8", "rr-bf16"),
    ("ORT int8 ÷ rerankd int8", "ort-int8", "rr-int8"),
    ("ORT int8 per-channel ÷ rerankd int8", "ort-int8pc", "rr-int8"),
]


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Workloads

def make_workloads(model, names, counts, seed):
    """Writes OUT/workloads/<name>.jsonl for each name; returns {name: stats}."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
    import corpus
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    words = " ".join(corpus.prose()).split()
    # BERT pre-tokenizes on whitespace first, so a text's token count is its words' sum.
    uniq = sorted(set(words))
    n_of = dict(zip(uniq, (len(e.ids) for e in tok.encode_batch(uniq, add_special_tokens=False))))
    n_tok = [n_of[w] for w in words]

    def window(rng, target):
        i = rng.randrange(len(words))
        out, t = [], 0
        while t < target:
            out.append(words[i])
            t += n_tok[i]
            i = (i + 1) % len(words)
        return " ".join(out), t

    os.makedirs(os.path.join(OUT, "workloads"), exist_ok=True)
    stats = {}
    for name in names:
        k, doc, _ = WORKLOADS[name]
        rng = random.Random(f"{seed}:{name}")
        pair_lens = []
        with open(os.path.join(OUT, "workloads", f"{name}.jsonl"), "w") as f:
            for _ in range(counts[name]):
                query, q = window(rng, rng.randint(12, 16))
                docs = []
                for _ in range(k):
                    if doc == "lognormal":
                        target = min(500, max(8, round(rng.lognormvariate(math.log(100), 0.9))))
                    elif isinstance(doc, tuple):
                        target = max(1, doc[1] - 3 - q)
                    else:
                        target = doc
                    text, d = window(rng, target)
                    docs.append(text)
                    pair_lens.append(min(512, 3 + q + d))
                f.write(json.dumps({"query": query, "docs": docs}) + "\n")
        stats[name] = {"k": k, "requests": counts[name], "pairs": len(pair_lens),
                       "tokens": sum(pair_lens), "mean": statistics.mean(pair_lens),
                       "min": min(pair_lens), "max": max(pair_lens)}
    return stats


# ---------------------------------------------------------------------------------------
# CPU accounting (jiffies, USER_HZ, as /proc/stat and /proc/PID/stat count them)

def machine_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v[:8]) - idle, sum(v[:8])  # busy, total (guest time is inside user)


def pid_jiffies(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return int(v[11]) + int(v[12])  # utime + stime, all threads


def others_share(b0, b1, own):
    """Share of the whole machine other processes used between snapshots b0 and b1."""
    busy, total = b1[0] - b0[0], b1[1] - b0[1]
    return max(0.0, (busy - own) / total) if total > 0 else 0.0


def own_jiffies(pids):
    """CPU time of the benchmark itself: the driver and every worker (idle ones included: an
    idle worker's threads may still spin for a few ms after its last request)."""
    return pid_jiffies("self") + sum(pid_jiffies(p) for p in pids)


def wait_idle(max_wait, pids):
    """Waits until others use < IDLE_BELOW of the machine over 0.5 s, at most max_wait s.
    Returns (seconds waited, last share, whether it became idle)."""
    t0 = time.monotonic()
    while True:
        a, s0 = machine_jiffies(), own_jiffies(pids)
        time.sleep(0.5)
        share = others_share(a, machine_jiffies(), own_jiffies(pids) - s0)
        waited = time.monotonic() - t0
        if share < IDLE_BELOW or waited >= max_wait:
            return waited, share, share < IDLE_BELOW


# ---------------------------------------------------------------------------------------
# Workers

class Worker:
    def __init__(self, name, cmd, env=None):
        self.name, self.label = name, ENGINES[name][0]
        self.err_path = os.path.join(OUT, "logs", f"{name}.stderr")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(self.err_path, "w"), text=True, bufsize=1,
                                     env=env)
        first = self.proc.stdout.readline().strip()
        self.available = first.startswith("READY ")
        self.what = first.split(" ", 1)[1] if " " in first else (first or self.stderr_tail())
        if not self.available:
            self.close()

    def stderr_tail(self):
        with open(self.err_path) as f:
            lines = [s.strip() for s in f if s.strip()]
        return lines[-1] if lines else "exited without a word"

    def run(self, in_path, out_path):
        """Scores in_path; returns ([seconds], [[logits]]). Raises on the worker's error."""
        self.proc.stdin.write(f"{in_path} {out_path}\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().strip()
        if not reply.startswith("OK "):
            raise RuntimeError(f"{self.label}: {reply or 'died: ' + self.stderr_tail()}")
        times, logits = [], []
        with open(out_path) as f:
            for line in f:
                v = line.split()
                times.append(float(v[0]))
                logits.append([float(x) for x in v[1:]])
        return times, logits

    def close(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.wait()


def start_workers(names, args, bench_bin):
    os.makedirs(os.path.join(OUT, "logs"), exist_ok=True)
    onnx_dir = os.path.join(ROOT, "bench", "out", "ort", os.path.basename(os.path.normpath(
        args.model)))
    workers = {}
    for name in names:
        _, kind, arg, _ = ENGINES[name]
        if kind == "rr":
            cmd = [bench_bin, "worker", args.model, str(args.threads), arg]
        else:
            py = ORACLE_PY if arg == "torch" else ORT_PY
            cmd = [py, os.path.join(ROOT, "bench", "cpu", "peer_worker.py"), arg, args.model,
                   str(args.threads), "--onnx-dir", onnx_dir]
        log(f"starting {name}: {shlex.join(cmd)}")
        w = Worker(name, cmd)
        log(f"  {'ready' if w.available else 'NOT AVAILABLE'}: {w.what}")
        workers[name] = w
    return workers


# ---------------------------------------------------------------------------------------
# Validation

def rel_dev(x, ref):
    return max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(x, ref))


def kendall_tau_b(x, y):
    n, conc, disc, tx, ty = len(x), 0, 0, 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tx += 1
            elif dy == 0:
                ty += 1
            elif (dx > 0) == (dy > 0):
                conc += 1
            else:
                disc += 1
    den = math.sqrt((conc + disc + tx) * (conc + disc + ty))
    return (conc - disc) / den if den else 1.0


def top_overlap(x, ref, k=10):
    top = lambda v: set(sorted(range(len(v)), key=lambda i: (-v[i], i))[:k])  # noqa: E731
    return len(top(x) & top(ref)) / k


def validate(workers, stats):
    """Returns rows {engine: {set: (dev, tau, top10)}} and whether the fp32 engines passed."""
    ref, got = {}, {}
    for name, w in workers.items():
        if not w.available:
            continue
        for vs in VALIDATION_SETS:
            inp = os.path.join(OUT, "workloads", f"{vs}.jsonl")
            _, logits = w.run(inp, os.path.join(OUT, "runs", f"validate-{vs}-{name}.txt"))
            got.setdefault(name, {})[vs] = logits
    ref = got["rr-f32"]
    rows, ok = {}, True
    for name, sets in got.items():
        for vs, reqs in sets.items():
            dev = max(rel_dev(x, r) for x, r in zip(reqs, ref[vs]))
            taus = [kendall_tau_b(x, r) for x, r in zip(reqs, ref[vs])]
            tops = [top_overlap(x, r) for x, r in zip(reqs, ref[vs]) if len(r) > 10]
            rows.setdefault(name, {})[vs] = (dev, statistics.mean(taus),
                                             statistics.mean(tops) if tops else None)
            if ENGINES[name][3] == "fp32" and not dev <= FP32_TOL:
                ok = False
    return rows, ok


# ---------------------------------------------------------------------------------------
# Timing

def timed_rounds(workers, names, workloads, rounds, max_wait, seed):
    """Returns runs: list of dicts (round, workload, engine, times, others, waited, idle)."""
    rng = random.Random(seed)
    live = [n for n in names if workers[n].available]
    pids = [workers[n].proc.pid for n in live]
    runs = []
    for r in range(rounds):
        for wl in workloads:
            order = live[:]
            rng.shuffle(order)
            for name in order:
                w = workers[name]
                waited, before, idle = wait_idle(max_wait, pids)
                inp = os.path.join(OUT, "workloads", f"{wl}.jsonl")
                b0, o0 = machine_jiffies(), own_jiffies(pids)
                times, _ = w.run(inp, os.path.join(OUT, "runs", f"r{r}-{wl}-{name}.txt"))
                b1, o1 = machine_jiffies(), own_jiffies(pids)
                others = others_share(b0, b1, o1 - o0)
                runs.append({"round": r, "workload": wl, "engine": name, "times": times,
                             "median": statistics.median(times), "others": others,
                             "waited": waited, "idle_before": before, "idle": idle})
                log(f"round {r + 1}/{rounds} {wl:7s} {name:9s} median "
                    f"{1e3 * statistics.median(times):9.2f} ms over {len(times)} requests; "
                    f"others {100 * others:4.1f} % (waited {waited:4.1f} s"
                    f"{'' if idle else ', never idle'})")
    return runs


# ---------------------------------------------------------------------------------------
# Report

def sh(cmd, default="?"):
    try:
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, shell=True,
                              timeout=60).stdout.strip() or default
    except Exception:
        return default


def machine_lines(threads):
    lscpu = sh("lscpu")
    model = re.search(r"^Model name:\s*(.*)$", lscpu, re.M)
    flags = re.search(r"^Flags:\s*(.*)$", lscpu, re.M)
    flags = set(flags.group(1).split()) if flags else set()
    interest = ["avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16",
                "amx_int8"]
    have = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in interest)
    return [f"- Machine: {model.group(1) if model else '?'}, {os.cpu_count()} online CPUs "
            f"({len(os.sched_getaffinity(0))} usable), {threads} threads per engine; "
            f"{platform.system()} {platform.release()}",
            f"- CPU flags: {have}"]


def version_lines(bench_bin, build_dir):
    dirty = "" if sh("git diff --quiet HEAD -- src include bench/cpu && echo clean") == "clean" \
        else " (+ local changes)"
    build_type = sh(f"sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' {shlex.quote(build_dir)}/"
                    "CMakeCache.txt")
    oracle = sh(f"{ORACLE_PY} -c 'import torch, transformers, tokenizers; print("
                f"f\"torch {{torch.__version__}}, transformers {{transformers.__version__}}, "
                f"tokenizers {{tokenizers.__version__}}\")'")
    ortv = sh(f"{ORT_PY} -c 'import onnxruntime, onnx, numpy, tokenizers; print("
              f"f\"onnxruntime {{onnxruntime.__version__}}, onnx {{onnx.__version__}}, "
              f"numpy {{numpy.__version__}}, tokenizers {{tokenizers.__version__}}\")'")
    blas = sh("dpkg-query -W -f='${Version}' libopenblas0-pthread")
    return [f"- rerankd: commit {sh('git rev-parse --short HEAD')}{dirty}, {build_type} build "
            f"({os.path.relpath(bench_bin, ROOT)}), {sh('cc --version | head -1')}, OpenBLAS "
            f"{blas}",
            f"- PyTorch peer (.venv-oracle): {oracle}",
            f"- ONNX Runtime peers (.venv-ort): {ortv}",
            f"- Python {platform.python_version()}"]


def fmt_ratio(vals):
    if not vals:
        return "not available"
    med = statistics.median(vals)
    return f"{med:.2f}× ({min(vals):.2f}–{max(vals):.2f})" if len(vals) > 1 else f"{med:.2f}×"


def write_report(path, args, workers, names, stats, wl_names, val_rows, runs, load0):
    per = {}  # (workload, engine) → {round: median}
    for run in runs:
        per.setdefault((run["workload"], run["engine"]), {})[run["round"]] = run["median"]
    L = [f"# CPU engines side by side: rerankd, ONNX Runtime, PyTorch — "
         f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}", ""]
    if args.quick:
        L += ["**Quick run (--quick): a smoke test of the driver, not a result.**", ""]
    L += machine_lines(args.threads)
    load1 = sh("cut -d' ' -f1-3 /proc/loadavg")
    L += [f"- Load average (1/5/15 min) at start: {load0}, at end: {load1}"]
    L += version_lines(args.bench_bin, args.build_dir)
    L += [f"- Model: {args.model}; seed {args.seed}; {args.rounds} round(s)", ""]
    L += ["## Engines", "", "| engine | what ran |", "|---|---|"]
    for n in names:
        w = workers[n]
        L.append(f"| {w.label} | {w.what if w.available else 'not available: ' + w.what} |")
    L += ["", "## Workloads", "",
          "Seeded windows of the golden corpus's prose (`tests/golden/corpus.py`), the same "
          "requests for every engine; pair length = tokens after truncation to 512, specials "
          "included.", "",
          "| workload | K | requests per round | pairs | pair tokens mean (min–max) |",
          "|---|---|---|---|---|"]
    for wl in wl_names:
        s = stats[wl]
        L.append(f"| {wl} | {s['k']} | {s['requests']} | {s['pairs']} | "
                 f"{s['mean']:.0f} ({s['min']}–{s['max']}) |")
    L += ["", "## Method", "",
          "A request is one query and K documents, text in → logits out, tokenization "
          "included, timed inside each engine's persistent worker (model loaded once). "
          "rerankd: `rr-bench-cpu worker` → `rr_score_query` (pairs packed unpadded into "
          "batches of up to 16384 tokens, rerankd's default). PyTorch and ORT: "
          "`bench/cpu/peer_worker.py`, batches of 32 pairs padded to the batch's longest "
          "(as `CrossEncoder.predict`), HF fast tokenizer (longest_first, max_length 512); "
          "ORT sessions ORT_ENABLE_ALL, intra_op_num_threads = threads, inter_op 1. "
          f"Each round runs every workload, and within it every engine in a shuffled order "
          f"(seeded): wait up to {args.max_wait:g} s for other processes to use < "
          f"{100 * IDLE_BELOW:.0f} % of the machine, one untimed warm-up request (the first, "
          "its documents cut to 100), then every request timed. Per round each engine's "
          "median request time; a ratio is taken per round (time ÷ time, > 1: the engine "
          "after ÷ is faster) and reported as the median over rounds (min–max).", ""]
    L += ["## Validation (before timing)", "",
          f"Logits on the {' and '.join(VALIDATION_SETS)} sets against rerankd f32: max "
          f"|Δ| / max(1, |x|); fp32 engines must be within {FP32_TOL:g}. Kendall τ-b per "
          "query and top-10 overlap (requests with K > 10) against rerankd f32's order.", "",
          "| engine | precision | " + " | ".join(f"max rel. dev. {v}" for v in VALIDATION_SETS)
          + " | mean Kendall τ (" + ", ".join(VALIDATION_SETS) + ") | top-10 agreement |",
          "|---|---|" + "---|" * len(VALIDATION_SETS) + "---|---|"]
    for n in names:
        if n not in val_rows:
            L.append(f"| {ENGINES[n][0]} | {ENGINES[n][3]} | " + "not available | " *
                     len(VALIDATION_SETS) + " | |")
            continue
        row = val_rows[n]
        devs = " | ".join(f"{row[v][0]:.2e}" +
                          ("" if ENGINES[n][3] != "fp32" else
                           (" ✓" if row[v][0] <= FP32_TOL else " ✗")) for v in VALIDATION_SETS)
        taus = ", ".join(f"{row[v][1]:.4f}" for v in VALIDATION_SETS)
        tops = [row[v][2] for v in VALIDATION_SETS if row[v][2] is not None]
        L.append(f"| {ENGINES[n][0]} | {ENGINES[n][3]} | {devs} | {taus} | "
                 f"{statistics.mean(tops):.3f} |" if tops else
                 f"| {ENGINES[n][0]} | {ENGINES[n][3]} | {devs} | {taus} | – |")
    live = [n for n in names if workers[n].available]
    L += ["", "## Time per request", "",
          "Median over rounds of each round's median request time, ms (pairs/s beside).", "",
          "| workload | " + " | ".join(ENGINES[n][0] for n in names) + " |",
          "|---|" + "---|" * len(names)]
    for wl in wl_names:
        cells = []
        for n in names:
            v = per.get((wl, n))
            if not v:
                cells.append("not available")
                continue
            med = statistics.median(v.values())
            cells.append(f"{1e3 * med:.1f} ({stats[wl]['k'] / med:.0f}/s)")
        L.append(f"| {wl} | " + " | ".join(cells) + " |")
    cols = [c for c in RATIOS if c[1] in names and c[2] in names]
    L += ["", "## Ratios", "",
          "time ÷ time per round, median over rounds (min–max); > 1: the engine after ÷ is "
          "faster.", "",
          "| workload | " + " | ".join(c[0] for c in cols) + " |",
          "|---|" + "---|" * len(cols)]
    for wl in wl_names:
        cells = []
        for _, num, den in cols:
            a, b = per.get((wl, num), {}), per.get((wl, den), {})
            cells.append(fmt_ratio([a[r] / b[r] for r in a if r in b]))
        L.append(f"| {wl} | " + " | ".join(cells) + " |")
    noisy = [r for r in runs if r["others"] > NOISY_ABOVE]
    never = [r for r in runs if not r["idle"]]
    L += ["", "## Contention", "",
          f"{len(runs)} timed runs; other processes' share of the machine during a run: "
          f"median {100 * statistics.median(r['others'] for r in runs):.1f} %, max "
          f"{100 * max(r['others'] for r in runs):.1f} %. " if runs else "No timed runs. "]
    L[-1] += (f"{len(never)} run(s) started after the {args.max_wait:g} s wait without the "
              f"machine becoming idle. {len(noisy)} run(s) where others took > "
              f"{100 * NOISY_ABOVE:.0f} %" + (":" if noisy else "."))
    if noisy:
        L += ["", "| round | workload | engine | others during | others before |",
              "|---|---|---|---|---|"]
        for r in noisy:
            L.append(f"| {r['round'] + 1} | {r['workload']} | {ENGINES[r['engine']][0]} | "
                     f"{100 * r['others']:.1f} % | {100 * r['idle_before']:.1f} % |")
        L += ["", "**Other processes shared the cores: the timings are indicative only.**"]
    L += ["", "## Command", "", "```sh",
          " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, ROOT)
                                            if sys.executable.startswith(ROOT) else
                                            sys.executable] + sys.argv), "```", ""]
    if live and "rr-f32" not in live:
        L += ["rerankd f32 was not available: no ratios."]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(L) + "\n")
    os.replace(path + ".tmp", path)
    return "\n".join(L)


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/minilm-l6-bert")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--rounds", type=int, default=None, help="≥ 3 (default 3; --quick: 1)")
    ap.add_argument("--workloads", default=None,
                    help=f"comma list of {','.join(WORKLOADS)} (default {DEFAULT_WORKLOADS}; "
                         "--quick: K1,K10)")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma list (rr-f32 always)")
    ap.add_argument("--requests", default="",
                    help="requests per round, NAME=N,... (defaults: " +
                         ", ".join(f"{k} {v[2]}" for k, v in WORKLOADS.items()) + ")")
    ap.add_argument("--quick", action="store_true",
                    help="K1 and K10, 1 round, few requests: checks the plumbing in a few minutes")
    ap.add_argument("--max-wait", type=float, default=20.0,
                    help="seconds to wait for an idle machine before each timed run")
    ap.add_argument("--build-dir", default="build-bench")
    ap.add_argument("--no-build", action="store_true", help="use --build-dir's rr-bench-cpu as is")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", default=None, help="the report (default bench/results/"
                                                "cpu-peers-<date>.md; --quick: bench/out/compare/)")
    args = ap.parse_args()
    os.chdir(ROOT)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.rounds < 3 and not args.quick:
        ap.error("--rounds must be ≥ 3 (a median and a spread need three); --quick allows 1")
    wl_names = (args.workloads or ("K1,K10" if args.quick else DEFAULT_WORKLOADS)).split(",")
    names = ["rr-f32"] + [n for n in args.engines.split(",") if n and n != "rr-f32"]
    for n in names:
        if n not in ENGINES:
            ap.error(f"unknown engine {n}; known: {', '.join(ENGINES)}")
    for w in wl_names:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}; known: {', '.join(WORKLOADS)}")
    counts = {k: v[2] for k, v in WORKLOADS.items()}
    if args.quick:
        counts.update(QUICK_REQUESTS)
    for item in filter(None, args.requests.split(",")):
        k, v = item.split("=")
        counts[k] = int(v)
    for p, what in ((ORT_PY, "run bench/cpu/setup-ort.sh"),
                    (ORACLE_PY, "run scripts/setup-oracle.sh")):
        if not os.access(p, os.X_OK):
            sys.exit(f"compare: {p} missing; {what}")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    report = args.out or (os.path.join(OUT, f"cpu-peers-quick-{date}.md") if args.quick else
                          os.path.join(ROOT, "bench", "results", f"cpu-peers-{date}.md"))
    load0 = sh("cut -d' ' -f1-3 /proc/loadavg")

    args.bench_bin = os.path.join(ROOT, args.build_dir, "bench", "cpu", "rr-bench-cpu")
    if not args.no_build:
        log(f"building rr-bench-cpu (Release) in {args.build_dir}")
        subprocess.run(["cmake", "-S", ".", "-B", args.build_dir, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", args.build_dir, "-j2", "--target", "rr-bench-cpu"],
                       check=True, stdout=subprocess.DEVNULL)

    t0 = time.monotonic()
    gen = list(dict.fromkeys(wl_names + list(VALIDATION_SETS)))
    stats = make_workloads(args.model, gen, counts, args.seed)
    log(f"workloads {', '.join(gen)} in {time.monotonic() - t0:.1f} s: " + "; ".join(
        f"{w} {s['requests']}×K{s['k']} mean pair {s['mean']:.0f} tok" for w, s in stats.items()))
    os.makedirs(os.path.join(OUT, "runs"), exist_ok=True)

    workers = start_workers(names, args, args.bench_bin)
    try:
        if not workers["rr-f32"].available:
            sys.exit(f"compare: rerankd f32 is not available: {workers['rr-f32'].what}")
        log("validating against rerankd f32")
        val_rows, ok = validate(workers, stats)
        for n, row in val_rows.items():
            log(f"  {n:9s} " + "  ".join(f"{v}: dev {row[v][0]:.2e} τ {row[v][1]:.4f}"
                                         for v in VALIDATION_SETS))
        if not ok:
            bad = [n for n, row in val_rows.items() if ENGINES[n][3] == "fp32" and
                   any(not row[v][0] <= FP32_TOL for v in VALIDATION_SETS)]
            sys.exit(f"compare: fp32 engines disagree with rerankd f32 by more than "
                     f"{FP32_TOL:g}: {', '.join(bad)}; nothing timed")
        runs = timed_rounds(workers, names, wl_names, args.rounds, args.max_wait, args.seed)
    finally:
        for w in workers.values():
            if w.available:
                w.close()
    text = write_report(report, args, workers, names, stats, wl_names, val_rows, runs, load0)
    print(text)
    log(f"wrote {os.path.relpath(report, ROOT)}")


if __name__ == "__main__":
    main()
