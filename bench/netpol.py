"""Benchmark for `kubestrata netpol` (issue 6): 10,000 pods in 500 namespaces with 2,000 policies.

Generates a realistic snapshot (real Pod objects with status IPs, owned by ReplicaSets, named
ports; per-namespace default-deny, ingress-controller, app-to-app and DNS/egress policies; a few
AdminNetworkPolicies and a BaselineAdminNetworkPolicy), writes it to bench/out/netpol/, loads it
through the normal loader and times:
  - load + parse (YAML to objects),
  - building the analysis (policies, pods, equivalence classes),
  - the full connectivity map between all equivalence classes (and address blocks),
  - ``eval`` of one connection after loading, cold (first query) and warm.
Prints the figures and the peak RSS.

    python bench/netpol.py [--pods 10000] [--namespaces 500] [--policies 2000]
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kubestrata.kube.cluster import Cluster  # noqa: E402
from kubestrata.kube.loader import load_paths  # noqa: E402
from kubestrata.netpol.engine import Network, Options  # noqa: E402

APPS = [
    ("web", [("http", 8080, "TCP")]),
    ("api", [("http", 8080, "TCP"), ("grpc", 9090, "TCP")]),
    ("worker", [("metrics", 9100, "TCP")]),
    ("db", [("pg", 5432, "TCP")]),
    ("cache", [("redis", 6379, "TCP")]),
]


def generate(
    pods: int, namespaces: int, policies: int, out: Path, seed: int = 7, unique: bool = False
) -> None:
    rnd = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    docs: list[dict] = []
    per_ns = pods // namespaces
    replicas = max(1, per_ns // len(APPS))
    ip = 0
    for i in range(namespaces):
        ns = f"ns-{i:03d}"
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "labels": {"team": f"t{i % 25}", "env": rnd.choice(["prod", "dev"])},
                },
            }
        )
        made = 0
        for app, ports in APPS:
            rs = f"{app}-{rnd.getrandbits(32):08x}"
            for r in range(replicas):
                if made >= per_ns:
                    break
                ip += 1
                docs.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": f"{rs}-{r}",
                            "namespace": ns,
                            "labels": {
                                "app": app,
                                "tier": "backend" if app != "web" else "frontend",
                                "pod-template-hash": rs.split("-")[1],
                            },
                            "ownerReferences": [
                                {
                                    "apiVersion": "apps/v1",
                                    "kind": "ReplicaSet",
                                    "name": rs,
                                    "controller": True,
                                    "uid": f"u{i}-{app}",
                                }
                            ],
                        },
                        "spec": {
                            "containers": [
                                {
                                    "name": app,
                                    "image": f"registry.example/{app}:1",
                                    "ports": [
                                        {"name": n, "containerPort": p, "protocol": pr} for n, p, pr in ports
                                    ],
                                }
                            ]
                        },
                        "status": {
                            "hostIP": "192.168.0.1",
                            "podIP": f"10.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}",
                            "podIPs": [{"ip": f"10.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"}],
                        },
                    }
                )
                made += 1
    admin = 4
    np_budget = policies - admin
    made = 0
    for i in range(namespaces):
        if made >= np_budget:
            break
        ns = f"ns-{i:03d}"
        pols = [
            {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            {
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "ns-000"}
                                },
                                "podSelector": {"matchLabels": {"app": "web"}},
                            },
                            {
                                "ipBlock": {
                                    "cidr": "0.0.0.0/0",
                                    "except": ["10.0.0.0/8", f"203.0.{i % 256}.0/24"],
                                }
                            },
                        ],
                        "ports": [{"port": "http"}],
                    }
                ],
            },
            {
                "podSelector": {
                    "matchExpressions": [{"key": "app", "operator": "In", "values": ["api", "worker"]}]
                },
                "ingress": [
                    {
                        "from": [
                            {"podSelector": {"matchLabels": {"tier": "frontend"}}},
                            {"namespaceSelector": {"matchLabels": {"team": f"t{(i + 1) % 25}"}}},
                        ],
                        "ports": [{"port": 8080}, {"port": 9090, "endPort": 9100}],
                    }
                ],
            },
            {
                "podSelector": {"matchLabels": {"tier": "backend"}},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
                        ],
                        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                    },
                    {"to": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"port": "pg"}]},
                    {"to": [{"ipBlock": {"cidr": f"52.{i % 256}.0.0/16"}}], "ports": [{"port": 443}]},
                ],
            },
        ]
        for k, spec in enumerate(pols):
            if made >= np_budget:
                break
            docs.append(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": f"p{k}", "namespace": ns},
                    "spec": spec,
                }
            )
            made += 1
    anp = "policy.networking.k8s.io/v1alpha1"
    docs += [
        {
            "apiVersion": anp,
            "kind": "AdminNetworkPolicy",
            "metadata": {"name": "deny-ssh"},
            "spec": {
                "priority": 1,
                "subject": {"namespaces": {}},
                "ingress": [
                    {
                        "action": "Deny",
                        "from": [{"namespaces": {}}],
                        "ports": [{"portNumber": {"protocol": "TCP", "port": 22}}],
                    }
                ],
            },
        },
        {
            "apiVersion": anp,
            "kind": "AdminNetworkPolicy",
            "metadata": {"name": "allow-monitoring"},
            "spec": {
                "priority": 2,
                "subject": {"namespaces": {}},
                "ingress": [
                    {
                        "action": "Allow",
                        "from": [{"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "ns-001"}}}],
                        "ports": [{"namedPort": "metrics"}],
                    }
                ],
            },
        },
        {
            "apiVersion": anp,
            "kind": "AdminNetworkPolicy",
            "metadata": {"name": "pass-prod"},
            "spec": {
                "priority": 3,
                "subject": {"namespaces": {"matchLabels": {"env": "prod"}}},
                "egress": [{"action": "Pass", "to": [{"networks": ["0.0.0.0/0"]}]}],
            },
        },
        {
            "apiVersion": anp,
            "kind": "BaselineAdminNetworkPolicy",
            "metadata": {"name": "default"},
            "spec": {
                "subject": {"namespaces": {}},
                "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}],
            },
        },
    ]
    (out / "snapshot.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--namespaces", type=int, default=500)
    ap.add_argument("--policies", type=int, default=2_000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "netpol"))
    ap.add_argument(
        "--unique-pod-label",
        action="store_true",
        help="give every pod its own label value (as StatefulSet pods carry), to show that labels "
        "no selector reads do not split equivalence classes",
    )
    args = ap.parse_args()
    out = Path(args.out)
    generate(args.pods, args.namespaces, args.policies, out, unique=args.unique_pod_label)

    t0 = time.perf_counter()
    loaded = load_paths([out / "snapshot.yaml"])
    cluster = Cluster(loaded.objects)
    t1 = time.perf_counter()
    net = Network(cluster, Options())
    t2 = time.perf_counter()
    mx = net.full_matrix()
    t3 = time.perf_counter()
    pods = sum(1 for o in loaded.objects if o.kind == "Pod")
    pols = sum(1 for o in loaded.objects if "NetworkPolicy" in o.kind)
    print(
        f"input: {pods} pods, {len(net.namespaces) - 1} namespaces, {pols} policies "
        f"({len(net.policies)} valid), {len(net.endpoints)} workloads"
    )
    print(
        f"equivalence classes: {net.nclasses - 1} (+1 probe); address blocks: {len(net.addr_atoms)}; "
        f"distinct connection sets: {len(mx.table)}"
    )
    print(f"load+parse YAML:        {t1 - t0:7.2f} s")
    print(f"build analysis:         {t2 - t1:7.2f} s")
    print(f"full connectivity map:  {t3 - t2:7.2f} s  ({mx.pods.shape[0]}x{mx.pods.shape[1]} classes)")

    # the map must agree with the step-by-step explain evaluator on sampled pairs
    rnd = random.Random(3)
    for _ in range(300):
        a, b = rnd.randrange(net.nclasses), rnd.randrange(net.nclasses)
        direct = net.verdict(a, "egress", b).allowed & net.verdict(b, "ingress", a).allowed
        assert mx.pod(a, b) == direct, (a, b)

    # eval after loading: fresh analysis, first queries compute the two classes' verdicts on demand.
    # The loaded snapshot is moved out of the cyclic GC's view, as a long-running holder would do.
    net2 = Network(cluster, Options())
    gc.collect()
    gc.freeze()
    rnd = random.Random(1)
    eps = net2.endpoints
    cold, warm = [], []
    for _ in range(200):
        a, b = rnd.choice(eps), rnd.choice(eps)
        s = time.perf_counter()
        net2.connection(net2.endpoint_col(a), net2.endpoint_col(b)).allows("TCP", 8080)
        cold.append(time.perf_counter() - s)
    for _ in range(2000):
        a, b = rnd.choice(eps), rnd.choice(eps)
        s = time.perf_counter()
        net2.connection(net2.endpoint_col(a), net2.endpoint_col(b)).allows("TCP", 8080)
        warm.append(time.perf_counter() - s)
    q = statistics.quantiles
    print(
        f"eval one connection, first queries: median {statistics.median(cold) * 1e3:.3f} ms, "
        f"p99 {q(cold, n=100)[98] * 1e3:.3f} ms, max {max(cold) * 1e3:.3f} ms"
    )
    print(
        f"eval one connection, warm:          median {statistics.median(warm) * 1e3:.4f} ms, "
        f"p99 {q(warm, n=100)[98] * 1e3:.4f} ms"
    )
    print(f"peak RSS: {rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
