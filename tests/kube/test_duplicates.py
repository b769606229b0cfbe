"""The same object in several files (issue 11): identical copies are judged once and named together;
different definitions are all judged and the conflict is a finding."""

from __future__ import annotations

from pathlib import Path

from kubestrata.findings import Severity
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_paths
from kubestrata.scan import run_scan

CRB = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ci-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: ci, namespace: build}]
"""


def _ns(level: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n  labels: {{pod-security.kubernetes.io/enforce: {level}}}\n"


POD = """\
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: tools}
spec:
  hostPID: true
  containers: [{name: c, image: busybox:1.36}]
"""


def _scan(tmp_path: Path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return run_scan(Cluster(load_paths([tmp_path]).objects))


def test_identical_binding_in_three_files_is_one_finding_naming_all(tmp_path):
    res = _scan(tmp_path, {"a.yaml": CRB, "b.yaml": CRB, "c.yaml": CRB})
    hits = [f for f in res.findings if f.rule_id == "KS-RBAC-001"]
    assert len(hits) == 1
    for name in ("a.yaml", "b.yaml", "c.yaml"):
        assert name in hits[0].message
    assert res.coverage.evaluated["ClusterRoleBinding"] == 1
    assert not [f for f in res.findings if f.rule_id == "KS-INP-001"]


def test_conflicting_namespace_is_a_finding_and_does_not_depend_on_file_names(tmp_path):
    # the reproduction: a Namespace defined in two files with different Pod Security labels
    (tmp_path / "x").mkdir()
    a = _scan(tmp_path / "x", {"1-ns.yaml": _ns("baseline"), "2-ns.yaml": _ns("privileged"), "pod.yaml": POD})
    conflicts = [f for f in a.findings if f.rule_id == "KS-INP-001"]
    assert len(conflicts) == 1 and conflicts[0].severity == Severity.HIGH
    assert "1-ns.yaml" in conflicts[0].message and "2-ns.yaml" in conflicts[0].message
    assert "pod-security.kubernetes.io/enforce" in conflicts[0].message
    ev = conflicts[0].evidence[0]
    assert ev.observed == ["baseline", "privileged"]
    # renaming the files flips which definition lookups use, but the conflict is reported either way
    (tmp_path / "y").mkdir()
    b = _scan(tmp_path / "y", {"2-ns.yaml": _ns("baseline"), "1-ns.yaml": _ns("privileged"), "pod.yaml": POD})
    assert [f.rule_id for f in b.findings if f.rule_id == "KS-INP-001"] == ["KS-INP-001"]
