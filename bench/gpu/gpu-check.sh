#!/usr/bin/env bash
# gpu-check.sh — the one-shot device check of the CUDA engine (issue 4), for an H200 box
# with the CUDA toolkit, CMake and PyTorch + transformers but no network and none of our
# Debian libraries. Run from the repository root through the device tool, carrying
# .cache/gpu-carry (made here by bench/gpu/pack-debs.sh); see bench/gpu/README.md.
#
# The box gives one run of at most 540 s, so everything hangs off one deadline
# (GPU_CHECK_DEADLINE_S, default 500 s after the start; worst case past it: 10 s of a step's
# `timeout -k 10`, 20 s of table, 5 s for tee = 535 s): each step's `timeout` is the smaller
# of its own cap and the time left, a step that cannot do anything useful in what is left is
# skipped (and counted as a failure), and the steps run cheapest-and-most-valuable first, so
# a hang in never-run kernels costs one step, not the data set:
#   1. device probe: GPU, driver, nvcc, cuBLAS header/library, tools, kernel (`uname -r`);
#   2. unpack the carried Debian prefix (deps.tar.xz) into /tmp/rr-debroot and the test
#      models; if the toolkit has no cuBLAS, look for the pip wheel's (best effort);
#   3. configure against the prefix for sm_90 with the ptxas report on, and build only what
#      runs here: test_cuda_kernels, test_cuda_model, bench_gpu;
#   3b. ldd on the three binaries: a missing library (libcudart, libcublas(Lt), a prefix
#      library) stops the run here with one clear line, not as three failed starts;
#   4. bench_gpu --smoke without the sanitizer (cap 40 s): three forwards vs the CPU engine,
#      the hang/fault probe;
#   5. bench_gpu, one process per (precision, K): fp16 and bf16 × K = 1, 10, 100, 1000, each
#      timed first and then validated (max |cuda − cpu|, top-10 agreement, each of the first
#      16 pairs alone vs in the batch), rows appended as they come, so a fault or a hang at
#      one K costs that K only;
#   6. torch_bench.py: PyTorch + transformers fp16 (eager and sdpa) on the same ids;
#   7. end to end over gRPC (best effort): rerankd and rerank-bench built against the
#      prefix, the server on cuda:0, unary Rerank latency for K = 1, 10, 100, 1000;
#   8. the gpu-labelled tests, `ctest -V` so passing tests' numbers reach ctest.log;
#   9. compute-sanitizer memcheck (the kernel tests' quick set, then the smoke run) and
#      racecheck (the smoke run) with what is left;
#  10. from an EXIT trap, whatever happened: one Markdown table, $OUT/gpu-check.md.
# $OUT gets at most 11 files: gpu-check.md, gpu-check.log, ptxas.txt, rerank.tsv,
# validate.tsv, torch.tsv, e2e.json, ctest.log, memcheck.log, racecheck.log, and build.log
# only when the build fails.
# Exit status: 0 when every step passed, 1 otherwise (the table is written either way).
# GPU_CHECK_BUILD_ONLY=1 stops after step 3: the dry run that works without a GPU.
# GPU_CHECK_DEADLINE_S (default 500) and GPU_CHECK_CUBLAS_WHEEL (see the cuBLAS block) are the
# other knobs.
# shellcheck disable=SC2317  # write_table and finish run from the EXIT trap
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
OUT=${OUT:-$ROOT/bench/out}
mkdir -p "$OUT"
T0=$(date +%s)
DEADLINE=$((T0 + ${GPU_CHECK_DEADLINE_S:-500}))
# python3 (torch, the table) runs with the original LD_LIBRARY_PATH so it keeps its own
# libraries (the original may hold the driver's folder, so it is kept, not unset); offline,
# so transformers never waits on a connection the box cannot make.
PY_ENV=(env "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
        PYTHONUNBUFFERED=1)
# tee ignores TERM/INT: if the device tool stops the run, tee must outlive the trap that
# writes the table (a dead tee would also kill this shell with SIGPIPE on its next echo).
exec > >(trap '' TERM INT HUP; exec tee "$OUT/gpu-check.log") 2>&1
TEE_PID=$!
STATUS=0
SUMMARY=()
step() { echo; echo "=== [$(($(date +%s) - T0))s, $(left)s left] $*"; }
note() { SUMMARY+=("$1"); echo "--> $1"; }
bad() { note "FAILED: $1"; STATUS=1; }
# Seconds to the deadline (may be negative).
left() { echo $((DEADLINE - $(date +%s))); }
# lim N: the smaller of N and the time left, at least 1 (an argument for `timeout`).
lim() { local l; l=$(left); if [ "$l" -lt "$1" ]; then echo $((l > 1 ? l : 1)); else echo "$1"; fi; }
# have N NAME: true when at least N seconds are left; otherwise NAME is reported as skipped.
have() { [ "$(left)" -ge "$1" ] && return 0; bad "$2: skipped, out of time ($(left)s left)"; return 1; }
# timed_out RC: the exit status of `timeout` when it had to stop the command.
timed_out() { [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; }

CARRY=$ROOT/.cache/gpu-carry
WORK=/tmp/rr-gpu-check
R=/tmp/rr-debroot
BUILD=build-gpu
BIN_BENCH=$BUILD/bench/gpu/bench_gpu
MODELS=$WORK/models
rm -rf "$WORK" && mkdir -p "$WORK"
export PATH=/usr/local/cuda/bin:$PATH

# The table: a function run from the EXIT trap, so it exists after a configure or build
# failure, an early exit or a signal too. It reads only files (summary, TSVs, step outputs,
# ctest.log) and survives missing, empty or half-written ones.
write_table() {
    printf '%s\n' "${SUMMARY[@]}" >"$WORK/summary.txt"
    local elapsed=$(($(date +%s) - T0))
    "${PY_ENV[@]}" timeout 20 python3 - "$WORK" "$OUT" "$elapsed" "$STATUS" \
        "$(uname -r)" "${GPU_CHECK_BUILD_ONLY:-}" <<'PY' && return
import os, re, sys, subprocess
work, out, elapsed, status, kernel, build_only = sys.argv[1:7]
L = []

def read(path):
    try:
        return open(path, errors="replace").read()
    except OSError:
        return ""

def tsv(name):
    """Rows of a TSV as dicts; [] when missing or header-only; short rows (a kill mid-write)
    are skipped."""
    rows = [l.rstrip("\n").split("\t") for l in read(os.path.join(work, name)).splitlines()
            if l.strip()]
    if len(rows) < 2:
        return []
    return [dict(zip(rows[0], r)) for r in rows[1:] if len(r) == len(rows[0])]

def num(r, key):
    try:
        return float(r[key])
    except (KeyError, TypeError, ValueError):
        return None

def cell(v, f="{:.3f}"):
    return f.format(v) if v is not None else "—"

try:
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10).stdout.strip() or "unknown GPU"
    except (OSError, subprocess.SubprocessError):
        gpu = "unknown GPU (no nvidia-smi)"
    L += [f"## rerankd CUDA engine — device check on {gpu}", "",
          f"Kernel `{kernel}`; {elapsed} s; exit status {status}"
          + (" (GPU_CHECK_BUILD_ONLY: build only, nothing ran on a device)" if build_only else "")
          + ".", ""]
    rr = {(r.get("dtype"), r.get("K")): r for r in tsv("rerank.tsv")}
    va = {(r.get("dtype"), r.get("K")): r for r in tsv("validate.tsv")}
    tt = tsv("torch.tsv")
    peak = next((num(r, "p50_ms") for r in tt if r.get("impl") == "peak_bf16_tflops"), None)
    th = {(r.get("impl"), r.get("K")): num(r, "p50_ms") for r in tt
          if r.get("impl") != "peak_bf16_tflops"}
    # rerank-bench's report: every point with a mode, a K and latency_s (seconds).
    e2e = {}
    try:
        import json
        def walk(o):
            if isinstance(o, dict):
                if "k" in o and isinstance(o.get("latency_s"), dict) and o.get("mode") in (
                        "unary", "grpc-unary", "rerank"):
                    e2e[str(int(o["k"]))] = o["latency_s"]
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(json.load(open(os.path.join(out, "e2e.json"))))
    except Exception:
        pass
    target = {"1": "≤ 0.15", "10": "—", "100": "≤ 0.6", "1000": "≤ 6"}
    peak_txt = f"{peak:.0f} TFLOP/s" if peak else "not measured"
    L += ["MiniLM-L6 cross-encoder (the carried fp16 weights), one query (16 tokens) against K "
          "passages (80–120 tokens), identical token ids for every engine. Engine: host wall "
          "clock around the synchronous rr_engine_forward (copies included), p50 (p99) after "
          "20 warm-ups, one process per row; then validated against the CPU engine (fp32): "
          "max |Δlogit|, top-10 agreement, and the first 16 pairs scored alone vs in the batch "
          "(bitwise-equal count, max |Δ|). gRPC: rerank-bench unary Rerank against rerankd on "
          "the same box (tokenization included; its own text, same K). PyTorch: transformers "
          "fp16, one padded batch, copies included, p50; × = PyTorch p50 ÷ rerank p50. "
          "TFLOP/s: full-encoder model FLOPs / p50; bf16 matmul peak " + peak_txt
          + ". — = not measured (see Checks).",
          "",
          "| dtype | K | tokens | engine ms p50 (p99) | target | pairs/s | TFLOP/s "
          "| gRPC ms p50 (p99) | max \\|Δ\\| vs CPU | top-10 | alone = in batch "
          "| torch eager ms | torch sdpa ms | × eager | × sdpa |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for dt in ("fp16", "bf16"):
        for k in ("1", "10", "100", "1000"):
            r, v = rr.get((dt, k), {}), va.get((dt, k), {})
            e, s_ = th.get(("eager", k)), th.get(("sdpa", k))
            med, tf, ps = num(r, "p50_ms"), num(r, "TFLOPs"), num(r, "pairs_per_s")
            g = e2e.get(k) if dt == "fp16" else None
            g_txt = (f"{g['p50'] * 1e3:.3f} ({g['p99'] * 1e3:.3f})" if g and "p50" in g
                     else "—")
            top = (f"{v['top10']}/{v['top10_of']}" if v.get("top10") else "—")
            inv = (f"{v['inv_equal']}/{v['inv_of']} (max {v['inv_max_diff']})"
                   if v.get("inv_of") else "—")
            L.append(f"| {dt} | {k} | {r.get('n_tok', '—')} | {cell(med)} "
                     f"({r.get('p99_ms', '—')}) | {target[k] if dt == 'fp16' else '—'} | "
                     f"{cell(ps, '{:.0f}')} | {cell(tf, '{:.1f}')} | {g_txt} | "
                     f"{v.get('max_diff', '—')}{' NaN' if v.get('nan', '0') != '0' else ''} | "
                     f"{top} | {inv} | {cell(e) if dt == 'fp16' else '—'} | "
                     f"{cell(s_) if dt == 'fp16' else '—'} | "
                     f"{cell(e / med if e and med else None, '{:.1f}')} | "
                     f"{cell(s_ / med if s_ and med else None, '{:.1f}')} |")
except Exception as x:  # keep what is there; the checks below still matter
    L.append(f"(table writer error: {type(x).__name__}: {x})")
try:
    L += ["", "Checks:", ""]
    L += [f"- {l.strip()}" for l in read(os.path.join(work, "summary.txt")).splitlines()
          if l.strip()]
    for name, what in (("smoke.out", "smoke"), ("bench.out", "bench_gpu"),
                       ("torch.out", "torch_bench"), ("e2e.out", "rerank-bench")):
        L += [f"- {what}: {l[2:].strip()}" for l in read(os.path.join(work, name)).splitlines()
              if l.startswith("# ")]
    # ctest -V prefixes each test's output with "N: ".
    ct = read(os.path.join(out, "ctest.log"))
    L += [f"- ctest: {m.strip()}" for m in re.findall(
        r"^(?:\d+: )?\s*(\d+/\d+ Test +#\d+: .*|\S+: \d+ pairs .*|max \|.*|batch invariance.*|"
        r"graph buckets.*|\S+: top-10.*|\S+: not loaded.*)$", ct, re.M)]
except Exception as x:
    L.append(f"(table writer error: {type(x).__name__}: {x})")
open(os.path.join(out, "gpu-check.md"), "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY
    # No python3 (or it failed): the summary alone, so there is still a table file.
    { echo "## rerankd CUDA engine — device check (table writer failed; summary only)"
      echo; echo "Kernel \`$(uname -r)\`; exit status $STATUS."; echo
      printf -- '- %s\n' "${SUMMARY[@]}"; } >"$OUT/gpu-check.md"
    cat "$OUT/gpu-check.md"
}

finish() {
    trap - EXIT
    step "table"
    write_table
    echo "=== done in $(($(date +%s) - T0))s, status $STATUS"
    # Let tee drain so gpu-check.log is complete: close our ends of its pipe and wait for it,
    # bounded (a stray process still holding the pipe must not stall the run).
    exec >&- 2>&-
    (sleep 5; kill -KILL "$TEE_PID" 2>/dev/null) &
    local watchdog=$!
    wait "$TEE_PID" 2>/dev/null
    kill "$watchdog" 2>/dev/null
    exit "$STATUS"
}
trap finish EXIT
trap 'bad "stopped by a signal"; exit 1' TERM INT HUP

step "device"
timeout -k 5 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv ||
    echo "nvidia-smi: not found or failed"
echo "kernel: $(uname -r)"
if NVCC=$(command -v nvcc); then
    nvcc --version | tail -2
    CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
else
    bad "no nvcc in PATH or /usr/local/cuda/bin: no CUDA engine can be built"
    exit 1
fi
echo "toolkit: $CUDA_HOME"
ls -l /usr/local/cuda/include/cublas_v2.h /usr/local/cuda/lib*/libcublas.so* 2>&1
for t in compute-sanitizer cmake ctest ninja python3; do
    echo "$t: $(command -v "$t" || echo 'not found')"
done
cmake --version | head -1
if [ ! -f "$CARRY/deps.tar.xz" ] || [ ! -f "$CARRY/models.tar.xz" ]; then
    bad "no $CARRY (run bench/gpu/pack-debs.sh here and carry .cache/gpu-carry)"
    exit 1
fi

step "unpack the Debian prefix and the test models"
rm -rf "$R" && mkdir -p "$R"
if ! timeout -k 10 "$(lim 60)" tar -xJf "$CARRY/deps.tar.xz" -C "$R"; then
    bad "unpack deps.tar.xz"
    exit 1
fi
LIBDIR=$R/usr/lib/x86_64-linux-gnu
# For the prefix's protoc/protoc-c/pkgconf at build time; our binaries find the prefix through
# their build-tree RPATH.
export LD_LIBRARY_PATH=$LIBDIR:$LIBDIR/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_LIBDIR=$LIBDIR/pkgconfig:$R/usr/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$R
# The fp16 test model and a d_head-64 variant of it (same weights, 6 heads of 64).
mkdir -p "$MODELS/minilm-l6-bert-h6"
timeout -k 10 "$(lim 90)" tar -xJf "$CARRY/models.tar.xz" -C "$MODELS" ||
    { bad "unpack models.tar.xz"; exit 1; }
for f in "$MODELS/minilm-l6-bert"/*; do
    [ "$(basename "$f")" = config.json ] || ln -s "$f" "$MODELS/minilm-l6-bert-h6/"
done
"${PY_ENV[@]}" python3 - "$MODELS/minilm-l6-bert/config.json" "$MODELS/minilm-l6-bert-h6/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["num_attention_heads"] = c["hidden_size"] // 64
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY

# cuBLAS: FindCUDAToolkit makes CUDA::cublas from the toolkit's own libcublas and headers. An
# image whose toolkit lacks them (torch brings cuBLAS as a pip wheel) would fail at generate
# time, so fall back to the wheel's include/ and lib/: CUDA_cublas(Lt)_LIBRARY preset in the
# cache skip the search, and -I reaches kernels.h's #include <cublas_v2.h>. Best effort.
# GPU_CHECK_CUBLAS_WHEEL=1 takes the wheel path even when the toolkit has cuBLAS (how the
# fallback was dry-run here, and a way out if the toolkit's cuBLAS turns out broken).
CUBLAS_ARGS=()
toolkit_has_cublas() {
    local h
    for h in "$CUDA_HOME"/include/cublas_v2.h "$CUDA_HOME"/targets/*/include/cublas_v2.h; do
        [ -e "$h" ] && return 0
    done
    return 1
}
if [ -z "${GPU_CHECK_CUBLAS_WHEEL:-}" ] && toolkit_has_cublas; then
    echo "cuBLAS: the toolkit's ($CUDA_HOME)"
else
    echo "cuBLAS: no cublas_v2.h under $CUDA_HOME (or GPU_CHECK_CUBLAS_WHEEL set);" \
         "looking for a pip wheel (nvidia-cublas*)"
    mapfile -t WHEEL < <("${PY_ENV[@]}" timeout 30 python3 - <<'PY'
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except Exception:
    roots = []
inc = lib = lt = ""
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, "*"))):
        h, libs = os.path.join(d, "include", "cublas_v2.h"), os.path.join(d, "lib")
        if not inc and os.path.exists(h):
            inc = os.path.dirname(h)
        lib = lib or next(iter(sorted(glob.glob(os.path.join(libs, "libcublas.so*")))), "")
        lt = lt or next(iter(sorted(glob.glob(os.path.join(libs, "libcublasLt.so*")))), "")
print(inc); print(lib); print(lt)
PY
)
    if [ -n "${WHEEL[0]:-}" ] && [ -n "${WHEEL[1]:-}" ]; then
        CUBLAS_ARGS=("-DCUDA_cublas_LIBRARY=${WHEEL[1]}" "-DCMAKE_C_FLAGS=-I${WHEEL[0]}"
                     "-DCMAKE_CUDA_FLAGS=-I${WHEEL[0]}")
        [ -n "${WHEEL[2]:-}" ] && CUBLAS_ARGS+=("-DCUDA_cublasLt_LIBRARY=${WHEEL[2]}")
        # libcublas finds libcublasLt beside it only through the loader's path.
        LD_LIBRARY_PATH=$(dirname "${WHEEL[1]}"):$LD_LIBRARY_PATH
        note "cuBLAS: pip wheel fallback (${WHEEL[0]}, ${WHEEL[1]}, ${WHEEL[2]:-no cublasLt})"
    else
        bad "cuBLAS: none in the toolkit nor in a pip wheel (configure will fail)"
    fi
fi

step "configure"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
timeout -k 10 "$(lim 90)" cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_FIND_ROOT_PATH="$R" \
    -DPKG_CONFIG_EXECUTABLE="$R/usr/bin/pkgconf" \
    -DOPENBLAS_LIBRARY="$LIBDIR/openblas-pthread/libopenblas.so" \
    -DRR_MODELS_DIR="$MODELS" -DRERANK_PTXAS_VERBOSE=ON "${CUBLAS_ARGS[@]}" 2>&1 |
    tee "$WORK/configure.log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
    bad "configure (rc $rc; see gpu-check.log)"
    exit 1
elif ! grep -q "rerankd: CUDA engine ON" "$WORK/configure.log"; then
    bad "configure: the CUDA engine is off (nvcc not usable?)"
    exit 1
fi

step "build: test_cuda_kernels test_cuda_model bench_gpu"
# Only what runs here: the server, CLI and CPU tests would add build time and link-time
# dependencies (gnutls through microhttpd) that the carried prefix leaves to the box.
timeout -k 10 "$(lim 240)" cmake --build "$BUILD" -j "$(nproc)" \
    --target test_cuda_kernels test_cuda_model bench_gpu >"$WORK/build.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then
    note "build: ok (sm_90, Release; test_cuda_kernels test_cuda_model bench_gpu)"
else
    # The first error is often far above the tail with -j16: the whole log when small,
    # else every error with its context.
    if [ "$(wc -c <"$WORK/build.log")" -le 2000000 ]; then
        cp "$WORK/build.log" "$OUT/build.log"
    else
        grep -n -m 40 -B 3 -A 10 -E "error|Error|undefined reference" "$WORK/build.log" >"$OUT/build.log"
    fi
    tail -40 "$WORK/build.log"
    if timed_out "$rc"; then bad "build: timed out (build.log)"; else bad "build (rc $rc; build.log)"; fi
    exit 1
fi
grep -A3 "Compiling entry function '_Z[0-9]*[a-z_]*_kernel" "$WORK/build.log" >"$OUT/ptxas.txt" || true
echo "ptxas report of our kernels: $OUT/ptxas.txt ($(grep -c 'Compiling entry' "$OUT/ptxas.txt") entries)"
step "ldd: every library of the three binaries resolves"
# The binaries carry the prefix in their build-tree RPATH; the toolkit's libcudart and
# libcublas(Lt) come from the box's loader path. Checked once here, so a missing one is one
# clear line instead of every later step failing to start.
LDD_MISSING=
for bin in "$BIN_BENCH" "$BUILD/tests/cuda/test_cuda_kernels" "$BUILD/tests/cuda/test_cuda_model"; do
    miss=$(ldd "$bin" 2>&1 | grep -E "not found|not a dynamic" || true)
    if [ -n "$miss" ]; then
        echo "$bin:"; echo "$miss"
        LDD_MISSING+=" $(basename "$bin"):$(echo "$miss" | awk '{print $1}' | tr '\n' ',')"
    fi
done
if [ -n "$LDD_MISSING" ]; then
    bad "ldd: libraries not found:$LDD_MISSING (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)"
    exit 1
fi
ldd "$BIN_BENCH" | grep -E "cudart|cublas" || true
note "ldd: all libraries found (cudart/cublas: $(ldd "$BIN_BENCH" | grep -oE 'lib(cudart|cublas|cublasLt)\.so[.0-9]*' | sort -u | tr '\n' ' '))"
if [ -n "${GPU_CHECK_BUILD_ONLY:-}" ]; then
    echo "GPU_CHECK_BUILD_ONLY: stopping after the build (dry run)"
    exit
fi

step "smoke: bench_gpu --smoke (K = 1, 10, 100 vs the CPU engine; hang/fault probe)"
SMOKE_HUNG=
if have 15 "smoke"; then
    timeout -k 10 "$(lim 40)" "$BIN_BENCH" "$MODELS/minilm-l6-bert" "$WORK" --smoke 2>&1 |
        tee "$WORK/smoke.out"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then note "smoke: ok"
    elif timed_out "$rc"; then SMOKE_HUNG=1; bad "smoke: timed out (hang?)"
    else bad "smoke (rc $rc)"; fi
fi

step "benchmark: rerank, one process per (precision, K): timed, then validated"
"$BIN_BENCH" "$MODELS/minilm-l6-bert" "$WORK" --inputs || bad "bench_gpu --inputs"
# After a hung smoke every K gets a short cap: a hang costs its K, not the run.
KCAP=$([ -n "$SMOKE_HUNG" ] && echo 20 || echo 45)
for dt in fp16 bf16; do
    for k in 1 10 100 1000; do
        have 10 "bench_gpu $dt K=$k" || continue
        timeout -k 5 "$(lim "$KCAP")" "$BIN_BENCH" "$MODELS/minilm-l6-bert" "$WORK" --k "$k" \
            $([ "$dt" = bf16 ] && echo --bf16) 2>&1 | tee -a "$WORK/bench.out"
        rc=${PIPESTATUS[0]}
        if [ "$rc" -eq 0 ]; then :
        elif timed_out "$rc"; then bad "bench_gpu $dt K=$k: timed out"
        else bad "bench_gpu $dt K=$k (rc $rc: see its # lines)"; fi
    done
done
for f in rerank.tsv validate.tsv; do [ -f "$WORK/$f" ] && cp "$WORK/$f" "$OUT/"; done
[ -f "$WORK/rerank.tsv" ] && note "bench_gpu: $(($(wc -l <"$WORK/rerank.tsv") - 1)) of 8 (precision, K) timed"

step "benchmark: PyTorch + transformers fp16"
if [ ! -f "$WORK/inputs.jsonl" ]; then
    bad "torch_bench: no inputs.jsonl"
elif have 20 "torch_bench"; then
    timeout -k 10 "$(lim 120)" "${PY_ENV[@]}" python3 bench/gpu/torch_bench.py \
        "$MODELS/minilm-l6-bert" "$WORK" 2>&1 | tee "$WORK/torch.out"
    rc=${PIPESTATUS[0]}
    [ -f "$WORK/torch.tsv" ] && cp "$WORK/torch.tsv" "$OUT/"
    if [ "$rc" -eq 0 ]; then note "torch_bench: ok"
    elif timed_out "$rc"; then bad "torch_bench: timed out"
    else bad "torch_bench (rc $rc)"; fi
fi

step "end to end over gRPC: rerankd on cuda:0, rerank-bench unary (best effort)"
# Best effort: the server links libmicrohttpd (GnuTLS from the box) and gRPC from the
# prefix; a build or start failure is noted, not counted against the engine.
if have 60 "gRPC end to end"; then
    if timeout -k 10 "$(lim 120)" cmake --build "$BUILD" -j "$(nproc)" --target rerankd \
        rerank-bench >"$WORK/build-e2e.log" 2>&1; then
        PORT=50077
        "$BUILD/rerankd" --model "$MODELS/minilm-l6-bert" --device cuda:0 --port "$PORT" \
            --host 127.0.0.1 >"$WORK/rerankd.out" 2>&1 &
        SRV=$!
        for _ in $(seq 1 60); do grep -q READY "$WORK/rerankd.out" && break; sleep 0.5; done
        if grep -q READY "$WORK/rerankd.out"; then
            timeout -k 5 "$(lim 90)" "$BUILD/bench/harness/rerank-bench" \
                --target "127.0.0.1:$PORT" --model "$MODELS/minilm-l6-bert" --text README.md \
                --k 1,10,100,1000 --no-stream --concurrency 0 --rate 0 --validate-max-k 0 \
                --out "$WORK/e2e" --no-progress >"$WORK/e2e.out" 2>&1
            rc=$?
            [ -f "$WORK/e2e/report.json" ] && cp "$WORK/e2e/report.json" "$OUT/e2e.json"
            if [ "$rc" -eq 0 ]; then note "gRPC end to end: ok ($(head -1 "$WORK/rerankd.out"))"
            else bad "gRPC end to end: rerank-bench rc $rc ($(tail -1 "$WORK/e2e.out"))"; fi
        else
            bad "gRPC end to end: rerankd did not start ($(tail -2 "$WORK/rerankd.out" | tr '\n' ' '))"
        fi
        kill -TERM "$SRV" 2>/dev/null
        wait "$SRV" 2>/dev/null
    else
        note "gRPC end to end: not built ($(grep -m1 -E 'error|undefined' "$WORK/build-e2e.log"))"
    fi
fi

step "gpu tests (ctest -L gpu -V)"
# -V: a passing test's output (max |cuda - cpu|, top-10, batch invariance, graph buckets) is
# the accuracy result, and only -V puts it in ctest.log. A skipped test (exit 77: no device,
# model not loaded) is a failure here, not a pass. Per-test timeouts sum to below the outer
# one, so ctest stops a hung test itself and no test binary outlives the step. Only the two
# carried models count: minilm-l6-electra and tiny-bert-random are not carried, and their
# "not loaded" lines are expected.
if have 30 "gpu tests"; then
    CT=$(lim 150)
    (cd "$BUILD" && timeout -k 10 "$CT" ctest -L gpu -V --timeout $(((CT - 10) / 2))) \
        >"$OUT/ctest.log" 2>&1
    rc=$?
    SKIP_RE="Skipped|Not Run|minilm-l6-bert(-h6)?: not loaded|No tests were found"
    grep -E "Test +#|max \||top-10|invariance|graph buckets|tests passed|$SKIP_RE" \
        "$OUT/ctest.log" | head -60
    if [ "$rc" -eq 0 ] && ! grep -qE "$SKIP_RE" "$OUT/ctest.log"; then
        note "gpu tests: passed"
    elif [ "$rc" -eq 0 ]; then
        bad "gpu tests: skipped or not run (see ctest.log)"
    else
        bad "gpu tests (rc $rc; see ctest.log)"
    fi
fi

step "compute-sanitizer memcheck"
# Last: the slowest step and the one a gVisor runtime refuses ("Device not supported"), which
# is reported as such, not as a kernel failure.
if ! command -v compute-sanitizer >/dev/null; then
    note "memcheck: not available (no compute-sanitizer)"
elif have 30 "memcheck"; then
    MC=(compute-sanitizer --tool memcheck --error-exitcode 3 --print-limit 20)
    {
        # The kernel tests get half of what is left (all of it after a hung smoke, whose run
        # under the sanitizer would only hang slower).
        HALF=$(lim 150)
        [ -z "$SMOKE_HUNG" ] && HALF=$((HALF / 2))
        RR_TEST_QUICK=1 timeout -k 10 "$HALF" "${MC[@]}" "$BUILD/tests/cuda/test_cuda_kernels"
        echo "rc=$?"
        if [ -z "$SMOKE_HUNG" ]; then
            timeout -k 10 "$(lim 150)" "${MC[@]}" "$BIN_BENCH" "$MODELS/minilm-l6-bert" "$WORK" --smoke
            echo "rc=$?"
        fi
    } >"$OUT/memcheck.log" 2>&1
    grep -E "ERROR SUMMARY|rc=|validation|not supported" "$OUT/memcheck.log"
    n_runs=$([ -z "$SMOKE_HUNG" ] && echo 2 || echo 1)
    if grep -qiE "device not supported|device is not supported" "$OUT/memcheck.log"; then
        note "memcheck: not available on this runtime (kernel $(uname -r); see memcheck.log)"
    elif [ "$(grep -c '^rc=0$' "$OUT/memcheck.log")" = "$n_runs" ]; then
        note "memcheck: clean ($(grep 'ERROR SUMMARY' "$OUT/memcheck.log" | tr '\n' ' '))"
    else
        bad "memcheck (see memcheck.log)"
    fi
fi
step "compute-sanitizer racecheck"
# Shared-memory hazards of the kernels (attention's staging, the head's reductions): the
# smoke run's three forwards under racecheck.
if ! command -v compute-sanitizer >/dev/null || [ -n "$SMOKE_HUNG" ]; then
    note "racecheck: not run ($([ -n "$SMOKE_HUNG" ] && echo 'the smoke run hung' || echo 'no compute-sanitizer'))"
elif have 30 "racecheck"; then
    timeout -k 10 "$(lim 120)" compute-sanitizer --tool racecheck --error-exitcode 3 \
        --print-limit 20 "$BIN_BENCH" "$MODELS/minilm-l6-bert" "$WORK" --smoke \
        >"$OUT/racecheck.log" 2>&1
    rc=$?
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|hazard|not supported" "$OUT/racecheck.log" | head
    if grep -qiE "device not supported|device is not supported" "$OUT/racecheck.log"; then
        note "racecheck: not available on this runtime (see racecheck.log)"
    elif [ "$rc" -eq 0 ]; then
        note "racecheck: clean ($(grep -E 'SUMMARY' "$OUT/racecheck.log" | tr '\n' ' '))"
    elif timed_out "$rc"; then bad "racecheck: timed out"
    else bad "racecheck (rc $rc; see racecheck.log)"; fi
fi
exit
