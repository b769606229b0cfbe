"""Pod Security Standards throughput: pods/s at restricted:latest on one core, and what-if over
100,000 pods. Writes bench/out/pss.json. Run: PYTHONPATH=src python bench/pss.py [--pods N]"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.pss import LATEST, Level, LevelVersion, evaluate_pod
from kubestrata.pss.whatif import rollout, what_if_label

HARDENED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}


def typical_pod(i: int, ns: str, owner: str | None, variant: int | None = None) -> dict:
    """A realistic application pod: two containers, probes, env, resources, volumes. One in three
    is restricted-compliant, the rest have the usual gaps (no securityContext, root, hostPath...)."""
    v = i if variant is None else variant
    kind = v % 6
    spec: dict = {
        "serviceAccountName": "app",
        "containers": [
            {
                "name": "app",
                "image": f"registry.example.com/team/app:{v}",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "env": [
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "config", "mountPath": "/etc/app"},
                ],
            },
            {"name": "proxy", "image": "envoyproxy/envoy:v1.29", "ports": [{"containerPort": 9901}]},
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "config", "configMap": {"name": "app"}}],
    }
    if kind in (0, 1):  # restricted-compliant
        spec["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        for c in spec["containers"]:
            c["securityContext"] = copy.deepcopy(HARDENED)
    elif kind == 2:  # baseline-compliant, no hardening
        pass
    elif kind == 3:  # partly hardened
        spec["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": False, "runAsUser": 0}
    elif kind == 4:  # node agent
        spec["hostNetwork"] = True
        spec["volumes"].append({"name": "logs", "hostPath": {"path": "/var/log"}})
        spec["containers"][0]["securityContext"] = {"privileged": True}
    else:  # init container and extra capability
        spec["initContainers"] = [{"name": "migrate", "image": "registry.example.com/team/migrate:1"}]
        spec["containers"][1]["securityContext"] = {"capabilities": {"add": ["NET_ADMIN"]}}
    meta: dict = {"name": f"app-{i}", "namespace": ns, "labels": {"app": "app", "pod-template-hash": "5d8f"}}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "controller": True, "uid": owner}
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _timed(pods: list[dict], n: int) -> tuple[float, int]:
    """CPU seconds of this process (the box is shared with other jobs: wall time measures them too)."""
    denied = 0
    m = len(pods)
    t = time.process_time()
    for i in range(n):
        if not evaluate_pod(pods[i % m], Level.RESTRICTED, LATEST).allowed:
            denied += 1
    return time.process_time() - t, denied


def bench_evaluate(n: int, repeat: int) -> dict:
    """evaluate_pod one pod at a time, no caching: every call decodes, type-checks and runs every
    restricted:latest check. Two pools: 600 distinct pods cycled (CPU-cache warm) and n distinct
    pods (each touched once). Best of ``repeat`` runs: the box is shared, the best run is the one
    least disturbed by other processes."""
    warm = [typical_pod(i, "bench", None) for i in range(600)]
    cold = [typical_pod(i, "bench", None) for i in range(n)]
    _timed(warm, 600)
    best_warm = min(_timed(warm, n) for _ in range(repeat))
    best_cold = min(_timed(cold, n) for _ in range(repeat))
    return {
        "pods": n,
        "repeat": repeat,
        "podsPerSecondWarmPool600": round(n / best_warm[0]),
        "podsPerSecondDistinct": round(n / best_cold[0]),
        "deniedShare": round(best_cold[1] / n, 3),
    }


def bench_what_if(n: int, repeat: int, replicas: int = 20, namespaces: int = 50) -> dict:
    t0 = time.perf_counter()
    objs = []
    for ns_i in range(namespaces):
        ns = f"team-{ns_i}"
        objs.append(
            KubeObject(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"pod-security.kubernetes.io/enforce": "baseline"}},
                }
            )
        )
    per_ns = n // namespaces
    for ns_i in range(namespaces):
        ns = f"team-{ns_i}"
        for j in range(per_ns):
            d = ns_i * per_ns + j // replicas  # the replicas of a Deployment share its pod template
            objs.append(KubeObject(typical_pod(ns_i * per_ns + j, ns, f"svc-{d}-5d8f", variant=d)))
    cluster = Cluster(objs)
    build = time.perf_counter() - t0
    lv = LevelVersion(Level.RESTRICTED, LATEST)
    label_dt = rollout_dt = float("inf")
    label_wall = float("inf")
    for _ in range(repeat):
        t, w = time.process_time(), time.perf_counter()
        reports = what_if_label(cluster, lv)
        label_dt = min(label_dt, time.process_time() - t)
        label_wall = min(label_wall, time.perf_counter() - w)
        t = time.process_time()
        rows = rollout(cluster, LATEST)
        rollout_dt = min(rollout_dt, time.process_time() - t)
    return {
        "pods": per_ns * namespaces,
        "namespaces": namespaces,
        "replicasPerDeployment": replicas,
        "snapshotBuildSeconds": round(build, 3),
        "whatIfEnforceRestrictedCpuSeconds": round(label_dt, 3),
        "whatIfEnforceRestrictedWallSeconds": round(label_wall, 3),
        "podsDenied": sum(r.pods_denied for r in reports),
        "ownerGroups": sum(len(r.groups) for r in reports),
        "rolloutBaselineAndRestrictedCpuSeconds": round(rollout_dt, 3),
        "rolloutRows": len(rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=100_000, help="evaluations per throughput run")
    ap.add_argument("--what-if-pods", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    res = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "loadAverage": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "evaluateRestrictedLatest": bench_evaluate(args.pods, args.repeat),
        "whatIf": bench_what_if(args.what_if_pods, args.repeat),
        "whatIfEveryPodDistinct": bench_what_if(args.what_if_pods, args.repeat, replicas=1),
    }
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "pss.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    ok = (
        res["evaluateRestrictedLatest"]["podsPerSecondDistinct"] >= 50_000
        and max(
            res["whatIf"]["whatIfEnforceRestrictedCpuSeconds"],
            res["whatIfEveryPodDistinct"]["whatIfEnforceRestrictedCpuSeconds"],
        )
        < 5
    )
    print("targets met" if ok else "TARGETS MISSED", file=sys.stderr)


if __name__ == "__main__":
    main()
