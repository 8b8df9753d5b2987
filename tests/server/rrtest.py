"""rrtest.py — shared helpers of the rerankd integration tests and benchmark: generate the
Python stubs from our protos with grpcio-tools (into a build directory, at test time), start
and stop a real rerankd on 127.0.0.1:0, read its resident memory, and run the `rerank score
--json` CLI for reference logits."""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

GRPC_PROTO_DIR = "/usr/share/grpc-proto"

# Checks of the test scripts: counted here, printed as they happen, summed up by summary().
COUNTS = {"pass": 0, "fail": 0}


def check(name, cond, detail=""):
    if cond:
        COUNTS["pass"] += 1
        print("ok   %s" % name)
    else:
        COUNTS["fail"] += 1
        print("FAIL %s %s" % (name, detail))
    sys.stdout.flush()
    return cond


def summary(script):
    """Prints the final line and returns the exit code (0 all passed, 1 a check failed)."""
    print("%s: %d passed, %d failed" % (script, COUNTS["pass"], COUNTS["fail"]))
    return 0 if COUNTS["fail"] == 0 else 1


def valgrind_cmd():
    """memcheck as the server tests run it: any error or definite/indirect leak → exit 99."""
    return ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99", "--num-callers=30",
            "--suppressions=" + os.path.join(os.path.dirname(os.path.abspath(__file__)), "valgrind.supp")]


def pin_isa_for_valgrind():
    """Makes the server under valgrind and the reference CLI run the same CPU kernels.

    The CPU engine picks its kernels at run time from CPUID (src/engine/gemm_cpu.h). valgrind
    has no AVX-512, so on an AVX-512 machine the server under memcheck runs the AVX2 kernels
    while a native `rerank score` runs the AVX-512 ones; the GEMMs agree bit for bit, but
    attention and LayerNorm reduce in a different order at the other vector width (~1e-6 on a logit), and
    the bitwise comparisons would compare two widths, not two code paths. RERANK_CPU_ISA=avx2 in
    this process's environment (inherited by the server and the CLI alike) compares like with
    like."""
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = " %s " % line.split(":", 1)[1]
                break
    if " avx512f " not in flags:
        return None  # native and valgrind pick the same kernels
    os.environ["RERANK_CPU_ISA"] = "avx2"
    print("valgrind run: the CPU engine pinned to its AVX2 kernels for the server and the reference")
    return "avx2"


def gen_stubs(src_dir, out_dir):
    """Generates rerank.v1, tei.v1, health and reflection (v1 as reflection_v1, v1alpha as
    reflection_v1alpha: the upstream files share a name, which one Python descriptor pool
    refuses) stubs into out_dir and puts it first on sys.path."""
    from grpc_tools import protoc
    import grpc_tools
    os.makedirs(out_dir, exist_ok=True)
    side = os.path.join(out_dir, "protos")
    os.makedirs(side, exist_ok=True)
    shutil.copy(os.path.join(GRPC_PROTO_DIR, "grpc/health/v1/health.proto"), os.path.join(side, "health.proto"))
    shutil.copy(os.path.join(GRPC_PROTO_DIR, "grpc/reflection/v1/reflection.proto"),
                os.path.join(side, "reflection_v1.proto"))
    shutil.copy(os.path.join(GRPC_PROTO_DIR, "grpc/reflection/v1alpha/reflection.proto"),
                os.path.join(side, "reflection_v1alpha.proto"))
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    proto_dir = os.path.join(src_dir, "proto")
    for inc, files in ((proto_dir, ["rerank/v1/rerank.proto", "tei/v1/tei.proto"]),
                       (side, ["health.proto", "reflection_v1.proto", "reflection_v1alpha.proto"])):
        rc = protoc.main(["protoc", "-I", inc, "-I", well_known, "--python_out=" + out_dir,
                          "--grpc_python_out=" + out_dir] + files)
        if rc != 0:
            raise RuntimeError("grpc_tools.protoc failed on %s" % files)
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)


class Server:
    """A rerankd process on 127.0.0.1:0. `valgrind` runs it under memcheck."""

    def __init__(self, binary, model, extra=(), valgrind=None, ready_timeout=60.0, env=None):
        self.log = tempfile.NamedTemporaryFile(prefix="rerankd-", suffix=".log", delete=False)
        cmd = [binary, "--model", model, "--device", "cpu", "--host", "127.0.0.1", "--port", "0",
               "--grace-seconds", "2", "--threads", "1"] + list(extra)
        if valgrind:
            cmd = valgrind + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=dict(os.environ, **env) if env else None)
        self.port = None
        self.http_port = None  # with --http-port: `HTTP <port>` comes before READY
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("HTTP "):
                self.http_port = int(line.split()[1])
            if line.startswith("READY "):
                self.port = int(line.split()[1])
                break
        if self.port is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("rerankd did not become ready:\n" + self.log_text())
        self.addr = "127.0.0.1:%d" % self.port

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def rss_kib(self):
        return self.status_kib("VmRSS")

    def status_kib(self, field):
        """A /proc/<pid>/status memory field in KiB: VmRSS (resident now), VmHWM (peak)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return -1

    def stop(self, timeout=60.0):
        """SIGTERM; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


def cli_logits(cli, model, query, docs, max_length=None, truncate=True):
    """Reference logits in input order from `rerank score --json` (rr_score_query)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for i, d in enumerate(docs):
            f.write(json.dumps({"text": d, "id": str(i)}) + "\n")
        path = f.name
    cmd = [cli, "score", "--model", model, "--query", query, "--docs", path, "--json", "--device", "cpu",
           "--threads", "1"]  # as the test servers (the CPU engine's scores do not depend on it)
    if max_length:
        cmd += ["--max-length", str(max_length)]
    if not truncate:
        cmd += ["--no-truncate"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(path)
    res = json.loads(out)["results"]
    logits = [None] * len(docs)
    for r in res:
        # cJSON prints 15 significant digits when they round-trip within its tolerance: more
        # than a float32 needs, so rounding back to float32 recovers the engine's exact value.
        logits[int(r["id"])] = struct.unpack("f", struct.pack("f", r["logit"]))[0]
    return logits


def http_get(port, path, method="GET", timeout=10):
    """(status, content type, body text) of an HTTP request to 127.0.0.1:port."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=b"x" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def scrape(port):
    """{(name, frozenset(labels.items())): value} of every sample of /metrics, the families,
    and the content type (parsed with prometheus_client's reference parser)."""
    from prometheus_client.parser import text_string_to_metric_families
    st, ctype, body = http_get(port, "/metrics")
    if st != 200:
        raise RuntimeError("/metrics answered %d" % st)
    fams = list(text_string_to_metric_families(body))
    samples = {}
    for f in fams:
        for s in f.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, fams, ctype


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)
