"""replicas.py — rerankd behind a load balancer: throughput of 3 replicas against 1, and what
a client sees when one of the 3 is killed mid-run (issue 14, "Several replicas").

Two ways to spread calls, both gRPC-aware (they balance calls, not connections):
  rr       client-side round_robin over a static list (`ipv4:127.0.0.1:A,127.0.0.1:B,...`)
  haproxy  Debian's HAProxy 2.6 in front (HTTP/2 both sides, `balance roundrobin`, TCP
           health checks every 500 ms); skipped when haproxy is not installed.
The client retries UNAVAILABLE by the service config's retryPolicy (up to 4 attempts,
backoff 50 ms → 400 ms): a call refused or cut off by a dying replica is sent again.

Runs, each closed-loop (CONC client threads, each sends its next call when the last one
returns; every call is a query with DOCS documents of ~WORDS words):
  1 replica, direct                  — the baseline
  3 replicas, rr  /  3 replicas, haproxy
  kill: 3 replicas, one SIGKILLed at KILL_AT s and started again 5 s later (a supervisor's
        restart), under rr and under haproxy.
Reported per run: calls/s, p50/p99 latency, failed calls (after retries) with their codes;
for the kill runs also: calls in flight at the kill (on all replicas), the longest gap between
completions around the kill, the time until the 1 s throughput is back to ≥ 90 % of the
pre-kill mean, and when the restarted replica has its first call (in flight or done: its /metrics,
polled every 50 ms).

Before timing, every replica must return the same scores for the request (else exit 1).
All replicas and the client share one machine: on 2 cores 3 replicas cannot add compute,
only spread it. The numbers say how much the spreading costs or gains, not how it scales.
Writes a Markdown table to stdout and the raw per-run summary to --json.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
import rrtest  # noqa: E402

RETRY_SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": [{"service": "rerank.v1.Reranker"}],
        "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.05s", "maxBackoff": "0.4s",
                        "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
    }],
}


LOADAVG = []  # the 1-minute load average at the end of each run: the machine is shared


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Replica:
    def __init__(self, binary, model, threads):
        self.binary, self.model, self.threads = binary, model, threads
        self.port, self.http_port = free_port(), free_port()
        self.proc = None

    def start(self):
        log = open(os.path.join(tempfile.gettempdir(), "rerankd-replica-%d.log" % self.port), "a")
        self.proc = subprocess.Popen([self.binary, "--model", self.model, "--device", "cpu", "--host", "127.0.0.1",
                                      "--port", str(self.port), "--threads", str(self.threads),
                                      "--http-port", str(self.http_port), "--grace-seconds", "2"], stdout=subprocess.PIPE, stderr=log, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line or line.startswith("READY "):
                break
        if not line.startswith("READY "):
            raise RuntimeError("replica on %d did not start" % self.port)
        return self

    def metric(self, prefix):
        """The sum of the /metrics samples whose line starts with prefix (0 when unreachable)."""
        try:
            body = rrtest.http_get(self.http_port, "/metrics", timeout=2)[2]
        except OSError:
            return 0
        return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(prefix))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class HAProxy:
    def __init__(self, ports):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="rr-haproxy-")
        cfg = os.path.join(self.dir, "haproxy.cfg")
        servers = "\n".join("    server r%d 127.0.0.1:%d proto h2 check inter 500ms fall 1 rise 1" % (i, p)
                            for i, p in enumerate(ports))
        with open(cfg, "w") as f:
            f.write("""global
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    retries 2
    option redispatch
frontend grpc
    bind 127.0.0.1:%d proto h2
    default_backend replicas
backend replicas
    balance roundrobin
%s
""" % (self.port, servers))
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "haproxy.log"), "w"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("haproxy did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def make_request(pb, docs, words):
    import random
    rnd = random.Random(7)
    vocab = ("cat purr larynx moon tide ocean gravity sleep vibration muscle sound frequency animal "
             "domestic wild lion growl throat nerve brain signal breathing rhythm comfort heal").split()
    return pb.RerankRequest(query="why do cats purr when they are content",
                            documents=[pb.Document(text=" ".join(rnd.choice(vocab) for _ in range(words)))
                                       for _ in range(docs)])


def load(target, seconds, conc, req, events=()):
    """Closed loop for `seconds`; events: [(at_s, fn)] run from this thread at those times.
    Returns the list of calls (t_start, t_end, code) with times relative to the start."""
    import grpc
    from rerank.v1 import rerank_pb2_grpc as pbg
    ch = grpc.insecure_channel(target, options=[
        ("grpc.service_config", json.dumps(RETRY_SERVICE_CONFIG)), ("grpc.enable_retries", 1),
        ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1000)])
    grpc.channel_ready_future(ch).result(timeout=20)
    stub = pbg.RerankerStub(ch)
    calls, lock = [], threading.Lock()
    t0 = time.monotonic()
    end = t0 + seconds

    def worker():
        while time.monotonic() < end:
            a = time.monotonic()
            try:
                stub.Rerank(req, timeout=30)
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
            b = time.monotonic()
            with lock:
                calls.append((a - t0, b - t0, code))

    ths = [threading.Thread(target=worker, daemon=True) for _ in range(conc)]
    for t in ths:
        t.start()
    for at, fn in sorted(events, key=lambda e: e[0]):
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        fn(time.monotonic() - t0)
    for t in ths:
        t.join()
    ch.close()
    LOADAVG.append(os.getloadavg()[0])
    return calls


def summarize(name, calls, seconds, warm=2.0):
    ok = [c for c in calls if c[2] == "OK" and c[0] >= warm]
    lat = sorted(c[1] - c[0] for c in ok)
    fails = {}
    for c in calls:
        if c[2] != "OK":
            fails[c[2]] = fails.get(c[2], 0) + 1
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
    load1 = LOADAVG[-1] if LOADAVG else float("nan")
    failed_ms = sorted((c[1] - c[0]) * 1000 for c in calls if c[2] != "OK")
    return {"run": name, "calls_per_s": len(ok) / (seconds - warm), "p50_ms": q(0.5), "p99_ms": q(0.99),
            "ok": len([c for c in calls if c[2] == "OK"]), "failed": sum(fails.values()), "fail_codes": fails,
            "failed_at_s": [round(c[0], 2) for c in calls if c[2] != "OK"],
            "failed_median_ms": failed_ms[len(failed_ms) // 2] if failed_ms else None, "loadavg_1m": load1}


def kill_analysis(calls, kill_at, base_rate):
    """What the kill did, from the client's log of calls."""
    ends = sorted(c[1] for c in calls if c[2] == "OK")
    gap = max((b - a for a, b in zip(ends, ends[1:]) if b >= kill_at - 1 and a <= kill_at + 3), default=0.0)
    recovered = None
    t = kill_at
    while t < ends[-1] if ends else False:
        n = sum(1 for e in ends if t <= e < t + 1.0)
        if n >= 0.9 * base_rate:
            recovered = t + 1.0 - kill_at
            break
        t += 0.25
    return {"longest_gap_ms": gap * 1000, "recovered_s": recovered}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--kill-seconds", type=float, default=25)
    ap.add_argument("--kill-at", type=float, default=8)
    ap.add_argument("--conc", type=int, default=6)
    ap.add_argument("--docs", type=int, default=8)
    ap.add_argument("--words", type=int, default=60)
    ap.add_argument("--threads", type=int, default=0, help="--threads of every replica (0: the default)")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("replicas: terminated"))  # `timeout`: clean up
    rrtest.gen_stubs(ROOT, args.gen_dir)
    from rerank.v1 import rerank_pb2 as pb
    req = make_request(pb, args.docs, args.words)
    have_haproxy = shutil.which("haproxy") is not None
    results, kills = [], []

    base = Replica(args.rerankd, args.model, 0).start()  # the baseline: one replica, all the CPUs
    reps = [Replica(args.rerankd, args.model, args.threads).start() for _ in range(3)]
    hap = None
    try:
        hap = HAProxy([r.port for r in reps]) if have_haproxy else None
        rr_target = "ipv4:" + ",".join("127.0.0.1:%d" % r.port for r in reps)
        # Validate before timing: every replica gives the request the same scores.
        import grpc
        from rerank.v1 import rerank_pb2_grpc as pbg
        answers = []
        for r in [base] + reps:
            with grpc.insecure_channel("127.0.0.1:%d" % r.port) as ch:
                res = pbg.RerankerStub(ch).Rerank(req, timeout=60).results
                answers.append([(x.index, x.logit) for x in res])
        if len(answers[0]) != args.docs or any(a != answers[0] for a in answers):
            sys.exit("replicas: the replicas disagree on the request's scores: %s" % answers)
        load("127.0.0.1:%d" % base.port, 3, args.conc, req)  # warm-up: page cache, OpenBLAS
        print("1 replica ...", file=sys.stderr)
        one = summarize("1 replica (%s), direct" % json.loads(rrtest.http_get(base.http_port, "/info")[2])["device"],
                        load("127.0.0.1:%d" % base.port, args.seconds, args.conc, req), args.seconds)
        base.stop()
        load(rr_target, 3, args.conc, req)  # warm-up of the three
        results.append(one)
        print("3 replicas, rr ...", file=sys.stderr)
        results.append(summarize("3 replicas (--threads %d), client round_robin" % args.threads, load(rr_target, args.seconds, args.conc, req),
                                 args.seconds))
        if hap:
            print("3 replicas, haproxy ...", file=sys.stderr)
            results.append(summarize("3 replicas (--threads %d), HAProxy" % args.threads, load("127.0.0.1:%d" % hap.port, args.seconds,
                                                                  args.conc, req), args.seconds))
        for mode, target in (("client round_robin", rr_target),) + ((("HAProxy", None),) if hap else ()):
            victim = reps[1]
            restart_at = args.kill_at + 5
            marks = {}

            def do_kill(t, victim=victim, marks=marks):
                marks["victim_in_flight"] = victim.metric("rerankd_requests_in_flight ")
                marks["kill"] = t
                victim.kill()

            def do_restart(t, victim=victim, marks=marks):
                marks["restart"] = t
                a = time.monotonic()
                victim.start()
                marks["ready_s"] = time.monotonic() - a
                while time.monotonic() < marks["end"]:  # the first call the balancer sends it
                    if victim.metric("rerankd_requests_in_flight ") + victim.metric("rerankd_grpc_requests_total{") > 0:
                        marks["serving_s"] = time.monotonic() - a
                        break
                    time.sleep(0.05)

            tgt = target or "127.0.0.1:%d" % hap.port
            print("kill run, %s ..." % mode, file=sys.stderr)
            marks["end"] = time.monotonic() + args.kill_seconds
            calls = load(tgt, args.kill_seconds, args.conc, req,
                         [(args.kill_at, do_kill), (restart_at, do_restart)])
            pre = [c for c in calls if c[2] == "OK" and 2.0 <= c[1] < marks["kill"]]
            base_rate = len(pre) / (marks["kill"] - 2.0)
            in_flight = sum(1 for c in calls if c[0] < marks["kill"] <= c[1])
            s = summarize("3 replicas (--threads %d), %s, one SIGKILLed at %.1f s, restarted at %.1f s" %
                          (args.threads, mode, marks["kill"], marks["restart"]), calls, args.kill_seconds)
            s.update(kill_analysis(calls, marks["kill"], base_rate))
            s["in_flight_at_kill"] = in_flight
            s["victim_in_flight"] = marks["victim_in_flight"]
            s["restart_ready_s"] = marks["ready_s"]
            s["restarted_first_call_s"] = marks.get("serving_s")
            kills.append(s)
    finally:
        if hap:
            hap.stop()
        for r in reps + [base]:
            r.stop()

    print("| run | calls/s | vs 1 replica | p50 ms | p99 ms | load avg (1 min) at the end | failed (after retries) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in results + kills:
        print("| %s | %.1f | %.2fx | %.0f | %.0f | %.1f | %d %s |" % (
            r["run"], r["calls_per_s"], r["calls_per_s"] / one["calls_per_s"], r["p50_ms"], r["p99_ms"],
            r["loadavg_1m"],
            r["failed"], "%s after a median %.0f ms" % (r["fail_codes"], r["failed_median_ms"]) if r["failed"] else ""))
    print()
    print("| kill run | calls in flight at the kill: on the victim / all | failed after retries | "
          "longest gap between completions | 1 s throughput back to ≥ 90 % after | "
          "restarted replica serves again after (ready after) |")
    print("|---|---:|---:|---:|---:|---:|")
    for k in kills:
        print("| %s | %d / %d | %d | %.0f ms | %s | %s (%.2f s) |" % (
            k["run"], k["victim_in_flight"], k["in_flight_at_kill"], k["failed"], k["longest_gap_ms"],
            "%.2f s" % k["recovered_s"] if k["recovered_s"] is not None else "not within the run",
            "%.2f s" % k["restarted_first_call_s"] if k["restarted_first_call_s"] is not None else "never",
            k["restart_ready_s"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": results, "kills": kills}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
