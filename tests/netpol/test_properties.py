"""Random snapshots: the mask-splitting engine and its numpy map must agree with the step-by-step
explain evaluator on every class pair, address block and direction."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.netpol.engine import Options
from tests.netpol.helpers import network_from_docs

NS = ["x", "y", "z"]
APPS = ["a", "b", "c"]
label_sel = st.one_of(
    st.just({}),
    st.builds(lambda v: {"matchLabels": {"app": v}}, st.sampled_from(APPS)),
    st.builds(
        lambda vs: {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": vs}]},
        st.lists(st.sampled_from(APPS), min_size=1, max_size=2, unique=True),
    ),
)
ns_sel = st.one_of(
    st.just({}), st.builds(lambda n: {"matchLabels": {"kubernetes.io/metadata.name": n}}, st.sampled_from(NS))
)
cidr = st.sampled_from(["10.0.0.0/8", "10.1.0.0/16", "0.0.0.0/0", "192.168.1.0/24"])
np_peer = st.one_of(
    st.builds(lambda p: {"podSelector": p}, label_sel),
    st.builds(lambda n, p: {"namespaceSelector": n, "podSelector": p}, ns_sel, label_sel),
    st.builds(lambda c: {"ipBlock": {"cidr": c}}, cidr),
)
port = st.one_of(
    st.builds(lambda n: {"port": n}, st.sampled_from([80, 81, 443])),
    st.builds(
        lambda n, p: {"port": n, "protocol": p},
        st.sampled_from(["http", "dns"]),
        st.sampled_from(["TCP", "UDP"]),
    ),
    st.builds(lambda lo: {"port": lo, "endPort": lo + 10}, st.sampled_from([80, 8000])),
    st.builds(lambda p: {"protocol": p}, st.sampled_from(["UDP", "SCTP"])),
)
rule = st.fixed_dictionaries(
    {}, optional={"peers": st.lists(np_peer, max_size=2), "ports": st.lists(port, max_size=2)}
)
network_policy = st.builds(
    lambda i, ns, sel, types, ing, eg: {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"np{i}", "namespace": ns},
        "spec": {
            "podSelector": sel,
            **({"policyTypes": types} if types else {}),
            "ingress": [{"from": r.get("peers", []), "ports": r.get("ports", [])} for r in ing],
            "egress": [{"to": r.get("peers", []), "ports": r.get("ports", [])} for r in eg],
        },
    },
    st.integers(0, 10**6),
    st.sampled_from(NS),
    label_sel,
    st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]),
    st.lists(rule, max_size=2),
    st.lists(rule, max_size=2),
)
admin_rule = st.builds(
    lambda act, n, p, pn: {
        "action": act,
        "peers": [{"pods": {"namespaceSelector": n, "podSelector": p}}],
        "ports": [{"portNumber": {"protocol": "TCP", "port": pn}}] if pn else None,
    },
    st.sampled_from(["Allow", "Deny", "Pass"]),
    ns_sel,
    label_sel,
    st.sampled_from([None, 80, 443]),
)


def _anp(prio: int, rules: list[dict], kind: str = "AdminNetworkPolicy") -> dict:
    def conv(r: dict, key: str) -> dict:
        out = {
            "action": r["action"]
            if kind != "BaselineAdminNetworkPolicy" or r["action"] != "Pass"
            else "Deny",
            key: r["peers"],
        }
        if r["ports"]:
            out["ports"] = r["ports"]
        return out

    spec = {
        "subject": {"namespaces": {}},
        "ingress": [conv(r, "from") for r in rules],
        "egress": [conv(r, "to") for r in rules],
    }
    if kind == "AdminNetworkPolicy":
        spec["priority"] = prio
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": f"anp{prio}" if kind == "AdminNetworkPolicy" else "default"},
        "spec": spec,
    }


def _pods() -> list[dict]:
    out = []
    for i, ns in enumerate(NS):
        for j, app in enumerate(APPS):
            ports = [
                {"name": "http", "containerPort": 8080 + j},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            ]
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": app, "namespace": ns, "labels": {"app": app}},
                    "spec": {"containers": [{"name": "c", "image": "i", "ports": ports[: 1 + (i + j) % 2]}]},
                    "status": {"podIP": f"10.{i}.{j}.1"},
                }
            )
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nps=st.lists(network_policy, max_size=4),
    anps=st.lists(st.lists(admin_rule, min_size=1, max_size=2), max_size=2),
    banp=st.lists(admin_rule, max_size=2),
    ipb=st.booleans(),
    strict=st.booleans(),
)
def test_engine_paths_agree(nps, anps, banp, ipb, strict) -> None:
    docs = _pods() + nps + [_anp(10 + k, rules) for k, rules in enumerate(anps)]
    if banp:
        docs.append(_anp(0, banp, "BaselineAdminNetworkPolicy"))
    net = network_from_docs(docs, Options(ipblock_matches_pods=ipb, aws_strict=strict))
    mx = net.full_matrix()
    for c in range(net.nclasses):
        for col in range(net.ncols):
            for d in ("ingress", "egress"):
                assert net.verdict(c, d, col).allowed == net.lookup(c, d, col)
        for d2 in range(net.nclasses):
            assert mx.pod(c, d2) == net.connection(c, d2)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nps=st.lists(network_policy, min_size=1, max_size=4),
    anps=st.lists(st.lists(admin_rule, min_size=1), max_size=2),
)
def test_matrix_paths_for_many_port_sets_agree(nps, anps) -> None:
    """The large-table (np.unique, chunked) and int32-upgrade branches give the same map as the default."""
    import kubestrata.netpol.reachability as eng

    docs = _pods() + nps + [_anp(10 + k, rules) for k, rules in enumerate(anps)]
    base = network_from_docs(docs).full_matrix()
    saved = eng.LUT_MAX, eng.SMALL_ID_MAX
    try:
        eng.LUT_MAX, eng.SMALL_ID_MAX = 0, 1
        other = network_from_docs(docs).full_matrix()
    finally:
        eng.LUT_MAX, eng.SMALL_ID_MAX = saved
    n = base.pods.shape[0]
    assert [[base.pod(a, b) for b in range(n)] for a in range(n)] == [
        [other.pod(a, b) for b in range(n)] for a in range(n)
    ]
