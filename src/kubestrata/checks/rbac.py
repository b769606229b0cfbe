"""RBAC (KS-RBAC-001..004, KS-ACC-014): who holds cluster-admin, who may rewrite aws-auth, and escalation
paths to cluster-admin, kube-system secrets and root on a node (kubestrata.access.paths)."""

from __future__ import annotations

from collections.abc import Iterator

from kubestrata.access.paths import ALL, AttackGraph, Edge, is_direct_admin, rule_caps
from kubestrata.checks.accesssupport import (
    RBAC_REFS,
    access_model,
    attack_graph,
    binding_obj,
    public_subject,
    rbac_model,
    system_subject,
)
from kubestrata.checks.base import CheckContext, CheckMeta, cluster_check
from kubestrata.findings import Evidence, Finding, Layer, Severity
from kubestrata.kube.objects import KubeObject

L = Layer.CLUSTER


@cluster_check(
    "KS-ACC-014",
    "RBAC lets a subject rewrite aws-auth",
    severity=Severity.CRITICAL,
    layer=L,
    rationale="Whoever can update or patch kube-system/aws-auth can map their own IAM identity to "
    "system:masters: a direct path to cluster-admin (trivy KSV-0115). This is the one report of that "
    "permission: KS-RBAC-002 leaves escalation paths that start with it to this check.",
    remediation="Grant configmaps write in kube-system to no one but administrators; move to access entries "
    "(managed through the EKS API and IAM).",
    references=RBAC_REFS,
)
def aws_auth_writers(ctx: CheckContext) -> Iterator[Finding]:
    model = rbac_model(ctx)
    for b in model.rbac.bindings:
        if b.namespace not in ("", "kube-system"):
            continue
        ev = [
            c
            for r in model.rbac.role_rules(b)
            for c in rule_caps(r, b.namespace or ALL, "")
            if c.kind in ("write-aws-auth", "admin")
        ]
        if not ev:
            continue
        for i, s in enumerate(b.subjects):
            kind, name = str(s.get("kind")), str(s.get("name") or "")
            ns = str(s.get("namespace") or b.namespace)
            if system_subject(kind, name, ns) or any(c.kind == "admin" for c in ev):
                continue  # cluster admins are reported by KS-RBAC-001
            yield aws_auth_writers.meta.finding(
                binding_obj(ctx, b.ref),
                f"{kind} {name} may update kube-system/aws-auth through {b.ref} ({b.role_kind}/{b.role_name})",
                evidence=[Evidence(f"subjects[{i}]", f"{kind} {name}", "no write access to aws-auth")],
            )


@cluster_check(
    "KS-RBAC-001",
    "Non-system subject holds cluster-admin",
    severity=Severity.HIGH,
    layer=L,
    rationale="A binding that grants * on every resource everywhere (cluster-admin or equivalent) to a user, "
    "group or workload ServiceAccount makes it a full administrator; it should be the rare, audited exception.",
    remediation="Bind a narrower role, or grant admin through time-limited access (an access entry for a "
    "break-glass role).",
    references=RBAC_REFS,
)
def cluster_admin_subjects(ctx: CheckContext) -> Iterator[Finding]:
    model = rbac_model(ctx)
    for b in model.rbac.bindings:
        if b.namespace:
            continue
        if not any(c.kind == "admin" for r in model.rbac.role_rules(b) for c in rule_caps(r, ALL, "")):
            continue
        for i, s in enumerate(b.subjects):
            kind, name = str(s.get("kind")), str(s.get("name") or "")
            ns = str(s.get("namespace") or "")
            if system_subject(kind, name, ns):
                continue
            who = f"{kind} {ns + '/' if kind == 'ServiceAccount' else ''}{name}"
            public = public_subject(kind, name)
            yield cluster_admin_subjects.meta.finding(
                binding_obj(ctx, b.ref),
                f"{who} holds cluster-admin-equivalent rights through {b.ref} ({b.role_kind}/{b.role_name})"
                + (": that is everyone in the group, not one identity" if public else ""),
                severity=Severity.CRITICAL if public else None,
                evidence=[Evidence(f"subjects[{i}]", who, "no cluster-wide * rule")],
            )


def _path_evidence(path: list[Edge]) -> list[Evidence]:
    return [Evidence(f"path[{i}]", f"{e.src} -> {e.dst}", e.evidence) for i, e in enumerate(path)]


def _source_obj(ctx: CheckContext, graph: AttackGraph, src: str, path: list[Edge]) -> KubeObject | None:
    if src in graph.objects:
        return graph.objects[src]
    ident = graph.identities.get(src)
    model = access_model(ctx)
    if ident is not None:
        return (
            model.aws_auth_obj
            if ident.source.startswith("aws-auth")
            else (model.eks.obj if model.eks else None)
        )
    ev = path[0].evidence if path else ""
    ref = ev.split(" -> ", 1)[0].split(" ", 1)[0]
    return binding_obj(ctx, ref)


def _path_findings(
    ctx: CheckContext, meta: CheckMeta, target: str, skip_admin_reachers: bool
) -> Iterator[Finding]:
    graph = attack_graph(ctx)
    admin = graph.shortest_to("cluster-admin") if skip_admin_reachers else {}
    nxt = graph.shortest_to(target)
    for src in graph.sources():
        if src not in nxt:
            continue
        path = graph.path_from(src, nxt)
        if target == "cluster-admin" and is_direct_admin(path):
            continue  # a direct admin, not an escalation
        if target == "cluster-admin" and path[0].kind == "write-aws-auth":
            continue  # one fact, one finding: KS-ACC-014 names the binding that grants the write
        if skip_admin_reachers and src in admin:
            continue
        yield meta.finding(
            _source_obj(ctx, graph, src, path),
            f"{src} reaches {target} in {len(path)} step(s): "
            + " => ".join(f"[{e.kind}] {e.dst}" for e in path),
            evidence=_path_evidence(path),
        )


@cluster_check(
    "KS-RBAC-002",
    "Escalation path to cluster-admin",
    severity=Severity.CRITICAL,
    layer=L,
    rationale="The identity is not an administrator, but a chain of permissions (run a pod as a stronger "
    "ServiceAccount, read its token, bind or impersonate, rewrite aws-auth, follow IRSA to an IAM role "
    "mapped in the cluster) ends at cluster-admin.",
    remediation="Break the first edge of the path: remove the permission or binding named in path[0].",
    references=RBAC_REFS,
)
def path_cluster_admin(ctx: CheckContext) -> Iterator[Finding]:
    yield from _path_findings(ctx, path_cluster_admin.meta, "cluster-admin", False)


@cluster_check(
    "KS-RBAC-003",
    "Escalation path to kube-system secrets",
    severity=Severity.HIGH,
    layer=L,
    rationale="kube-system secrets hold add-on and controller credentials; reading them is usually one step "
    "from cluster-admin.",
    remediation="Break the first edge of the path (path[0]).",
    references=RBAC_REFS,
)
def path_kube_system_secrets(ctx: CheckContext) -> Iterator[Finding]:
    yield from _path_findings(ctx, path_kube_system_secrets.meta, "kube-system-secrets", True)


@cluster_check(
    "KS-RBAC-004",
    "Escalation path to root on a node",
    severity=Severity.HIGH,
    layer=L,
    rationale="Running a privileged or host-namespace pod, exec into one, or the kubelet API (nodes/proxy) "
    "gives root on a node: every pod's secrets there, the node's IAM role and kubelet credentials.",
    remediation="Enforce Pod Security baseline/restricted in the namespace, or remove the permission in path[0].",
    references={**RBAC_REFS, "cis-eks": ["4.1.4", "4.1.10", "4.2.1"]},
)
def path_node_root(ctx: CheckContext) -> Iterator[Finding]:
    yield from _path_findings(ctx, path_node_root.meta, "node-root", True)
