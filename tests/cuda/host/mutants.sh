#!/usr/bin/env bash
# mutants.sh — mutation testing of the host-emulated kernel tests: each mutation below is a
# one-line sed edit of a copy of a kernel file; the driver rebuilds the named test against
# the mutated copy (only that translation unit recompiles, then a relink), runs it in its
# quick mode (or on the one op the mutation touches) with a fixed seed, in both run orders
# of the block runtime, and requires it to FAIL. A mutant that survives, a pattern
# that no longer changes its file, or a mutant that does not compile fails the driver, so a
# kernel rewrite that silently disarms a mutation is noticed.
#
#     bash tests/cuda/host/mutants.sh <source-dir> <build-dir> [skip-reason] [id ...]
#
# ctest runs it as test_cuda_mutants (label "cuda"); a non-empty skip reason exits 77
# (sanitizer builds, or no host tests in this configuration). The build directory's
# tests/cuda/mutant/ holds the copies (tests/cuda/CMakeLists.txt: rr_cuda_host_mutant and
# the <test>_mutant executables, never built by "all"). It prints one markdown row per
# mutant, "id | file | what | test | first failure line", the table of cuda/README.md.
set -uo pipefail

SRC=${1:?source dir} BUILD=${2:?build dir} SKIP=${3:-}
shift 2
[ $# -gt 0 ] && shift
if [ -n "$SKIP" ]; then
    echo "test_cuda_mutants: skipped: $SKIP"
    exit 77
fi
ONLY=" $* "
MUT=$BUILD/tests/cuda/mutant
FILES="attention.cu embed_ln.cu gelu.cu head.cu layernorm.cu common.cuh"
JOBS=${RR_MUTANT_JOBS:-2}

# ---- the mutations ------------------------------------------------------------------------
# m <id> <file in cuda/> <test> <environment> <sed script> <what>
# The environment selects the test's cases: RR_TEST_QUICK=1 its quick subset; RR_TEST_ONLY
# (test_cuda_kernels) one op, over all its shapes when a mutation needs a width that is not a
# multiple of 32. Patterns match on code text (not line numbers), so a nearby edit does not
# move them; a rewrite of a kernel needs its rows re-pointed (the driver reports "pattern
# matches nothing"). Rows of one file stay together: each file switch costs a recompile.
IDS=() FILE=() TEST=() ENVS=() SED=() WHAT=()
m() { IDS+=("$1"); FILE+=("$2"); TEST+=("$3"); ENVS+=("$4"); SED+=("$5"); WHAT+=("$6"); }
A=test_attention_host K=test_cuda_kernels_host Q="RR_TEST_QUICK=1"
BOTH_ORDERS=" $A " # tests that run every case in both orders themselves

# attention.cu (test_attention_host): the mma.sync kernel (S, P, O in registers). Not a row:
# the __syncthreads() after staging Q — the key loop's first barrier orders it too (removing
# it is an equivalent mutant).
m att-sync-consumed attention.cu $A "$Q" \
    's|__syncthreads(); /\* previous key block fully consumed \*/||' \
    '`__syncthreads()` before staging the next K/V block dropped'
m att-sync-staged attention.cu $A "$Q" \
    's/^        __syncthreads();$//' \
    '`__syncthreads()` after staging K/V dropped'
m att-mask-le attention.cu $A "$Q" \
    's/const bool ok = kb + 8 \* j + 2 \* tq + (e \& 1) < tile.kv_len;/const bool ok = kb + 8 * j + 2 * tq + (e \& 1) <= tile.kv_len;/' \
    'key mask `< kv_len` → `<= kv_len` (one padding key let in)'
m att-mask-lt1 attention.cu $A "$Q" \
    's/const bool ok = kb + 8 \* j + 2 \* tq + (e \& 1) < tile.kv_len;/const bool ok = kb + 8 * j + 2 * tq + (e \& 1) < tile.kv_len - 1;/' \
    'key mask `< kv_len` → `< kv_len - 1` (last key dropped)'
m att-ldm-k attention.cu $A "$Q" \
    's/kf, k_s + ((lane >> 4) \* 8 + (lane \& 7)) \* LDT/kf, k_s + ((lane >> 4) * 8 + (lane \& 7)) * DH/' \
    'K ldmatrix row address stride `LDT` → `DH` (legal addresses, wrong rows)'
m att-k-trans attention.cu $A "$Q" \
    's/rr_ldmatrix_x4_n<NT \/ 2, false>(/rr_ldmatrix_x4_n<NT \/ 2, true>(/' \
    'K fragments loaded `.trans` (S = Q·K instead of Q·Kᵀ)'
m att-v-notrans attention.cu $A "$Q" \
    's/rr_ldmatrix_x4_n<ND \/ 2, true>(/rr_ldmatrix_x4_n<ND \/ 2, false>(/' \
    'V fragments loaded without `.trans` (P·Vᵀ)'
m att-p-repack attention.cu $A "$Q" \
    's/rr_pack2<T>(s\[2 \* kk\]\[2\], s\[2 \* kk\]\[3\]),/rr_pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),/' \
    'P repacked from the wrong S registers (C → A fragment layout broken)'
m att-max-pair attention.cu $A "$Q" \
    's/mx\[r\] = fmaxf(mx\[r\], __shfl_xor_sync(0xffffffffu, mx\[r\], 1));//' \
    'softmax max: the lane-pair shuffle step dropped'
m att-max-quad attention.cu $A "$Q" \
    's/mx\[r\] = fmaxf(mx\[r\], __shfl_xor_sync(0xffffffffu, mx\[r\], 2));//' \
    'softmax max: the quad shuffle step dropped'
m att-sum-pair attention.cu $A "$Q" \
    's/l_r\[r\] += __shfl_xor_sync(0xffffffffu, l_r\[r\], 1);//' \
    'softmax sum: the lane-pair shuffle step dropped'
m att-no-rescale attention.cu $A "$Q" \
    's/o\[n\]\[e\] \*= alpha\[e >> 1\];/o[n][e] *= 1.0f;/' \
    'O not rescaled by α when the running max grows'
m att-l-no-rescale attention.cu $A "$Q" \
    's/l_r\[r\] \*= alpha\[r\];//' \
    'softmax sum not rescaled by α when the running max grows'
m att-no-prefetch attention.cu $A "$Q" \
    's/if (kb + ATT_BK < tile.kv_len) fetch(kb + ATT_BK);//' \
    'next K/V block not fetched (the previous block staged again)'
m att-q-bias attention.cu $A "$Q" \
    's/raw = add_bias8<T>(raw, qkv_b ? qkv_b + h \* DH + c : nullptr);/raw = add_bias8<T>(raw, qkv_b ? qkv_b + d + h * DH + c : nullptr);/' \
    'Q takes the K bias'
m att-row-bound attention.cu $A "$Q" \
    's/if (row >= tile.q_count) continue;/if (row > tile.q_count) continue;/' \
    'output row bound `>=` → `>` (one row past the tile written)'

# The row kernels have a 16-byte path (d % 8 == 0, aligned: every quick-mode width) and a
# scalar fallback (the test's width 100): rows for both, the fallback's over every width of
# its one op (no RR_TEST_QUICK), since only the full width list reaches d = 100.
F="RR_TEST_ONLY"
# the LayerNorm cores and warp reductions shared by embed_ln, bias_residual_ln and the head
m cmn-sum-step common.cuh $K "$Q $F=embed_ln" \
    '/rr_warp_sum(float v)/,/return v;/s/o > 0/o > 1/' \
    'warp sum: the last butterfly step (xor 1) dropped'
m cmn-var-uncentred common.cuh $K "$F=embed_ln" \
    's/const float t = v\[i\] - mean;/const float t = v[i];/' \
    'scalar LayerNorm: variance not centred (E[x²] instead of E[(x−mean)²])'
m cmn-mean-bound common.cuh $K "$F=embed_ln" \
    's/if (lane + 32 \* i < d) s += v\[i\];/if (lane + 32 * i < d - 1) s += v[i];/' \
    'scalar LayerNorm mean: column bound `< d` → `< d - 1`'
m cmn-out-bound common.cuh $K "$F=bias_residual_ln" \
    's/if (c < d) out_row\[c\]/if (c <= d) out_row[c]/' \
    'scalar LayerNorm store: column bound `< d` → `<= d` (one element of the next row written)'
m cmn8-var-uncentred common.cuh $K "$Q $F=embed_ln" \
    's/const float t = v\[i\]\[j\] - mean;/const float t = v[i][j];/' \
    '16-byte LayerNorm: variance not centred'
m cmn8-mean-bound common.cuh $K "$Q $F=bias_residual_ln" \
    '0,/if (8 \* (lane + 32 \* i) < d) {/s//if (8 * (lane + 32 * i) < d - 8) {/' \
    '16-byte LayerNorm mean: the last 8-column chunk left out'
m cmn8-norm common.cuh $K "$Q $F=bias_residual_ln" \
    's/o\[j\] = (v\[i\]\[j\] - mean) \* rstd \* g\[j\] + b\[j\];/o[j] = (v[i][j] - mean) * rstd * g[j] + b[0];/' \
    '16-byte LayerNorm: beta of the chunk'"'"'s first column for all 8'
# layernorm.cu
m ln-col-bound layernorm.cu $K "$F=bias_residual_ln" \
    's/v\[i\] = c < d ? rr_to_f32(xr\[c\]) + bias\[c\]/v[i] = c < d - 1 ? rr_to_f32(xr[c]) + bias[c]/' \
    'scalar load: column bound `< d` → `< d - 1`'
m ln-bias-index layernorm.cu $K "$F=bias_residual_ln" \
    's/rr_to_f32(xr\[c\]) + bias\[c\]/rr_to_f32(xr[c]) + bias[i]/' \
    'scalar: bias indexed by the register slot `i` instead of the column `c`'
m ln8-residual layernorm.cu $K "$Q $F=bias_residual_ln" \
    's/v\[i\]\[j\] = a\[j\] + b\[j\] + r\[j\];/v[i][j] = a[j] + b[j] + r[0];/' \
    '16-byte: residual of the chunk'"'"'s first column for all 8'
m ln8-bias-chunk layernorm.cu $K "$Q $F=bias_residual_ln" \
    's/rr_load8(bias + c, b);/rr_load8(bias + c \/ 8, b);/' \
    '16-byte: bias chunk addressed by chunk index instead of column'
# embed_ln.cu
m emb-col-bound embed_ln.cu $K "$F=embed_ln" \
    's/v\[i\] = c < d ? rr_to_f32(w\[c\])/v[i] = c < d - 1 ? rr_to_f32(w[c])/' \
    'scalar load: column bound `< d` → `< d - 1`'
m emb-pos-index embed_ln.cu $K "$Q $F=embed_ln" \
    's/pos + (size_t)k.pos \* d/pos + (size_t)k.token * d/' \
    'position table indexed by the token id'
# gelu.cu
m gelu-bias-dim gelu.cu $K "$F=bias_gelu" \
    's|bias\[i % (size_t)d\]|bias[i / (size_t)d]|' \
    'scalar: bias indexed by the row (`i / d`) instead of the column (`i % d`)'
m gelu8-bias-col gelu.cu $K "$Q $F=bias_gelu" \
    's/const unsigned c = 8 \* (i % d8);/const unsigned c = 8 * (i \/ d8);/' \
    '16-byte: bias chunk of the row instead of the column'
m gelu8-tail gelu.cu $K "$Q $F=bias_gelu" \
    's/if (i >= n8) return;/if (i + 1 >= n8) return;/' \
    '16-byte: the last chunk of the tensor left out'
# head.cu
m head-sync-x head.cu $K "$Q $F=head" \
    's/^    __syncthreads();$//' \
    '`__syncthreads()` after staging x in shared memory dropped'
m head8-col-bound head.cu $K "$Q $F=head" \
    's/for (int k = 8 \* lane; k < d; k += 8 \* 32) {/for (int k = 8 * lane; k < d - 8; k += 8 * 32) {/' \
    '16-byte dense dot product: the last 8 columns left out'
m head-col-bound head.cu $K "$F=head" \
    's/for (int k = lane; k < d; k += 32) {/for (int k = lane; k < d - 1; k += 32) {/' \
    'scalar dense dot product: column bound `< d` → `< d - 1`'
m head-bias-dim head.cu $K "$Q $F=head" \
    's/const float v = a + dense_b\[j\];/const float v = a + dense_b[s];/' \
    'dense bias indexed by the sequence `s` instead of the output `j`'
m head-out-bound head.cu $K "$Q $F=head" \
    's/for (int l = warp; l < n_labels; l += 128 \/ 32) {/for (int l = warp; l < n_labels - 1; l += 128 \/ 32) {/' \
    'classifier: the last label left out'

# ---- the driver ---------------------------------------------------------------------------
fail=0
put() { # put <from> <to>: copy only when the content differs (keeps make's timestamps)
    cmp -s "$1" "$2" || cp "$1" "$2"
}
restore() {
    local k
    mkdir -p "$MUT"
    for k in $FILES; do put "$SRC/cuda/$k" "$MUT/$k"; done
}
build() { # build <test>: the mutant twin of the test, against the copies in $MUT
    cmake --build "$BUILD" --target "$1_mutant" -j "$JOBS" >"$MUT/build.log" 2>&1
}
# run <test> <environment>: exit status of the test; stderr in $MUT/err, the order that failed
# in $order. Tests that do not run both orders themselves run ascending, then descending.
run() {
    local orders="asc desc" o rc=0
    [[ $BOTH_ORDERS == *" $1 "* ]] && orders=both
    for o in $orders; do
        order=$o
        # shellcheck disable=SC2086 # the environment is a list of assignments
        if [ "$o" = both ]; then
            env -u RR_TEST_QUICK -u RR_HOST_ORDER RR_TEST_SEED=1 $2 \
                timeout 300 "$BUILD/tests/cuda/$1_mutant" >"$MUT/out" 2>"$MUT/err"
        else
            env -u RR_TEST_QUICK RR_HOST_ORDER=$o RR_TEST_SEED=1 $2 \
                timeout 300 "$BUILD/tests/cuda/$1_mutant" >"$MUT/out" 2>"$MUT/err"
        fi
        rc=$?
        [ $rc -ne 0 ] && return $rc
    done
    return 0
}
cleanup() { restore; }
trap cleanup EXIT

selected() { [ "$ONLY" = "  " ] || [[ $ONLY == *" $1 "* ]]; }

# Baseline: every (test, environment) pair in use passes on the unmutated kernels.
restore
declare -A built baseline
for i in "${!IDS[@]}"; do
    selected "${IDS[$i]}" || continue
    t=${TEST[$i]} key="${TEST[$i]} ${ENVS[$i]}"
    if [ -z "${built[$t]:-}" ]; then
        if ! build "$t"; then
            echo "test_cuda_mutants: the unmutated ${t}_mutant does not build:" >&2
            tail -20 "$MUT/build.log" >&2
            exit 1
        fi
        built[$t]=1
    fi
    [ -n "${baseline[$key]:-}" ] && continue
    if ! run "$t" "${ENVS[$i]}"; then
        echo "test_cuda_mutants: the unmutated $t ($order, ${ENVS[$i]}) fails, so no mutant" \
            "can be judged:" >&2
        head -5 "$MUT/err" >&2
        exit 1
    fi
    baseline[$key]=1
done

echo "| id | file | mutation | caught by | first failure (stderr) |"
echo "|---|---|---|---|---|"
start=$SECONDS ran=0
for i in "${!IDS[@]}"; do
    id=${IDS[$i]} f=${FILE[$i]} t=${TEST[$i]}
    selected "$id" || continue
    ran=$((ran + 1))
    restore
    sed -e "${SED[$i]}" "$SRC/cuda/$f" >"$MUT/$f.new"
    if cmp -s "$MUT/$f.new" "$SRC/cuda/$f"; then
        echo "| $id | $f | ${WHAT[$i]} | **pattern matches nothing: re-point it** | |"
        fail=1
        continue
    fi
    put "$MUT/$f.new" "$MUT/$f"
    if ! build "$t"; then
        echo "| $id | $f | ${WHAT[$i]} | **does not compile: fix the mutation** | |"
        tail -5 "$MUT/build.log" >&2
        fail=1
        continue
    fi
    t0=$SECONDS
    run "$t" "${ENVS[$i]}"
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "| $id | $f | ${WHAT[$i]} | **SURVIVED** $t (${ENVS[$i]}) | |"
        fail=1
        continue
    fi
    # The first failed check on stderr (file:line, then its message without the condition),
    # else the first other line — the abort message of the runtime or a stand-in — skipping
    # the launchers' precondition messages that test_preconditions provokes on purpose.
    first=$( (grep -m1 '^FAIL' "$MUT/err" || grep -v -e '^\s*$' -e 'precondition failed' "$MUT/err") |
        head -1 |
        sed 's|^FAIL [^ ]*/\([^/ ]*:[0-9]*\): [^:]*: |\1: |' | cut -c1-150 | sed 's/|/\\|/g')
    nf=$(grep -c '^FAIL' "$MUT/err")
    if [ "$order" = both ]; then
        na=$(grep '^FAIL' "$MUT/err" | grep -c '\[asc\]')
        nd=$(grep '^FAIL' "$MUT/err" | grep -c '\[desc\]')
        checks="$nf failed checks ($na asc, $nd desc)"
    else
        checks="$nf failed checks ($order)"
    fi
    case $rc in
    124) how="timeout ($order)" ;;
    134) how="abort ($order)" && [ "$nf" -gt 0 ] && how="$checks, then abort" ;;
    1) how=$checks ;;
    *) how="exit $rc ($order)" ;;
    esac
    echo "| $id | $f | ${WHAT[$i]} | $t: $how, $((SECONDS - t0)) s | \`$first\` |"
done
echo "test_cuda_mutants: $ran mutants in $((SECONDS - start)) s"
[ $fail -eq 0 ] && echo "test_cuda_mutants: every mutant was caught" ||
    echo "test_cuda_mutants: FAIL (see the bold rows)"
exit $fail
