"""KS-NET-003 reads the network analysis' parse of each policy when KS-NET-001 built it first, and
parses the policy itself otherwise: both ways give the same findings."""

from __future__ import annotations

from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.scan import run_scan, select_checks

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "app"},
    "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}},
}
POLICIES = [
    {  # a peer mixing ipBlock and a selector: invalid
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "bad", "namespace": "app"},
        "spec": {
            "podSelector": {},
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}],
        },
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "good", "namespace": "app"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    },
]


def _net003(docs: list[dict], include: list[str]) -> list[dict]:
    result = run_scan(Cluster([KubeObject(d) for d in docs]), checks=select_checks(include))
    assert ("netpol.network" in result.indexes) == ("KS-NET-001" in include)
    return [f.to_dict() for f in result.findings if f.rule_id == "KS-NET-003"]


def test_invalid_policy_findings_with_and_without_the_network_analysis() -> None:
    docs = [DEPLOYMENT, *POLICIES]  # the workload first: KS-NET-001 builds the analysis before the policies
    alone = _net003(docs, ["KS-NET-003"])
    assert [f["object"]["name"] for f in alone] == ["bad"]
    assert _net003(docs, ["KS-NET-001", "KS-NET-003"]) == alone
