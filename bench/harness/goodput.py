"""goodput.py — deadline-aware admission under overload: the share of requests answered within
their deadline (goodput), with `rerankd --admission-control on` and `off`, in rerank-bench's
open loop (arrivals on a clock, latency from the scheduled arrival, every call with the same
gRPC deadline D) at OVERLOAD × the capacity measured first with the closed loop, and at LOW ×
capacity (where admission control must refuse nothing). Every (deadline, load) pair runs
ROUNDS times, on and off interleaved (the order flips each round), each on a fresh server
warmed by a few seconds of one closed-loop client; the capacity is measured again before
each group of runs (the shared machine's speed drifts) and the group's rates follow it. Writes bench/results/<NAME>-<date>.md
with the command, the machine, the load average around every run, and every run's numbers.

    .venv/bin/python bench/harness/goodput.py [--build build-bench] [--model models/minilm-l6-bert]
        [--k 10] [--deadlines 5,2] [--overload 2.0] [--low 0.3] [--open-seconds 30] [--rounds 2]

Needs a build of rerankd and rerank-bench (cmake --build BUILD --target rerankd rerank-bench)
and models/ (scripts/make_models.py). Standard library only. Not a test: nothing is asserted.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


class Server:
    def __init__(self, a, admission, log):
        cmd = [os.path.join(a.build, "rerankd"), "--model", a.model, "--device", "cpu", "--host",
               "127.0.0.1", "--port", "0", "--http-port", "0", "--threads", str(a.threads),
               "--admission-control", admission]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
        self.port = self.http = None
        t0 = time.time()
        while time.time() - t0 < 120:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("HTTP "):
                self.http = int(line.split()[1])
            if line.startswith("READY "):
                self.port = int(line.split()[1])
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("rerankd did not start; see %s" % log)

    def metric(self, name, **labels):
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http, timeout=30).read().decode()
        want = name + ("{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}" if labels else "")
        for line in body.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


def bench(a, port, out, extra):
    cmd = [os.path.join(a.build, "bench", "harness", "rerank-bench"), "--target", "127.0.0.1:%d" % port,
           "--inputs", a.inputs, "--k", str(a.k), "--sweep-k", str(a.k), "--no-unary", "--no-stream",
           "--validate-max-k", "0", "--no-progress", "--out", out] + extra
    path = os.path.join(out, "report.json")
    if os.path.exists(path):
        os.unlink(path)  # never read an earlier run's report
    r = subprocess.run(cmd, capture_output=True, text=True)
    if not os.path.exists(path):  # rc 1 only means some calls failed, which overload makes
        sys.exit("rerank-bench failed (rc %d):\n%s" % (r.returncode, r.stderr[-3000:]))
    with open(path) as f:
        return json.load(f), r.stderr


def capacity(a, tag="capacity", conc=None, seconds=None):
    srv = Server(a, "on", os.path.join(a.out, "rerankd-%s.log" % tag))
    try:
        rep, _ = bench(a, srv.port, os.path.join(a.out, tag),
                       ["--concurrency", conc or a.conc, "--sweep-seconds", str(seconds or a.sweep_seconds),
                        "--warmup", "2", "--rate", "0"])
    finally:
        srv.stop()
    rows = [(p["clients"], p["requests_per_s"], p["latency_s"]["p50"], p["latency_s"]["p99"], p["requests"])
            for p in rep["concurrency"]]
    return max(r[1] for r in rows), rows


def open_run(a, admission, rate, deadline, tag):
    la0 = loadavg()
    srv = Server(a, admission, os.path.join(a.out, "rerankd-%s.log" % tag))
    try:
        # A server that has served before (the estimator has data, as in production): one
        # client, closed loop, a few seconds; then the open loop on the same server.
        bench(a, srv.port, os.path.join(a.out, tag + "-warm"),
              ["--concurrency", "1", "--sweep-seconds", "2", "--warmup", "1", "--rate", "0"])
        warmup = a.warmup if a.warmup is not None else 2 * deadline
        rep, err = bench(a, srv.port, os.path.join(a.out, tag),
                         ["--concurrency", "0", "--rate", "%.3f" % rate, "--open-seconds", str(a.open_seconds),
                          "--warmup", str(warmup), "--timeout", str(deadline)])
        refused = {s: srv.metric("rerankd_admission_refused_total", stage=s) for s in ("intake", "tokenized")}
        expired = srv.metric("rerankd_requests_total", outcome="expired")
        cancelled = srv.metric("rerankd_requests_total", outcome="cancelled")
        done = srv.metric("rerankd_requests_total", outcome="done")
    finally:
        srv.stop()
    o = rep["open_loop"]
    g = o["goodput"]
    return {"tag": tag, "admission": admission, "rate": rate, "deadline": deadline, "warmup": warmup, "arrived": g["arrived"], "good": g["in_deadline"],
            "share": g["share"], "refused_client": g["refused_at_admission"], "refused": refused,
            "expired": expired, "cancelled": cancelled, "done": done, "ok": o["requests"], "p50": o["latency_s"].get("p50"),
            "p99": o["latency_s"].get("p99"), "load": "%s → %s" % (la0, loadavg())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--model", default="models/minilm-l6-bert")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--deadlines", default="5,2", help="per-request deadlines to run, s (comma-separated)")
    ap.add_argument("--overload", type=float, default=2.0, help="offered rate / capacity")
    ap.add_argument("--low", type=float, default=0.3, help="the low-load rate / capacity")
    ap.add_argument("--conc", default="1,2,4,8,16")
    ap.add_argument("--sweep-seconds", type=float, default=8)
    ap.add_argument("--recheck-conc", default="1,4", help="closed-loop clients of the capacity re-check")
    ap.add_argument("--recheck-seconds", type=float, default=5)
    ap.add_argument("--open-seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=None, help="open-loop warm-up, s (default 2 × deadline)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--name", default="admission-cpu")
    a = ap.parse_args()
    os.chdir(ROOT)
    a.deadlines = [float(x) for x in a.deadlines.split(",")]
    a.out = os.path.join(ROOT, "bench", "out", "goodput")
    os.makedirs(a.out, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.time()

    prose = os.path.join(a.out, "prose.txt")
    with open(prose, "w") as f:
        subprocess.run([sys.executable, "tests/golden/corpus.py", "prose", "--bytes", "1000000"], stdout=f, check=True)
    a.inputs = os.path.join(a.out, "inputs.json")
    subprocess.run([os.path.join(a.build, "bench", "harness", "rerank-bench"), "--model", a.model, "--text", prose,
                    "--k", str(a.k), "--dump-inputs", a.inputs], check=True, capture_output=True)

    cap, cap_rows = capacity(a)
    print("capacity: %.2f req/s at K=%d" % (cap, a.k), file=sys.stderr)
    runs = []
    for rnd in range(1, a.rounds + 1):
        for dl in a.deadlines:
            # This machine's speed drifts with the other jobs on it: the capacity is measured
            # again before each group, and its rates follow it.
            now_cap, _ = capacity(a, "capacity-%gs-%d" % (dl, rnd), a.recheck_conc, a.recheck_seconds)
            print("capacity now: %.2f req/s" % now_cap, file=sys.stderr)
            for name, factor in (("overload", a.overload), ("low", a.low)):
                for adm in (("on", "off") if rnd % 2 else ("off", "on")):
                    r = open_run(a, adm, factor * now_cap, dl, "%s-%gs-%s-%d" % (name, dl, adm, rnd))
                    r["load_name"], r["factor"], r["round"], r["capacity"] = name, factor, rnd, now_cap
                    runs.append(r)
                    print("%-8s %gs %-3s round %d: %.2f req/s offered, %d/%d within deadline (%.1f %%), "
                          "refused %d+%d, load %s" % (name, dl, adm, rnd, r["rate"], r["good"], r["arrived"],
                                                      100 * r["share"], r["refused"]["intake"],
                                                      r["refused"]["tokenized"], r["load"]), file=sys.stderr)
    write_report(a, cap, cap_rows, runs, started, time.time() - t_start)


def write_report(a, cap, cap_rows, runs, started, wall):
    stamp = started.strftime("%Y-%m-%d")
    path = os.path.join(ROOT, "bench", "results", "%s-%s.md" % (a.name, stamp))
    cmd = "bench/harness/goodput.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "src", "include", "bench"]).returncode != 0
    with open(path, "w") as f:
        w = f.write
        w("<!-- written by bench/harness/goodput.py -->\n")
        w("# Goodput under overload: deadline-aware admission on vs off (CPU)\n\n")
        w("- Command: `.venv/bin/python %s` (commit %s%s), started %s UTC, %.0f s in all\n" %
          (cmd, commit, " + local changes" if dirty else "", started.strftime("%Y-%m-%d %H:%M"), wall))
        w("- Machine: %s, %d online CPUs, %s; shared with other jobs (load average per run below)\n" %
          (cpu_model(), os.cpu_count(), platform.platform()))
        w("- Server: `rerankd --model %s --threads %d --admission-control on|off` (CPU engine, fp32, "
          "--max-batch-tokens 16384), a fresh process per run\n" % (a.model, a.threads))
        w("- Load: rerank-bench open loop (arrivals on a clock, latency from the scheduled arrival), K = %d "
          "(~16-token queries, ~100-token passages cut from tests/golden/corpus.py prose), unary Rerank, every "
          "call with the same gRPC deadline D; %.0f s of arrivals measured after a warm-up of %s; before it, "
          "one closed-loop client for ~3 s on the same server (so the estimator has data, as on a server that "
          "has been up); *within deadline* = answered OK within D of its scheduled arrival\n\n" %
          (a.k, a.open_seconds, "%g s" % a.warmup if a.warmup is not None else "2 × D"))
        w("## Capacity (closed loop, admission on, no deadline)\n\n| clients | req/s | p50 ms | p99 ms | n |\n"
          "|---|---|---|---|---|\n")
        for c, rps, p50, p99, n in cap_rows:
            w("| %d | %.2f | %.0f | %.0f | %d |\n" % (c, rps, 1e3 * p50, 1e3 * p99, n))
        w("\nCapacity = the best: **%.2f req/s** at the start. Before each group of runs below (one deadline, "
          "one round: overload and low load, on and off) it is measured again (closed loop, %s clients, %g s "
          "each) and that group's rates are OVERLOAD and LOW times it.\n\n" % (cap, a.recheck_conc, a.recheck_seconds))
        w("## Open loop, every run in the order it ran\n\n"
          "| load | D | admission | round | capacity just before, req/s | offered req/s | arrivals | within D | "
          "goodput | refused at admission (intake + tokenized) | dropped before compute | scored | OK p50 / p99 ms | "
          "load average before → after |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for r in runs:
            w("| %s (%.1f×) | %g s | %s | %d | %.2f | %.2f | %d | %d | **%.1f %%** | %d + %d | %d | %d | %s / %s | %s |\n" %
              (r["load_name"], r["factor"], r["deadline"], r["admission"], r["round"], r["capacity"], r["rate"],
               r["arrived"],
               r["good"], 100 * r["share"], r["refused"]["intake"], r["refused"]["tokenized"],
               r["expired"] - r["refused"]["tokenized"] + r["cancelled"], r["done"],
               "%.0f" % (1e3 * r["p50"]) if r["ok"] else "–", "%.0f" % (1e3 * r["p99"]) if r["ok"] else "–",
               r["load"]))
        w("\nRefused, dropped and scored are the server's counts over the whole run, warm-ups included "
          "(`rerankd_admission_refused_total`; dropped = `rerankd_requests_total` expired, less the refusals "
          "after tokenization, which finish as expired, plus cancelled: gRPC cancels a call whose deadline "
          "passes, and the scheduler drops it before compute as cancelled; scored = done); arrivals and "
          "goodput are the measured window's. Latency percentiles are of the requests the client saw "
          "answered OK.\n\n")
        w("## Summary (mean of the rounds)\n\n| load | D | admission | goodput per round | mean |\n"
          "|---|---|---|---|---|\n")
        for dl in a.deadlines:
            for name in ("overload", "low"):
                for adm in ("on", "off"):
                    rs = [r for r in runs if r["load_name"] == name and r["admission"] == adm and r["deadline"] == dl]
                    if rs:
                        shares = [100 * r["share"] for r in rs]
                        w("| %s (%.1f× capacity) | %g s | %s | %s | %.1f %% |\n" %
                          (name, rs[0]["factor"], dl, adm, ", ".join("%.1f %%" % x for x in shares),
                           sum(shares) / len(shares)))
    print("goodput.py: wrote %s" % os.path.relpath(path, ROOT), file=sys.stderr)


if __name__ == "__main__":
    main()
