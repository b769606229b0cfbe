"""The KS-PSS checks judge objects with equal pod templates once (pss.evaluate.Memo) and share the
remediation patch: every finding must equal the one a scan of that object alone gives, whatever
namespace (and so enforce level) each copy sits in."""

from __future__ import annotations

import copy

from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.scan import run_scan, select_checks

NAMESPACES = {
    "strict": {"pod-security.kubernetes.io/enforce": "restricted"},
    "base": {
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
    },
    "open": {},
}
SPECS = {
    "root": {"containers": [{"name": "a", "image": "i", "securityContext": {"runAsUser": 0}}]},
    "host": {
        "hostNetwork": True,
        "hostPID": True,
        "containers": [
            {"name": "a", "image": "i", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}
        ],
    },
    "ok": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "a",
                "image": "i",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    },
    "two": {
        "initContainers": [{"name": "init", "image": "i"}],
        "containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i", "ports": [{"hostPort": 80}]}],
    },
}


def _objects() -> list[dict]:
    docs: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
        for ns, labels in NAMESPACES.items()
    ]
    for ns in NAMESPACES:
        for name, spec in SPECS.items():
            for i in range(3):  # replicas: the same template under other names
                docs.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": f"{name}-{i}", "namespace": ns},
                        "spec": copy.deepcopy(spec),
                    }
                )
            docs.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {
                        "template": {"metadata": {"labels": {"app": name}}, "spec": copy.deepcopy(spec)}
                    },
                }
            )
    return docs


def _by_object(findings) -> dict:
    out: dict = {}
    for f in findings:
        out.setdefault(str(f.object), []).append(f.to_dict())
    return out


def test_shared_template_findings_equal_scanning_each_object_alone() -> None:
    checks = select_checks(["KS-PSS-*"])
    docs = _objects()
    together = run_scan(Cluster([KubeObject(d) for d in docs]), checks=checks)
    assert len(together.indexes["pss.templates"].entries) < len(docs) - len(NAMESPACES)  # shared
    got = _by_object(together.findings)
    namespaces = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Namespace"}
    seen = 0
    for d in docs:
        if d["kind"] == "Namespace":
            continue
        alone = run_scan(
            Cluster([KubeObject(namespaces[d["metadata"]["namespace"]]), KubeObject(d)]), checks=checks
        )
        want = _by_object(alone.findings)
        key = str(KubeObject(d))
        assert got.get(key) == want.get(key), key
        seen += len(want.get(key, []))
    assert seen > 20  # the cases find something: denials with patches, restricted and baseline advisories
