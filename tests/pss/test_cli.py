"""`kubestrata pss check` and `pss what-if` end to end through the CLI."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from kubestrata.cli.main import app

runner = CliRunner()

NS = """apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: v1.30
---
apiVersion: v1
kind: Namespace
metadata:
  name: legacy
"""

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s}
spec:
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.25
"""

GOOD = """apiVersion: v1
kind: Pod
metadata: {name: ok, namespace: shop}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: app
    image: app:1
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""

PODS = """apiVersion: v1
kind: Pod
metadata:
  name: web-7d4-%s
  namespace: shop
  labels: {pod-template-hash: 7d4}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7d4, controller: true, uid: u}]
spec:
  containers:
  - name: web
    image: nginx:1.25
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_check_json_contract_and_exit_codes(tmp_path):
    f = write(tmp_path, "a.yaml", NS + "---\n" + DEPLOY % "shop" + "---\n" + GOOD)
    r = runner.invoke(app, ["pss", "check", f, "-o", "json"])
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert [(d["kind"], d["name"]) for d in doc] == [("Deployment", "web"), ("Pod", "ok")]
    web, ok = doc
    for d in doc:
        assert {"source", "kind", "namespace", "name", "allowed", "policy", "message", "violations"} <= set(d)
    assert web["allowed"] is True and web["podsAllowed"] is False and web["policy"] == "restricted:v1.30"
    assert web["message"].startswith(
        'would violate PodSecurity "restricted:v1.30": allowPrivilegeEscalation != false ('
    )
    assert web["source"].endswith("a.yaml:14 (document 2)")
    v = web["violations"][0]
    assert set(v) >= {"check", "container", "path", "reason", "detail", "fix"}
    assert v == {
        "check": "allowPrivilegeEscalation",
        "container": "web",
        "path": "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
        "reason": "allowPrivilegeEscalation != false",
        "detail": 'container "web" must set securityContext.allowPrivilegeEscalation=false',
        "fix": [
            {
                "op": "add",
                "path": "/spec/template/spec/containers/0/securityContext",
                "value": {"allowPrivilegeEscalation": False},
            }
        ],
        "fixNote": None,
    }
    assert ok["allowed"] and ok["message"] == "" and ok["violations"] == []
    # only the good pod: exit 0
    g = write(tmp_path, "g.yaml", NS + "---\n" + GOOD)
    assert runner.invoke(app, ["pss", "check", g]).exit_code == 0


def test_check_level_flag_and_pod_denial(tmp_path):
    f = write(tmp_path, "d.yaml", DEPLOY % "legacy")
    assert runner.invoke(app, ["pss", "check", f]).exit_code == 0  # unlabelled: privileged
    r = runner.invoke(app, ["pss", "check", f, "--level", "baseline", "--policy-version", "v1.0"])
    assert r.exit_code == 0
    r = runner.invoke(app, ["pss", "check", f, "--level", "restricted:v1.24", "-o", "json"])
    assert r.exit_code == 1 and json.loads(r.stdout)[0]["policy"] == "restricted:v1.24"
    p = write(
        tmp_path,
        "p.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  hostPID: true\n  containers: [{name: c, image: i}]\n",
    )
    r = runner.invoke(app, ["pss", "check", p, "-l", "baseline"])
    assert r.exit_code == 1
    assert 'violates PodSecurity "baseline:latest": host namespaces (hostPID=true)' in r.stdout
    assert "DENIED" in r.stdout and "fix (JSON patch)" not in r.stdout
    r = runner.invoke(app, ["pss", "check", p, "-l", "baseline", "--fixes"])
    assert r.exit_code == 1 and 'fix (JSON patch): [{"op":"remove","path":"/spec/hostPID"}]' in r.stdout
    r = runner.invoke(app, ["pss", "check", p, "-l", "baseline", "-o", "json"])
    assert "fix" not in json.loads(r.stdout)[0]
    r = runner.invoke(app, ["pss", "check", p, "-l", "baseline", "-o", "json", "--fixes"])
    assert json.loads(r.stdout)[0]["fix"]["patch"] == [{"op": "remove", "path": "/spec/hostPID"}]


def test_check_bad_input_exits_2_without_traceback(tmp_path):
    p = write(
        tmp_path,
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: [{name: c, securityContext: x}]\n",
    )
    r = runner.invoke(app, ["pss", "check", p, "-l", "restricted", "-o", "json"])
    assert r.exit_code == 2
    d = json.loads(r.stdout)[0]
    assert d["allowed"] is False and "spec.containers[0].securityContext" in d["error"]
    assert "Traceback" not in r.output
    assert runner.invoke(app, ["pss", "check", p, "-l", "extreme"]).exit_code == 2
    assert (
        runner.invoke(app, ["pss", "check", p, "-l", "baseline", "--policy-version", "1.30"]).exit_code == 2
    )
    y = write(tmp_path, "y.yaml", "a: [\n")
    assert runner.invoke(app, ["pss", "check", y]).exit_code == 2


def test_check_escapes_control_characters(tmp_path):
    p = write(
        tmp_path,
        "e.yaml",
        'apiVersion: v1\nkind: Pod\nmetadata: {name: "x\\u001b[31mred"}\nspec:\n  hostPID: true\n  containers: [{name: c, image: i}]\n',
    )
    r = runner.invoke(app, ["pss", "check", p, "-l", "baseline"])
    assert "\x1b" not in r.stdout and "\\x1b[31mred" in r.stdout


def test_check_with_config_defaults_and_exemptions(tmp_path):
    cfg = write(
        tmp_path,
        "psa.yaml",
        "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\n"
        "defaults: {enforce: restricted}\nexemptions: {namespaces: [legacy]}\n",
    )
    a = write(tmp_path, "a.yaml", DEPLOY % "legacy")
    b = write(tmp_path, "b.yaml", DEPLOY % "other")
    assert runner.invoke(app, ["pss", "check", a, "--pss-configuration", cfg]).exit_code == 0
    r = runner.invoke(app, ["pss", "check", b, "--pss-configuration", cfg, "-o", "json"])
    assert r.exit_code == 1 and json.loads(r.stdout)[0]["policy"] == "restricted:latest"
    bad = write(
        tmp_path,
        "bad.yaml",
        "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults: {enforce: x}\n",
    )
    r = runner.invoke(app, ["pss", "check", a, "--pss-configuration", bad])
    assert r.exit_code == 2 and "defaults.enforce" in r.output


def test_what_if_groups_by_owner_and_reproduces_psa_warnings(tmp_path):
    docs = NS + "---\n" + GOOD + "".join("---\n" + PODS % i for i in range(4))
    f = write(tmp_path, "w.yaml", docs)
    r = runner.invoke(
        app, ["pss", "what-if", f, "--namespace", "shop", "--enforce", "restricted", "-o", "json"]
    )
    assert r.exit_code == 1, r.output
    (rep,) = json.loads(r.stdout)
    assert rep["pods"] == 5 and rep["podsDenied"] == 4
    (owner,) = rep["owners"]
    assert (owner["kind"], owner["name"], owner["deniedPods"]) == ("Deployment", "web", 4)
    assert rep["psaWarnings"] == [
        'existing pods in namespace "shop" violate the new PodSecurity enforce level "restricted:latest"',
        "web-7d4-0 (and 3 other pods): allowPrivilegeEscalation != false, unrestricted capabilities, "
        "runAsNonRoot != true, seccompProfile",
    ]
    r = runner.invoke(app, ["pss", "what-if", f, "-n", "shop", "--enforce", "baseline"])
    assert r.exit_code == 0 and "0 of 5 pods" in r.stdout


def test_what_if_rollout_and_version_bump(tmp_path):
    probe = yaml.safe_load(GOOD)
    probe["metadata"]["name"] = "probe"
    probe["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"host": "localhost", "port": 8080}}
    f = write(
        tmp_path,
        "r.yaml",
        NS + "---\n" + DEPLOY % "legacy" + "---\n" + GOOD + "---\n" + yaml.safe_dump(probe),
    )
    r = runner.invoke(app, ["pss", "what-if", f, "--all-namespaces", "-o", "json"])
    assert r.exit_code == 0
    rows = {x["namespace"]: x for x in json.loads(r.stdout)["namespaces"]}
    assert rows["legacy"]["baselineDenied"] == 0 and rows["legacy"]["restrictedDenied"] == 1
    assert rows["shop"]["restrictedDenied"] == 1 and rows["shop"]["recommendation"] == "fix workloads first"
    assert rows["legacy"]["recommendation"] == "ready for baseline"
    r = runner.invoke(app, ["pss", "what-if", f, "-A"])
    assert "NAMESPACE" in r.stdout and "RESTRICTED:latest" in r.stdout
    r = runner.invoke(app, ["pss", "what-if", f, "--from", "v1.33", "--to", "v1.34", "-o", "json"])
    assert r.exit_code == 1, r.output
    ch = json.loads(r.stdout)["changes"]
    assert [(c["name"], c["newlyDenied"], c["newChecks"]) for c in ch] == [
        ("probe", True, ["hostProbesAndHostLifecycle"])
    ]
    r = runner.invoke(app, ["pss", "what-if", f, "--from", "v1.34", "--to", "v1.35"])
    assert r.exit_code == 0 and "nothing newly fails" in r.stdout
    assert runner.invoke(app, ["pss", "what-if", f, "--enforce", "restricted"]).exit_code == 2
    assert runner.invoke(app, ["pss", "what-if", f, "--from", "v1.33"]).exit_code == 2


def test_live_cluster_path_fails_cleanly_or_is_called(monkeypatch, tmp_path):
    """--cluster goes through kubestrata.kube.live.collect_cluster (imported lazily)."""
    import sys
    import types

    from kubestrata.kube.cluster import Cluster
    from kubestrata.kube.loader import load_paths

    objs = load_paths([write(tmp_path, "c.yaml", NS + "---\n" + DEPLOY % "shop")]).objects
    seen = {}

    def collect_cluster(**kw):
        seen.update(kw)
        return Cluster(objs, origin="test")

    mod = types.ModuleType("kubestrata.kube.live")
    mod.collect_cluster = collect_cluster
    monkeypatch.setitem(sys.modules, "kubestrata.kube.live", mod)
    r = runner.invoke(app, ["pss", "check", "--cluster", "--context", "prod", "-o", "json"])
    assert r.exit_code == 1 and seen["context"] == "prod"
    assert json.loads(r.stdout)[0]["policy"] == "restricted:v1.30"
    r = runner.invoke(app, ["pss", "what-if", "--cluster", "-A"])
    assert r.exit_code == 0 and "shop" in r.stdout
    monkeypatch.setitem(sys.modules, "kubestrata.kube.live", None)  # import fails
    r = runner.invoke(app, ["pss", "check", "--cluster"])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_what_if_on_exempt_namespace(tmp_path):
    cfg = write(
        tmp_path,
        "psa.yaml",
        "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\n"
        "exemptions: {namespaces: [shop]}\n",
    )
    f = write(tmp_path, "w.yaml", NS + "".join("---\n" + PODS % i for i in range(2)))
    r = runner.invoke(
        app,
        [
            "pss",
            "what-if",
            f,
            "-n",
            "shop",
            "--enforce",
            "restricted",
            "--pss-configuration",
            cfg,
            "-o",
            "json",
        ],
    )
    assert r.exit_code == 0, r.output
    (rep,) = json.loads(r.stdout)
    assert rep["exempt"] and rep["podsDenied"] == 0
    assert rep["psaWarnings"] == [
        'namespace "shop" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored'
    ]


def test_checks_lists_the_table_per_version():
    r = runner.invoke(app, ["pss", "checks", "-l", "restricted", "--policy-version", "v1.22", "-o", "json"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    ids = [c["check"] for c in doc["checks"]]
    assert "capabilities_restricted" in ids and "capabilities_baseline" not in ids and "runAsUser" not in ids
    r = runner.invoke(app, ["pss", "checks", "-l", "baseline:latest", "-o", "json"])
    doc = json.loads(r.stdout)
    assert doc["evaluatedAs"] == "v1.37"
    assert {c["check"]: c["variant"] for c in doc["checks"]}["sysctls"] == "v1.37"


def test_rollout_advice_never_steps_back_to_what_is_enforced(tmp_path):
    # a namespace already enforcing baseline, whose workload passes baseline but not restricted, was
    # advised "ready for baseline"
    ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: legacy\n  labels: {pod-security.kubernetes.io/enforce: baseline}\n"
    f = write(tmp_path, "b.yaml", ns + "---\n" + DEPLOY % "legacy")
    r = runner.invoke(app, ["pss", "what-if", f, "-A", "-o", "json"])
    (row,) = [x for x in json.loads(r.stdout)["namespaces"] if x["namespace"] == "legacy"]
    assert row["baselineDenied"] == 0 and row["restrictedDenied"] == 1
    assert row["recommendation"] == "fix workloads for restricted"
    f = write(tmp_path, "r.yaml", NS + "---\n" + GOOD)
    r = runner.invoke(app, ["pss", "what-if", f, "-A", "-o", "json"])
    (row,) = [x for x in json.loads(r.stdout)["namespaces"] if x["namespace"] == "shop"]
    assert row["recommendation"] == "already restricted"
