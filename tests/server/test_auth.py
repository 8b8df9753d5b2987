"""test_auth.py — rerankd's API key and its flags and environment, on the real server:

- --api-key: every scoring path refuses a call without the key or with a wrong one (gRPC
  Rerank, RerankStream, tei.v1 Rerank → UNAUTHENTICATED; HTTP POST /rerank, /v1/rerank,
  /v2/rerank → 401 with {"error":"unauthorized","error_type":"Unauthorized"}); with the key
  the scores equal a keyless server's; the scheme is case-insensitive ("bearer"), the key is
  not; gRPC health and HTTP /health, /metrics, /info stay open; refusals are counted in
  rerankd_auth_refused_total by protocol;
- --api-key-protect-ops: /metrics and /info need the key, /health does not;
- --api-key-file: a rotated file is picked up (the old key refused within 2 s), a broken
  rotation (empty file) keeps the key; a missing or empty file at start fails naming it;
- flags: --flag=value, --version, RERANKD_* variables (RERANKD_MAX_DOCS=2 limits documents;
  the command line wins), TEI's API_KEY, a bad variable fails start-up naming it.

Exit: 0 passed, 1 failed, 77 skipped.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrtest  # noqa: E402

check = rrtest.check
KEY = "s3cret-Key_0123"
DOCS = ["Cats purr by rapidly twitching the muscles of the larynx.",
        "Tides are caused by the gravitational pull of the moon.",
        "Sourdough bread needs a starter of wild yeast."]
UNAUTH = {"error": "unauthorized", "error_type": "Unauthorized"}


def post(port, path, body, auth=None):
    """(status, parsed JSON or None) of a POST to 127.0.0.1:port."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method="POST",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    if auth is not None:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            st, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        st, text = e.code, e.read().decode()
    try:
        return st, json.loads(text)
    except ValueError:
        return st, None


def get(port, path, auth=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if auth is not None:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


HTTP_BODIES = {"/rerank": {"query": "tides", "texts": DOCS, "raw_scores": True},
               "/v1/rerank": {"query": "tides", "documents": DOCS},
               "/v2/rerank": {"query": "tides", "documents": DOCS}}


class Suite:
    def __init__(self, args):
        self.args = args
        import grpc
        from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
        from tei.v1 import tei_pb2 as tei, tei_pb2_grpc as teig
        import health_pb2 as hp
        import health_pb2_grpc as hpg
        self.grpc, self.pb, self.pbg, self.tei, self.teig, self.hp, self.hpg = grpc, pb, pbg, tei, teig, hp, hpg

    def server(self, extra=(), env=None):
        return rrtest.Server(self.args.rerankd, self.args.tiny_model, ["--http-port", "0"] + list(extra), env=env)

    # ---- every scoring path, with a given Authorization (None: none) ----

    def grpc_calls(self, addr, auth):
        """{path: (status code, scores or None)} of the three gRPC scoring calls."""
        grpc, pb, pbg, tei, teig = self.grpc, self.pb, self.pbg, self.tei, self.teig
        md = (("authorization", auth),) if auth is not None else None
        out = {}
        ch = grpc.insecure_channel(addr)
        try:
            def run(name, fn):
                try:
                    out[name] = (grpc.StatusCode.OK, fn())
                except grpc.RpcError as e:
                    out[name] = (e.code(), e.details())
            run("Rerank", lambda: sorted((r.index, r.logit) for r in pbg.RerankerStub(ch).Rerank(
                pb.RerankRequest(query="tides", documents=[pb.Document(text=d) for d in DOCS]),
                metadata=md, timeout=30).results))

            def msgs():
                yield pb.RerankStreamRequest(open=pb.StreamOpen(query="tides"))
                yield pb.RerankStreamRequest(batch=pb.StreamBatch(documents=[pb.Document(text=d) for d in DOCS]))
            run("RerankStream", lambda: sorted((r.index, r.logit) for m in pbg.RerankerStub(ch).RerankStream(
                msgs(), metadata=md, timeout=30) if m.HasField("batch") for r in m.batch.results))
            run("tei.Rerank", lambda: sorted((r.index, r.score) for r in teig.RerankStub(ch).Rerank(
                tei.RerankRequest(query="tides", texts=DOCS, raw_scores=True), metadata=md, timeout=30).ranks))
            run("Health", lambda: self.hpg.HealthStub(ch).Check(self.hp.HealthCheckRequest(service=""),
                                                              metadata=md, timeout=30).status)
        finally:
            ch.close()
        return out

    def http_calls(self, port, auth):
        return {path: post(port, path, body, auth) for path, body in HTTP_BODIES.items()}

    # ---- the sections ----

    def api_key(self):
        grpc = self.grpc
        plain = self.server()
        try:
            want_grpc = self.grpc_calls(plain.addr, None)
            want_http = self.http_calls(plain.http_port, None)
        finally:
            plain.stop()
        check("keyless server: every path answers", all(c == grpc.StatusCode.OK for c, _ in want_grpc.values()) and
              all(st == 200 for st, _ in want_http.values()), "%r %r" % (want_grpc, want_http))

        srv = self.server(["--api-key", KEY])
        try:
            s0, _, _ = rrtest.scrape(srv.http_port)
            for label, auth in (("no key", None), ("wrong key", "Bearer nope"), ("key in another case",
                                "Bearer " + KEY.upper()), ("key without scheme", KEY),
                                ("key with a suffix", "Bearer " + KEY + "x"), ("key cut short", "Bearer " + KEY[:-1]),
                                ("Basic scheme", "Basic " + KEY)):
                got = self.grpc_calls(srv.addr, auth)
                for name in ("Rerank", "RerankStream", "tei.Rerank"):
                    code, detail = got[name]
                    check("%s: gRPC %s → UNAUTHENTICATED" % (label, name),
                          code == grpc.StatusCode.UNAUTHENTICATED and KEY not in str(detail), "%s %s" % (code, detail))
                check("%s: gRPC health still answers" % label, got["Health"][0] == grpc.StatusCode.OK, str(got["Health"]))
                for path, (st, js) in self.http_calls(srv.http_port, auth).items():
                    check("%s: HTTP %s → 401 %s" % (label, path, UNAUTH), st == 401 and js == UNAUTH, "%d %r" % (st, js))
            s1, _, _ = rrtest.scrape(srv.http_port)
            d = lambda p: rrtest.val(s1, "rerankd_auth_refused_total", protocol=p) - \
                rrtest.val(s0, "rerankd_auth_refused_total", protocol=p)  # noqa: E731
            check("metrics: rerankd_auth_refused_total grpc +21, http +21", d("grpc") == 21 and d("http") == 21,
                  "%r %r" % (d("grpc"), d("http")))
            for label, auth in (("Bearer", "Bearer " + KEY), ("bearer", "bearer " + KEY), ("BEARER", "BEARER " + KEY)):
                got = self.grpc_calls(srv.addr, auth)
                check("right key (%s): gRPC scores equal the keyless server's" % label,
                      all(got[n] == want_grpc[n] for n in ("Rerank", "RerankStream", "tei.Rerank")),
                      "%r vs %r" % (got, want_grpc))
                got = self.http_calls(srv.http_port, auth)
                check("right key (%s): HTTP answers equal the keyless server's" % label,
                      all(got[p][0] == 200 and strip_ids(got[p][1]) == strip_ids(want_http[p][1]) for p in got),
                      "%r vs %r" % (got, want_http))
            for path in ("/health", "/metrics", "/info"):
                st, _ = get(srv.http_port, path)
                check("no key: HTTP GET %s is exempt (200)" % path, st == 200, str(st))
        finally:
            check("--api-key server exits 0 on SIGTERM", srv.stop() == 0)

    def protect_ops(self):
        srv = self.server(["--api-key=" + KEY, "--api-key-protect-ops"])
        try:
            for path in ("/metrics", "/info"):
                st, body = get(srv.http_port, path)
                check("--api-key-protect-ops: GET %s without the key → 401" % path,
                      st == 401 and json.loads(body) == UNAUTH, "%d %r" % (st, body))
                st, _ = get(srv.http_port, path, "Bearer wrong")
                check("--api-key-protect-ops: GET %s with a wrong key → 401" % path, st == 401, str(st))
                st, _ = get(srv.http_port, path, "Bearer " + KEY)
                check("--api-key-protect-ops: GET %s with the key → 200" % path, st == 200, str(st))
            st, _ = get(srv.http_port, "/health")
            check("--api-key-protect-ops: /health stays open", st == 200, str(st))
            got = self.grpc_calls(srv.addr, None)
            check("--api-key-protect-ops: gRPC health stays open", got["Health"][0] == self.grpc.StatusCode.OK)
        finally:
            srv.stop()

    def key_file(self):
        grpc = self.grpc
        d = tempfile.mkdtemp(prefix="rr-auth-")
        path = os.path.join(d, "key")
        with open(path, "w") as f:
            f.write("first-key\n")
        srv = self.server(["--api-key-file", path])
        try:
            st, _ = post(srv.http_port, "/rerank", HTTP_BODIES["/rerank"], "Bearer first-key")
            check("key file: its key (trailing newline stripped) works", st == 200, str(st))
            tmp = path + ".new"
            with open(tmp, "w") as f:
                f.write("second-key\n")
            os.rename(tmp, path)
            t0 = time.time()
            while time.time() - t0 < 2.5:
                if post(srv.http_port, "/rerank", HTTP_BODIES["/rerank"], "Bearer first-key")[0] == 401:
                    break
                time.sleep(0.1)
            took = time.time() - t0
            check("key file: after rotation the old key is refused within 2 s", took <= 2.0, "%.2f s" % took)
            st, _ = post(srv.http_port, "/rerank", HTTP_BODIES["/rerank"], "Bearer second-key")
            check("key file: the new key works (HTTP)", st == 200, str(st))
            got = self.grpc_calls(srv.addr, "Bearer second-key")
            check("key file: the new key works (gRPC)", got["Rerank"][0] == grpc.StatusCode.OK, str(got["Rerank"]))
            got = self.grpc_calls(srv.addr, "Bearer first-key")
            check("key file: the old key is refused (gRPC)", got["Rerank"][0] == grpc.StatusCode.UNAUTHENTICATED,
                  str(got["Rerank"]))
            open(path, "w").close()  # a broken rotation: empty
            time.sleep(1.5)
            st, _ = post(srv.http_port, "/rerank", HTTP_BODIES["/rerank"], "Bearer second-key")
            check("key file: an emptied file keeps the key", st == 200, str(st))
            time.sleep(0.3)
            check("key file: the broken rotation is logged", "keeping the current key" in srv.log_text(),
                  srv.log_text()[-400:])
        finally:
            srv.stop()
        for label, p in (("missing", os.path.join(d, "nope")), ("empty", path)):
            r = subprocess.run([self.args.rerankd, "--model", self.args.tiny_model, "--port", "0",
                                "--api-key-file", p], capture_output=True, text=True, timeout=60)
            check("key file: a %s file at start fails naming it" % label, r.returncode != 0 and p in r.stderr,
                  "%d %r" % (r.returncode, r.stderr))

    def flags_env(self):
        r = subprocess.run([self.args.rerankd, "--version"], capture_output=True, text=True, timeout=30)
        check("--version prints `rerankd <version>` and exits 0",
              r.returncode == 0 and r.stdout.startswith("rerankd ") and len(r.stdout.split()) == 2, repr(r.stdout))
        r = subprocess.run([self.args.rerankd, "--help"], capture_output=True, text=True, timeout=30)
        check("--help names the env variables and the HTTP routes",
              r.returncode == 0 and all(s in r.stdout for s in ("RERANKD_MAX_DOCS", "RERANKD_HTTP_PORT", "API_KEY",
                                                                "/v2/rerank", "/metrics", "--api-key-file")),
              r.stdout[-300:])
        tei_body = {"query": "q", "texts": DOCS}
        srv = self.server(["--max-docs=2"])
        try:
            st, _ = post(srv.http_port, "/rerank", tei_body)
            check("--max-docs=2 (= form) limits documents (413)", st == 413, str(st))
        finally:
            srv.stop()
        srv = self.server(env={"RERANKD_MAX_DOCS": "2"})
        try:
            st, _ = post(srv.http_port, "/rerank", tei_body)
            check("RERANKD_MAX_DOCS=2 limits documents (413)", st == 413, str(st))
            st, _ = post(srv.http_port, "/rerank", {"query": "q", "texts": DOCS[:2]})
            check("RERANKD_MAX_DOCS=2 lets 2 through", st == 200, str(st))
        finally:
            srv.stop()
        srv = self.server(["--max-docs", "3"], env={"RERANKD_MAX_DOCS": "2", "MAX_CLIENT_BATCH_SIZE": "1"})
        try:
            st, _ = post(srv.http_port, "/rerank", tei_body)
            check("the command line wins over RERANKD_MAX_DOCS", st == 200, str(st))
        finally:
            srv.stop()
        srv = self.server(env={"MAX_CLIENT_BATCH_SIZE": "2"})
        try:
            st, _ = post(srv.http_port, "/rerank", tei_body)
            check("TEI's MAX_CLIENT_BATCH_SIZE=2 limits documents", st == 413, str(st))
        finally:
            srv.stop()
        srv = self.server(env={"API_KEY": KEY})
        try:
            st, _ = post(srv.http_port, "/rerank", tei_body)
            st2, _ = post(srv.http_port, "/rerank", tei_body, "Bearer " + KEY)
            check("TEI's API_KEY sets the key", st == 401 and st2 == 200, "%d %d" % (st, st2))
        finally:
            srv.stop()
        for var, value in (("RERANKD_MAX_DOCS", "lots"), ("RERANKD_HTTP_PORT", "70000"),
                           ("RERANKD_API_KEY_PROTECT_OPS", "maybe"), ("MAX_CLIENT_BATCH_SIZE", "0")):
            r = subprocess.run([self.args.rerankd, "--model", self.args.tiny_model, "--port", "0"],
                               capture_output=True, text=True, timeout=60, env=dict(os.environ, **{var: value}))
            check("a bad %s=%s fails start-up naming it" % (var, value), r.returncode == 2 and var in r.stderr,
                  "%d %r" % (r.returncode, r.stderr))
        r = subprocess.run([self.args.rerankd, "--model", self.args.tiny_model, "--port=x"],
                           capture_output=True, text=True, timeout=60)
        check("a bad --port=x fails naming --port", r.returncode == 2 and "--port" in r.stderr, r.stderr)
        r = subprocess.run([self.args.rerankd, "--model", self.args.tiny_model, "--bogus"],
                           capture_output=True, text=True, timeout=60)
        check("an unknown flag fails naming it", r.returncode == 2 and "--bogus" in r.stderr, r.stderr)


def strip_ids(js):
    """A Cohere answer without its per-request id (everything else must match)."""
    if isinstance(js, dict):
        return {k: v for k, v in js.items() if k != "id"}
    return js


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--tiny-model", required=True)
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.tiny_model, "config.json")):
        print("test_auth: skipped: model %s missing (run scripts/make_models.py)" % args.tiny_model)
        return 77
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
        import prometheus_client  # noqa: F401
    except ImportError as e:
        print("test_auth: skipped: %s (create .venv with scripts/setup.sh)" % e)
        return 77
    rrtest.gen_stubs(args.source_dir, args.gen_dir)
    s = Suite(args)
    for name, fn in (("api key", s.api_key), ("protect ops", s.protect_ops), ("key file", s.key_file),
                     ("flags and environment", s.flags_env)):
        t0 = time.time()
        fn()
        print("-- %s: %.0f s" % (name, time.time() - t0))
    return rrtest.summary("test_auth")


if __name__ == "__main__":
    sys.exit(main())
