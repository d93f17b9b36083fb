"""Offline checks of the Helm chart in helm/flagstream (run by scripts/check-helm).

Renders the chart with Helm's own engine (helm-python-sdk bundles Helm v4 as a library),
validates every manifest against the Kubernetes 1.30 schemas, asserts the security
properties a reviewer looks for first, proves the values schema rejects bad values, and
checks the README's values table against values.yaml.

    check_helm.py [--chart DIR]          run every check; exit 1 on any failure
    check_helm.py --write-readme         regenerate the README values table
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

import helm_python
import kubernetes_validate.utils as kv
import yaml
from helm_python import _native

ROOT = Path(__file__).resolve().parents[2]
KUBE_VERSION = "1.30.0"
MONITORING = "monitoring.coreos.com/v1"
RELEASE, NAMESPACE = "fs", "flagstream"
UID = 65532

# The smallest set of secrets a plain install needs (HS256, single content key).
MINIMAL = {
    "secrets": {
        "databaseUrl": "postgres://flagstream:pw@db.example.com:5432/flagstream?sslmode=verify-full",
        "jwtSecretKey": "k" * 48,
        "encryptionKey": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    },
    "kafka": {"bootstrapServers": "kafka.example.com:9092"},
}
SECRET_ENV = re.compile(
    r"(PASSWORD|SECRET|TOKEN|PRIVATE|_KEY$|_KEYS$|^DATABASE_URL$|^KAFKA_OPT_SASL_PASSWORD$)"
)
README_START, README_END = "<!-- values:start -->", "<!-- values:end -->"


# --------------------------------------------------------------------------- rendering


class RenderError(Exception):
    pass


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, val in over.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], val)
        else:
            out[key] = copy.deepcopy(val)
    return out


class Chart:
    def __init__(self, path: Path):
        self.path = path
        self.handle = helm_python.Chart.load(str(path))

    def render(
        self,
        values: dict,
        *,
        api_versions: list[str] | None = None,
        kube_version: str = "v" + KUBE_VERSION,
        is_upgrade: bool = False,
    ) -> dict[str, str]:
        """Renders like `helm install` would. The SDK's Chart.render() does not expose the
        capabilities, but the C entry point takes `api_versions` and `kube_version` in its
        options object (the same struct as `helm template --api-versions --kube-version`)."""
        opts = {
            "name": RELEASE,
            "namespace": NAMESPACE,
            "is_install": not is_upgrade,
            "is_upgrade": is_upgrade,
            "kube_version": kube_version,
            "api_versions": api_versions or [],
        }
        try:
            raw = _native.call_string(
                "helm_render", self.handle._raw(), json.dumps(values), json.dumps(opts)
            )
        except helm_python.HelmError as e:
            raise RenderError(str(e)) from e
        return json.loads(raw)

    def objects(self, values: dict, **kw) -> list[dict]:
        docs = []
        for name, text in sorted(self.render(values, **kw).items()):
            if name.endswith("NOTES.txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    doc.setdefault("__template", name)
                    docs.append(doc)
        return docs


def strip(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k != "__template"}


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[dict], kind: str, name: str) -> dict:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind}/{name}, found {len(found)}")
    return found[0]


def pod_specs(objs: list[dict]) -> list[tuple[str, dict, dict]]:
    """(label, pod metadata, pod spec) for every pod the manifests would create."""
    out = []
    for o in objs:
        kind, name = o["kind"], o["metadata"]["name"]
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            tpl = o["spec"]["template"]
            out.append((f"{kind}/{name}", tpl.get("metadata", {}), tpl["spec"]))
        elif kind == "CronJob":
            tpl = o["spec"]["jobTemplate"]["spec"]["template"]
            out.append((f"{kind}/{name}", tpl.get("metadata", {}), tpl["spec"]))
        elif kind == "Pod":
            out.append((f"Pod/{name}", o["metadata"], o["spec"]))
    return out


def hook(o: dict) -> tuple[set[str], int] | None:
    ann = o["metadata"].get("annotations") or {}
    if "helm.sh/hook" not in ann:
        return None
    events = {e.strip() for e in ann["helm.sh/hook"].split(",")}
    return events, int(ann.get("helm.sh/hook-weight", "0"))


# --------------------------------------------------------------------------- results


class Results:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, name: str, fn: Callable[[], Any]) -> None:
        try:
            note = fn()
        except AssertionError as e:
            self.failed.append(name)
            print(f"FAIL {name}: {e}")
            return
        except Exception as e:  # an unexpected crash is a failure too, with its trace
            self.failed.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3)
            return
        self.passed += 1
        print(f"ok   {name}" + (f" ({note})" if note else ""))


# --------------------------------------------------------------------------- checks


def check_chart_metadata(chart: Chart) -> str:
    meta = yaml.safe_load((chart.path / "Chart.yaml").read_text())
    assert meta.get("apiVersion") == "v2", "Chart.yaml apiVersion must be v2"
    assert str(meta.get("appVersion")) == "0.1.0", "appVersion must be 0.1.0"
    assert meta.get("kubeVersion") == ">=1.27.0-0", "kubeVersion must be >=1.27.0-0"
    # `helm install` (not the template engine) enforces kubeVersion; check that the
    # constraint is one Helm parses and that it admits the versions validated below.
    assert re.fullmatch(r">=\d+\.\d+\.\d+-0", meta["kubeVersion"]), meta["kubeVersion"]
    return "apiVersion v2, appVersion 0.1.0, kubeVersion >=1.27.0-0"


def check_lint(chart: Chart, values: dict) -> str:
    report = helm_python.lint(
        str(chart.path), values, strict=True, namespace=NAMESPACE, kube_version="v" + KUBE_VERSION
    )
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    problems_text = [f"[{m['severity']}] {m['path']}: {m['error']}" for m in problems]
    assert not report.get("errors") and not problems, "; ".join(
        problems_text + list(report.get("errors") or [])
    )
    infos = [m["error"] for m in report.get("messages", []) if m.get("severity") == 1]
    return f"{len(infos)} info message(s): {', '.join(infos)}" if infos else ""


def check_helmignore(chart: Chart) -> str:
    patterns = (chart.path / ".helmignore").read_text().splitlines()
    assert "alerts/*.test.yml" in patterns, ".helmignore lacks alerts/*.test.yml"
    names = [f["name"] for f in chart.handle.files]
    leaked = [n for n in names if re.fullmatch(r"alerts/[^/]*\.test\.yml", n)]
    assert not leaked, f"packaged despite .helmignore: {leaked}"
    return f"{len(names)} non-template files packaged"


def validate_k8s(objs: list[dict], crd_check: Callable[[list[dict]], None], version: str = KUBE_VERSION) -> str:
    errors, crds, count = [], [], 0
    for o in objs:
        where = f"{o['__template']}: {o['kind']}/{o['metadata'].get('name')}"
        if o["apiVersion"] == MONITORING:
            crds.append(o)
            continue
        try:
            kv.validate(strip(o), version, strict=True)
            count += 1
        except kv.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errors.append(f"{where}: {path}: {e.message}")
        except kv.SchemaNotFoundError as e:
            errors.append(f"{where}: unknown kind: {e.message}")
    assert not errors, "\n  " + "\n  ".join(errors)
    if crds:
        crd_check(crds)
        return f"{count} objects valid against {version} (strict); {len(crds)} Prometheus Operator objects checked structurally"
    return f"{count} objects valid against {version} (strict)"


def check_monitoring_crds(chart: Chart, all_objs: list[dict]) -> Callable[[list[dict]], None]:
    """ServiceMonitor/PrometheusRule have no schema in kubernetes-validate: check that the
    ServiceMonitor selects the metrics Services by a port they have, and that the
    PrometheusRule holds the chart's rule file unchanged and passes promtool."""

    def run(crds: list[dict]) -> None:
        for o in crds:
            assert set(o) - {"__template"} == {"apiVersion", "kind", "metadata", "spec"}, (
                f"{o['kind']} has unexpected top-level fields"
            )
            if o["kind"] == "ServiceMonitor":
                spec = o["spec"]
                assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
                sel = spec["selector"]["matchLabels"]
                services = [
                    s
                    for s in by_kind(all_objs, "Service")
                    if sel.items() <= (s["metadata"].get("labels") or {}).items()
                ]
                ports = {p["port"] for p in (ep for ep in spec["endpoints"])}
                names = sorted(s["metadata"]["name"] for s in services)
                assert len(services) == 2, f"ServiceMonitor selects {names}, want both metrics Services"
                for s in services:
                    svc_ports = {(p["name"], p["port"]) for p in s["spec"]["ports"]}
                    assert {n for n, _ in svc_ports} >= ports, f"{s['metadata']['name']} lacks port {ports}"
                    assert svc_ports & {("metrics", 9091), ("metrics", 9092)}, s["metadata"]["name"]
                for ep in spec["endpoints"]:
                    assert ep.get("path") == "/metrics"
            elif o["kind"] == "PrometheusRule":
                source = yaml.safe_load((chart.path / "alerts/flagstream-rules.yml").read_text())
                assert o["spec"] == {"groups": source["groups"]}, "PrometheusRule differs from alerts/flagstream-rules.yml"
                promtool = shutil.which("promtool")
                assert promtool, "promtool is missing (fs_ensure_deploy_tools installs it)"
                with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
                    yaml.safe_dump(o["spec"], f)
                    f.flush()
                    proc = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
                assert proc.returncode == 0, f"promtool check rules: {proc.stdout}{proc.stderr}"
            else:
                raise AssertionError(f"unexpected {MONITORING} kind {o['kind']}")

    return run


def assert_pods_hardened(objs: list[dict]) -> str:
    problems = []
    pods = pod_specs(objs)
    assert pods, "no pods rendered"
    for label, _meta, spec in pods:
        psc = spec.get("securityContext") or {}
        want = {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID}
        for k, v in want.items():
            if psc.get(k) != v:
                problems.append(f"{label}: pod securityContext.{k} = {psc.get(k)!r}, want {v!r}")
        if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{label}: pod seccompProfile is not RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{label}: automountServiceAccountToken is not false")
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{label}: uses a host namespace")
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec.get("initContainers", []) + spec["containers"]:
            cl = f"{label} container {c['name']}"
            sc = c.get("securityContext") or {}
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cl}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cl}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{cl}: privileged")
            if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
                problems.append(f"{cl}: capabilities.drop is not [ALL]")
            if (sc.get("capabilities") or {}).get("add"):
                problems.append(f"{cl}: adds capabilities")
            if sc.get("runAsNonRoot") is False or sc.get("runAsUser") in (0, "0"):
                problems.append(f"{cl}: may run as root")
            res = c.get("resources") or {}
            for part, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
                for k in keys:
                    if k not in (res.get(part) or {}):
                        problems.append(f"{cl}: no resources.{part}.{k}")
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            if not tmp or "emptyDir" not in vols.get(tmp[0]["name"], {}):
                problems.append(f"{cl}: /tmp is not an emptyDir mount")
            if c.get("command") and c["command"][0] not in ("flagstream-api", "flagstream-consumer"):
                problems.append(f"{cl}: runs {c['command'][0]}, not a Flagstream binary (distroless: no shell)")
            for env in c.get("env", []):
                if SECRET_ENV.search(env["name"]) and "value" in env:
                    problems.append(f"{cl}: secret-looking {env['name']} has a plain value")
    for sa in by_kind(objs, "ServiceAccount"):
        if sa.get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{sa['metadata']['name']}: automountServiceAccountToken is not false")
    assert not problems, "\n  " + "\n  ".join(problems)
    return f"{len(pods)} pod specs"


def assert_no_secret_leak(objs: list[dict], secret_values: list[str]) -> None:
    """Secret values may appear base64-encoded in a Secret and nowhere else."""
    for o in objs:
        if o["kind"] == "Secret":
            assert "stringData" not in o, "Secret uses stringData"
            continue
        text = json.dumps(strip(o))
        for s in secret_values:
            if s and s in text:
                raise AssertionError(f"{o['kind']}/{o['metadata']['name']} contains a secret value in clear")


def component_deploy(objs: list[dict], component: str) -> dict:
    return one(objs, "Deployment", f"{RELEASE}-flagstream-{component}")


def container(spec: dict, name: str) -> dict:
    return next(c for c in spec["containers"] if c["name"] == name)


def check_workloads(objs: list[dict]) -> str:
    api = component_deploy(objs, "api")["spec"]["template"]
    con = component_deploy(objs, "consumer")["spec"]["template"]
    a, c = container(api["spec"], "api"), container(con["spec"], "consumer")
    # Probes on the real endpoints.
    assert a["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}, a["livenessProbe"]
    assert a["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}, a["readinessProbe"]
    assert {p["name"]: p["containerPort"] for p in a["ports"]} == {"http": 8000, "metrics": 9092}
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "metrics"}, c[probe]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 9091}
    # Listen addresses and migrations off at start-up, from the ConfigMaps.
    cm_api = one(objs, "ConfigMap", f"{RELEASE}-flagstream-api")["data"]
    cm_con = one(objs, "ConfigMap", f"{RELEASE}-flagstream-consumer")["data"]
    assert cm_api["API_LISTEN"] == "0.0.0.0:8000" and cm_api["API_METRICS_ADDR"] == "0.0.0.0:9092"
    assert cm_con["METRICS_ADDR"] == "0.0.0.0:9091"
    assert cm_api["MIGRATE_ON_START"] == cm_con["MIGRATE_ON_START"] == "false"
    for k, v in {**cm_api, **cm_con}.items():
        is_path = k.endswith(("_FILE", "_LOCATION")) and v.startswith("/etc/flagstream/")
        assert is_path or not SECRET_ENV.search(k), f"ConfigMap carries secret-looking {k}"
        assert not re.search(r"e\+\d", v), f"{k}={v}: a number rendered in float notation"
    # The kubelet's SIGKILL must come after the consumer's own drain deadline.
    shutdown = int(cm_con["SHUTDOWN_TIMEOUT_SECS"])
    grace = con["spec"]["terminationGracePeriodSeconds"]
    assert grace > shutdown, f"consumer grace {grace} s is not above SHUTDOWN_TIMEOUT_SECS {shutdown}"
    # Config and secret changes must roll the pods.
    for label, tpl in (("api", api), ("consumer", con)):
        ann = tpl["metadata"].get("annotations") or {}
        for key in ("checksum/config", "checksum/secret"):
            assert re.fullmatch(r"[0-9a-f]{64}", ann.get(key, "")), f"{label} pod lacks {key}"
    return f"consumer grace {grace} s > shutdown {shutdown} s"


def check_hooks_default(objs: list[dict]) -> str:
    jobs = by_kind(objs, "Job")
    assert len(jobs) == 1, f"{len(jobs)} Jobs"
    job = jobs[0]
    h = hook(job)
    assert h and h[0] == {"pre-install", "pre-upgrade"}, f"migration Job hook annotation: {h}"
    ann = job["metadata"]["annotations"]
    assert "helm.sh/hook-weight" in ann, "no hook-weight"
    assert "before-hook-creation" in ann.get("helm.sh/hook-delete-policy", ""), "no delete policy"
    spec = job["spec"]
    assert isinstance(spec.get("ttlSecondsAfterFinished"), int), "no ttlSecondsAfterFinished"
    assert isinstance(spec.get("backoffLimit"), int), "no backoffLimit"
    cmd = spec["template"]["spec"]["containers"][0]["command"]
    assert cmd == ["flagstream-api", "migrate"], cmd
    for d in by_kind(objs, "Deployment"):
        assert not d["spec"]["template"]["spec"].get("initContainers"), "init containers with hooks on"
    return f"hook weight {ann['helm.sh/hook-weight']}"


def check_hook_dependencies(objs: list[dict], existing: set[str]) -> str:
    """A pre-install hook runs before the release's own objects exist. Everything a hook pod
    references (Secret, ConfigMap, ServiceAccount) must be a hook of the same events with a
    lower weight, or something the chart does not create (existingSecret)."""
    rendered = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    checked = 0
    for o in objs:
        h = hook(o)
        if not h or o["kind"] not in ("Job", "Pod") or "test" in h[0]:
            continue
        events, weight = h
        spec = o["spec"]["template"]["spec"] if o["kind"] == "Job" else o["spec"]
        refs = [("ServiceAccount", spec.get("serviceAccountName", "default"))]
        for c in spec.get("initContainers", []) + spec["containers"]:
            for e in c.get("env", []):
                src = e.get("valueFrom") or {}
                if "secretKeyRef" in src:
                    refs.append(("Secret", src["secretKeyRef"]["name"]))
                if "configMapKeyRef" in src:
                    refs.append(("ConfigMap", src["configMapKeyRef"]["name"]))
            for ef in c.get("envFrom", []):
                if "secretRef" in ef:
                    refs.append(("Secret", ef["secretRef"]["name"]))
                if "configMapRef" in ef:
                    refs.append(("ConfigMap", ef["configMapRef"]["name"]))
        for v in spec.get("volumes", []):
            if "secret" in v:
                refs.append(("Secret", v["secret"]["secretName"]))
        for kind, name in refs:
            checked += 1
            dep = rendered.get((kind, name))
            if dep is None:
                assert (kind, name) in existing or (kind, name) == ("ServiceAccount", "default"), (
                    f"hook {o['kind']}/{o['metadata']['name']} needs {kind}/{name}, which nothing provides"
                )
                continue
            dh = hook(dep)
            assert dh, (
                f"hook {o['metadata']['name']} needs {kind}/{name}, a normal release object "
                "that does not exist yet when pre-install hooks run"
            )
            assert events <= dh[0] and dh[1] < weight, (
                f"{kind}/{name} (hook {sorted(dh[0])}, weight {dh[1]}) is not created before "
                f"{o['metadata']['name']} ({sorted(events)}, weight {weight})"
            )
    assert checked, "no hook references found"
    return f"{checked} references"


def check_no_hooks_mode(objs: list[dict]) -> str:
    jobs = by_kind(objs, "Job")
    assert len(jobs) == 1, f"{len(jobs)} Jobs"
    assert hook(jobs[0]) is None, "migration Job still a hook with useHelmHooks: false"
    assert jobs[0]["spec"]["template"]["spec"]["containers"][0]["command"] == ["flagstream-api", "migrate"]
    assert not [o for o in objs if hook(o) and "test" not in hook(o)[0]], "hook objects left"
    for d in by_kind(objs, "Deployment"):
        inits = d["spec"]["template"]["spec"].get("initContainers") or []
        cmds = [i["command"] for i in inits]
        assert ["flagstream-api", "migrate", "--check", "--wait-secs", "600"] in cmds, (
            f"{d['metadata']['name']}: no wait-for-schema init container ({cmds})"
        )
    return "plain Job + init containers"


def check_test_pod(objs: list[dict]) -> str:
    pods = [o for o in by_kind(objs, "Pod") if (hook(o) or (set(), 0))[0] == {"test"}]
    assert len(pods) == 1, f"{len(pods)} test pods"
    cmd = pods[0]["spec"]["containers"][0]["command"]
    svc = one(objs, "Service", f"{RELEASE}-flagstream-api")
    port = svc["spec"]["ports"][0]["port"]
    assert cmd[:2] == ["flagstream-api", "healthcheck"], cmd
    assert cmd[2] == f"http://{RELEASE}-flagstream-api.{NAMESPACE}.svc:{port}/ready", cmd
    return cmd[2]


def check_all_on(objs: list[dict], chart: Chart) -> str:
    kinds = {o["kind"] for o in objs}
    want = {"Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
            "ServiceMonitor", "PrometheusRule", "ConfigMap"}
    assert want <= kinds, f"missing kinds: {want - kinds}"
    assert not by_kind(objs, "Secret"), "a Secret is rendered despite existingSecret"
    ing = by_kind(objs, "Ingress")[0]
    assert ing["spec"].get("tls"), "Ingress without TLS"
    api = component_deploy(objs, "api")
    assert "replicas" not in api["spec"], "API replicas set while the HPA owns them"
    hpa = by_kind(objs, "HorizontalPodAutoscaler")[0]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert {p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for p in by_kind(objs, "PodDisruptionBudget")} == {"api", "consumer"}
    # NetworkPolicy: a default deny over every pod of the release, DNS on 53/UDP+TCP, and
    # no egress rule open to everything.
    pols = by_kind(objs, "NetworkPolicy")
    deny = [p for p in pols if not p["spec"].get("ingress") and not p["spec"].get("egress")
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and "app.kubernetes.io/component" not in p["spec"]["podSelector"]["matchLabels"]]
    assert deny, "no default-deny NetworkPolicy over the whole release"
    for p in pols:
        for rule in p["spec"].get("egress", []):
            assert rule.get("to"), f"{p['metadata']['name']}: egress rule without peers (open to all)"
        for rule in p["spec"].get("ingress", []):
            assert rule.get("from"), f"{p['metadata']['name']}: ingress rule without peers"
    con_pol = one(objs, "NetworkPolicy", f"{RELEASE}-flagstream-consumer")
    dns_ports = {(x["protocol"], x["port"]) for r in con_pol["spec"]["egress"] for x in r["ports"] if x["port"] == 53}
    assert dns_ports == {("UDP", 53), ("TCP", 53)}, dns_ports
    egress_ports = {x["port"] for r in con_pol["spec"]["egress"] for x in r["ports"]}
    assert {5432, 9093} <= egress_ports, egress_ports
    api_pol = one(objs, "NetworkPolicy", f"{RELEASE}-flagstream-api")
    assert 9093 not in {x["port"] for r in api_pol["spec"]["egress"] for x in r["ports"]}, "API may reach Kafka"
    # Dashboards: one labelled ConfigMap per file, with the folder annotation.
    files = sorted(p.name for p in (chart.path / "dashboards").glob("*.json"))
    assert files, "helm/flagstream/dashboards/*.json is missing"
    dash = [c for c in by_kind(objs, "ConfigMap") if (c["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
    assert sorted(k for c in dash for k in c["data"]) == files, f"dashboards rendered: {[list(c['data']) for c in dash]}"
    for c in dash:
        assert (c["metadata"].get("annotations") or {}).get("grafana_folder"), "no grafana_folder annotation"
        for name, text in c["data"].items():
            json.loads(text)  # survives the trip through YAML unchanged
            assert text.strip() == (chart.path / "dashboards" / name).read_text().strip(), name
    # Kafka SASL + TLS reach the consumer only.
    con = component_deploy(objs, "consumer")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in container(con, "consumer")["env"]}
    assert env["KAFKA_OPT_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "KAFKA_SASL_PASSWORD"
    assert any(v.get("secret", {}).get("secretName") == "flagstream-secrets" for v in con["volumes"])
    api_env = {e["name"] for e in container(api["spec"]["template"]["spec"], "api")["env"]}
    assert "KAFKA_OPT_SASL_PASSWORD" not in api_env, "the API gets the Kafka password"
    assert "ENCRYPTION_KEYS" in api_env and "BOOTSTRAP_ADMIN_PASSWORD" in api_env
    image = container(con, "consumer")["image"]
    assert image.endswith("@sha256:" + "0123456789abcdef" * 4), image
    return f"{len(objs)} objects, {len(pols)} NetworkPolicies, {len(dash)} dashboards"


def check_alerts(chart: Chart, all_on: dict, on: list[dict]) -> str:
    """Alert settings reach the consumer's ConfigMap (and the base URL the API's, only when
    set: an empty ALERT_API_BASE_URL would give the consumer relative links), and the
    consumer gets egress to alert destinations only when peers are listed."""
    def configs(objs: list[dict]) -> tuple[dict, dict]:
        return (one(objs, "ConfigMap", f"{RELEASE}-flagstream-consumer")["data"],
                one(objs, "ConfigMap", f"{RELEASE}-flagstream-api")["data"])

    def alert_rules(objs: list[dict], component: str) -> list[dict]:
        pol = one(objs, "NetworkPolicy", f"{RELEASE}-flagstream-{component}")
        return [r for r in pol["spec"]["egress"] if any(x["port"] == 443 for x in r["ports"])]

    con, api = configs(chart.objects(MINIMAL))
    want = {"ALERTS_ENABLED": "true", "ALERT_MAX_ATTEMPTS": "20", "ALERT_HTTP_TIMEOUT_SECS": "10"}
    assert want.items() <= con.items(), f"defaults: consumer ConfigMap {({k: con.get(k) for k in want})}"
    assert "ALERT_API_BASE_URL" not in con and "ALERT_API_BASE_URL" not in api, "empty apiBaseUrl rendered"
    assert not any(k.startswith("ALERT") for k in api), f"API ConfigMap has {[k for k in api if k.startswith('ALERT')]}"

    con, api = configs(on)
    a = all_on["alerts"]
    want = {"ALERTS_ENABLED": "true", "ALERT_API_BASE_URL": a["apiBaseUrl"],
            "ALERT_MAX_ATTEMPTS": str(a["maxAttempts"]), "ALERT_HTTP_TIMEOUT_SECS": str(a["httpTimeoutSeconds"])}
    assert want.items() <= con.items(), f"all-on: consumer ConfigMap {({k: con.get(k) for k in want})}"
    assert api.get("ALERT_API_BASE_URL") == a["apiBaseUrl"], "all-on: API ConfigMap lacks ALERT_API_BASE_URL"

    off, _ = configs(chart.objects(deep_merge(MINIMAL, {"alerts": {"enabled": False}})))
    assert off["ALERTS_ENABLED"] == "false", off["ALERTS_ENABLED"]

    rules = alert_rules(on, "consumer")
    assert len(rules) == 1 and rules[0]["to"] == all_on["networkPolicy"]["alertDestinations"]["to"], (
        f"all-on: consumer alert egress {rules}")
    for component in ("api", "migrate"):
        assert not alert_rules(on, component), f"all-on: {component} may reach alert destinations"
    np_only = deep_merge(MINIMAL, {"networkPolicy": {k: all_on["networkPolicy"][k] for k in ("enabled", "postgres", "kafka")}})
    assert not alert_rules(chart.objects(np_only), "consumer"), "alert egress rendered with alertDestinations.to empty"
    return "ConfigMaps carry the settings; alert egress only with peers, consumer only"


def check_checksum_rolls(chart: Chart) -> str:
    def ann(values: dict, component: str) -> dict:
        d = component_deploy(chart.objects(values), component)
        return d["spec"]["template"]["metadata"]["annotations"]

    base_api, base_con = ann(MINIMAL, "api"), ann(MINIMAL, "consumer")
    cfg = deep_merge(MINIMAL, {"consumer": {"batchSize": 500}, "api": {"statsCacheSeconds": 20}})
    assert ann(cfg, "consumer")["checksum/config"] != base_con["checksum/config"], "consumer config change keeps checksum"
    assert ann(cfg, "api")["checksum/config"] != base_api["checksum/config"], "API config change keeps checksum"
    sec = deep_merge(MINIMAL, {"secrets": {"jwtSecretKey": "j" * 48}})
    assert ann(sec, "api")["checksum/secret"] != base_api["checksum/secret"], "secret change keeps checksum"
    return "config and secret changes change the pod template"


# Values the schema must reject, each with the reason a reviewer would give.
BAD_VALUES: list[tuple[str, dict]] = [
    ("typo'd top-level key", {"imagee": {"tag": "x"}}),
    ("typo'd nested key", {"consumer": {"replica": 2}}),
    ("negative consumer replicas", {"consumer": {"replicas": -1}}),
    ("negative API replicas", {"api": {"replicas": -3}}),
    ("replicas as a string", {"consumer": {"replicas": "two"}}),
    ("bad pullPolicy", {"image": {"pullPolicy": "Sometimes"}}),
    ("malformed digest", {"image": {"digest": "sha256:xyz"}}),
    ("database URL outside secrets", {"databaseUrl": "postgres://u:p@db/f"}),
    ("JWT key in the auth block", {"auth": {"jwt": {"secretKey": "k" * 40}}}),
    ("SASL password next to the username", {"kafka": {"sasl": {"password": "hunter2hunter2"}}}),
    ("SASL password as a librdkafka option", {"kafka": {"options": {"sasl.password": "hunter2"}}}),
    ("TLS key as a librdkafka option", {"kafka": {"options": {"ssl.key.pem": "-----BEGIN"}}}),
    ("secret env var with a plain value", {"api": {"extraEnv": [{"name": "JWT_SECRET_KEY", "value": "k" * 40}]}}),
    ("password env var with a plain value", {"consumer": {"extraEnv": [{"name": "KAFKA_OPT_SASL_PASSWORD", "value": "x"}]}}),
    ("database URL env var with a plain value", {"consumer": {"extraEnv": [{"name": "DATABASE_URL", "value": "postgres://x"}]}}),
    ("unknown secret key", {"secrets": {"adminPassword": "x" * 20}}),
    ("secret as a number", {"secrets": {"databaseUrl": 5432}}),
    ("bad storeContent", {"consumer": {"storeContent": "plaintext"}}),
    ("bad JWT algorithm", {"auth": {"jwt": {"algorithm": "none"}}}),
    ("bad SASL mechanism", {"kafka": {"sasl": {"mechanism": "GSSAPI-ish"}}}),
    ("bad offset reset", {"kafka": {"autoOffsetReset": "middle"}}),
    ("bootstrap servers without ports", {"kafka": {"bootstrapServers": "kafka1,kafka2"}}),
    ("zero shutdown timeout", {"consumer": {"shutdownTimeoutSeconds": 0}}),
    ("memory with a space", {"api": {"resources": {"requests": {"cpu": "1", "memory": "1 GB"}}}}),
    ("resources typo", {"api": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}, "limit": {}}}}),
    ("bad CPU quantity", {"consumer": {"resources": {"requests": {"cpu": "lots", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}}}),
    ("HPA above 100 %", {"api": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}}),
    ("bad service type", {"api": {"service": {"type": "Public"}}}),
    ("port out of range", {"networkPolicy": {"postgres": {"ports": [70000], "to": []}}}),
    ("network peer typo", {"networkPolicy": {"kafka": {"ports": [9092], "to": [{"ipblock": {"cidr": "10.0.0.0/8"}}]}}}),
    ("bad log format", {"logFormat": "xml"}),
    ("useHelmHooks as a string", {"migrations": {"useHelmHooks": "false"}}),
    ("negative backoffLimit", {"migrations": {"backoffLimit": -1}}),
    ("bad ingress pathType", {"ingress": {"hosts": [{"host": "a.example.com", "paths": [{"path": "/", "pathType": "Glob"}]}]}}),
    ("TLS entry without hosts", {"ingress": {"tls": [{"secretName": "t"}]}}),
    ("bad PDB percentage", {"consumer": {"pdb": {"enabled": True, "maxUnavailable": "half"}}}),
    ("bad scrape interval", {"metrics": {"serviceMonitor": {"interval": "often"}}}),
    ("alert base URL without a scheme", {"alerts": {"apiBaseUrl": "flagstream.example.com"}}),
    ("alert base URL with another scheme", {"alerts": {"apiBaseUrl": "ftp://flagstream.example.com"}}),
    ("zero alert attempts", {"alerts": {"maxAttempts": 0}}),
    ("zero alert HTTP timeout", {"alerts": {"httpTimeoutSeconds": 0}}),
    ("alerts typo", {"alerts": {"retries": 5}}),
    ("alert destinations without ports", {"networkPolicy": {"alertDestinations": {"ports": [], "to": []}}}),
]


def check_schema_rejects(chart: Chart) -> str:
    defaults = chart.handle.values
    good = deep_merge(defaults, MINIMAL)
    chart.handle.validate_schema(good)  # the baseline must pass, or every rejection is meaningless
    accepted = []
    for reason, bad in BAD_VALUES:
        try:
            chart.handle.validate_schema(deep_merge(good, bad))
        except helm_python.HelmValuesError:
            continue
        accepted.append(reason)
    assert not accepted, "schema accepted: " + "; ".join(accepted)
    # The install path validates too, not only the explicit call.
    try:
        chart.render(deep_merge(MINIMAL, {"consumer": {"replicas": -1}}))
    except RenderError:
        pass
    else:
        raise AssertionError("render accepted negative replicas: the schema is not applied on install")
    return f"{len(BAD_VALUES)} bad value sets rejected"


# Renders that must fail, and a word their message must contain.
BAD_RENDERS: list[tuple[str, dict, str]] = [
    ("no secrets and no existingSecret", {"kafka": {"bootstrapServers": "k:9092"}}, "secrets.databaseUrl is required"),
    ("no JWT key", deep_merge(MINIMAL, {"secrets": {"jwtSecretKey": ""}}), "secrets.jwtSecretKey is required"),
    ("short JWT key", deep_merge(MINIMAL, {"secrets": {"jwtSecretKey": "short"}}), "at least 32 bytes"),
    ("no content key", deep_merge(MINIMAL, {"secrets": {"encryptionKey": ""}}), "secrets.encryptionKey is required"),
    ("encrypted storage without keys", deep_merge(MINIMAL, {"encryption": {"enabled": False}}), "refuses to start"),
    ("EdDSA without key files", deep_merge(MINIMAL, {"auth": {"jwt": {"algorithm": "EdDSA"}}}), "secrets.jwtPrivateKey is required"),
    ("bootstrap admin without password", deep_merge(MINIMAL, {"bootstrapAdmin": {"enabled": True}}), "bootstrapAdminPassword is required"),
    ("short bootstrap password", deep_merge(MINIMAL, {"bootstrapAdmin": {"enabled": True}, "secrets": {"bootstrapAdminPassword": "short"}}), "at least 12"),
    ("SASL without password", deep_merge(MINIMAL, {"kafka": {"sasl": {"enabled": True, "username": "u"}}}), "kafkaSaslPassword is required"),
    ("TLS without CA", deep_merge(MINIMAL, {"kafka": {"tls": {"enabled": True}}}), "kafkaTlsCa is required"),
    ("existingSecret plus secrets", deep_merge(MINIMAL, {"existingSecret": "mine"}), "existingSecret"),
    ("no Kafka brokers", {"secrets": MINIMAL["secrets"]}, "kafka.bootstrapServers is required"),
    ("replicas above partitions", deep_merge(MINIMAL, {"consumer": {"replicas": 7}, "kafka": {"topicPartitions": 6}}), "kafka.topicPartitions"),
    ("ingress without TLS", deep_merge(MINIMAL, {"ingress": {"enabled": True, "hosts": [{"host": "a.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}]}}), "ingress.tls"),
    ("network policy without Postgres peers", deep_merge(MINIMAL, {"networkPolicy": {"enabled": True}}), "networkPolicy.postgres.to"),
]


def check_render_failures(chart: Chart) -> str:
    problems = []
    for reason, values, needle in BAD_RENDERS:
        try:
            chart.render(values)
        except RenderError as e:
            if needle not in str(e):
                problems.append(f"{reason}: failed, but without {needle!r}: {e}")
            continue
        problems.append(f"{reason}: rendered")
    assert not problems, "\n  " + "\n  ".join(problems)
    return f"{len(BAD_RENDERS)} refused with a clear message"


# --------------------------------------------------------------------------- README table


def values_rows(values_path: Path) -> list[tuple[str, str, str, str]]:
    """Rows (key, type, default, description) from values.yaml: a key with a `# --` comment is
    one row (its whole value is the default); a key without one must be a map, whose
    children are documented instead. An undocumented leaf is an error."""
    text = values_path.read_text()
    data = yaml.safe_load(text)
    docs: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    in_comment = False
    skip_below: int | None = None
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if skip_below is not None:
            if not stripped or indent > skip_below or stripped.startswith("- "):
                continue
            skip_below = None
        if stripped.startswith("# --"):
            comment, in_comment = [stripped[4:].strip()], True
            continue
        if stripped.startswith("#"):
            if in_comment:
                comment.append(stripped[1:].strip())
            continue
        in_comment = False
        m = re.match(r"^(\s*)([A-Za-z0-9_.-]+):(\s|$)", line)
        if not m:
            comment = []
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [m.group(2)])
        if comment:
            docs[path] = " ".join(comment)
            comment = []
            skip_below = indent
        else:
            stack.append((indent, m.group(2)))

    rows, missing = [], []

    def walk(node: Any, prefix: str) -> None:
        if prefix in docs:
            rows.append((prefix, type_name(node), json.dumps(node, separators=(",", ":")), docs[prefix]))
            return
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else k)
            return
        missing.append(prefix)

    walk(data, "")
    unknown = sorted(set(docs) - {r[0] for r in rows})
    if missing or unknown:
        raise AssertionError(
            f"values.yaml: undocumented keys {missing}; comments on unknown keys {unknown}"
        )
    return rows


def type_name(v: Any) -> str:
    return {bool: "bool", int: "int", float: "number", str: "string", list: "list", dict: "object"}.get(type(v), "null")


def values_table(values_path: Path) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    out = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, typ, default, desc in values_rows(values_path):
        out.append(f"| `{key}` | {typ} | `{cell(default)}` | {cell(desc)} |")
    return "\n".join(out)


def readme_section(readme: str) -> str:
    start, end = readme.find(README_START), readme.find(README_END)
    assert 0 <= start < end, f"README lacks {README_START} … {README_END}"
    return readme[start + len(README_START) : end].strip()


def check_readme(chart: Chart) -> str:
    readme = (chart.path / "README.md").read_text()
    want = values_table(chart.path / "values.yaml")
    have = readme_section(readme)
    if have != want:
        hl, wl = have.splitlines(), want.splitlines()
        diff = [f"README: {h}\n  values: {w}" for h, w in zip(hl, wl) if h != w][:3]
        if len(hl) != len(wl):
            diff.append(f"README has {len(hl)} lines, values.yaml gives {len(wl)}")
        raise AssertionError("README values table is stale (run scripts/check-helm --write-readme):\n  " + "\n  ".join(diff))
    return f"{len(want.splitlines()) - 2} keys"


def secret_keys_used(objs: list[dict], secret: str) -> set[str]:
    keys = set()
    for _label, _meta, spec in pod_specs(objs):
        for c in spec.get("initContainers", []) + spec["containers"]:
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref["name"] == secret:
                    keys.add(ref["key"])
        for v in spec.get("volumes", []):
            if v.get("secret", {}).get("secretName") == secret:
                keys |= {i["key"] for i in v["secret"].get("items", [])}
    return keys


def check_readme_secret_keys(chart: Chart, variants: list[list[dict]]) -> str:
    """The README's list of existingSecret keys is exactly what the templates read."""
    readme = (chart.path / "README.md").read_text()
    start, end = readme.find("<!-- secret-keys:start -->"), readme.find("<!-- secret-keys:end -->")
    assert 0 <= start < end, "README lacks the secret-keys markers"
    documented = set()
    for line in readme[start:end].splitlines():
        m = re.match(r"^\| `([^`]+)` \|", line)
        if m:
            documented.add(m.group(1))
    used = set().union(*(secret_keys_used(objs, "fs-secrets") for objs in variants))
    assert used == documented, f"templates read {sorted(used - documented)} undocumented; README lists unused {sorted(documented - used)}"
    return f"{len(used)} keys"


def write_readme(chart_path: Path) -> None:
    path = chart_path / "README.md"
    readme = path.read_text()
    start, end = readme.find(README_START), readme.find(README_END)
    assert 0 <= start < end, f"README lacks {README_START} … {README_END}"
    table = values_table(chart_path / "values.yaml")
    path.write_text(readme[: start + len(README_START)] + "\n" + table + "\n" + readme[end:])
    print(f"wrote {path}")


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chart", type=Path, default=ROOT / "helm" / "flagstream")
    ap.add_argument("--write-readme", action="store_true")
    args = ap.parse_args()
    chart_path = args.chart.resolve()
    if args.write_readme:
        write_readme(chart_path)
        return 0

    helm_python.disable_logging()
    chart = Chart(chart_path)
    all_on = yaml.safe_load((chart_path / "ci" / "all-on-values.yaml").read_text())
    r = Results()

    r.check("Chart.yaml metadata and kubeVersion", lambda: check_chart_metadata(chart))
    r.check(".helmignore keeps the promtool tests out", lambda: check_helmignore(chart))
    r.check("helm lint --strict, defaults + minimal secrets", lambda: check_lint(chart, MINIMAL))
    r.check("helm lint --strict, ci/all-on-values.yaml", lambda: check_lint(chart, all_on))

    default = chart.objects(MINIMAL)
    default_mon = chart.objects(MINIMAL, api_versions=[MONITORING])
    on_plain = chart.objects(all_on)
    on = chart.objects(all_on, api_versions=[MONITORING])
    upgrade = chart.objects(MINIMAL, is_upgrade=True)
    existing = chart.objects(deep_merge(MINIMAL, {"existingSecret": "fs-secrets", "secrets": {k: "" for k in MINIMAL["secrets"]}}))
    crd = check_monitoring_crds(chart, on)

    r.check("defaults: valid Kubernetes 1.30 objects", lambda: validate_k8s(default, crd))
    r.check("defaults (upgrade): valid Kubernetes 1.30 objects", lambda: validate_k8s(upgrade, crd))
    r.check("all-on with monitoring API: valid objects + CRDs", lambda: validate_k8s(on, crd))
    on_127 = chart.objects(all_on, api_versions=[MONITORING], kube_version="v1.27.0")
    r.check("all-on: valid against the oldest supported release, 1.27", lambda: validate_k8s(on_127, crd, "1.27.0"))
    r.check("defaults: pods hardened", lambda: assert_pods_hardened(default))
    r.check("all-on: pods hardened", lambda: assert_pods_hardened(on))
    r.check("defaults: secret values only in the Secret", lambda: assert_no_secret_leak(default, list(MINIMAL["secrets"].values())))
    r.check("defaults: probes, ports, grace period, checksums", lambda: check_workloads(default))
    r.check("all-on: probes, ports, grace period, checksums", lambda: check_workloads(on))
    r.check("checksums change with config and secrets", lambda: check_checksum_rolls(chart))
    r.check("defaults: migration Job is a pre-install/pre-upgrade hook", lambda: check_hooks_default(default))
    r.check("defaults: hook Job finds its Secret and ServiceAccount", lambda: check_hook_dependencies(default, set()))
    r.check("existingSecret: hook Job reads existingSecret", lambda: check_hook_dependencies(existing, {("Secret", "fs-secrets")}))
    r.check("useHelmHooks false: plain Job, init containers wait", lambda: check_no_hooks_mode(on))
    r.check("helm test pod calls /ready", lambda: check_test_pod(default))
    r.check("all-on: every feature rendered as intended", lambda: check_all_on(on, chart))
    r.check("alerts: ConfigMaps and alert-destination egress", lambda: check_alerts(chart, all_on, on))

    def absent(objs: list[dict]) -> str:
        found = [o["kind"] for o in objs if o["apiVersion"] == MONITORING]
        assert not found, f"rendered without {MONITORING}: {found}"
        return "none rendered"

    def default_off(objs: list[dict]) -> str:
        found = [o["kind"] for o in objs if o["apiVersion"] == MONITORING or o["kind"] in ("Ingress", "NetworkPolicy", "HorizontalPodAutoscaler")]
        found += [o["metadata"]["name"] for o in objs if (o["metadata"].get("labels") or {}).get("grafana_dashboard")]
        assert not found, f"on by default: {found}"
        return "ServiceMonitor, PrometheusRule, dashboards, Ingress, NetworkPolicy, HPA off"

    r.check("all-on without the monitoring API: no ServiceMonitor/PrometheusRule", lambda: absent(on_plain))
    r.check("defaults with the monitoring API: optional objects stay off", lambda: default_off(default_mon))
    r.check("values schema rejects bad values", lambda: check_schema_rejects(chart))
    r.check("renders that must fail do, with a clear message", lambda: check_render_failures(chart))
    r.check("README values table matches values.yaml", lambda: check_readme(chart))
    # Both JWT modes, both key modes, every Kafka secret: the union covers every key.
    ext = {"existingSecret": "fs-secrets", "secrets": {k: "" for k in MINIMAL["secrets"]}}
    ext_all = deep_merge(all_on, {"existingSecret": "fs-secrets", "consumer": {"extraEnv": []}})
    r.check("README lists exactly the existingSecret keys the templates read", lambda: check_readme_secret_keys(
        chart, [existing, chart.objects(ext_all), chart.objects(deep_merge(deep_merge(MINIMAL, ext), {"migrations": {"useHelmHooks": False}}))]))

    print(f"\ncheck-helm: {r.passed} passed, {len(r.failed)} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
