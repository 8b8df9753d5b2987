#!/usr/bin/env bash
# kube-play-smoke.sh — deploy/kubernetes/cpu's Deployment run by `podman kube play` on this
# machine, the closest thing to a cluster without one: the manifest as written (image
# rerankd:cpu, RERANKD_* configuration, non-root, read-only root filesystem, the model as the
# PersistentVolumeClaim rerankd-model mounted read-only at /models), one replica instead of
# two (podman publishes every containerPort on the host, so a second replica's ports clash).
#
# Checks: the pod's container runs as 65534 with a read-only root, logs READY, and on its pod
# address answers /livez 200, /readyz 200 "SERVING", POST /rerank with two scores, GET
# /metrics; then `podman kube down` and the container is gone. What podman does not do (so
# this cannot check it): gRPC startup/readiness probes are not run, and the httpGet liveness
# probe becomes a `curl` health check inside the image (which has no curl) with the named
# port resolved to 0 — the probes are checked by tools/check_deploy.py and test_deploy.py.
#
# Needs what scripts/container-smoke.sh needs and the image it builds; run that first (it
# tags localhost/rerankd:smoke-cpu, tagged here as rerankd:cpu). Exit 0 passed, 1 failed, 77
# skipped. About 20 s.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
skip() { echo "kube-play-smoke: skipped: $*"; exit 77; }
fail=0
check() {
    if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1${3:+: $3}"; fail=1; fi
}

command -v podman >/dev/null || skip "podman is not installed (scripts/setup.sh installs it)"
export CONTAINERS_CONF=$ROOT/.cache/containers/containers.conf
[ -f "$CONTAINERS_CONF" ] || skip "no $CONTAINERS_CONF (run scripts/container-smoke.sh first)"
podman image exists localhost/rerankd:smoke-cpu ||
    skip "no image localhost/rerankd:smoke-cpu (run scripts/container-smoke.sh first)"
MODEL=$(realpath models/minilm-l6-bert 2>/dev/null) && [ -f "$MODEL/config.json" ] ||
    skip "no models/minilm-l6-bert (run scripts/setup.sh)"

WORK=$(mktemp -d)
VOL=rerankd-model
cleanup() {
    podman kube down "$WORK/play.yaml" >/dev/null 2>&1
    podman volume rm -f "$VOL" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

podman tag localhost/rerankd:smoke-cpu localhost/rerankd:cpu
podman volume rm -f "$VOL" >/dev/null 2>&1
podman volume create "$VOL" >/dev/null
cp "$MODEL"/* "$(podman volume inspect "$VOL" --format '{{.Mountpoint}}')/"
chmod -R a+rX "$(podman volume inspect "$VOL" --format '{{.Mountpoint}}')"
{
    sed 's/^  replicas: 2$/  replicas: 1/' deploy/kubernetes/cpu/deployment.yaml
    echo ---
    cat deploy/kubernetes/base/services.yaml
} >"$WORK/play.yaml"
grep -q '^  replicas: 1$' "$WORK/play.yaml" || { echo "FAIL the Deployment's replicas line moved"; exit 1; }

podman kube play --replace "$WORK/play.yaml" >"$WORK/play.log" 2>&1
check "podman kube play deploy/kubernetes/cpu (1 replica)" $? "$(tail -3 "$WORK/play.log")"
c=$(podman ps --format '{{.Names}}' | grep -- '-rerankd$' | head -1)
[ -n "$c" ] || { echo "FAIL no rerankd container running"; podman ps -a; exit 1; }
for _ in $(seq 60); do
    podman logs "$c" 2>&1 | grep -q '^READY ' && break
    sleep 0.5
done
podman logs "$c" 2>&1 | grep -q '^READY '
check "container $c logged READY" $? "$(podman logs "$c" 2>&1 | tail -3)"
st=$(podman inspect "$c" --format '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}')
[ "$st" = "65534:65534 true" ]
check "runs as 65534:65534 with a read-only root filesystem" $? "$st"
podman logs "$c" 2>&1 | grep -q 'loading /models'
check "model from the volume at /models (RERANKD_MODEL)" $? "$(podman logs "$c" 2>&1 | head -3)"

infra=$(podman ps --format '{{.Names}}' | grep -- '-infra$' | head -1)
ip=$(podman inspect "$infra" --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')
code() { curl -s -m 10 -o "$WORK/body" -w '%{http_code}' "$@"; }
[ "$(code "http://$ip:8080/livez")" = 200 ]
check "GET /livez on the pod address $ip → 200" $?
[ "$(code "http://$ip:8080/readyz")" = 200 ] && grep -q SERVING "$WORK/body"
check "GET /readyz → 200 SERVING" $? "$(cat "$WORK/body")"
[ "$(code -X POST "http://$ip:8080/rerank" -H 'content-type: application/json' \
    -d '{"query":"how do cats purr","texts":["Cats purr with the larynx.","Tides follow the moon."]}')" = 200 ] &&
    [ "$(grep -o '"score"' "$WORK/body" | wc -l)" = 2 ]
check "POST /rerank → 200 with two scores" $? "$(cat "$WORK/body")"
[ "$(code "http://$ip:8080/metrics")" = 200 ] && grep -q '^rerankd_queued_requests' "$WORK/body"
check "GET /metrics has rerankd_queued_requests (the autoscalers' metric)" $?

podman kube down "$WORK/play.yaml" >/dev/null 2>&1
! podman container exists "$c"
check "podman kube down removes it" $?
[ "$fail" = 0 ] && echo "kube-play-smoke: passed" || echo "kube-play-smoke: FAILED"
exit "$fail"
