#!/usr/bin/env bash
# test.sh — the whole test suite, as CI runs it (.ci/run calls this):
#   1. scripts/setup.sh (idempotent: Debian packages, .venv, models/);
#   2. build-ci:   Release, -Werror, CUDA compiled when nvcc exists; every test, including the
#                  server tests under valgrind (GPU tests report "skipped" without a device);
#   3. build-asan: ASan + UBSan at -O2 (RelWithDebInfo), -Werror, CPU-only configure
#                  (-DRERANK_CUDA=OFF); every test except the valgrind-labelled ones (the two
#                  tools do not mix), the golden-logit tests on every third query
#                  (RR_TEST_QUICK=1) to keep CI near 25 minutes.
# Ends with one summary line "test: N passed, N failed, N skipped".
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

echo "== build-ci (Release, -Werror, CUDA when present)"
if build build-ci -DCMAKE_BUILD_TYPE=Release; then run_suite build-ci; else echo "build-ci: build failed"; rc=1; fail=$((fail + 1)); fi

echo "== build-asan (ASan+UBSan, CPU-only configure)"
if build build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRERANK_SANITIZE=ON -DRERANK_CUDA=OFF; then
    RR_TEST_QUICK=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        run_suite build-asan -LE valgrind
else echo "build-asan: build failed"; rc=1; fail=$((fail + 1)); fi

echo "test: $pass passed, $fail failed, $skip skipped"
exit $rc
