"""test_dtype.py — rerankd's --dtype on the CPU, on the real server:

- --dtype int8: rerank.v1 Info says INT8 and a device naming int8, tei.v1 Info model_dtype
  "int8", HTTP /info the same; Rerank, tei.v1 Rerank and HTTP /rerank give the logits of
  `rerank score --dtype int8` bit for bit (HTTP as printed, %.9g), and they differ from f32's
  (the precision is really in use);
- --dtype bf16: the same where the CPU has AVX512-BF16; elsewhere start-up fails naming
  AVX512-BF16;
- --dtype f16 on the CPU, --dtype int9 and RERANKD_DTYPE=int9 fail start-up with a message
  naming the flag or the precision; --dtype int8 --device cuda:0 fails (int8 is CPU-only);
- TEI's DTYPE=float32 is read (Info F32).

Exit: 0 passed, 1 failed, 77 skipped.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrtest  # noqa: E402

check = rrtest.check
QUERY = "how do tides work"
DOCS = ["Tides are caused by the gravitational pull of the moon and the sun.",
        "Cats purr by rapidly twitching the muscles of the larynx.",
        "Spring tides happen at new and full moon, neap tides at the quarters.",
        "Sourdough bread needs a starter of wild yeast.",
        "The moon's gravity raises a bulge of water on the side of the earth facing it."]


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def cli_logits(cli, model, dtype):
    p = subprocess.run([cli, "score", "--model", model, "--query", QUERY, "--docs", "-", "--json",
                        "--device", "cpu", "--threads", "1", "--dtype", dtype],
                       input="\n".join(DOCS) + "\n", capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr
    res = json.loads(p.stdout)["results"]
    out = [None] * len(DOCS)
    for r in res:
        out[r["index"]] = f32(r["logit"])
    return out, ""


def start_fails(args, extra, env=None):
    """(exit code, stderr) of a rerankd that must not start."""
    p = subprocess.run([args.rerankd, "--model", args.model, "--port", "0"] + extra, capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, **env) if env else None)
    return p.returncode, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rerankd", required=True)
    ap.add_argument("--rerank", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--model", required=True)
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        print("test_dtype: skipped: model %s missing (run scripts/make_models.py)" % args.model)
        return 77
    try:
        import grpc
    except ImportError as e:
        print("test_dtype: skipped: %s (create .venv with scripts/setup.sh)" % e)
        return 77
    rrtest.gen_stubs(args.source_dir, args.gen_dir)
    from rerank.v1 import rerank_pb2 as pb, rerank_pb2_grpc as pbg
    from tei.v1 import tei_pb2 as tei, tei_pb2_grpc as teig

    ref32, _ = cli_logits(args.rerank, args.model, "f32")
    for dt, name, tei_name in (("int8", "INT8", "int8"), ("bf16", "BF16", "bfloat16")):
        want, err = cli_logits(args.rerank, args.model, dt)
        if want is None:
            check("%s: the CLI refuses only for want of AVX512-BF16" % dt,
                  dt == "bf16" and "AVX512-BF16" in err, err)
            rc, err = start_fails(args, ["--device", "cpu", "--dtype", dt])
            check("%s: rerankd refuses to start, naming AVX512-BF16" % dt, rc != 0 and "AVX512-BF16" in err, err)
            continue
        check("%s: differs from f32 (the precision is in use)" % dt, want != ref32, "%r" % want)
        srv = rrtest.Server(args.rerankd, args.model, ["--dtype", dt, "--http-port", "0"])
        try:
            ch = grpc.insecure_channel(srv.addr)
            info = pbg.RerankerStub(ch).Info(pb.InfoRequest(), timeout=30)
            check("%s: rerank.v1 Info dtype %s, device names it" % (dt, name),
                  info.dtype == name and dt in info.device, "%s %s" % (info.dtype, info.device))
            ti = teig.InfoStub(ch).Info(tei.InfoRequest(), timeout=30)
            check("%s: tei.v1 Info model_dtype %s" % (dt, tei_name), ti.model_dtype == tei_name, ti.model_dtype)
            r = pbg.RerankerStub(ch).Rerank(pb.RerankRequest(query=QUERY, documents=[pb.Document(text=d) for d in DOCS]),
                                            timeout=30)
            got = [None] * len(DOCS)
            for x in r.results:
                got[x.index] = x.logit
            check("%s: rerank.v1 logits = the CLI's, bit for bit" % dt, got == want, "%r vs %r" % (got, want))
            t = teig.RerankStub(ch).Rerank(tei.RerankRequest(query=QUERY, texts=DOCS, raw_scores=True), timeout=30)
            got_t = [None] * len(DOCS)
            for x in t.ranks:
                got_t[x.index] = x.score
            check("%s: tei.v1 Rerank raw scores = the CLI's" % dt, got_t == want, "%r" % got_t)
            ch.close()
            with urllib.request.urlopen("http://127.0.0.1:%d/info" % srv.http_port, timeout=30) as h:
                hi = json.loads(h.read().decode())
            check("%s: HTTP /info model_dtype %s" % (dt, name), hi.get("model_dtype") == name, "%r" % hi)
            req = urllib.request.Request("http://127.0.0.1:%d/rerank" % srv.http_port, method="POST",
                                         data=json.dumps({"query": QUERY, "texts": DOCS, "raw_scores": True}).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as h:
                body = json.loads(h.read().decode())
            got_h = [None] * len(DOCS)
            for x in body:
                got_h[x["index"]] = x["score"]
            check("%s: HTTP /rerank scores = the CLI's as printed (%%.9g)" % dt,
                  all(float("%.9g" % w) == g for w, g in zip(want, got_h)), "%r" % got_h)
        finally:
            check("%s: clean exit on SIGTERM" % dt, srv.stop() == 0)

    rc, err = start_fails(args, ["--device", "cpu", "--dtype", "f16"])
    check("cpu + f16: start-up fails naming f16", rc != 0 and "f16" in err, err)
    rc, err = start_fails(args, ["--dtype", "int9"])
    check("--dtype int9: fails naming --dtype", rc != 0 and "--dtype" in err and "int9" in err, err)
    rc, err = start_fails(args, [], env={"RERANKD_DTYPE": "int9"})
    check("RERANKD_DTYPE=int9: fails naming the variable", rc != 0 and "int9" in err, err)
    rc, err = start_fails(args, ["--device", "cuda:0", "--dtype", "int8"])
    check("cuda:0 + int8: fails (a CPU precision)", rc != 0 and "int8" in err, err)
    srv = rrtest.Server(args.rerankd, args.model, [], env={"DTYPE": "float32"})
    try:
        ch = grpc.insecure_channel(srv.addr)
        info = pbg.RerankerStub(ch).Info(pb.InfoRequest(), timeout=30)
        check("TEI's DTYPE=float32: Info F32", info.dtype == "F32", info.dtype)
        ch.close()
    finally:
        srv.stop()
    return rrtest.summary("test_dtype")


if __name__ == "__main__":
    sys.exit(main())
