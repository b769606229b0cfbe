import datetime as dt

import pytest

from kubestrata.checks import CheckContext
from kubestrata.checks.nodes import kubelet_cis, node_age
from kubestrata.config import ScanConfig
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


def _node(created: str) -> KubeObject:
    return KubeObject(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "creationTimestamp": created}}
    )


@pytest.mark.parametrize(
    "created,max_days,want",
    [
        ("2026-11-20T00:00:00Z", 21, None),
        ("2026-11-01T00:00:00Z", 21, "medium"),
        ("2026-01-01T00:00:00Z", 21, "high"),
        ("2026-11-01T00:00:00Z", 30, None),
        ("not-a-time", 21, None),
    ],
)
def test_node_age_against_injected_clock(created, max_days, want):
    ctx = CheckContext(Cluster([]), ScanConfig(max_node_age_days=max_days), now=NOW)
    found = list(node_age(_node(created), ctx))
    assert (found[0].severity.value if found else None) == want


def test_kubelet_rules_unset_semantics():
    ctx = CheckContext(Cluster([]))
    empty = KubeObject({"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"})
    items = sorted(f.message.split(":")[0] for f in kubelet_cis(empty, ctx))
    # items whose kube-bench test is "set and equal" fail when unset; "or unset" items pass
    assert items == ["CIS EKS 3.2.1", "CIS EKS 3.2.2", "CIS EKS 3.2.3", "CIS EKS 3.2.4", "CIS EKS 3.2.9"]
    zero_timeout = KubeObject({**empty.raw, "streamingConnectionIdleTimeout": "0s", "eventRecordQPS": -1})
    msgs = " ".join(f.message for f in kubelet_cis(zero_timeout, ctx))
    assert "3.2.5" in msgs and "3.2.7" in msgs


def test_checks_can_record_coverage_gaps():
    from kubestrata.checks import CheckRegistry, cluster_check
    from kubestrata.findings import GapReason, Layer, Severity
    from kubestrata.scan import run_scan

    reg = CheckRegistry()

    @cluster_check(
        "KS-TEST-001",
        "t",
        severity=Severity.LOW,
        layer=Layer.CLUSTER,
        rationale="r",
        remediation="m",
        registry=reg,
    )
    def needs_input(ctx):
        ctx.gap("KS-TEST-001", GapReason.MISSING_INPUT, "no EKS cluster description in the input")
        return []

    result = run_scan(Cluster([]), checks=list(reg))
    assert [g.reason for g in result.coverage.gaps] == [GapReason.MISSING_INPUT]
