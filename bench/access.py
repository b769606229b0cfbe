"""Benchmark: effective permissions and attack paths for 5,000 RBAC bindings and 2,000 ServiceAccounts.

Target (issue 7): under 5 s on 2 cores. Run: PYTHONPATH=src python bench/access.py [--bindings N] [--sas N]
Writes bench/out/access.json with the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

from kubestrata.access.model import AccessModel, parse_request
from kubestrata.access.paths import JEWELS, AttackGraph
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject, Source
from kubestrata.rbac import service_account_user

VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
RESOURCES = [
    ("", "pods"),
    ("", "secrets"),
    ("", "configmaps"),
    ("apps", "deployments"),
    ("", "services"),
    ("batch", "jobs"),
    ("", "pods/exec"),
    ("", "serviceaccounts/token"),
]


def synth(n_bindings: int, n_sas: int, namespaces: int = 100, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    ns_names = [f"team-{i:03d}" for i in range(namespaces)] + ["kube-system"]
    objs: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ns_names]
    sas = []
    for i in range(n_sas):
        ns = ns_names[i % len(ns_names)]
        name = f"sa-{i}"
        sas.append((ns, name))
        meta: dict = {"name": name, "namespace": ns}
        if i % 50 == 0:
            meta["annotations"] = {
                "eks.amazonaws.com/role-arn": f"arn:aws:iam::111122223333:role/app-{i % 7}"
            }
        objs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
    objs.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "cluster-admin"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
        }
    )
    n_roles = 300
    for i in range(n_roles):
        rules = []
        for _ in range(rnd.randint(1, 4)):
            g, r = rnd.choice(RESOURCES)
            rules.append({"apiGroups": [g], "resources": [r], "verbs": rnd.sample(VERBS, rnd.randint(1, 3))})
        if i < 200:
            objs.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": f"role-{i}", "namespace": ns_names[i % len(ns_names)]},
                    "rules": rules,
                }
            )
        else:
            objs.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": f"crole-{i}"},
                    "rules": rules,
                }
            )
    for i in range(n_bindings):
        ns, sa = rnd.choice(sas)
        subjects = [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]
        if i % 10 == 0:
            subjects.append({"kind": "Group", "name": f"group-{i % 40}"})
        if i % 13 == 0:
            subjects.append({"kind": "User", "name": f"user-{i % 60}"})
        if i < 4500:
            r = rnd.randrange(200)
            bns = ns_names[r % len(ns_names)]
            objs.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": f"rb-{i}", "namespace": bns},
                    "roleRef": {"kind": "Role", "name": f"role-{r}"},
                    "subjects": subjects,
                }
            )
        else:
            role = "cluster-admin" if i % 97 == 0 else f"crole-{rnd.randrange(200, 300)}"
            objs.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": f"crb-{i}"},
                    "roleRef": {"kind": "ClusterRole", "name": role},
                    "subjects": subjects,
                }
            )
    roles = "\n".join(
        f"    - rolearn: arn:aws:iam::111122223333:role/app-{k}\n      username: app-{k}\n      groups: [group-{k}]"
        for k in range(7)
    )
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "aws-auth", "namespace": "kube-system"},
            "data": {"mapRoles": roles},
        }
    )
    return objs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindings", type=int, default=5000)
    ap.add_argument("--sas", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    raw = synth(args.bindings, args.sas)
    objects = [KubeObject(o, Source("bench", i, 1)) for i, o in enumerate(raw)]
    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        cluster = Cluster(list(objects))
        model = AccessModel(cluster)
        t1 = time.perf_counter()
        # effective permissions: every ServiceAccount's grants, and who-can for a set of requests
        n_grants = 0
        for o in cluster.of_kind("ServiceAccount"):
            n_grants += sum(1 for _ in model.rbac.grants_for(service_account_user(o.namespace, o.name)))
        decisions = 0
        probes = [
            parse_request(v, r)
            for v, r in [
                ("get", "secrets"),
                ("create", "pods"),
                ("create", "pods/exec"),
                ("list", "configmaps"),
            ]
        ]
        for o in cluster.of_kind("ServiceAccount"):
            user = service_account_user(o.namespace, o.name)
            for req in probes:
                for ns in (o.namespace, "kube-system"):
                    decisions += model.check(req, user, ns)[0]
        who = 0
        for verb, res in [
            ("get", "secrets"),
            ("create", "pods"),
            ("create", "pods/exec"),
            ("patch", "deployments.apps"),
        ]:
            for ns in ("team-001", "team-050", "kube-system"):
                who += len(model.who_can(parse_request(verb, res), ns))
        t2 = time.perf_counter()
        graph = AttackGraph(model)
        n_edges = sum(len(v) for v in graph.adj.values())
        reach = {}
        for j in JEWELS:
            reach[j] = len(graph.paths_to(j))
        t3 = time.perf_counter()
        runs.append(
            {
                "load_s": t1 - t0,
                "effective_s": t2 - t1,
                "paths_s": t3 - t2,
                "total_s": t3 - t0,
                "grants": n_grants,
                "allowed_decisions": decisions,
                "decisions": 8 * args.sas,
                "who_can_rows": who,
                "nodes": len(graph.labels),
                "edges": n_edges,
                "sources_reaching": reach,
            }
        )
    best = min(runs, key=lambda r: r["total_s"])
    out = {
        "bindings": args.bindings,
        "service_accounts": args.sas,
        "objects": len(objects),
        "best": best,
        "runs": [r["total_s"] for r in runs],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    Path("bench/out").mkdir(parents=True, exist_ok=True)
    Path("bench/out/access.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0 if best["total_s"] < 5.0 else 1


if __name__ == "__main__":
    sys.exit(main())
