"""netpol list reads pairs from the class map row by row (iter_connections) and the HTML view counts
them without listing them (summary): both must agree with a pair-by-pair evaluation."""

from __future__ import annotations

from kubestrata.netpol.connlist import Conn, external_label, iter_connections, summary
from kubestrata.netpol.graph import connectivity_html
from kubestrata.report.netpol import render_connections as render
from tests.netpol.helpers import network_from_docs


def _pod(ns: str, name: str, owner: str, labels: dict, ip: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": owner,
                    "controller": True,
                    "uid": owner,
                }
            ],
        },
        "spec": {
            "containers": [{"name": "c", "image": "i", "ports": [{"name": "http", "containerPort": 8080}]}]
        },
        "status": {"podIP": ip, "podIPs": [{"ip": ip}]},
    }


def _docs() -> list[dict]:
    docs: list[dict] = []
    n = 0
    for ns in ("a", "b", "c"):
        docs.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"env": ns}}}
        )
        for app in ("web", "api", "db"):
            for r in range(3):
                n += 1
                # one owner whose pods carry different labels: one workload in several classes
                extra = {"canary": "yes"} if app == "api" and r == 2 else {}
                docs.append(_pod(ns, f"{app}-{r}", f"{app}-rs", {"app": app, **extra}, f"10.0.0.{n}"))
    docs += [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "db", "namespace": "a"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"app": "api"}}}], "ports": [{"port": 5432}]}
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "canary", "namespace": "b"},
            "spec": {
                "podSelector": {"matchLabels": {"canary": "yes"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}], "ports": [{"port": "http"}]}],
                "egress": [{"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}]}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "c"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]},
        },
    ]
    return docs


def _pairwise(net) -> list[Conn]:
    """The reference: every endpoint pair through Network.connection (no class matrix)."""
    out: dict[tuple[str, str], Conn] = {}
    eps = net.endpoints
    for a in eps:
        for b in eps:
            if a.label == b.label:
                continue
            p = net.connection(net.endpoint_col(a), net.endpoint_col(b))
            if not p.empty:
                prev = out.get((a.label, b.label))
                out[(a.label, b.label)] = Conn(
                    a.label, b.label, p if prev is None else prev.ports | p, a.namespace, b.namespace
                )
    for block in net.src_blocks:
        lab, col = external_label(block), net.ip_col(block[0][0])
        for b in eps:
            p = net.connection(col, net.endpoint_col(b))
            if not p.empty:
                out.setdefault((lab, b.label), Conn(lab, b.label, p, "", b.namespace))
    for block in net.dst_blocks:
        lab, col = external_label(block), net.ip_col(block[0][0])
        for a in eps:
            p = net.connection(net.endpoint_col(a), col)
            if not p.empty:
                out.setdefault((a.label, lab), Conn(a.label, lab, p, a.namespace, ""))
    return [out[k] for k in sorted(out)]


def test_streamed_connections_equal_pairwise_evaluation() -> None:
    net = network_from_docs(_docs())
    assert any(
        len({net.endpoint_col(e) for e in net.endpoints if e.label == lab}) > 1
        for lab in {e.label for e in net.endpoints}
    ), "the fixture must have a workload in several classes"
    got = list(iter_connections(net))
    want = _pairwise(net)
    assert got == want and len(got) > 50
    internal = [c for c in want if c.src_ns and c.dst_ns]
    s = summary(net)
    assert s["workload_pairs"] == len(internal)
    assert s["external_pairs"] == len(want) - len(internal)
    assert s["workloads"] == len({e.label for e in net.endpoints})
    assert render(iter(got), "json") == render(want, "json")


def test_html_view_is_bounded_and_counts_from_the_class_map() -> None:
    net = network_from_docs(_docs())
    total = len(_pairwise(net))
    out = connectivity_html(net, max_edges=10)
    assert f"{total} allowed connections" in out and "Too many connections to draw" in out
    assert "<svg" not in out and "most exposed workloads" in out


def test_html_view_past_the_class_bound_points_to_netpol_list() -> None:
    net = network_from_docs(_docs())
    out = connectivity_html(net, max_classes=2)
    assert f"fall into {net.nclasses} equivalence classes" in out and "netpol list --max-pairs" in out
    assert "<svg" not in out
