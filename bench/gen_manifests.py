"""Generate realistic Kubernetes manifests for the scan benchmark.

A cluster of teams: namespaces with PSS labels, applications made of a workload (Deployment,
StatefulSet, DaemonSet, CronJob or Job), a Service, a ServiceAccount, a ConfigMap, often a Role and
RoleBinding and a NetworkPolicy, plus cluster-wide ClusterRoles and ClusterRoleBindings. Postures
vary the way real clusters do: most workloads are decent, some run privileged, mount host paths, use
``latest`` or public registries, skip resources, or set securityContext at pod or container level.

    python bench/gen_manifests.py --objects 50000 --out bench/out/manifests-50000

Deterministic for a given --seed; writes multi-document YAML files of --per-file objects each.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path
from typing import Any

import yaml

try:
    _Dumper: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover
    _Dumper = yaml.SafeDumper

ECR = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
IMAGES = [
    (f"{ECR}/orders", "2.14.3"),
    (f"{ECR}/payments", "1.9.0"),
    (f"{ECR}/catalog", "4.2.1"),
    (f"{ECR}/search", "0.33.2"),
    ("nginx", "1.27.1"),
    ("nginx", "latest"),
    ("redis", "7.2"),
    ("quay.io/prometheus/node-exporter", "v1.8.2"),
    ("ghcr.io/example/worker", None),
    ("public.ecr.aws/docker/library/busybox", "1.36"),
]
HOST_PATHS = ["/var/log", "/var/run/docker.sock", "/data/cache", "/etc/ssl/certs", "/", "/var/lib/kubelet"]
TEAMS = ["shop", "payments", "search", "data", "platform", "identity", "ml", "ads", "growth", "infra"]


class Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def image(self) -> str:
        repo, tag = self.r.choice(IMAGES)
        ref = repo if tag is None else f"{repo}:{tag}"
        if repo.startswith(ECR) and self.chance(0.4):
            ref += "@sha256:" + "".join(self.r.choice("0123456789abcdef") for _ in range(64))
        return ref

    def resources(self) -> dict[str, Any] | None:
        if self.chance(0.25):
            return None
        cpu = self.r.choice(["50m", "100m", "250m", "500m", "1"])
        mem = self.r.choice(["64Mi", "128Mi", "256Mi", "512Mi", "1Gi"])
        res: dict[str, Any] = {"requests": {"cpu": cpu, "memory": mem}}
        if self.chance(0.7):
            res["limits"] = {"memory": mem} | ({"cpu": cpu} if self.chance(0.5) else {})
        return res

    def container(self, name: str, privileged_ok: bool) -> dict[str, Any]:
        c: dict[str, Any] = {"name": name, "image": self.image()}
        if self.chance(0.6):
            c["ports"] = [{"name": "http", "containerPort": self.r.choice([8080, 8443, 9090, 3000])}]
        if self.chance(0.5):
            c["env"] = [
                {"name": "LOG_LEVEL", "value": self.r.choice(["info", "debug", "warn"])},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ]
        sc: dict[str, Any] = {}
        roll = self.r.random()
        if roll < 0.45:
            sc = {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
            }
        elif roll < 0.6:
            sc = {"runAsUser": self.r.choice([0, 1000, 10001])}
        elif roll < 0.65 and privileged_ok:
            sc = {"privileged": True}
        elif roll < 0.7:
            sc = {"runAsNonRoot": False}
        if sc:
            c["securityContext"] = sc
        res = self.resources()
        if res:
            c["resources"] = res
        if self.chance(0.5):
            c["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10}
        return c

    def pod_spec(self, app: str, sa: str, host_ok: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {"serviceAccountName": sa}
        if self.chance(0.3):
            spec["automountServiceAccountToken"] = False
        if self.chance(0.35):
            spec["securityContext"] = {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "fsGroup": 2000,
                "seccompProfile": {"type": "RuntimeDefault"},
            }
        containers = [self.container(app, privileged_ok=host_ok)]
        if self.chance(0.3):
            containers.append(self.container(f"{app}-sidecar", privileged_ok=False))
        spec["containers"] = containers
        if self.chance(0.2):
            spec["initContainers"] = [self.container("init", privileged_ok=False)]
        volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": f"{app}-config"}}]
        mounts = [{"name": "config", "mountPath": "/etc/app", "readOnly": True}]
        if host_ok and self.chance(0.3):
            volumes.append({"name": "host", "hostPath": {"path": self.r.choice(HOST_PATHS)}})
            mounts.append({"name": "host", "mountPath": "/host", "readOnly": self.chance(0.5)})
        if self.chance(0.4):
            volumes.append({"name": "tmp", "emptyDir": {}})
            mounts.append({"name": "tmp", "mountPath": "/tmp"})
        spec["volumes"] = volumes
        containers[0]["volumeMounts"] = mounts
        return spec


def app_objects(g: Gen, ns: str, app: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": ns}
    sa = app if g.chance(0.7) else "default"
    kind = g.r.choices(
        ["Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"], weights=[70, 10, 6, 9, 5]
    )[0]
    spec = g.pod_spec(app, sa, host_ok=kind == "DaemonSet" or g.chance(0.05))
    template = {"metadata": {"labels": dict(labels)}, "spec": spec}
    meta = {"name": app, "namespace": ns, "labels": dict(labels)}
    if kind == "Deployment":
        wl = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {
                "replicas": g.r.choice([1, 2, 3, 5]),
                "selector": {"matchLabels": labels},
                "template": template,
            },
        }
    elif kind == "StatefulSet":
        wl = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {
                "serviceName": app,
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": template,
            },
        }
    elif kind == "DaemonSet":
        wl = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {"selector": {"matchLabels": labels}, "template": template},
        }
    elif kind == "CronJob":
        spec["restartPolicy"] = "OnFailure"
        wl = {
            "apiVersion": "batch/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {"schedule": "*/15 * * * *", "jobTemplate": {"spec": {"template": template}}},
        }
    else:
        spec["restartPolicy"] = "Never"
        wl = {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"template": template}}
    out: list[dict[str, Any]] = [wl]
    out.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{app}-config", "namespace": ns, "labels": dict(labels)},
            "data": {"LOG_FORMAT": "json", "FEATURE_FLAGS": "a,b,c"},
        }
    )
    if kind in ("Deployment", "StatefulSet"):
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": app, "namespace": ns, "labels": dict(labels)},
                "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
            }
        )
    if sa != "default":
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": sa, "namespace": ns},
                **({"automountServiceAccountToken": False} if g.chance(0.3) else {}),
            }
        )
        if g.chance(0.5):
            out.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": app, "namespace": ns},
                    "rules": [
                        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
                        *(
                            [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
                            if g.chance(0.3)
                            else []
                        ),
                    ],
                }
            )
            out.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": app, "namespace": ns},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": app},
                    "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
                }
            )
    if g.chance(0.4):
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"{app}-ingress", "namespace": ns},
                "spec": {
                    "podSelector": {"matchLabels": labels},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": ns}}}],
                            "ports": [{"protocol": "TCP", "port": 8080}],
                        }
                    ],
                },
            }
        )
    return out


def generate(n: int, seed: int) -> list[dict[str, Any]]:
    g = Gen(seed)
    objs: list[dict[str, Any]] = []
    for i in range(max(3, n // 400)):
        objs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": f"aggregate-reader-{i}"},
                "rules": [
                    {
                        "apiGroups": ["", "apps"],
                        "resources": ["pods", "deployments"],
                        "verbs": ["get", "list"],
                    }
                ],
            }
        )
        objs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"aggregate-reader-{i}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": f"aggregate-reader-{i}",
                },
                "subjects": [{"kind": "Group", "name": f"team-{g.r.choice(TEAMS)}"}],
            }
        )
    ns_i = 0
    while len(objs) < n:
        ns = f"{g.r.choice(TEAMS)}-{ns_i}"
        ns_i += 1
        level = g.r.choice(["privileged", "baseline", "restricted", None])
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "labels": {"team": ns.rsplit("-", 1)[0]}
                    | ({"pod-security.kubernetes.io/enforce": level} if level else {}),
                },
            }
        )
        for a in range(g.r.randint(20, 60)):
            objs.extend(app_objects(g, ns, f"app-{a}"))
            if len(objs) >= n:
                break
    return objs[:n]


def write(objs: list[dict[str, Any]], out: Path, per_file: int) -> int:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = 0
    for start in range(0, len(objs), per_file):
        chunk = objs[start : start + per_file]
        text = yaml.dump_all(chunk, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
        (out / f"manifests-{files:04d}.yaml").write_text(text)
        files += 1
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=50_000)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--per-file", type=int, default=500)
    args = ap.parse_args()
    out = args.out or Path(__file__).parent / "out" / f"manifests-{args.objects}"
    objs = generate(args.objects, args.seed)
    files = write(objs, out, args.per_file)
    kinds: dict[str, int] = {}
    for o in objs:
        kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
    print(f"wrote {len(objs)} objects in {files} files to {out}")
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
