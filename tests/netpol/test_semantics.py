"""Edge cases of reference §4, the implementation flags (each both ways), tiers and bad input."""

from __future__ import annotations

import pytest

from kubestrata.netpol import analysis
from kubestrata.netpol.analysis import coverage, resolve_side, security_groups
from kubestrata.netpol.engine import Options
from kubestrata.netpol.sets import ALL, NONE, PortSet
from kubestrata.report.netpol import render_explanation
from tests.netpol.helpers import network_from_docs


def explain(net, src, dst):
    """The explanation as the CLI prints it."""
    return render_explanation(analysis.explain(net, src, dst))


def ns(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def deploy(namespace: str, name: str, labels: dict, ports: list[dict] | None = None, **spec) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "i", "ports": ports or []}], **spec},
            },
        },
    }


def np(namespace: str, name: str, spec: dict) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def conn(net, a: str, b: str) -> PortSet:
    cols = {e.ref: net.endpoint_col(e) for e in net.endpoints}
    return net.connection(cols[a], cols[b])


BASE = [
    ns("x"),
    ns("y", team="blue"),
    deploy("x", "a", {"app": "a"}),
    deploy("x", "b", {"app": "b"}),
    deploy("y", "c", {"app": "c"}),
]


def test_egress_only_policy_without_policy_types_also_isolates_ingress() -> None:
    net = network_from_docs(
        [
            *BASE,
            np(
                "x",
                "p",
                {"podSelector": {"matchLabels": {"app": "a"}}, "egress": [{"to": [{"podSelector": {}}]}]},
            ),
        ]
    )
    assert conn(net, "x/b", "x/a") is NONE  # trap 2: Ingress is always a policy type
    assert conn(net, "x/a", "x/b") is ALL
    assert conn(net, "x/a", "y/c") is NONE


def test_empty_egress_without_policy_types_does_not_isolate_egress() -> None:
    net = network_from_docs([*BASE, np("x", "p", {"podSelector": {}, "egress": []})])
    assert conn(net, "x/a", "y/c") is ALL  # trap 1
    assert conn(net, "y/c", "x/a") is NONE


def test_missing_vs_empty_rules() -> None:
    deny = network_from_docs(
        [*BASE, np("x", "p", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []})]
    )
    allow = network_from_docs(
        [*BASE, np("x", "p", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]})]
    )
    assert conn(deny, "y/c", "x/a") is NONE
    assert conn(allow, "y/c", "x/a") is ALL


def test_one_peer_is_and_two_peers_is_or() -> None:
    one = {
        "namespaceSelector": {"matchLabels": {"team": "blue"}},
        "podSelector": {"matchLabels": {"app": "b"}},
    }
    two = [
        {"namespaceSelector": {"matchLabels": {"team": "blue"}}},
        {"podSelector": {"matchLabels": {"app": "b"}}},
    ]
    and_net = network_from_docs(
        [*BASE, np("x", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [one]}]})]
    )
    or_net = network_from_docs(
        [*BASE, np("x", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": two}]})]
    )
    assert conn(and_net, "y/c", "x/a") is NONE and conn(and_net, "x/b", "x/a") is NONE
    assert conn(or_net, "y/c", "x/a") is ALL and conn(or_net, "x/b", "x/a") is ALL


def test_named_port_resolves_per_destination_pod_and_protocol_must_match() -> None:
    docs = [
        ns("x"),
        deploy("x", "client", {"app": "client"}),
        deploy("x", "web1", {"tier": "web"}, [{"name": "http", "containerPort": 8080}]),
        deploy("x", "web2", {"tier": "web"}, [{"name": "http", "containerPort": 9090}]),
        deploy("x", "udp", {"tier": "web"}, [{"name": "http", "containerPort": 7070, "protocol": "UDP"}]),
        np(
            "x",
            "p",
            {
                "podSelector": {"matchLabels": {"app": "client"}},
                "policyTypes": ["Egress"],
                "egress": [{"ports": [{"port": "http"}]}],
            },
        ),
    ]
    net = network_from_docs(docs)
    assert str(conn(net, "x/client", "x/web1")) == "TCP 8080"
    assert str(conn(net, "x/client", "x/web2")) == "TCP 9090"
    assert conn(net, "x/client", "x/udp") is NONE  # the rule's TCP does not match the UDP port


def test_end_port_and_protocol_only_ports() -> None:
    net = network_from_docs(
        [
            *BASE,
            np(
                "x",
                "p",
                {
                    "podSelector": {},
                    "ingress": [
                        {
                            "ports": [
                                {"port": 8000, "endPort": 8100},
                                {"protocol": "UDP"},
                                {"port": 53, "protocol": "SCTP"},
                            ]
                        }
                    ],
                },
            ),
        ]
    )
    assert str(conn(net, "y/c", "x/a")) == "SCTP 53,TCP 8000-8100,UDP 1-65535"


def test_ipblock_except_and_flag_both_ways() -> None:
    pods = [
        ns("x"),
        ns("y"),
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "s", "namespace": "x", "labels": {"app": "s"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"podIP": "10.1.0.5"},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "t", "namespace": "y"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"podIP": "10.1.0.9"},
        },
        np(
            "x",
            "p",
            {
                "podSelector": {"matchLabels": {"app": "s"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.1.0.0/16", "except": ["10.1.0.8/29"]}}]}],
            },
        ),
    ]
    on = network_from_docs(pods, Options(ipblock_matches_pods=True))
    off = network_from_docs(pods, Options(ipblock_matches_pods=False))
    assert conn(on, "x/s", "y/t") is NONE  # 10.1.0.9 is in the except
    side = resolve_side(on, None, "10.1.200.1")
    assert on.connection(on.endpoint_col(on.find_endpoint("x/s")), side.col) is ALL
    assert (
        on.connection(on.endpoint_col(on.find_endpoint("x/s")), resolve_side(on, None, "10.1.0.10").col)
        is NONE
    )
    pods[3]["status"]["podIP"] = "10.1.0.2"
    on = network_from_docs(pods, Options(ipblock_matches_pods=True))
    off = network_from_docs(pods, Options(ipblock_matches_pods=False))
    assert conn(on, "x/s", "y/t") is ALL
    assert conn(off, "x/s", "y/t") is NONE


def test_hostnetwork_flag_both_ways() -> None:
    docs = [
        ns("x"),
        deploy("x", "agent", {"app": "agent"}, hostNetwork=True),
        deploy("x", "a", {"app": "a"}),
        np("x", "deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
    ]
    node = network_from_docs(docs, Options(hostnetwork="node"))
    pod = network_from_docs(docs, Options(hostnetwork="pod"))
    assert conn(node, "x/a", "x/agent") is NONE  # x/a's egress is denied either way
    assert conn(node, "x/agent", "x/agent") is ALL
    assert coverage(node).unrestricted[0].name == "agent"  # never selected: node traffic
    assert [e.name for e in coverage(pod).unrestricted] == []


def test_aws_strict_flag_both_ways() -> None:
    standard = network_from_docs(BASE, Options(aws_strict=False))
    strict = network_from_docs(BASE, Options(aws_strict=True))
    assert conn(standard, "x/a", "y/c") is ALL
    assert conn(strict, "x/a", "y/c") is NONE


def _admin(kind: str, name: str, spec: dict, api: str = "policy.networking.k8s.io/v1alpha1") -> dict:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec}


def test_tiers_admin_np_baseline() -> None:
    subj = {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "x"}}}
    docs = [
        *BASE,
        _admin(
            "AdminNetworkPolicy",
            "deny-81",
            {
                "priority": 5,
                "subject": subj,
                "ingress": [
                    {
                        "action": "Deny",
                        "from": [{"namespaces": {}}],
                        "ports": [{"portNumber": {"protocol": "TCP", "port": 81}}],
                    },
                    {
                        "action": "Pass",
                        "from": [{"namespaces": {}}],
                        "ports": [{"portNumber": {"protocol": "TCP", "port": 80}}],
                    },
                    {
                        "action": "Allow",
                        "from": [{"namespaces": {}}],
                        "ports": [{"portNumber": {"protocol": "TCP", "port": 443}}],
                    },
                ],
            },
        ),
        np(
            "x",
            "only-b",
            {
                "podSelector": {"matchLabels": {"app": "a"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}],
            },
        ),
        _admin(
            "BaselineAdminNetworkPolicy",
            "default",
            {"subject": subj, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]},
        ),
    ]
    net = network_from_docs(docs)
    # x/a: NetworkPolicy isolates it; 443 allowed by ANP over the NP; 81 denied by ANP even from x/b
    assert str(conn(net, "y/c", "x/a")) == "TCP 443"
    assert conn(net, "x/b", "x/a") == ALL - PortSet.of("TCP", 81, 81)
    # x/b: no NetworkPolicy: passed ports fall to the baseline deny
    assert str(conn(net, "y/c", "x/b")) == "TCP 443"
    text = explain(net, resolve_side(net, "y/c", None), resolve_side(net, "x/b", None))
    assert "denies" in text and "BaselineAdminNetworkPolicy 'default'" in text


def test_cluster_network_policy_v1alpha2_tiers() -> None:
    api = "policy.networking.k8s.io/v1alpha2"
    docs = [
        *BASE,
        _admin(
            "ClusterNetworkPolicy",
            "admin",
            {
                "tier": "Admin",
                "priority": 1,
                "subject": {"namespaces": {}},
                "egress": [
                    {
                        "action": "Accept",
                        "to": [{"namespaces": {}}],
                        "protocols": [{"tcp": {"destinationPort": {"range": {"start": 80, "end": 90}}}}],
                    }
                ],
            },
            api,
        ),
        _admin(
            "ClusterNetworkPolicy",
            "base",
            {
                "tier": "Baseline",
                "priority": 1,
                "subject": {"namespaces": {}},
                "egress": [{"action": "Deny", "to": [{"namespaces": {}}]}],
            },
            api,
        ),
    ]
    net = network_from_docs(docs)
    assert str(conn(net, "x/a", "y/c")) == "TCP 80-90"


def test_security_group_policy_membership() -> None:
    sgp = {
        "apiVersion": "vpcresources.k8s.aws/v1beta1",
        "kind": "SecurityGroupPolicy",
        "metadata": {"name": "db", "namespace": "x"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "a"}},
            "securityGroups": {"groupIds": ["sg-1", "sg-2"]},
        },
    }
    net = network_from_docs([*BASE, sgp])
    assert security_groups(net, net.find_endpoint("x/a")) == ["sg-1", "sg-2"]
    assert security_groups(net, net.find_endpoint("x/b")) == []
    assert "sg-1" in explain(net, resolve_side(net, "x/b", None), resolve_side(net, "x/a", None))


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (
            {
                "podSelector": {},
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}],
            },
            "spec.ingress[0].from[0]",
            "combine ipBlock",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": "http", "endPort": 90}]}]},
            "spec.ingress[0].ports[0].endPort",
            "named port",
        ),
        (
            {
                "podSelector": {},
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}],
            },
            "spec.egress[0].to[0].ipBlock.except[0]",
            "within cidr",
        ),
        (
            {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]},
            "spec.egress[0].to[0].ipBlock.cidr",
            "invalid CIDR",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "endPort": 70}]}]},
            "spec.ingress[0].ports[0].endPort",
            "below port",
        ),
    ],
)
def test_invalid_policy_is_left_out_named_and_analysis_goes_on(spec: dict, field: str, words: str) -> None:
    net = network_from_docs(
        [
            *BASE,
            np("x", "bad", spec),
            np("x", "good", {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"]}),
        ]
    )
    assert len(net.gaps) == 1
    msg = net.gaps[0].detail
    assert "NetworkPolicy x/bad" in msg and field in msg and words in msg, msg
    assert conn(net, "y/c", "x/a") is NONE  # the good policy still applies
    assert conn(net, "y/c", "x/b") is ALL  # the bad one contributes nothing


def _sgp(namespace: str, name: str, labels: dict, groups: list[str]) -> dict:
    return {
        "apiVersion": "vpcresources.k8s.aws/v1beta1",
        "kind": "SecurityGroupPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": labels}, "securityGroups": {"groupIds": groups}},
    }


def _perm(
    proto: str, lo: int = -1, hi: int = -1, cidrs: tuple[str, ...] = (), groups: tuple[str, ...] = ()
) -> dict:
    return {
        "IpProtocol": proto,
        "FromPort": lo,
        "ToPort": hi,
        "IpRanges": [{"CidrIp": c} for c in cidrs],
        "UserIdGroupPairs": [{"GroupId": g} for g in groups],
    }


def test_security_group_layer_both_ways(tmp_path) -> None:
    import json

    from kubestrata.netpol.securitygroups import load_security_groups

    docs = [*BASE, _sgp("x", "a", {"app": "a"}, ["sg-a"]), _sgp("x", "b", {"app": "b"}, ["sg-b"])]
    f = tmp_path / "sg.json"
    f.write_text(
        json.dumps(
            {
                "SecurityGroups": [
                    {
                        "GroupId": "sg-a",
                        "IpPermissions": [_perm("tcp", 80, 80, groups=("sg-b",))],
                        "IpPermissionsEgress": [_perm("-1", cidrs=("0.0.0.0/0",))],
                    },
                    {
                        "GroupId": "sg-b",
                        "IpPermissions": [],
                        "IpPermissionsEgress": [_perm("tcp", 80, 90, cidrs=("0.0.0.0/0",))],
                    },
                ]
            }
        )
    )
    without = network_from_docs(docs)
    with_sg = network_from_docs(docs)
    with_sg = type(with_sg)(with_sg.cluster, Options(), security_groups=load_security_groups(str(f)))
    assert conn(without, "x/b", "x/a") is ALL  # membership alone restricts nothing
    assert str(conn(with_sg, "x/b", "x/a")) == "TCP 80"  # group reference + b's egress 80-90
    assert conn(with_sg, "y/c", "x/a") is NONE  # c holds no referenced group
    assert conn(with_sg, "x/a", "y/c") is ALL  # egress to 0.0.0.0/0 holds every pod
    assert conn(with_sg, "x/a", "x/b") is NONE  # sg-b has no ingress rule
    text = explain(with_sg, resolve_side(with_sg, "y/c", None), resolve_side(with_sg, "x/a", None))
    assert "no ingress rule of security groups sg-a matches the peer" in text


def test_security_groups_file_errors(tmp_path) -> None:
    from kubestrata.errors import InputError
    from kubestrata.netpol.securitygroups import load_security_groups

    f = tmp_path / "sg.json"
    f.write_text(
        '{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", '
        '"FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "10.0.0.0/99"}]}]}]}'
    )
    with pytest.raises(InputError) as e:
        load_security_groups(str(f))
    assert "SecurityGroups[0].IpPermissions[0].IpRanges[0]" in str(e.value)
    f.write_text("[]")
    with pytest.raises(InputError):
        load_security_groups(str(f))


def _live_web() -> list[dict]:
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "web-7d9f",
            "namespace": "x",
            "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}],
        },
        "spec": {
            "replicas": 3,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    pods = []
    for i, phase in enumerate(["Running", "Running", "Succeeded"]):
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"web-7d9f-{i}",
                    "namespace": "x",
                    "labels": {"app": "web", "pod-template-hash": "7d9f"},
                    "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9f", "controller": True}],
                },
                "spec": {"containers": [{"name": "c", "image": "i"}]},
                "status": {"phase": phase, "podIP": f"10.9.0.{i + 1}"},
            }
        )
    return [ns("x"), deploy("x", "web", {"app": "web"}), rs, *pods]


def test_live_snapshot_names_pods_by_deployment_once() -> None:
    net = network_from_docs(_live_web())
    assert [(e.label, len(e.ips)) for e in net.endpoints] == [("x/web[Deployment]", 2)]
    compat = network_from_docs(_live_web(), Options.np_guard())
    assert sorted({e.label for e in compat.endpoints}) == ["x/web-7d9f[ReplicaSet]", "x/web[Deployment]"]


def test_ks_net_001_fires_for_a_deployment_known_by_its_pods() -> None:
    import yaml

    from kubestrata.checks import load_builtin_checks
    from kubestrata.kube.cluster import Cluster
    from kubestrata.kube.loader import load_text
    from kubestrata.scan import run_scan

    chk = load_builtin_checks().get("KS-NET-001")
    cluster = Cluster(load_text(yaml.safe_dump_all(_live_web()), "live.yaml").objects)
    hits = [f for f in run_scan(cluster, checks=[chk]).findings if f.rule_id == "KS-NET-001"]
    assert [f.object.name for f in hits] == ["web"]


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        (
            {"ports": [{"portRange": {"protocol": "TCP", "start": 90, "end": 80}}]},
            "spec.ingress[0].ports[0].portRange.end",
        ),
        (
            {"protocols": [{"tcp": {"destinationPort": {"range": {"start": 90, "end": 80}}}}]},
            "spec.ingress[0].protocols[0].tcp.destinationPort.range.end",
        ),
    ],
)
def test_admin_policy_port_range_end_below_start(rule: dict, field: str) -> None:
    import json

    from kubestrata.errors import InputError
    from kubestrata.kube.loader import load_objects
    from kubestrata.netpol.model import parse_admin_policy

    anp = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": "r"},
        "spec": {
            "priority": 1,
            "subject": {"namespaces": {}},
            "ingress": [{"action": "Allow", "from": [{"namespaces": {}}], **rule}],
        },
    }
    (obj,) = load_objects(json.dumps(anp))
    with pytest.raises(InputError) as e:
        parse_admin_policy(obj)
    assert e.value.field == field and "end 80 is below start 90" in str(e.value)
