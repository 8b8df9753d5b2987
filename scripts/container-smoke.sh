#!/usr/bin/env bash
# container-smoke.sh — builds the CPU image (docker/Dockerfile) with podman and runs it as a
# user would: model folder mounted read-only at the default path, read-only root filesystem,
# non-root, all capabilities dropped, one CPU (--cpuset-cpus), no flags (one setting by
# environment: RERANKD_GRACE_SECONDS=10); then
# scripts/container_smoke.py checks gRPC health, rerank.v1 Rerank, the TEI service, HTTP
# /rerank and /info (1 engine thread), the log (no CUDA warning), and SIGTERM with requests
# in flight (answered, "draining", exit 0).
#   --cuda   also builds the CUDA bases (docker/Dockerfile.cuda-base, from the host's
#            /usr/local/cuda-13.0) and docker/Dockerfile.cuda for one architecture
#            (CUDA_ARCHS, default 90), and runs it without a GPU: it must start on the CPU.
#
# No registry is needed: the Debian 12 base is made by mmdebstrap from the Debian archive,
# imported once (cached in .cache/containers/ and in podman's storage), and every build uses
# --pull=never. Needs root (or working rootless podman), podman, runc, mmdebstrap (setup.sh
# installs them), the .venv and models/. Where they are missing it prints
# "container-smoke: skipped: <why>" and exits 77. Exit 0: all checks passed.
#
# podman runs with a private containers.conf: runc (crun refuses hybrid cgroup hosts) and
# ulimits a host without CAP_SYS_RESOURCE can grant (see ../shared/reviews/
# containers-and-ecosystem-2026-12.md). Image tags are localhost/rerankd:smoke-cpu and
# :smoke-cuda; a container is named rerankd-smoke-<pid> and removed at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CUDA=0
[ "${1:-}" = "--cuda" ] && CUDA=1
T0=$(date +%s)
skip() { echo "container-smoke: skipped: $*"; exit 77; }
say() { echo "container-smoke: [$(($(date +%s) - T0)) s] $*"; }

for tool in podman runc mmdebstrap; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/setup.sh installs it)"
done
# Rootless podman needs /dev/net/tun for its networking (slirp4netns); where only root may
# open it (as on our machines), a rootless run cannot build (apt) or publish ports.
[ "$(id -u)" -eq 0 ] || [ -w /dev/net/tun ] || skip "rootless podman without /dev/net/tun access (run as root)"
[ -x .venv/bin/python ] || skip "no .venv (run scripts/setup.sh)"
MODEL=$(realpath models/minilm-l6-bert 2>/dev/null) && [ -f "$MODEL/config.json" ] ||
    skip "no models/minilm-l6-bert (run scripts/setup.sh)"

CACHE=$ROOT/.cache/containers
mkdir -p "$CACHE"
cat >"$CACHE/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$CACHE/containers.conf
podman info >/dev/null 2>"$CACHE/podman-info.err" ||
    skip "podman cannot run here: $(tail -1 "$CACHE/podman-info.err")"

BASE=localhost/rerankd-base:debian12
if ! podman image exists "$BASE"; then
    if [ ! -s "$CACHE/debian12.tar" ]; then
        say "making the Debian 12 base with mmdebstrap"
        # Slim like debian:12-slim: no manuals, docs or locales in the image.
        mmdebstrap --quiet --variant=minbase --format=tar \
            --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
            bookworm "$CACHE/debian12.tar.part" \
            "deb http://deb.debian.org/debian bookworm main" \
            "deb http://deb.debian.org/debian bookworm-updates main" \
            "deb http://deb.debian.org/debian-security bookworm-security main" ||
            { echo "container-smoke: mmdebstrap failed"; exit 1; }
        mv "$CACHE/debian12.tar.part" "$CACHE/debian12.tar"
    fi
    say "importing the base as $BASE"
    podman import --quiet --change 'CMD ["/bin/bash"]' "$CACHE/debian12.tar" "$BASE" >/dev/null ||
        { echo "container-smoke: podman import failed"; exit 1; }
fi

build() { # tag, dockerfile, context, extra args...
    local tag=$1 file=$2 ctx=$3; shift 3
    local t=$(date +%s)
    if ! podman build --pull=never --layers -f "$file" -t "$tag" "$@" "$ctx" >"$CACHE/build-${tag##*:}.log" 2>&1; then
        tail -n 40 "$CACHE/build-${tag##*:}.log"
        echo "container-smoke: build of $tag failed (log: $CACHE/build-${tag##*:}.log)"
        exit 1
    fi
    say "built $tag in $(($(date +%s) - t)) s, $(podman image inspect --format '{{.Size}}' "$tag" |
        awk '{printf "%.0f MB", $1 / 1e6}')"
}

free_port() { .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

NAME=rerankd-smoke-$$
trap 'podman rm -f -t 0 "$NAME" >/dev/null 2>&1' EXIT

run_image() { # image, expected /info device prefix, expected threads, extra smoke args...
    local image=$1 device=$2 threads=$3; shift 3
    local gp hp
    gp=$(free_port) hp=$(free_port)
    podman rm -f -t 0 "$NAME" >/dev/null 2>&1
    # --cpuset-cpus: one CPU, so the default --threads must come out as 1 inside.
    local cpu
    cpu=$(.venv/bin/python -c 'import os; print(min(os.sched_getaffinity(0)))')
    podman run -d --name "$NAME" --read-only --cap-drop=ALL --security-opt no-new-privileges \
        --cpuset-cpus "$cpu" --memory 1g -e RERANKD_GRACE_SECONDS=10 \
        -p "127.0.0.1:$gp:50051" -p "127.0.0.1:$hp:8080" -v "$MODEL:/model:ro" "$image" >/dev/null ||
        { echo "container-smoke: podman run $image failed"; exit 1; }
    say "running $image as user $(podman inspect --format '{{.Config.User}}' "$NAME"), read-only root:" \
        "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$NAME"), gRPC 127.0.0.1:$gp, HTTP 127.0.0.1:$hp"
    .venv/bin/python scripts/container_smoke.py --grpc-port "$gp" --http-port "$hp" --container "$NAME" \
        --expect-device "$device" --expect-threads "$threads" --gen-dir "$CACHE/gen" "$@"
    local rc=$?
    [ $rc -eq 0 ] || { echo "--- container log"; podman logs "$NAME" 2>&1 | tail -n 30; }
    podman rm -f -t 0 "$NAME" >/dev/null 2>&1
    return $rc
}

rc=0
build localhost/rerankd:smoke-cpu docker/Dockerfile . --build-arg DEBIAN=$BASE --build-arg DEBIAN_SLIM=$BASE
run_image localhost/rerankd:smoke-cpu cpu 1 || rc=1

if [ $CUDA = 1 ]; then
    CUDA_DIR=${CUDA_DIR:-/usr/local/cuda-13.0}
    [ -x "$CUDA_DIR/bin/nvcc" ] || { echo "container-smoke: --cuda: no $CUDA_DIR/bin/nvcc"; exit 1; }
    build localhost/rerankd-cuda:13.0-devel-debian12 docker/Dockerfile.cuda-base "$CUDA_DIR" \
        --target devel --build-arg DEBIAN=$BASE
    build localhost/rerankd-cuda:13.0-runtime-debian12 docker/Dockerfile.cuda-base "$CUDA_DIR" \
        --target runtime --build-arg DEBIAN=$BASE
    build localhost/rerankd:smoke-cuda docker/Dockerfile.cuda . --build-arg CUDA_ARCHS="${CUDA_ARCHS:-90}"
    # No GPU is given to the container: the CUDA build must fall back to the CPU and say so.
    run_image localhost/rerankd:smoke-cuda cpu 1 --cuda-warning-ok || rc=1
fi
say "done, exit $rc"
exit $rc
