#!/usr/bin/env python3
"""check_deploy.py — offline validation of deploy/kubernetes (README "Deployment").

1. Render. Each variant directory (cpu, gpu-node-8, keda, kserve) is a kustomization that
   uses `resources:` only, so its render is the concatenation of the files and directories
   listed, in order; this script renders it so and refuses any other kustomize field (which
   it could not render). Helm and kustomize are not in Debian 12, so CI cannot install a
   renderer; with --kubectl (a kubectl with built-in kustomize), `kubectl kustomize DIR` is
   run as well and must give the same resources.
2. Kubernetes types: every resource of a built-in kind is validated with kubernetes-validate
   (its bundled JSON schemas of the Kubernetes API, strict: unknown fields are errors)
   against each version given with -k (default: 1.30.0, the oldest these manifests need —
   preStop `sleep` is beta and on by default from 1.30; gRPC probes are GA from 1.27 — and
   1.37.0, the newest the package knows).
3. Custom resources (KServe ServingRuntime and InferenceService, KEDA ScaledObject): their
   CRD schemas are not bundled and cannot be fetched offline. What is checked: every part
   that is a Kubernetes type, against that type's strict schema (the ServingRuntime's
   containers as core/v1 Container, the InferenceService's resources as
   ResourceRequirements, the ScaledObject's HPA behavior as autoscaling/v2
   HorizontalPodAutoscalerBehavior), and the fields this repository writes, against a short
   hand-written schema (CUSTOM below: required fields, types, no unknown field at the
   levels written). With --crd FILE (a CRD's YAML, e.g. from the cluster), resources of that
   CRD's kind are validated against its openAPIV3Schema too.
4. Cross-checks no schema makes: terminationGracePeriodSeconds > preStop sleep +
   RERANKD_GRACE_SECONDS + 5 s; the liveness probe is HTTP /livez on RERANKD_HTTP_PORT (the
   gRPC listener closes at SIGTERM, a gRPC or TCP liveness probe would fail while draining);
   startup/readiness probes are gRPC on the served port; every RERANKD_* variable is one
   `rerankd --help` lists (with --rerankd); selectors match the pod labels; the autoscalers
   name the Deployment and a metric /metrics exports; the GPU variant is one GPU per pod.
5. src/http/openapi.json passes openapi-spec-validator.

Prints one line per check and "check_deploy: N passed, N failed"; exit 1 on a failure,
77 when kubernetes-validate is not installed (scripts/requirements.txt).
"""
import argparse
import json
import os
import re
import subprocess
import sys

VARIANTS = ["cpu", "gpu-node-8", "keda", "kserve"]
COUNTS = {"pass": 0, "fail": 0}


def check(name, cond, detail=""):
    COUNTS["pass" if cond else "fail"] += 1
    print(("ok   %s" % name) if cond else ("FAIL %s %s" % (name, detail)))
    return cond


# ---- render -----------------------------------------------------------------------------------
def render(path, yaml):
    """The resources of a kustomization directory or a YAML file, in order."""
    if os.path.isdir(path):
        with open(os.path.join(path, "kustomization.yaml")) as f:
            k = yaml.safe_load(f)
        extra = set(k) - {"apiVersion", "kind", "resources"}
        if extra:
            raise ValueError("%s: kustomize fields %s cannot be rendered here: use resources only" % (path, sorted(extra)))
        out = []
        for r in k.get("resources", []):
            out += render(os.path.normpath(os.path.join(path, r)), yaml)
        return out
    with open(path) as f:
        return [(path, d) for d in yaml.safe_load_all(f) if d]


def key(d):
    return (d["apiVersion"], d["kind"], d["metadata"]["name"])


# ---- custom resources ---------------------------------------------------------------------------
S, I, B = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
OBJ = {"type": "object"}


def strict(props, required=()):
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}


META = strict({"name": S, "labels": OBJ, "annotations": OBJ}, ["name"])
CUSTOM = {
    # serving.kserve.io/v1alpha1 ServingRuntime: the fields of ServingRuntimeSpec written here.
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): strict({
        "apiVersion": S, "kind": S, "metadata": META,
        "spec": strict({
            "supportedModelFormats": {"type": "array", "minItems": 1, "items": strict(
                {"name": S, "version": S, "autoSelect": B, "priority": I}, ["name"])},
            "containers": {"type": "array", "minItems": 1},  # core/v1 Container, checked below
            "protocolVersions": {"type": "array", "items": {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]}},
        }, ["supportedModelFormats", "containers"])}, ["apiVersion", "kind", "metadata", "spec"]),
    # serving.kserve.io/v1beta1 InferenceService: predictor with a model on a named runtime.
    ("serving.kserve.io/v1beta1", "InferenceService"): strict({
        "apiVersion": S, "kind": S, "metadata": META,
        "spec": strict({"predictor": strict({
            "minReplicas": I, "maxReplicas": I, "terminationGracePeriodSeconds": I,
            "model": strict({"modelFormat": strict({"name": S, "version": S}, ["name"]), "runtime": S,
                             "storageUri": S, "resources": OBJ}, ["modelFormat"])}, ["model"])},
            ["predictor"])}, ["apiVersion", "kind", "metadata", "spec"]),
    # keda.sh/v1alpha1 ScaledObject with a prometheus trigger.
    ("keda.sh/v1alpha1", "ScaledObject"): strict({
        "apiVersion": S, "kind": S, "metadata": META,
        "spec": strict({
            "scaleTargetRef": strict({"apiVersion": S, "kind": S, "name": S}, ["name"]),
            "minReplicaCount": I, "maxReplicaCount": I, "pollingInterval": I, "cooldownPeriod": I,
            "advanced": strict({"horizontalPodAutoscalerConfig": strict({"behavior": OBJ, "name": S})}),
            "triggers": {"type": "array", "minItems": 1, "items": strict({
                "type": {"enum": ["prometheus"]}, "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                "metadata": strict({"serverAddress": S, "query": S, "threshold": S, "activationThreshold": S},
                                   ["serverAddress", "query", "threshold"])}, ["type", "metadata"])},
        }, ["scaleTargetRef", "triggers"])}, ["apiVersion", "kind", "metadata", "spec"]),
}
# Parts of custom resources that are Kubernetes types: (kind, path, schema file stem).
EMBEDDED = [
    ("ServingRuntime", ("spec", "containers", "*"), "container-v1"),
    ("InferenceService", ("spec", "predictor", "model", "resources"), "resourcerequirements-v1"),
    ("ScaledObject", ("spec", "advanced", "horizontalPodAutoscalerConfig", "behavior"),
     "horizontalpodautoscalerbehavior-autoscaling-v2"),
]


def at(d, path):
    """The values at path ('*' = every list item)."""
    if not path:
        return [d]
    if path[0] == "*":
        return [v for x in (d or []) for v in at(x, path[1:])]
    return at(d[path[0]], path[1:]) if isinstance(d, dict) and path[0] in d else []


def k8s_type_validator(stem, version):
    """A strict validator of one Kubernetes type from kubernetes-validate's bundled schemas."""
    import jsonschema
    import kubernetes_validate.utils as ku
    from referencing import Registry, Resource
    v = [x for x in ku.all_versions() if ku.major_minor(x) <= ku.major_minor(version)][-1]
    d = "kubernetes-json-schema/v%s-local-strict" % v
    schema = ku.schema_contents("%s/%s.json" % (d, stem), version)
    defs = ku.schema_contents("%s/_definitions.json" % d, version)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def errors_of(validator, value):
    return ["%s at %s" % (e.message[:160], "/".join(map(str, e.absolute_path)))
            for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))][:3]


# ---- cross-checks --------------------------------------------------------------------------------
def env_of(c):
    return {e["name"]: e.get("value") for e in c.get("env", [])}


def pod_checks(tag, spec, labels, flag_envs, http_default=None):
    """Probes, termination and variables of a pod spec's first container."""
    c = spec["containers"][0]
    env = env_of(c)
    args = c.get("args", [])
    if flag_envs is not None:
        bad = [n for n in env if n.startswith("RERANKD_") and n not in flag_envs]
        check("%s: every RERANKD_* variable is a flag's (%d)" % (tag, len(env)), not bad, str(bad))
    http = int(env.get("RERANKD_HTTP_PORT") or http_default or 0)
    grpc_port = int(args[args.index("--port") + 1]) if "--port" in args else int(env.get("RERANKD_PORT", 50051))
    live = c.get("livenessProbe", {})
    check("%s: liveness is HTTP /livez on RERANKD_HTTP_PORT (%d), not gRPC/TCP (closed while draining)" % (tag, http),
          "httpGet" in live and live["httpGet"].get("path") == "/livez" and
          port_number(c, live["httpGet"]["port"]) == http, json.dumps(live))
    for p in ("startupProbe", "readinessProbe"):
        if p in c or p == "readinessProbe":
            pr = c.get(p, {})
            check("%s: %s is grpc.health.v1 on the gRPC port %d" % (tag, p, grpc_port),
                  "grpc" in pr and pr["grpc"]["port"] == grpc_port, json.dumps(pr))
    served = {p["containerPort"] for p in c.get("ports", [])}
    check("%s: the gRPC port is a container port" % tag, grpc_port in served, str(served))
    if "terminationGracePeriodSeconds" in spec:
        sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        grace = float(env.get("RERANKD_GRACE_SECONDS", 5))
        check("%s: terminationGracePeriodSeconds %d > preStop %d + grace %g + 5" %
              (tag, spec["terminationGracePeriodSeconds"], sleep, grace),
              spec["terminationGracePeriodSeconds"] > sleep + grace + 5)
    return c, env


def port_number(c, port):
    if isinstance(port, int):
        return port
    return next((p["containerPort"] for p in c.get("ports", []) if p.get("name") == port), None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("-k", "--kubernetes-version", action="append", help="default: 1.30.0 and 1.37.0")
    ap.add_argument("--rerankd", help="the server binary: RERANKD_* names are checked against its --help")
    ap.add_argument("--kubectl", help="a kubectl with kustomize: its render must equal ours")
    ap.add_argument("--crd", action="append", default=[], help="a CRD YAML: validate its kind's resources")
    args = ap.parse_args()
    try:
        import yaml
        import kubernetes_validate
        import kubernetes_validate.utils  # noqa: F401
        import jsonschema
    except ImportError as e:
        print("check_deploy: skipped: %s (scripts/setup.sh installs scripts/requirements.txt into .venv)" % e)
        return 77
    versions = args.kubernetes_version or ["1.30.0", "1.37.0"]
    root = os.path.join(args.source_dir, "deploy", "kubernetes")
    from importlib.metadata import version as pkg_version
    print("kubernetes-validate %s, Kubernetes %s, openapi-spec-validator %s" %
          (pkg_version("kubernetes-validate"), ", ".join(versions), pkg_version("openapi-spec-validator")))

    flag_envs = None
    if args.rerankd:
        help_text = subprocess.run([args.rerankd, "--help"], capture_output=True, text=True).stdout
        flag_envs = set(re.findall(r"\bRERANKD_[A-Z_]+", help_text))
    metrics_src = open(os.path.join(args.source_dir, "src", "edge", "metrics.c")).read()

    crds = {}
    for f in args.crd:
        with open(f) as fh:
            for d in yaml.safe_load_all(fh):
                if d and d.get("kind") == "CustomResourceDefinition":
                    for v in d["spec"]["versions"]:
                        crds[(d["spec"]["group"] + "/" + v["name"], d["spec"]["names"]["kind"])] = \
                            v["schema"]["openAPIV3Schema"]

    listed = set()
    for variant in VARIANTS:
        vdir = os.path.join(root, variant)
        try:
            res = render(vdir, yaml)
        except (OSError, ValueError, yaml.YAMLError) as e:
            check("%s: renders" % variant, False, str(e))
            continue
        check("%s: renders (%d resources)" % (variant, len(res)), len(res) > 0)
        listed |= {os.path.abspath(p) for p, _ in res}
        if args.kubectl:
            p = subprocess.run([args.kubectl, "kustomize", vdir], capture_output=True, text=True)
            theirs = [d for d in yaml.safe_load_all(p.stdout) if d] if p.returncode == 0 else None
            canon = lambda ds: sorted(json.dumps(x, sort_keys=True) for x in ds)  # noqa: E731
            check("%s: `kubectl kustomize` renders the same resources" % variant,
                  theirs is not None and canon(theirs) == canon(d for _, d in res),
                  p.stderr[-300:])
        by_kind = {}
        for path, d in res:
            tag = "%s: %s/%s" % (variant, d.get("kind"), d.get("metadata", {}).get("name"))
            by_kind.setdefault(d.get("kind"), []).append(d)
            ck = (d.get("apiVersion"), d.get("kind"))
            if ck in CUSTOM:
                errs = errors_of(jsonschema.Draft202012Validator(CUSTOM[ck]), d)
                check("%s: the fields written match the %s fields (hand-written subset, no CRD schema offline)" %
                      (tag, ck[1]), not errs, "; ".join(errs))
                for version in versions:
                    for kind, p, stem in EMBEDDED:
                        if kind != d["kind"]:
                            continue
                        vals = at(d, p)
                        errs = [e for x in vals for e in errors_of(k8s_type_validator(stem, version), x)]
                        check("%s: %s is a valid %s (Kubernetes %s, strict)" % (tag, ".".join(p), stem, version),
                              vals and not errs, "; ".join(errs) or "nothing at that path")
                if ck in crds:
                    errs = errors_of(jsonschema.Draft202012Validator(crds[ck]), d)
                    check("%s: valid against the given CRD's openAPIV3Schema" % tag, not errs, "; ".join(errs))
                continue
            for version in versions:
                try:
                    got = kubernetes_validate.validate(d, version, strict=True)
                    check("%s: valid (Kubernetes %s, strict)" % (tag, got), True)
                except Exception as e:  # ValidationError, SchemaNotFoundError: both a failure here
                    check("%s: valid (Kubernetes %s, strict)" % (tag, version), False, str(e)[:400])

        # Cross-checks per variant.
        for dep in by_kind.get("Deployment", []):
            spec = dep["spec"]["template"]["spec"]
            labels = dep["spec"]["template"]["metadata"]["labels"]
            check("%s: the Deployment's selector matches its pod labels" % variant,
                  all(labels.get(k) == v for k, v in dep["spec"]["selector"]["matchLabels"].items()))
            c, env = pod_checks(variant, spec, labels, flag_envs)
            for svc in by_kind.get("Service", []):
                check("%s: Service %s selects the pods" % (variant, svc["metadata"]["name"]),
                      all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()))
                for p in svc["spec"]["ports"]:
                    check("%s: Service %s port %s targets a container port" % (variant, svc["metadata"]["name"], p["name"]),
                          port_number(c, p["targetPort"]) is not None)
            for pdb in by_kind.get("PodDisruptionBudget", []):
                check("%s: the PodDisruptionBudget selects the pods" % variant,
                      all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()))
            for hpa in by_kind.get("HorizontalPodAutoscaler", []):
                check("%s: the HPA scales the Deployment" % variant,
                      hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"])
                for m in hpa["spec"]["metrics"]:
                    if m["type"] == "Pods":
                        check("%s: HPA metric %s is exported by /metrics" % (variant, m["pods"]["metric"]["name"]),
                              '"%s"' % m["pods"]["metric"]["name"] in metrics_src)
            if variant == "gpu-node-8":
                lim = c["resources"]["limits"]
                check("gpu-node-8: one process per GPU (nvidia.com/gpu 1, cuda:0) and 8 replicas for the node",
                      str(lim.get("nvidia.com/gpu")) == "1" and env.get("RERANKD_DEVICE") == "cuda:0" and
                      dep["spec"]["replicas"] == 8)
        for so in by_kind.get("ScaledObject", []):
            q = so["spec"]["triggers"][0]["metadata"]["query"]
            name = re.match(r".*?\b(rerankd_[a-z_]+)", q)
            check("keda: the query's metric %s is exported by /metrics" % (name and name.group(1)),
                  name is not None and '"%s"' % name.group(1) in metrics_src)
        for sr in by_kind.get("ServingRuntime", []):
            c = sr["spec"]["containers"][0]
            pod_checks(variant, {"containers": [c]}, {}, flag_envs)
            check("kserve: the serving port is named h2c (gRPC over HTTP/2 cleartext)",
                  any(p.get("name") == "h2c" for p in c.get("ports", [])))
            for isvc in by_kind.get("InferenceService", []):
                m = isvc["spec"]["predictor"]["model"]
                check("kserve: the InferenceService names the runtime and one of its formats",
                      m.get("runtime") == sr["metadata"]["name"] and
                      m["modelFormat"]["name"] in [f["name"] for f in sr["spec"]["supportedModelFormats"]])

    every = {os.path.abspath(os.path.join(dp, f)) for dp, _, fs in os.walk(root) for f in fs
             if f.endswith(".yaml") and f != "kustomization.yaml"}
    check("every manifest under deploy/kubernetes is in a variant", every <= listed, str(sorted(every - listed)))

    try:
        from openapi_spec_validator import validate
        from openapi_spec_validator.readers import read_from_filename
        spec, _ = read_from_filename(os.path.join(args.source_dir, "src", "http", "openapi.json"))
        validate(spec)
        check("src/http/openapi.json: valid OpenAPI %s (openapi-spec-validator)" % spec["openapi"], True)
    except ImportError as e:
        check("openapi-spec-validator installed", False, str(e))
    except Exception as e:  # the validator's error types
        check("src/http/openapi.json: valid (openapi-spec-validator)", False, str(e)[:400])

    print("check_deploy: %d passed, %d failed" % (COUNTS["pass"], COUNTS["fail"]))
    return 0 if COUNTS["fail"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
