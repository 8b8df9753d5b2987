"""test_deploy.py — what a Kubernetes deployment and its load balancers rely on, on the real
server (README "Deployment"):

- gRPC connection management: --grpc-max-connection-age (+ grace) makes the server send
  GOAWAY (NO_ERROR) on an idle HTTP/2 connection after the age, seen as a raw frame; a grpcio
  channel making calls across several ages cycles its connection (READY → IDLE → READY) and
  every call succeeds; without the flag the connection is never aged. --grpc-keepalive-time
  and --grpc-keepalive-timeout: a peer with an open call that stops answering PINGs is
  dropped after time + timeout (a raw client that never answers), and is not without the
  flags. The flags are also read from RERANKD_* variables; bad values fail start-up naming
  the flag or the variable.
- Drain (SIGTERM): GOAWAY reaches an open connection at once (raw frame; a grpcio channel
  with a stream in flight goes IDLE while the stream lives on), the stream in flight goes on
  and ends OK, a new connection is refused (UNAVAILABLE), HTTP /livez stays 200 while
  /readyz and /health answer 503 and a new POST /rerank 503; exit 0 with 0 live calls.
- OpenAPI: the document (src/http/openapi.json) passes openapi-spec-validator, is served
  byte for byte at /openapi.json, names exactly the routes `--help` lists, and every answer
  of the server to every route — successes and each error that can be provoked (400, 401,
  404, 405, 413, 422, 503) — has its status documented for its route and a body that
  validates against the schema documented for that route, status and content type.

Exit: 0 passed, 1 failed, 77 skipped.
"""
import argparse
import json
import os
import queue
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrtest  # noqa: E402

check = rrtest.check
DOCS = ["Cats purr by rapidly twitching the muscles of the larynx.",
        "Tides are caused by the gravitational pull of the moon.",
        "Sourdough bread needs a starter of wild yeast."]
GOAWAY, PING = 7, 6


# ---- a raw HTTP/2 client: sees frames that grpcio hides -----------------------------------
class RawH2:
    """A plaintext HTTP/2 connection that sends the preface and SETTINGS, ACKs the server's
    SETTINGS, optionally opens a gRPC call (HEADERS only, no message: the call stays open),
    and otherwise never answers: PINGs go unanswered."""

    def __init__(self, port, open_call=False):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
        if open_call:
            hdr = b"".join(literal(k, v) for k, v in (
                (":method", "POST"), (":scheme", "http"), (":path", "/rerank.v1.Reranker/RerankStream"),
                (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")))
            self.s.sendall(frame(1, 0x4, 1, hdr))  # HEADERS, END_HEADERS, stream 1
        self.t0 = time.time()
        self.buf = b""
        self.frames = []  # (seconds since open, type, payload)
        self.closed = None  # seconds since open when the server closed the socket
        self.acked = False

    def read_until(self, seconds, stop=None):
        """Reads frames for up to `seconds`, or until the socket closes or stop(frame) holds."""
        end = time.time() + seconds
        while self.closed is None and time.time() < end:
            self.s.settimeout(max(0.01, min(0.2, end - time.time())))
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                d = b""
            if not d:
                self.closed = time.time() - self.t0
                break
            self.buf += d
            while len(self.buf) >= 9 and len(self.buf) >= 9 + int.from_bytes(self.buf[:3], "big"):
                n = int.from_bytes(self.buf[:3], "big")
                f = (time.time() - self.t0, self.buf[3], self.buf[9:9 + n])
                self.buf = self.buf[9 + n:]
                self.frames.append(f)
                if f[1] == 4 and not self.acked:
                    self.s.sendall(frame(4, 0x1, 0, b""))  # SETTINGS ACK
                    self.acked = True
                if stop and stop(f):
                    return f
        return None

    def first(self, ftype):
        return next((f for f in self.frames if f[1] == ftype), None)

    def close(self):
        self.s.close()


def frame(ftype, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


def literal(k, v):
    """HPACK literal header field without indexing, new name, no Huffman (lengths < 127)."""
    k, v = k.encode(), v.encode()
    return b"\x00" + bytes([len(k)]) + k + bytes([len(v)]) + v


def goaway_code(f):
    return int.from_bytes(f[2][4:8], "big") if f and len(f[2]) >= 8 else None


# ---- HTTP -----------------------------------------------------------------------------------
def request(port, method, path, body=None, headers=None, raw=None):
    """(status, content type without parameters, body bytes)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method, data=data,
                                 headers=dict({"Content-Type": "application/json"} if data else {}, **(headers or {})))
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            st, ct, b = r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        st, ct, b = e.code, e.headers.get("Content-Type", ""), e.read()
    return st, ct.split(";")[0].strip(), b


class OpenAPI:
    """The document and a validator of answers against it."""

    def __init__(self, path):
        import jsonschema
        import referencing
        with open(path, "rb") as f:
            self.raw = f.read()
        self.doc = json.loads(self.raw)
        self.jsonschema = jsonschema
        # The document as a resource, so "#/components/schemas/..." resolves.
        res = referencing.Resource.from_contents(self.doc, default_specification=referencing.jsonschema.DRAFT202012)
        self.registry = referencing.Registry().with_resource("urn:rerankd-openapi", res)
        self.seen = set()  # (path, method, status) answers checked

    def check_answer(self, name, path, method, status, ctype, body):
        """Whether (status, content type, body) is what the document says `method path` answers."""
        ops = self.doc["paths"].get(path, {})
        op = ops.get(method.lower())
        if op is None and status == 405 and ops:
            # A method the route does not serve: its 405 is documented on the method it does
            # ("any method but POST"); an SDK gets no operation that can only fail.
            op = next(iter(ops.values()))
            method = next(iter(ops)).upper() + " (for %s)" % method
        if op is None:
            return check("openapi: %s: %s %s is in the document" % (name, method, path), False)
        resp = op["responses"].get(str(status))
        if not check("openapi: %s: %s %s → %d is documented" % (name, method, path, status), resp is not None,
                     body[:200]):
            return False
        content = resp.get("content", {})
        if not check("openapi: %s: content type %s is documented for %d" % (name, ctype, status),
                     ctype in content, "documented: %s" % list(content)):
            return False
        schema = content[ctype].get("schema", {})
        if ctype == "application/json":
            try:
                value = json.loads(body)
            except ValueError as e:
                return check("openapi: %s: body is JSON" % name, False, str(e))
        else:
            value = body.decode("utf-8", "replace")
        v = self.jsonschema.Draft202012Validator(local_refs(schema), registry=self.registry)
        errors = sorted(v.iter_errors(value), key=lambda e: list(e.path))
        self.seen.add((path, method.split()[0].lower(), status))
        return check("openapi: %s: %s %s %d body valid against its schema" % (name, method, path, status),
                     not errors, "; ".join("%s at %s" % (e.message[:200], list(e.path)) for e in errors[:3]))


def local_refs(schema):
    """The schema with "#/components/..." references made absolute into the document."""
    if isinstance(schema, dict):
        return {k: ("urn:rerankd-openapi" + v if k == "$ref" and v.startswith("#") else local_refs(v))
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [local_refs(x) for x in schema]
    return schema


class Suite:
    def __init__(self, args, pb, pbg):
        self.args, self.pb, self.pbg = args, pb, pbg

    def server(self, extra, env=None):
        return rrtest.Server(self.args.rerankd, self.args.tiny_model, extra, env=env)

    def rerank(self, ch, timeout=30):
        pb = self.pb
        return self.pbg.RerankerStub(ch).Rerank(
            pb.RerankRequest(query="how do cats purr", documents=[pb.Document(text=d) for d in DOCS]), timeout=timeout)

    # ---- flags ------------------------------------------------------------------------------
    def flags(self):
        help_text = subprocess.run([self.args.rerankd, "--help"], capture_output=True, text=True).stdout
        for f in ("grpc-keepalive-time", "grpc-keepalive-timeout", "grpc-max-connection-age",
                  "grpc-max-connection-age-grace"):
            env = "RERANKD_" + f.upper().replace("-", "_")
            check("flags: --help lists --%s and %s" % (f, env), ("--%s " % f) in help_text and env in help_text)
        for args, env, needle in (
                (["--grpc-keepalive-time", "0"], None, "--grpc-keepalive-time"),
                (["--grpc-max-connection-age=-1"], None, "--grpc-max-connection-age"),
                (["--grpc-keepalive-timeout", "3000000"], None, "--grpc-keepalive-timeout"),
                ([], {"RERANKD_GRPC_MAX_CONNECTION_AGE_GRACE": "soon"}, "RERANKD_GRPC_MAX_CONNECTION_AGE_GRACE")):
            p = subprocess.run([self.args.rerankd, "--model", self.args.tiny_model] + args, capture_output=True,
                               text=True, env=dict(os.environ, **(env or {})), timeout=60)
            check("flags: %s%s → exit 2 naming it" % (" ".join(args), env or ""),
                  p.returncode == 2 and needle in p.stderr, "rc=%d %s" % (p.returncode, p.stderr[-300:]))

    # ---- max connection age -----------------------------------------------------------------
    def connection_age(self):
        import grpc
        # The age from the flag, the grace from the environment (both paths of the table).
        srv = self.server(["--grpc-max-connection-age", "1"], env={"RERANKD_GRPC_MAX_CONNECTION_AGE_GRACE": "1"})
        try:
            raw = RawH2(srv.port)
            f = raw.read_until(5, stop=lambda f: f[1] == GOAWAY)
            raw.close()
            check("age: raw connection gets GOAWAY NO_ERROR after ~1 s (C-core: +-10 %% jitter)",
                  f is not None and goaway_code(f) == 0 and 0.8 <= f[0] <= 3.0,
                  "frame %s, closed %s" % (f and (round(f[0], 2), goaway_code(f)), raw.closed))
            ch = grpc.insecure_channel(srv.addr)
            states = []
            ch.subscribe(lambda s: states.append(s), try_to_connect=True)
            ok = fail = 0
            t0 = time.time()
            while time.time() - t0 < 3.5:
                try:
                    r = self.rerank(ch)
                    ok += len(r.results) == len(DOCS)
                except grpc.RpcError as e:
                    fail += 1
                    print("   call failed: %s %s" % (e.code(), e.details()))
                time.sleep(0.05)
            ch.close()
            cycles = sum(1 for a, b in zip(states, states[1:])
                         if a == grpc.ChannelConnectivity.READY and b != grpc.ChannelConnectivity.READY)
            check("age: %d calls across 3.5 s all succeed, the channel reconnected %d times (>= 2)" % (ok, cycles),
                  fail == 0 and ok > 10 and cycles >= 2, "failed %d, states %s" % (fail, [s.name for s in states]))
        finally:
            check("age: server exits 0", srv.stop() == 0)
        srv = self.server([])
        try:
            raw = RawH2(srv.port)
            f = raw.read_until(2.5, stop=lambda f: f[1] == GOAWAY)
            raw.close()
            check("age: without the flag no GOAWAY within 2.5 s", f is None and raw.closed is None)
        finally:
            srv.stop()

    # ---- keepalive --------------------------------------------------------------------------
    def keepalive(self):
        srv = self.server(["--grpc-keepalive-time", "0.5"], env={"RERANKD_GRPC_KEEPALIVE_TIMEOUT": "0.5"})
        try:
            raw = RawH2(srv.port, open_call=True)
            raw.read_until(6)
            raw.close()
            ping = raw.first(PING)
            check("keepalive: PING after ~0.5 s, unanswered: dropped after ~1 s",
                  ping is not None and 0.3 <= ping[0] <= 2.5 and raw.closed is not None and raw.closed <= 5,
                  "ping %s closed %s" % (ping and round(ping[0], 2), raw.closed))
        finally:
            check("keepalive: server exits 0", srv.stop() == 0)
        srv = self.server([])
        try:
            raw = RawH2(srv.port, open_call=True)
            raw.read_until(2.5)
            raw.close()
            check("keepalive: without the flags no PING and still open after 2.5 s",
                  raw.first(PING) is None and raw.closed is None)
        finally:
            srv.stop()

    # ---- drain ------------------------------------------------------------------------------
    def drain(self, api):
        import grpc
        pb, pbg = self.pb, self.pbg
        srv = self.server(["--http-port", "0", "--grace-seconds", "20"])
        ch = grpc.insecure_channel(srv.addr)
        states = []
        ch.subscribe(lambda s: states.append(s), try_to_connect=True)
        q = queue.Queue()

        def reqs():
            while True:
                m = q.get()
                if m is None:
                    return
                yield m
        stream = pbg.RerankerStub(ch).RerankStream(reqs(), timeout=60)
        q.put(pb.RerankStreamRequest(open=pb.StreamOpen(query="how do cats purr")))
        q.put(pb.RerankStreamRequest(batch=pb.StreamBatch(documents=[pb.Document(text=DOCS[0])])))
        first = next(stream)
        raw = RawH2(srv.port)
        raw.read_until(0.3)
        check("drain: before SIGTERM the channel is READY and no GOAWAY",
              states[-1] == grpc.ChannelConnectivity.READY and raw.first(GOAWAY) is None, str(states))
        srv.proc.send_signal(15)
        f = raw.read_until(3, stop=lambda f: f[1] == GOAWAY)
        raw.close()
        check("drain: GOAWAY NO_ERROR reaches an open connection at once", f is not None and goaway_code(f) == 0,
              str(f and goaway_code(f)))
        deadline = time.time() + 3
        while states[-1] == grpc.ChannelConnectivity.READY and time.time() < deadline:
            time.sleep(0.02)
        check("drain: the client's channel leaves READY while its stream is still open (GOAWAY, not a reset)",
              states[-1] != grpc.ChannelConnectivity.READY, str([s.name for s in states]))
        # The stream keeps the server draining: the HTTP probes now.
        for path, want in (("/livez", 200), ("/readyz", 503), ("/health", 503)):
            st, ct, body = request(srv.http_port, "GET", path)
            check("drain: GET %s → %d" % (path, want), st == want, "%d %r" % (st, body))
            api.check_answer("drain " + path, path, "GET", st, ct, body)
        st, ct, body = request(srv.http_port, "POST", "/rerank", {"query": "q", "texts": ["a"]})
        check("drain: new POST /rerank → 503", st == 503, "%d %r" % (st, body))
        api.check_answer("drain /rerank", "/rerank", "POST", st, ct, body)
        q.put(pb.RerankStreamRequest(batch=pb.StreamBatch(documents=[pb.Document(text=DOCS[1])])))
        second = next(stream)
        q.put(None)
        rest = list(stream)
        check("drain: the stream in flight goes on (2 batches scored) and ends OK",
              first.WhichOneof("kind") == "batch" and second.WhichOneof("kind") == "batch" and
              len(rest) == 1 and rest[0].WhichOneof("kind") == "final" and stream.code() == grpc.StatusCode.OK,
              "%s %s" % (len(rest), stream.code()))
        ch2 = grpc.insecure_channel(srv.addr)
        try:
            self.rerank(ch2, timeout=5)
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
        ch2.close()
        check("drain: a new connection is refused (UNAVAILABLE)", code == grpc.StatusCode.UNAVAILABLE, str(code))
        ch.close()
        rc = srv.stop(timeout=60)
        log = srv.log_text()
        check("drain: exit 0, 0 live calls, no call cancelled by the grace period",
              rc == 0 and "stopped, 0 live calls" in log and "grace period over" not in log, log[-1500:])

    # ---- OpenAPI ------------------------------------------------------------------------------
    def openapi(self, api):
        from openapi_spec_validator import validate
        from openapi_spec_validator.readers import read_from_filename
        spec, _ = read_from_filename(self.args.openapi)
        try:
            validate(spec)
            err = ""
        except Exception as e:  # the validator's own error types
            err = str(e)[:500]
        check("openapi: the document passes openapi-spec-validator (OpenAPI %s)" % spec.get("openapi"), not err, err)
        help_text = subprocess.run([self.args.rerankd, "--help"], capture_output=True, text=True).stdout
        routes = help_text.split("HTTP routes")[1].split("gRPC services")[0]
        listed = set(re.findall(r"(/[a-z0-9/._]*[a-z0-9.])", routes))
        check("openapi: --help lists exactly the document's routes", listed == set(api.doc["paths"]),
              "help %s, document %s" % (sorted(listed), sorted(api.doc["paths"])))

        srv = self.server(["--http-port", "0", "--max-docs", "4", "--max-message-bytes", "8192",
                           "--max-chunks-per-doc", "3"])
        port = srv.http_port
        try:
            st, ct, body = request(port, "GET", "/openapi.json")
            check("openapi: /openapi.json is the committed document byte for byte", st == 200 and body == api.raw)
            long_doc = " ".join(["The tide comes in and goes out twice a day."] * 60)
            cases = [
                ("livez", "GET", "/livez", None, {}), ("readyz", "GET", "/readyz", None, {}),
                ("health", "GET", "/health", None, {}), ("metrics", "GET", "/metrics", None, {}),
                ("info", "GET", "/info", None, {}), ("openapi", "GET", "/openapi.json", None, {}),
                ("HEAD livez", "HEAD", "/livez", None, {}),
                ("tei", "POST", "/rerank", {"query": "q", "texts": DOCS}, {}),
                ("tei options", "POST", "/rerank",
                 {"query": "q", "texts": DOCS, "raw_scores": True, "return_text": True, "truncate": True,
                  "truncation_direction": "Left"}, {"x-request-timeout": "30"}),
                ("tei chunked", "POST", "/rerank",
                 {"query": "q", "texts": [long_doc, "short"], "long_documents": "chunk", "return_text": True}, {}),
                ("cohere on /rerank", "POST", "/rerank", {"query": "q", "documents": DOCS, "top_n": 2}, {}),
                ("v1", "POST", "/v1/rerank", {"query": "q", "documents": DOCS, "return_documents": True,
                                              "model": "any"}, {}),
                ("v2 objects", "POST", "/v2/rerank",
                 {"query": "q", "documents": [{"title": "t", "body": d} for d in DOCS], "rank_fields": ["title", "body"],
                  "return_documents": True, "top_n": 1}, {}),
                ("v2 chunked", "POST", "/v2/rerank",
                 {"query": "q", "documents": [long_doc], "max_chunks_per_doc": 2, "return_documents": True}, {}),
                ("400 not JSON", "POST", "/rerank", None, {}, b"{not json"),
                ("400 empty", "POST", "/v1/rerank", {"query": "q", "documents": []}, {}),
                ("422 no query", "POST", "/v2/rerank", {"documents": DOCS}, {}),
                ("422 texts not strings", "POST", "/rerank", {"query": "q", "texts": [1, 2]}, {}),
                ("422 top_n", "POST", "/v1/rerank", {"query": "q", "documents": DOCS, "top_n": 0}, {}),
                ("422 bad timeout header", "POST", "/rerank", {"query": "q", "texts": DOCS}, {"x-request-timeout": "x"}),
                ("422 not an object", "POST", "/v1/rerank", [1], {}),
                ("413 too many documents", "POST", "/rerank", {"query": "q", "texts": ["a"] * 5}, {}),
                ("413 too long, truncate false", "POST", "/rerank",
                 {"query": "q", "texts": [long_doc * 2], "truncate": False}, {}),
                ("413 body too big", "POST", "/v2/rerank", {"query": "q", "documents": ["x" * 9000]}, {}),
                ("405 GET on a rerank route", "GET", "/v1/rerank", None, {}),
                ("405 POST on a GET route", "POST", "/livez", None, {}, b"x"),
                ("405 DELETE /info", "DELETE", "/info", None, {}),
            ]
            for c in cases:
                name, method, path, body, headers = c[:5]
                st, ct, b = request(port, method, path, body, headers, raw=c[5] if len(c) > 5 else None)
                want = int(name[:3]) if name[:3].isdigit() else 200
                check("openapi: %s: %s %s → %d" % (name, method, path, want), st == want, "%d %r" % (st, b[:300]))
                if method == "HEAD":
                    check("openapi: HEAD %s 200 with no body" % path, st == 200 and b == b"")
                    continue
                api.check_answer(name, path, method, st, ct, b)
            st, ct, b = request(port, "GET", "/no/such/route")
            check("openapi: an unknown path → 404 text/plain naming the routes (not in the document)",
                  st == 404 and ct == "text/plain" and b"/openapi.json" in b and "/no/such/route" not in api.doc["paths"])
        finally:
            check("openapi: server exits 0", srv.stop() == 0)

        srv = self.server(["--http-port", "0", "--api-key", "k3y", "--api-key-protect-ops"])
        try:
            for path, method, body in (("/rerank", "POST", {"query": "q", "texts": DOCS}),
                                       ("/v1/rerank", "POST", {"query": "q", "documents": DOCS}),
                                       ("/v2/rerank", "POST", {"query": "q", "documents": DOCS}),
                                       ("/metrics", "GET", None), ("/info", "GET", None)):
                st, ct, b = request(srv.http_port, method, path, body)
                check("openapi: api key: %s %s without it → 401" % (method, path), st == 401)
                api.check_answer("401", path, method, st, ct, b)
            for path in ("/livez", "/readyz", "/health", "/openapi.json"):
                st, ct, b = request(srv.http_port, "GET", path)
                check("openapi: api key: GET %s stays open" % path, st == 200)
            st, ct, b = request(srv.http_port, "POST", "/v1/rerank", {"query": "q", "documents": DOCS},
                                {"Authorization": "Bearer k3y"})
            api.check_answer("with the key", "/v1/rerank", "POST", st, ct, b)
        finally:
            check("openapi: api-key server exits 0", srv.stop() == 0)

    def coverage(self, api):
        """Every route of the document was answered 200 at least once and checked."""
        for path, ops in api.doc["paths"].items():
            for method in ops:
                check("openapi coverage: %s %s answered 200 and checked" % (method.upper(), path),
                      (path, method, 200) in api.seen)
        print("openapi coverage: %d (route, method, status) answers checked: %s" %
              (len(api.seen), ", ".join("%s %s %d" % (m.upper(), p, s) for p, m, s in sorted(api.seen))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--tiny-model", required=True)
    args = ap.parse_args()
    args.openapi = os.path.join(args.source_dir, "src", "http", "openapi.json")
    if not os.path.isfile(os.path.join(args.tiny_model, "config.json")):
        print("test_deploy: skipped: model %s missing (run scripts/make_models.py)" % args.tiny_model)
        return 77
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
        import jsonschema  # noqa: F401
        import openapi_spec_validator  # noqa: F401
    except ImportError as e:
        print("test_deploy: skipped: %s (create .venv with scripts/setup.sh)" % e)
        return 77
    rrtest.gen_stubs(args.source_dir, args.gen_dir)
    from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
    s = Suite(args, pb, pbg)
    api = OpenAPI(args.openapi)
    for name, fn in (("flags", s.flags), ("connection age", s.connection_age), ("keepalive", s.keepalive),
                     ("drain", lambda: s.drain(api)), ("openapi", lambda: s.openapi(api)),
                     ("coverage", lambda: s.coverage(api))):
        t0 = time.time()
        fn()
        print("-- %s: %.0f s" % (name, time.time() - t0))
    return rrtest.summary("test_deploy")


if __name__ == "__main__":
    sys.exit(main())
