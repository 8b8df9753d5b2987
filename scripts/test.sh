#!/usr/bin/env bash
# test.sh — the whole test suite, as CI runs it (.ci/run calls this):
#   1. scripts/setup.sh (idempotent: Debian packages, .venv, models/);
#   2. format:     every C/C++/CUDA source as .clang-format says (scripts/format.sh --check);
#   3. build-ci:   Release, -Werror, CUDA compiled when nvcc exists; every test, including the
#                  server tests under valgrind (GPU tests report "skipped" without a device);
#                  then the dependency listing of src/ (tools/deps.py: no file-level circle,
#                  no upward arrow);
#   3b. container: scripts/container-smoke.sh — the CPU image built with podman on a Debian
#                  base made by mmdebstrap, run read-only and non-root with a model mounted,
#                  probed over gRPC and HTTP, stopped with SIGTERM (~70 s the first time,
#                  seconds when cached; "skipped" without podman/mmdebstrap/runc); then
#                  deploy/kube-play-smoke.sh: deploy/kubernetes/cpu's Deployment run by
#                  `podman kube play` with that image (~10 s);
#   4. build-asan: ASan + UBSan at -O2 (RelWithDebInfo), -Werror, CPU-only configure
#                  (-DRERANK_CUDA=OFF); every test except the valgrind-labelled ones (the two
#                  tools do not mix), the golden-logit tests on every third query
#                  (RR_TEST_QUICK=1);
#   5. build-tsan: ThreadSanitizer, the server under concurrent load on every path (-L tsan);
#   6. fuzz:       every libFuzzer target for FUZZ_SECONDS (default 60) after replaying its
#                  committed seeds (scripts/fuzz.sh; clang, ASan + UBSan).
# Ends with one summary line "test: N passed, N failed, N skipped". About 30 minutes on two
# cores.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "test: setup failed"; exit 1; }
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
JOBS=$(nproc)
pass=0 fail=0 skip=0 rc=0

run_suite() { # name, ctest extra args...
    local dir=$1; shift
    local log="$dir/ctest.log"
    (cd "$dir" && ctest --output-on-failure -j"$JOBS" "$@") 2>&1 | tee "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
    local total failed skipped
    total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$log" | tail -1)
    failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -1)
    skipped=$(grep -c '\*\*\*Skipped\|Not Run (Disabled)' "$log" || true)
    total=${total:-0} failed=${failed:-1}
    pass=$((pass + total - failed - skipped)) fail=$((fail + failed)) skip=$((skip + skipped))
}

# One check that is not a ctest (format, dependencies, fuzzing): counted like a test.
run_check() { # name, command...
    local name=$1; shift
    if "$@"; then pass=$((pass + 1)); else echo "$name: FAILED"; fail=$((fail + 1)); rc=1; fi
}

build() { # dir, cmake args... — quiet unless it fails
    local dir=$1; shift
    mkdir -p "$dir"
    if cmake -S . -B "$dir" -DRERANK_WERROR=ON "$@" >"$dir/build.log" 2>&1 &&
       cmake --build "$dir" -j"$JOBS" >>"$dir/build.log" 2>&1; then
        return 0
    fi
    tail -n 60 "$dir/build.log"
    return 1
}

echo "== format (clang-format)"
run_check format bash scripts/format.sh --check

echo "== build-ci (Release, -Werror, CUDA when present)"
if build build-ci -DCMAKE_BUILD_TYPE=Release; then
    run_suite build-ci
    # The kernels' SASS table (registers, local memory, HMMA, 128-bit accesses) of sass_check.
    [ -f build-ci/tests/cuda/sass_check.txt ] && cat build-ci/tests/cuda/sass_check.txt
    echo "== dependencies of src/ (tools/deps.py)"
    run_check deps python3 tools/deps.py build-ci
else echo "build-ci: build failed"; rc=1; fail=$((fail + 1)); fi

echo "== container smoke (podman: CPU image built, run read-only and non-root, probed, stopped)"
bash scripts/container-smoke.sh
case $? in
    0) pass=$((pass + 1)) ;;
    77) skip=$((skip + 1)) ;;
    *) echo "container-smoke: FAILED"; fail=$((fail + 1)); rc=1 ;;
esac
echo "== kube play (podman: deploy/kubernetes/cpu's Deployment with that image, probed, removed)"
bash deploy/kube-play-smoke.sh
case $? in
    0) pass=$((pass + 1)) ;;
    77) skip=$((skip + 1)) ;;
    *) echo "kube-play-smoke: FAILED"; fail=$((fail + 1)); rc=1 ;;
esac

echo "== build-asan (ASan+UBSan, CPU-only configure)"
if build build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRERANK_SANITIZE=ON -DRERANK_CUDA=OFF; then
    RR_TEST_QUICK=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        run_suite build-asan -LE valgrind
else echo "build-asan: build failed"; rc=1; fail=$((fail + 1)); fi

echo "== build-tsan (ThreadSanitizer: the server under load)"
if build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRERANK_TSAN=ON -DRERANK_CUDA=OFF; then
    run_suite build-tsan -L tsan
else echo "build-tsan: build failed"; rc=1; fail=$((fail + 1)); fi

echo "== fuzz (${FUZZ_SECONDS:-60} s per target)"
run_check fuzz bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
if [ -f build-fuzz/CTestTestfile.cmake ]; then run_suite build-fuzz -L fuzz; fi

echo "test: $pass passed, $fail failed, $skip skipped"
exit $rc
