"""The upstream Kubernetes e2e NetworkPolicy truth tables (test/e2e/network/netpol), as data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubestrata.netpol.engine import Options
from tests.netpol.helpers import network_from_docs

DATA = yaml.safe_load((Path(__file__).parent / "data" / "e2e_truth_tables.yaml").read_text())
NS_INDEX = {"x": 1, "y": 2, "z": 3}
POD_INDEX = {"a": 1, "b": 2, "c": 3}


def _ip(pod: str) -> str:
    ns, name = pod.split("/")
    return f"10.244.{NS_INDEX[ns]}.{POD_INDEX[name]}"


def _subst(v: Any) -> Any:
    if isinstance(v, str) and "{ip:" in v:
        start = v.index("{ip:")
        end = v.index("}", start)
        return v[:start] + _ip(v[start + 4 : end]) + v[end + 1 :]
    if isinstance(v, dict):
        return {k: _subst(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_subst(x) for x in v]
    return v


def _docs(case: dict, step: dict) -> list[dict]:
    docs: list[dict] = []
    ns_extra = step.get("namespace_labels", {})
    for ns in ("x", "y", "z"):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "labels": {"kubernetes.io/metadata.name": ns, **ns_extra.get(ns, {})},
                },
            }
        )
    pod_labels = step.get("pod_labels", {})
    for pod in case["pods"]:
        ns, name = pod.split("/")
        containers = [
            {
                "name": f"cont-{port}-{proto.lower()}",
                "image": "agnhost",
                "ports": [
                    {"containerPort": port, "name": f"serve-{port}-{proto.lower()}", "protocol": proto}
                ],
            }
            for port in (80, 81)
            for proto in ("TCP", "UDP", "SCTP")
        ]
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": pod_labels.get(pod, {"pod": name})},
                "spec": {"containers": containers},
                "status": {"hostIP": "192.168.0.1", "podIP": _ip(pod), "podIPs": [{"ip": _ip(pod)}]},
            }
        )
    for p in step["policies"]:
        docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": p["name"], "namespace": p["ns"]},
                "spec": _subst(p["spec"]),
            }
        )
    return docs


def _matches(peer: dict, pod: str) -> bool:
    ns, name = pod.split("/")
    return peer.get("ns", ns) == ns and peer.get("pod", name) == name


STEPS = [
    pytest.param(case, i, step, id=f"{case['name']}[step {i + 1}]")
    for case in DATA
    for i, step in enumerate(case["steps"])
]


def test_all_upstream_cases_ported() -> None:
    assert len(DATA) == 48


@pytest.mark.parametrize(("case", "index", "step"), STEPS)
def test_truth_table(case: dict, index: int, step: dict) -> None:
    net = network_from_docs(_docs(case, step), Options())
    assert not net.gaps, net.gaps
    by_pod = {e.ref: net.endpoint_col(e) for e in net.endpoints}
    pods = case["pods"]
    for chk in step["checks"]:
        expected = {(a, b): True for a in pods for b in pods}
        for op in chk["expect"]:
            for a in pods:
                for b in pods:
                    if _matches(op["from"], a) and _matches(op["to"], b):
                        expected[(a, b)] = op["allowed"]
        wrong = []
        for (a, b), want in expected.items():
            if a == b:
                continue  # ignoreLoopback (kubernetes#95879)
            got = net.connection(by_pod[a], by_pod[b]).allows(chk["protocol"], chk["port"])
            if got != want:
                wrong.append(f"{a} -> {b} {chk['protocol']}/{chk['port']}: got {got}, want {want}")
        assert not wrong, "\n".join(wrong)


def test_ipblock_cases_depend_on_the_flag() -> None:
    """With np-guard's semantics (ipBlock never matches a pod) the upstream CIDR case must fail:
    proof the flag changes the verdict and that these tables can fail."""
    case = next(c for c in DATA if c["name"] == "should allow egress access to server in CIDR block")
    step = case["steps"][0]
    for opts, want in ((Options(), True), (Options.np_guard(), False)):
        net = network_from_docs(_docs(case, step), opts)
        cols = {e.ref: net.endpoint_col(e) for e in net.endpoints}
        assert net.connection(cols["x/a"], cols["y/b"]).allows("TCP", 80) is want
