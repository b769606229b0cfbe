"""What the access-domain checks (awsauth, accessentries, identity, rbac) share: one AccessModel and one
attack graph per scan, the aws-auth ConfigMap, binding objects, subject classes and reference lists."""

from __future__ import annotations

from kubestrata.access.awsauth import AwsAuth
from kubestrata.access.model import AccessModel, Identity
from kubestrata.access.paths import ALL, AttackGraph, is_public, rule_caps
from kubestrata.checks.base import CheckContext
from kubestrata.checks.ekssupport import missing, snapshot
from kubestrata.eks.model import EKSAccess
from kubestrata.findings import GapReason
from kubestrata.kube.objects import KubeObject
from kubestrata.rbac.evaluator import SUPERUSER_GROUP

CAM = {
    "cis-eks": ["4.1.7"],
    "nsa-cisa": ["Authentication and authorization"],
    "mitre": ["T1078 Valid Accounts"],
}

RBAC_REFS = {
    "cis-eks": ["4.1.1", "4.1.8"],
    "nsa-cisa": ["Authentication and authorization: RBAC least privilege"],
    "mitre": ["T1078 Valid Accounts", "T1068 Exploitation for Privilege Escalation"],
}

IRSA_REFS = {
    "cis-eks": ["5.1.x"],
    "nsa-cisa": ["Authentication and authorization"],
    "mitre": ["T1552 Unsecured Credentials"],
}


def access_model(ctx: CheckContext) -> AccessModel:
    return ctx.memo("access.model", lambda: AccessModel(ctx.cluster))


def attack_graph(ctx: CheckContext) -> AttackGraph:
    return ctx.memo("access.graph", lambda: AttackGraph(rbac_model(ctx)))


def rbac_model(ctx: CheckContext) -> AccessModel:
    """The model for a check that judges RBAC grants: a binding whose role is neither in the input nor
    a built-in role is recorded (once per scan) as "not evaluated", never read as granting nothing."""

    def record() -> bool:
        for b, detail in access_model(ctx).rbac.unresolved_bindings():
            obj = binding_obj(ctx, b.ref)
            where = f" ({obj.source})" if obj is not None and obj.source else ""
            ctx.gap(f"{b.ref}{where}", GapReason.MISSING_INPUT, detail)
        return True

    ctx.memo("access.rbac.unresolved", record)
    return access_model(ctx)


def eks_snapshot(ctx: CheckContext) -> EKSAccess | None:
    """The EKS snapshot for a check that needs it: absent from EKS-looking input, one coverage gap."""
    m = access_model(ctx)
    return snapshot(ctx, m.eks, bool(m.errors))


def aws_auth_missing(ctx: CheckContext, model: AccessModel) -> bool:
    """The mode reads aws-auth but the ConfigMap is not in the input: a gap (once), no verdict."""
    if model.config_map_active and model.aws_auth is None:
        missing(
            ctx, "aws-auth", "ConfigMap kube-system/aws-auth", f"authentication mode {model.mode} reads it"
        )
        return True
    return False


def aws_auth(ctx: CheckContext) -> tuple[KubeObject | None, AwsAuth | None]:
    m = access_model(ctx)
    return m.aws_auth_obj, m.aws_auth


def admin_identities(model: AccessModel) -> list[Identity]:
    out = []
    for ident in model.identities():
        if SUPERUSER_GROUP in ident.groups or any(
            a.policy == "AmazonEKSClusterAdminPolicy" and a.scope.type == "cluster"
            for a in ident.associations
        ):
            out.append(ident)
            continue
        for key in [("user", ident.username), *(("group", g) for g in ident.groups)]:
            for b in model.rbac.subject_bindings(*key):
                if not b.namespace and any(
                    c.kind == "admin" for r in model.rbac.role_rules(b) for c in rule_caps(r, ALL, "")
                ):
                    out.append(ident)
                    break
    return out


def binding_obj(ctx: CheckContext, ref: str) -> KubeObject | None:
    parts = ref.split("/")
    if parts[0] == "RoleBinding" and len(parts) == 3:
        return ctx.cluster.get("RoleBinding", parts[1], parts[2])
    if parts[0] == "ClusterRoleBinding" and len(parts) == 2:
        return ctx.cluster.get("ClusterRoleBinding", "", parts[1])
    return None


def public_subject(kind: str, name: str) -> bool:
    """system:authenticated, system:unauthenticated, system:anonymous, system:serviceaccounts[:NS]:
    populations, not platform components, whatever their prefix."""
    return is_public(f"{kind.lower()}:{name}")


def system_subject(kind: str, name: str, ns: str) -> bool:
    if kind in ("User", "Group"):
        if public_subject(kind, name):
            return False
        return name.startswith("system:") or name.startswith("eks:")
    return ns == "kube-system"
