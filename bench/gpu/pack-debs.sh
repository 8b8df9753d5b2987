#!/usr/bin/env bash
# pack-debs.sh — runs HERE (Debian 12, network to apt and PyPI), never on the GPU box.
# Prepares what bench/gpu/gpu-check.sh needs on a machine with no network and none of our
# Debian libraries:
#   .cache/debs/*.deb       the runtime + dev packages rerankd builds against, with their
#                           dependencies minus the base system (libc, libstdc++, OpenSSL,
#                           krb5, GnuTLS, zlib: present on any CUDA image)
#   .cache/debroot/         those .debs unpacked with dpkg -x (the prefix; the dry run here
#                           builds against it)
#   .cache/gpu-carry/       what the device run carries (one path, < 64 MiB with the tree):
#     deps.tar.xz           .cache/debroot without static libraries, docs and unused shared
#                           libraries (29 MB of raw .debs plus the model would not fit the
#                           64 MiB carry; this is about 11 MB)
#     models.tar.xz         minilm-l6-bert/: the test model with its weights converted to fp16
#                           safetensors (the loader widens F16 at load; PyTorch loads the
#                           same files), word-embedding rows the run never reads zeroed
# .cache/ is git-ignored. Idempotent; a second run only redoes what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

PKGS=(libgrpc-dev libgrpc29 libprotobuf-c-dev libprotobuf-c1 protobuf-c-compiler protobuf-compiler
      libprotobuf-dev libprotobuf32 libprotobuf-lite32 libprotoc32 grpc-proto
      libutf8proc-dev libutf8proc2 libcjson-dev libcjson1
      libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libopenblas0 libgfortran5 libquadmath0
      libmicrohttpd-dev libmicrohttpd12 libabsl-dev libabsl20220623 libc-ares-dev libc-ares2
      libre2-dev libre2-9 libssl-dev zlib1g-dev pkgconf pkgconf-bin libpkgconf3)
# Dependencies of the above that every CUDA base image already has (same sonames on
# Ubuntu 24.04), or that we deliberately do not take (other BLAS variants).
EXCLUDE_RE='^(libc6|libc6-dev|libc-dev-bin|libgcc-s1|libstdc\+\+6|gcc-[0-9]+-base|linux-libc-dev|libcrypt1|libcrypt-dev|zlib1g|libssl3|libgomp1|libnsl2|libnsl-dev|libtirpc3|libtirpc-dev|libtirpc-common|rpcsvc-proto|libcom-err2|libgssapi-krb5-2|libk5crypto3|libkeyutils1|libkrb5-3|libkrb5support0|libffi8|libgmp.*|libidn2.*|libunistring2|libp11-kit.*|libtasn1-6.*|libnettle8|nettle-dev|libhogweed6|libgnutls.*|libunbound8|libevent-.*|libopenblas0-openmp|libopenblas0-serial|libopenblas-openmp-dev|libopenblas-serial-dev|debconf.*|dpkg|perl.*)$'

mkdir -p .cache/debs
cd .cache/debs
want=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
         --no-replaces --no-enhances "${PKGS[@]}" | grep -v '^ \|<' | sort -u | grep -Ev "$EXCLUDE_RE")
missing=()
for p in $want; do
    ls "${p}"_*.deb >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "pack-debs: downloading ${#missing[@]} packages"
    apt-get download "${missing[@]}" >/dev/null
fi
echo "pack-debs: $(ls ./*.deb | wc -l) packages, $(du -sh . | cut -f1) of .deb"

cd "$ROOT"
if [ ! -f .cache/debroot/.done ]; then
    rm -rf .cache/debroot
    mkdir -p .cache/debroot
    for f in .cache/debs/*.deb; do dpkg -x "$f" .cache/debroot; done
    touch .cache/debroot/.done
fi

CARRY=.cache/gpu-carry
mkdir -p "$CARRY"
if [ ! -f "$CARRY/deps.tar.xz" ]; then
    tmp=$(mktemp -d)
    cp -a .cache/debroot/. "$tmp/"
    # Not linked by anything rerankd builds: static archives, LAPACK (libopenblas.so has it),
    # the unsecure gRPC core and the protoc plugin support library; docs.
    find "$tmp" \( -name '*.a' -o -name 'liblapack.so*' -o -name 'libgrpc_unsecure.so*' \
               -o -name 'libgrpc_plugin_support.so*' \) -delete
    rm -rf "$tmp/usr/share/doc" "$tmp/usr/share/man" "$tmp/usr/share/lintian" "$tmp/.done"
    tar -C "$tmp" -cf - . | xz -6 -T2 > "$CARRY/deps.tar.xz.part"
    mv "$CARRY/deps.tar.xz.part" "$CARRY/deps.tar.xz"
    rm -rf "$tmp"
fi

# fp16 copy of the test model (weights change dtype; config and tokenizer files as they are),
# xz-compressed. Its word-embedding table keeps the rows the device run reads — ids below
# 8192 (bench_gpu draws its ids there) and every id of the golden pairs test_cuda_model
# scores — and zeroes the rest (same shape, so every loader reads it unchanged; zeros cost
# nothing compressed): 41 MB → about 27 MB, which keeps the carry under the device tool's
# 64 MiB with the tracked tree's golden files (17 MB). Both engines of the device run read
# the same file, so the CUDA-vs-CPU checks are unaffected; golden logits of pairs with an id
# outside the kept rows would change, and there are none.
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [ ! -f "$CARRY/models.tar.xz" ]; then
    name=minilm-l6-bert
    src=models/$name
    [ -d "$src" ] || { echo "pack-debs: $src missing (run scripts/make_models.py)"; exit 1; }
    tmp=$(mktemp -d)
    mkdir -p "$tmp/$name"
    for f in "$src"/*; do
        [ "$(basename "$f")" = model.safetensors ] || cp "$f" "$tmp/$name/"
    done
    "$PY" - "$src/model.safetensors" "$tmp/$name/model.safetensors" \
        "tests/golden/$name/pairs.jsonl" <<'PYEOF'
import json, sys
import numpy as np
from safetensors.numpy import load_file, save_file
t = load_file(sys.argv[1])
keep = set(range(8192))
for line in open(sys.argv[3]):
    keep.update(json.loads(line)["input_ids"])
out = {}
for k, v in t.items():
    if v.dtype.kind == "f":
        v = v.astype(np.float16)
        if k.endswith("word_embeddings.weight"):
            drop = np.ones(v.shape[0], bool)
            drop[[i for i in keep if i < v.shape[0]]] = False
            v[drop] = 0
            print(f"pack-debs: {k}: {int((~drop).sum())} of {v.shape[0]} rows kept")
    out[k] = v
save_file(out, sys.argv[2], metadata={"format": "pt"})
PYEOF
    tar -C "$tmp" -cf - "$name" | xz -6 -T2 > "$CARRY/models.tar.xz.part"
    mv "$CARRY/models.tar.xz.part" "$CARRY/models.tar.xz"
    rm -rf "$tmp"
fi
rm -rf "$CARRY/models"
carry=$(du -sb "$CARRY" | cut -f1)
tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
echo "pack-debs: carry .cache/gpu-carry $((carry / 1048576)) MiB + tracked tree $((tree / 1048576)) MiB" \
     "(the device tool takes 64 MiB in all)"
[ $((carry + tree)) -lt $((62 * 1048576)) ] || echo "pack-debs: WARNING: under 2 MiB of headroom"
