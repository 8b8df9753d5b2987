#!/usr/bin/env bash
# gpu-check.sh — the one-shot device check of the CUDA engine (issue 4), for an H200 box
# with the CUDA toolkit, CMake and PyTorch + transformers but no network and none of our
# Debian libraries. Run from the repository root through the device tool, carrying
# .cache/gpu-carry (made here by bench/gpu/pack-debs.sh); see bench/gpu/README.md.
#
# Steps (each bounded by `timeout`; the whole run is planned for < 8 minutes):
#   1. unpack the carried Debian prefix (deps.tar.xz) into /tmp/rr-debroot;
#   2. configure against it (CMAKE_FIND_ROOT_PATH, its pkgconf, its OpenBLAS) for sm_90 with
#      the ptxas report on, and build everything;
#   3. the gpu-labelled tests (every kernel vs its CPU op; whole model CUDA vs CPU on the
#      fp16 test model and a d_head-64 variant of it: same weights, 6 heads of 64);
#   4. compute-sanitizer memcheck on a small case (the kernel tests' quick set, and three
#      engine forwards through the graph and eager paths);
#   5. the latency-per-K benchmark (bench_gpu, validated against the CPU engine first) and
#      PyTorch + transformers fp16 (eager and sdpa) on the same checkpoint and token ids;
#   6. one Markdown table, $OUT/gpu-check.md, with the logs beside it.
# Exit status: 0 when every step passed, 1 otherwise (the table is written either way).
# GPU_CHECK_BUILD_ONLY=1 stops after step 2: the dry run that works without a GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/bench/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
T0=$(date +%s)
STATUS=0
SUMMARY=()
step() { echo; echo "=== [$(($(date +%s) - T0))s] $*"; }
note() { SUMMARY+=("$1"); echo "--> $1"; }
bad() { note "FAILED: $1"; STATUS=1; }

CARRY=$ROOT/.cache/gpu-carry
WORK=/tmp/rr-gpu-check
R=/tmp/rr-debroot
rm -rf "$WORK" && mkdir -p "$WORK"
export PATH=/usr/local/cuda/bin:$PATH

step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
nvcc --version | tail -2
[ -f "$CARRY/deps.tar.xz" ] && [ -f "$CARRY/models.tar.xz" ] ||
    { echo "no $CARRY (run bench/gpu/pack-debs.sh here and carry .cache/gpu-carry)"; exit 1; }

step "unpack the Debian prefix"
rm -rf "$R" && mkdir -p "$R" && tar -xJf "$CARRY/deps.tar.xz" -C "$R" || exit 1
LIBDIR=$R/usr/lib/x86_64-linux-gnu
# For the prefix's protoc/protoc-c/pkgconf at build time; our binaries find the prefix through
# their build-tree RPATH, and python3 (torch) runs with the original value ($PY_ENV) so it keeps
# its own libraries (the original may hold the driver's folder, so it is kept, not unset).
PY_ENV=(env "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}")
export LD_LIBRARY_PATH=$LIBDIR:$LIBDIR/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_LIBDIR=$LIBDIR/pkgconfig:$R/usr/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$R

step "test models: fp16 minilm-l6-bert and its d_head-64 variant"
MODELS=$WORK/models
mkdir -p "$MODELS/minilm-l6-bert-h6"
tar -xJf "$CARRY/models.tar.xz" -C "$MODELS" || { bad "unpack models.tar.xz"; exit 1; }
for f in "$MODELS/minilm-l6-bert"/*; do
    [ "$(basename "$f")" = config.json ] || ln -s "$f" "$MODELS/minilm-l6-bert-h6/"
done
"${PY_ENV[@]}" python3 - "$MODELS/minilm-l6-bert/config.json" "$MODELS/minilm-l6-bert-h6/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["num_attention_heads"] = c["hidden_size"] // 64
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY

step "configure"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
timeout 180 cmake -S . -B build-gpu "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_FIND_ROOT_PATH="$R" \
    -DPKG_CONFIG_EXECUTABLE="$R/usr/bin/pkgconf" \
    -DOPENBLAS_LIBRARY="$LIBDIR/openblas-pthread/libopenblas.so" \
    -DRR_MODELS_DIR="$MODELS" -DRERANK_PTXAS_VERBOSE=ON || { bad "configure"; exit 1; }

step "build"
if timeout 300 cmake --build build-gpu -j "$(nproc)" >"$WORK/build.log" 2>&1; then
    note "build: ok (sm_90, Release)"
else
    tail -40 "$WORK/build.log"
    bad "build (tail above)"
    exit 1
fi
grep -A3 "Compiling entry function '_Z[0-9]*[a-z_]*_kernel" "$WORK/build.log" >"$OUT/ptxas.txt" || true
echo "ptxas report of our kernels: $OUT/ptxas.txt ($(grep -c 'Compiling entry' "$OUT/ptxas.txt") entries)"
if [ -n "${GPU_CHECK_BUILD_ONLY:-}" ]; then
    echo "GPU_CHECK_BUILD_ONLY: stopping after the build (dry run)"
    exit $STATUS
fi

step "gpu tests"
if (cd build-gpu && timeout 300 ctest -L gpu --output-on-failure --timeout 280) \
       >"$OUT/ctest.log" 2>&1; then
    note "gpu tests: passed"
else
    bad "gpu tests (see ctest.log)"
fi
grep -E "max \||top-10|invariance|passed|failed|skipped|FAIL" "$OUT/ctest.log" | head -60

step "compute-sanitizer memcheck"
MC=(compute-sanitizer --tool memcheck --error-exitcode 3 --print-limit 20)
{
    RR_TEST_QUICK=1 timeout 200 "${MC[@]}" build-gpu/tests/cuda/test_cuda_kernels
    echo "rc=$?"
    timeout 200 "${MC[@]}" build-gpu/bench/gpu/bench_gpu "$MODELS/minilm-l6-bert" "$WORK" --smoke
    echo "rc=$?"
} >"$OUT/memcheck.log" 2>&1
grep -E "ERROR SUMMARY|rc=|validation" "$OUT/memcheck.log"
if [ "$(grep -c '^rc=0$' "$OUT/memcheck.log")" = 2 ]; then
    note "memcheck: clean ($(grep 'ERROR SUMMARY' "$OUT/memcheck.log" | tr '\n' ' '))"
else
    bad "memcheck (see memcheck.log)"
fi

step "benchmark: rerank fp16"
if timeout 240 build-gpu/bench/gpu/bench_gpu "$MODELS/minilm-l6-bert" "$WORK"; then
    cp "$WORK/rerank.tsv" "$OUT/"
else
    bad "bench_gpu"
fi

step "benchmark: PyTorch + transformers fp16"
if PYTHONUNBUFFERED=1 timeout 240 "${PY_ENV[@]}" python3 bench/gpu/torch_bench.py "$MODELS/minilm-l6-bert" "$WORK"; then
    cp "$WORK/torch.tsv" "$OUT/"
else
    bad "torch_bench"
fi

step "table"
printf '%s\n' "${SUMMARY[@]}" >"$WORK/summary.txt"
"${PY_ENV[@]}" python3 - "$WORK" "$OUT/gpu-check.md" "$OUT/gpu-check.log" <<'PY'
import os, re, sys, subprocess
work, out, log = sys.argv[1:4]
def tsv(name):
    p = os.path.join(work, name)
    if not os.path.exists(p):
        return []
    rows = [l.rstrip("\n").split("\t") for l in open(p)]
    return [dict(zip(rows[0], r)) for r in rows[1:]]
rr = {int(r["K"]): r for r in tsv("rerank.tsv")}
tt = tsv("torch.tsv")
peak = next((float(r["median_ms"]) for r in tt if r["impl"] == "peak_bf16_tflops"), None)
th = {(r["impl"], r["K"]): float(r["median_ms"]) for r in tt if r["impl"] != "peak_bf16_tflops"}
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip() or "unknown GPU"
except OSError:
    gpu = "unknown GPU (no nvidia-smi)"
target = {1: "≤ 0.15", 10: "—", 100: "≤ 0.6", 1000: "≤ 6"}
peak_txt = f"{peak:.0f} TFLOP/s" if peak else "not measured"
L = [f"## rerankd CUDA engine — device check on {gpu}", "",
     "MiniLM-L6 cross-encoder (fp16 weights), one query (16 tokens) against K passages "
     "(80–120 tokens), identical token ids for every engine. rerank: host wall clock around "
     "the synchronous rr_engine_forward (copies included), median (p90) after 20 warm-ups. "
     "PyTorch: transformers fp16, one padded batch, copies in and out included, median. "
     "TFLOP/s: full-encoder model FLOPs / median; peak = measured bf16 matmul " + peak_txt + ".",
     "",
     "| K | tokens | rerank fp16 ms (p90) | target ms | TFLOP/s | % of peak | torch eager ms "
     "| torch sdpa ms | × vs eager | × vs sdpa |",
     "|---|---|---|---|---|---|---|---|---|---|"]
for k in (1, 10, 100, 1000):
    r = rr.get(k)
    e, s = th.get(("eager", str(k))), th.get(("sdpa", str(k)))
    med = float(r["median_ms"]) if r else None
    tf = float(r["TFLOPs"]) if r else None
    cell = lambda v, f="{:.3f}": f.format(v) if v is not None else "—"
    L.append(f"| {k} | {r['n_tok'] if r else '—'} | "
             f"{cell(med)} ({r['p90_ms'] if r else '—'}) | {target[k]} | {cell(tf, '{:.1f}')} | "
             f"{cell(tf / peak * 100 if tf and peak else None, '{:.1f}')} | {cell(e)} | {cell(s)} | "
             f"{cell(e / med if e and med else None, '{:.1f}')} | "
             f"{cell(s / med if s and med else None, '{:.1f}')} |")
L += ["", "Checks:", ""]
L += [f"- {l.strip()}" for l in open(os.path.join(work, "summary.txt")) if l.strip()]
text = open(log, errors="replace").read()
L += [f"- {l.strip()}" for l in re.findall(r"^# .*$", text, re.M)]
L += [f"- {l.strip()}" for l in re.findall(r"^\s+(?:max \|cuda.*|batch invariance.*|"
                                          r"minilm.*top-10.*)$", open(
                                              os.path.join(os.path.dirname(out), "ctest.log"),
                                              errors="replace").read(), re.M)]
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY
echo "=== done in $(($(date +%s) - T0))s, status $STATUS"
exit $STATUS
