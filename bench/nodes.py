"""Benchmark: `nodes audit` on one node, and the rotation plan for a large cluster.

Targets (issue 16): the audit under 1 s; the plan for 5,000 nodes, 100,000 pods and 2,000 PDBs under 5 s.
CPU time (time.process_time), because the benchmark machine is shared.

    PYTHONPATH=src python bench/nodes.py [--nodes 5000] [--pods 100000] [--pdbs 2000] [--out FILE]

The audit runs on a real directory tree (as in tests/nodes) with a real process named kubelet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubestrata.nodes.audit import audit_host
from kubestrata.nodes.rotate.planning import plan


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the `kubelet --version` run)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def bench_audit(runs: int = 20) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for sub in ("etc/kubernetes/kubelet", "var/lib/kubelet", "usr/bin"):
            (root / sub).mkdir(parents=True)
        (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
        (root / "etc/group").write_text("root:x:0:\n")
        (root / "etc/kubernetes/kubelet/kubelet-config.json").write_text(
            json.dumps({"authentication": {"anonymous": {"enabled": False}}, "readOnlyPort": 0})
        )
        (root / "var/lib/kubelet/kubeconfig").write_text("apiVersion: v1\n")
        kubelet = root / "usr/bin/kubelet"
        kubelet.write_text(
            '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Kubernetes v1.33.1"; exit 0; fi\n'
            "trap 'exit 0' TERM\nwhile :; do sleep 0.1; done\n"
        )
        kubelet.chmod(0o755)
        p = subprocess.Popen(
            [
                str(kubelet),
                "--config=/etc/kubernetes/kubelet/kubelet-config.json",
                "--kubeconfig",
                "/var/lib/kubelet/kubeconfig",
                "--node-ip=10.0.0.1",
            ],
        )
        try:
            time.sleep(0.2)
            samples = []
            samples_fixed = []
            walls = []
            for _ in range(runs):
                c0, w0 = _cpu(), time.perf_counter()
                audit_host(root=root)  # benchmark auto: runs `kubelet --version` (a child process)
                samples.append(_cpu() - c0)
                walls.append(time.perf_counter() - w0)
                c0 = _cpu()
                audit_host(root=root, benchmark="eks-1.8.0")
                samples_fixed.append(_cpu() - c0)
        finally:
            p.terminate()
            p.wait()
    samples.sort()
    samples_fixed.sort()
    walls.sort()
    return {
        "audit_auto_median_wall_s": walls[len(walls) // 2],
        "audit_auto_median_cpu_s": samples[len(samples) // 2],
        "audit_auto_max_cpu_s": samples[-1],
        "audit_fixed_median_cpu_s": samples_fixed[len(samples_fixed) // 2],
        "audit_fixed_max_cpu_s": samples_fixed[-1],
    }


def synthetic_cluster(n_nodes: int, n_pods: int, n_pdbs: int, seed: int = 7) -> tuple[list, list, list]:
    rnd = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    nodes = []
    for i in range(n_nodes):
        created = now - dt.timedelta(days=rnd.uniform(0, 60))
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": f"ip-10-{i // 250}-{i % 250}.ec2.internal",
                    "creationTimestamp": created.isoformat().replace("+00:00", "Z"),
                    "labels": {
                        "eks.amazonaws.com/nodegroup": f"ng-{i % 20}",
                        "topology.kubernetes.io/zone": zones[i % 3],
                    },
                },
                "spec": {},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
        )
    namespaces = [f"team-{i}" for i in range(100)]
    apps = [(namespaces[i % 100], f"app-{i}") for i in range(n_pdbs * 2)]  # half the apps have a PDB
    pods = []
    for i in range(n_pods):
        ns, app = apps[i % len(apps)]
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{app}-{i}",
                    "namespace": ns,
                    "labels": {"app": app, "pod-template-hash": "7d9f8c", "tier": "web"},
                    "ownerReferences": [{"kind": "ReplicaSet", "name": f"{app}-7d9f8c"}],
                },
                "spec": {"nodeName": nodes[rnd.randrange(n_nodes)]["metadata"]["name"]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            }
        )
    pdbs = []
    for i in range(n_pdbs):
        ns, app = apps[i]
        spec = {"minAvailable": "50%"} if i % 2 else {"maxUnavailable": 1}
        pdbs.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": f"{app}-pdb", "namespace": ns},
                "spec": {"selector": {"matchLabels": {"app": app}}, **spec},
            }
        )
    return nodes, pods, pdbs


def bench_plan(n_nodes: int, n_pods: int, n_pdbs: int) -> dict[str, float]:
    nodes, pods, pdbs = synthetic_cluster(n_nodes, n_pods, n_pdbs)
    c0 = time.process_time()
    p = plan(nodes, pods, pdbs, dt.timedelta(days=21), dt.datetime.now(dt.UTC))
    cpu = time.process_time() - c0
    return {
        "plan_cpu_s": cpu,
        "plan_steps": len(p.steps),
        "plan_evictions": sum(len(s.evict) for s in p.steps),
        "plan_waits": sum(len(s.waits) for s in p.steps),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=100_000)
    ap.add_argument("--pdbs", type=int, default=2000)
    ap.add_argument("--out", default="bench/out/nodes.json")
    a = ap.parse_args()
    res: dict[str, object] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "nodes": a.nodes,
        "pods": a.pods,
        "pdbs": a.pdbs,
    }
    res.update(bench_audit())
    res.update(bench_plan(a.nodes, a.pods, a.pdbs))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    json.dump(res, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
