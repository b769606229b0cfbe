"""Allow-listed system components are judged against what they are known to need (issue 11): the VPC
CNI and the EBS CSI node plugin as their upstream manifests declare them give no critical or high
finding; a hostPath, capability or privileged container beyond their needs still does."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from kubestrata.config import ScanConfig
from kubestrata.findings import Severity
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_text
from kubestrata.scan import run_scan

DATA = Path(__file__).parent / "data"


def _doc(name: str) -> dict:
    return yaml.safe_load((DATA / name).read_text())


def _scan(*docs, config=None):
    return run_scan(Cluster(load_text(yaml.safe_dump_all(docs), "in.yaml").objects), config=config)


def _severe(result):
    return [
        (f.rule_id, f.container, f.message) for f in result.findings if f.severity.rank >= Severity.HIGH.rank
    ]


def test_upstream_manifests_give_no_critical_or_high():
    res = _scan(_doc("aws-node.yaml"), _doc("ebs-csi-node.yaml"))
    assert not _severe(res), _severe(res)
    info = [f for f in res.findings if f.severity == Severity.INFO and f.rule_id == "KS-WL-003"]
    assert len(info) == 10 and all("known need" in f.message for f in info)


def test_needs_beyond_the_known_ones_still_count():
    ds = _doc("aws-node.yaml")
    spec = ds["spec"]["template"]["spec"]
    spec["volumes"].append({"name": "runtime", "hostPath": {"path": "/var/run/containerd/containerd.sock"}})
    spec["containers"][0]["volumeMounts"].append({"name": "runtime", "mountPath": "/run/containerd.sock"})
    spec["containers"][0]["securityContext"]["capabilities"]["add"].append("SYS_ADMIN")
    spec["hostPID"] = True
    spec["containers"].append(
        {"name": "sidecar", "image": "busybox:1.36", "securityContext": {"runAsUser": 0}}
    )
    sev = _severe(_scan(ds))
    rules = {(r, c) for r, c, _ in sev}
    assert ("KS-WL-003", "aws-node") in rules  # the containerd socket is not a need of the CNI
    assert ("KS-WL-005", "sidecar") in rules  # root in an unlisted container
    caps = [m for r, _, m in sev if r == "KS-PSS-004" and "capabilities_baseline" in m]
    assert caps and "SYS_ADMIN" in caps[0]
    assert any(r == "KS-PSS-004" and "hostPID" in m for r, _, m in sev)


def test_same_name_elsewhere_is_not_a_system_component():
    ds = copy.deepcopy(_doc("aws-node.yaml"))
    ds["metadata"]["namespace"] = "default"
    assert _severe(_scan(ds))


def test_config_adds_components():
    ds = _doc("aws-node.yaml")
    ds["metadata"]["name"] = "my-cni"
    assert _severe(_scan(ds))
    entry = yaml.safe_load((Path("src/kubestrata/checks/data/system-components.yaml")).read_text())[
        "components"
    ][0]
    entry = {**entry, "match": {"namespace": "kube-system", "kind": "DaemonSet", "name": "my-cni"}}
    cfg = ScanConfig(system_components=[entry])
    assert not _severe(_scan(ds, config=cfg))
