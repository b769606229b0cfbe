"""Workload checks on inputs they had not seen (issue 11): user namespaces, CPU-limit policy, string
booleans the API server rejects."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.config import ScanConfig
from kubestrata.findings import GapReason
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_text
from kubestrata.scan import run_scan


def _pod(spec: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}, "spec": spec}


def _scan(doc, config=None):
    return run_scan(Cluster(load_text(yaml.safe_dump(doc), "p.yaml").objects), config=config)


def test_host_users_false_is_not_root_on_the_node():
    spec = {
        "hostUsers": False,
        "securityContext": {"runAsUser": 0},
        "containers": [{"name": "c", "image": "busybox:1.36"}],
    }
    assert not [f for f in _scan(_pod(spec)).findings if f.rule_id == "KS-WL-005"]
    spec["hostUsers"] = True
    hits = [f for f in _scan(_pod(spec)).findings if f.rule_id == "KS-WL-005"]
    assert hits and hits[0].severity.value == "high"


def test_cpu_limit_is_a_setting():
    c = {
        "name": "c",
        "image": "busybox:1.36",
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}},
    }
    assert not [f for f in _scan(_pod({"containers": [c]})).findings if f.rule_id == "KS-WL-006"]
    hits = [
        f
        for f in _scan(_pod({"containers": [c]}), ScanConfig(require_cpu_limits=True)).findings
        if f.rule_id == "KS-WL-006"
    ]
    assert hits and "limits.cpu" in hits[0].message
    c["resources"]["limits"] = {}
    hits = [f for f in _scan(_pod({"containers": [c]})).findings if f.rule_id == "KS-WL-006"]
    assert hits and "limits.memory" in hits[0].message and "limits.cpu" not in hits[0].message


def test_string_privileged_is_invalid_input_never_a_pass(tmp_path):
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "a"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "nginx:1.27", "securityContext": {"privileged": "true"}}
                    ]
                },
            },
        },
    }
    res = _scan(doc)
    gaps = [g for g in res.coverage.gaps if g.reason == GapReason.INVALID]
    assert len(gaps) == 1  # one gap for the object, not one per check
    assert "spec.template.spec.containers[0].securityContext.privileged" in gaps[0].detail
    assert "expected boolean, got string" in gaps[0].detail
    assert not [f for f in res.findings if f.object and f.object.kind == "Deployment"]
    p = tmp_path / "d.yaml"
    p.write_text(yaml.safe_dump(doc))
    r = CliRunner().invoke(app, ["scan", str(p), "--strict", "--include", "KS-WL-001"])
    assert r.exit_code == 2, r.output
    assert "securityContext.privileged" in r.output


def test_container_fields_of_the_wrong_type_are_invalid_whatever_the_other_fields():
    # volumeMounts was only type-checked when a hostPath volume made KS-WL-003 read it
    spec = {"containers": [{"name": "c", "image": "busybox:1.36", "volumeMounts": 1}]}
    res = _scan(_pod(spec))
    (gap,) = [g for g in res.coverage.gaps if g.reason == GapReason.INVALID]
    assert "spec.containers[0].volumeMounts: expected array, got integer" in gap.detail
