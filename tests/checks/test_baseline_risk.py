"""Baseline Pod Security violations are a real risk whatever the namespace enforces (issue 11): a pod
with hostPID, hostNetwork and SYS_ADMIN in a namespace without Pod Security labels (the EKS default)
gets high findings, not only the low restricted advisory."""

from __future__ import annotations

import yaml

from kubestrata.findings import Severity
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_text
from kubestrata.scan import run_scan

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "debug", "namespace": "tools"},
    "spec": {
        "hostPID": True,
        "hostNetwork": True,
        "containers": [
            {
                "name": "c",
                "image": "busybox:1.36",
                "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}, "runAsNonRoot": True},
                "ports": [{"containerPort": 80, "hostPort": 80}],
            }
        ],
    },
}


def _scan(*docs):
    return run_scan(Cluster(load_text(yaml.safe_dump_all(docs), "in.yaml").objects))


def test_unlabelled_namespace_baseline_violations_rank_high():
    res = _scan(POD)
    msgs = [f.message for f in res.findings if f.rule_id == "KS-PSS-004"]
    host_ns = [f for f in res.findings if f.rule_id == "KS-PSS-004" and "hostNamespaces" in f.message]
    caps = [f for f in res.findings if f.rule_id == "KS-PSS-004" and "capabilities_baseline" in f.message]
    ports = [f for f in res.findings if f.rule_id == "KS-PSS-004" and "hostPorts" in f.message]
    assert host_ns and host_ns[0].severity == Severity.HIGH, msgs
    assert "'Host Namespaces'" in host_ns[0].message
    assert {e.path for e in host_ns[0].evidence} == {"spec.hostPID", "spec.hostNetwork"}
    assert caps and caps[0].severity == Severity.HIGH and "SYS_ADMIN" in caps[0].message
    assert caps[0].container == "c"
    assert ports and ports[0].severity == Severity.MEDIUM
    assert max(f.severity.rank for f in res.findings) >= Severity.HIGH.rank


def test_enforced_baseline_reports_once_through_pss_001():
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "tools", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}},
    }
    res = _scan(ns, POD)
    assert [f.rule_id for f in res.findings if f.rule_id.startswith("KS-PSS")] == ["KS-PSS-001"]


def test_privileged_and_host_path_stay_with_their_own_checks():
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "tools"},
        "spec": {
            "volumes": [{"name": "h", "hostPath": {"path": "/etc"}}],
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:1.36",
                    "securityContext": {"privileged": True},
                    "volumeMounts": [{"name": "h", "mountPath": "/h"}],
                }
            ],
        },
    }
    ids = [f.rule_id for f in _scan(pod).findings]
    assert "KS-WL-001" in ids and "KS-WL-003" in ids and "KS-PSS-004" not in ids
