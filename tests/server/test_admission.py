"""test_admission.py — deadline-aware admission (src/sched/admit.h) in the real server: with
the engine saturated by one big request, a request whose deadline is far shorter than the
work queued ahead of it is refused at once, before tokenization, with DEADLINE_EXCEEDED (HTTP
503 Timeout) and a message that says so and gives the estimate; a big request on an idle
server whose own tokens cannot be scored in time is refused after tokenization, before any
of its pairs is computed; rerankd_admission_refused_total counts both by stage. With
--admission-control off the same requests are not refused at admission (they expire in the
queue, as before).

No timing-fragile assert: the saturating request is timed first on this machine (T), and
the short deadlines are T / 20 (behind the queue) and T / 4 (the big request alone), so the
estimate and the deadline are an order of magnitude apart on any CPU. Exit: 0 passed,
1 failed, 77 skipped.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrtest  # noqa: E402

check = rrtest.check
DOCS = ["Cats purr by rapidly twitching the muscles of the larynx.",
        "Tides are caused by the gravitational pull of the moon.",
        "Sourdough bread needs a starter of wild yeast.", "Ünïcödé — naïve café, 東京, emoji 🐱."]
LONG = " ".join(["tide moon sea"] * 170)  # ~512 tokens: the engine's slowest pair
N_BIG = 300
ADMISSION = "refused at admission"


def post(port, body, headers, timeout=120):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("POST", "/rerank", body=json.dumps(body).encode(),
              headers=dict({"Content-Type": "application/json"}, **headers))
    r = c.getresponse()
    text = r.read()
    c.close()
    try:
        return r.status, json.loads(text)
    except ValueError:
        return r.status, text


def refused(samples, stage):
    return rrtest.val(samples, "rerankd_admission_refused_total", stage=stage)


def run(args, pb, pbg, admission):
    import grpc
    on = admission == "on"
    srv = rrtest.Server(args.rerankd, args.tiny_model,
                        ["--http-port", "0", "--max-docs", "2000", "--admission-control", admission],
                        ready_timeout=120)
    what = "--admission-control %s" % admission
    try:
        ch = grpc.insecure_channel(srv.addr, options=[("grpc.max_send_message_length", 64 << 20)])
        stub = pbg.RerankerStub(ch)
        small = pb.RerankRequest(query="how do cats purr", documents=[pb.Document(text=d) for d in DOCS])
        big = pb.RerankRequest(query="q", documents=[pb.Document(text=LONG)] * N_BIG)

        def call(req, timeout):
            t0 = time.time()
            try:
                stub.Rerank(req, timeout=timeout)
                return "OK", "", time.time() - t0
            except grpc.RpcError as e:
                return e.code().name, e.details() or "", time.time() - t0

        for _ in range(3):  # the warm-up forwards (not learned), then one that is
            call(small, 60)
        code, _, t_big = call(big, 600)  # T: the saturating request alone, on this machine
        check("%s: the big request (%d × ~512 tokens) alone: OK in %.2f s" % (what, N_BIG, t_big),
              code == "OK", code)
        s0 = rrtest.scrape(srv.http_port)[0]
        check("%s: rerankd_admission_control is %d and the estimate per token is published" % (what, on),
              rrtest.val(s0, "rerankd_admission_control") == on and
              any(k[0] == "rerankd_admission_seconds_per_token" and v > 0 for k, v in s0.items()))

        # Saturate: the big request again, on its own channel; wait until it is queued.
        ch_busy = grpc.insecure_channel(srv.addr, options=[("grpc.max_send_message_length", 64 << 20)])
        busy = pbg.RerankerStub(ch_busy).Rerank.future(big, timeout=600)
        queued, t_wait = 0, time.time()
        while queued <= 0 and time.time() - t_wait < 30:
            queued = rrtest.val(rrtest.scrape(srv.http_port)[0], "rerankd_queued_tokens")
            if queued <= 0:
                time.sleep(0.02)
        check("%s: the big request is queued (%d tokens ahead)" % (what, queued), queued > 0)

        short = t_big / 20
        code, details, dt = call(small, short)
        http_st, http_js = post(srv.http_port, {"query": "how do cats purr", "texts": DOCS},
                                {"x-request-timeout": "%.3f" % short})
        http_msg = http_js.get("error", "") if isinstance(http_js, dict) else str(http_js)
        http_type = http_js.get("error_type") if isinstance(http_js, dict) else None
        try:
            busy_code = "OK" if busy.result() is not None else "?"
        except grpc.RpcError as e:
            busy_code = e.code().name
        ch_busy.close()
        check("%s: the saturating request still completes" % what, busy_code == "OK", busy_code)
        if on:
            check("gRPC, deadline %.0f ms behind ~%.1f s of queued work: DEADLINE_EXCEEDED, refused at "
                  "admission after %.1f ms (%s)" % (1e3 * short, t_big, 1e3 * dt, details),
                  code == "DEADLINE_EXCEEDED" and details.startswith(ADMISSION) and
                  "tokens queued ahead" in details and "left before the deadline" in details and dt < short,
                  "%s %r" % (code, details))
            check("HTTP, x-request-timeout %.3f behind the queue: 503 Timeout, refused at admission (%s)" %
                  (short, http_msg), http_st == 503 and http_type == "Timeout" and http_msg.startswith(ADMISSION),
                  "%s %s" % (http_st, http_js))
        else:
            check("gRPC, deadline %.0f ms behind the queue: DEADLINE_EXCEEDED, not refused at admission "
                  "(%s)" % (1e3 * short, details),
                  code == "DEADLINE_EXCEEDED" and ADMISSION not in details, "%s %r" % (code, details))
            check("HTTP, x-request-timeout %.3f behind the queue: 503 Timeout, not refused at admission (%s)" %
                  (short, http_msg), http_st == 503 and http_type == "Timeout" and ADMISSION not in http_msg,
                  "%s %s" % (http_st, http_js))

        # The idle server, the big request alone with a deadline of T / 4: the queue is empty,
        # so only its own tokens (known after tokenization) can refuse it.
        time.sleep(0.2)
        s1 = rrtest.scrape(srv.http_port)[0]
        code, details, dt = call(big, t_big / 4)
        time.sleep(0.5)  # a request that was not refused is dropped at its next batch
        s2 = rrtest.scrape(srv.http_port)[0]
        pairs = rrtest.val(s2, "rerankd_pairs_total") - rrtest.val(s1, "rerankd_pairs_total")
        if on:
            check("gRPC, the big request alone with a deadline of %.0f ms: refused at admission after "
                  "tokenization (%s), no pair scored" % (1e3 * t_big / 4, details),
                  code == "DEADLINE_EXCEEDED" and details.startswith(ADMISSION) and
                  "tokens behind 0 queued" in details and pairs == 0, "%s %r pairs %d" % (code, details, pairs))
            check("rerankd_admission_refused_total: intake +2 (gRPC, HTTP), tokenized +1",
                  refused(s2, "intake") - refused(s0, "intake") == 2 and
                  refused(s2, "tokenized") - refused(s0, "tokenized") == 1,
                  "intake %d → %d, tokenized %d → %d" % (refused(s0, "intake"), refused(s2, "intake"),
                                                        refused(s0, "tokenized"), refused(s2, "tokenized")))
        else:
            check("gRPC, the big request alone with a deadline of %.0f ms: DEADLINE_EXCEEDED, not refused "
                  "at admission (%s)" % (1e3 * t_big / 4, details),
                  code == "DEADLINE_EXCEEDED" and ADMISSION not in details, "%s %r" % (code, details))
            check("rerankd_admission_refused_total stays 0",
                  refused(s2, "intake") == 0 and refused(s2, "tokenized") == 0)
        ch.close()
    finally:
        rc = srv.stop(timeout=120)
        check("%s: exits 0 on SIGTERM" % what, rc == 0, "rc=%s\n%s" % (rc, srv.log_text()[-3000:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--tiny-model", required=True)
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.tiny_model, "config.json")):
        print("test_admission: skipped: model %s missing (run scripts/make_models.py)" % args.tiny_model)
        return 77
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
        import prometheus_client  # noqa: F401
    except ImportError as e:
        print("test_admission: skipped: %s (create .venv with scripts/setup.sh)" % e)
        return 77
    rrtest.gen_stubs(args.source_dir, args.gen_dir)
    from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
    for admission in ("on", "off"):
        t0 = time.time()
        try:
            run(args, pb, pbg, admission)
        except Exception:  # noqa: BLE001 — a dead server or a timeout is a failed check
            import traceback
            check("--admission-control %s: ran to the end" % admission, False, traceback.format_exc()[-1500:])
        print("-- admission %s: %.0f s" % (admission, time.time() - t0))
    return rrtest.summary("test_admission")


if __name__ == "__main__":
    sys.exit(main())
