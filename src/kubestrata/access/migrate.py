"""aws-auth -> access entries: a plan, with the diff of who gains and who loses what
(kubestrata.report.migrate renders it as AWS CLI commands, eksctl config, Terraform or JSON).

Rules: ``system:masters`` cannot be a kubernetesGroup (EKS rejects ``system:`` groups) and becomes
AmazonEKSClusterAdminPolicy at cluster scope; node roles become EC2_LINUX / EC2_WINDOWS / FARGATE_LINUX
entries (EKS supplies username and groups); other groups stay kubernetesGroups bound by RBAC as before.
Usernames keep their templates when access entries accept them ({{SessionName}} after a ``:``,
{{AccountID}}); others fall back to EKS's generated username, and the diff says what that changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubestrata.access.awsauth import Mapping
from kubestrata.access.model import AccessModel
from kubestrata.eks.arn import ArnError, has_path, parse_arn, strip_path
from kubestrata.eks.model import RESERVED_USERNAME_PREFIXES, default_username, policy_arn
from kubestrata.rbac.evaluator import SUPERUSER_GROUP

ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
NODE_EXTRA_GROUPS = {"system:bootstrappers", "system:nodes", "system:node-proxier", "eks:kube-proxy-windows"}


@dataclass
class PlannedEntry:
    principal_arn: str
    type: str = "STANDARD"
    username: str | None = None  # None: let EKS generate it
    groups: list[str] = field(default_factory=list)
    policies: list[tuple[str, str, list[str]]] = field(
        default_factory=list
    )  # (policy, scope type, namespaces)
    source: str = ""  # aws-auth field
    before_username: str = ""
    before_groups: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "principalArn": self.principal_arn,
            "type": self.type,
            **({"username": self.username} if self.username is not None else {}),
            "kubernetesGroups": self.groups,
            "accessPolicies": [
                {"policyArn": policy_arn(p), "accessScope": {"type": t, **({"namespaces": ns} if ns else {})}}
                for p, t, ns in self.policies
            ],
            "source": self.source,
        }


@dataclass
class Change:
    sign: str  # "+" gains, "-" loses, "=" same, "!" needs a decision
    principal: str
    text: str


@dataclass
class MigrationPlan:
    cluster_name: str
    mode: str
    entries: list[PlannedEntry] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clusterName": self.cluster_name,
            "currentAuthenticationMode": self.mode,
            "accessEntries": [e.to_dict() for e in self.entries],
            "diff": [{"change": c.sign, "principal": c.principal, "detail": c.text} for c in self.changes],
        }


def partition(arn: str) -> str:
    """The AWS partition of an ARN ("aws" when it does not parse)."""
    try:
        return parse_arn(arn).partition
    except ArnError:
        return "aws"


def _node_type(m: Mapping, node_types: dict[str, str]) -> str | None:
    known = node_types.get(m.arn.lower())
    if known:
        return known
    if not (m.username.startswith("system:node:") and "system:nodes" in m.groups):
        return None
    if "eks:kube-proxy-windows" in m.groups:
        return "EC2_WINDOWS"
    if "{{SessionName}}" in m.username or "system:node-proxier" in m.groups:
        return "FARGATE_LINUX"
    return "EC2_LINUX"


def _entry_username(m: Mapping) -> tuple[str | None, str]:
    """(username for the entry or None for the default, a note when it differs)."""
    u = m.username
    if not u:
        return None, ""
    if u.startswith(RESERVED_USERNAME_PREFIXES):
        return None, f"username {u!r} uses a reserved prefix; EKS will generate {default_username(m.arn)!r}"
    note = ""
    if "{{SessionNameRaw}}" in u:
        u = u.replace("{{SessionNameRaw}}", "{{SessionName}}")
        note = "{{SessionNameRaw}} becomes {{SessionName}} ('@' in session names turns into '-')"
    unsupported = [t for t in ("{{AccessKeyID}}", "{{EC2PrivateDNSName}}") if t in u]
    if unsupported:
        return (
            None,
            f"template(s) {', '.join(unsupported)} are not available to access entries; EKS will generate {default_username(m.arn)!r}",
        )
    i = u.find("{{SessionName}}")
    if i >= 0 and ":" not in u[:i]:
        return (
            None,
            f"{{{{SessionName}}}} must follow a ':' in an access entry username; EKS will generate {default_username(m.arn)!r}",
        )
    return u, note


def plan_migration(model: AccessModel, cluster_name: str = "") -> MigrationPlan:
    eks = model.eks
    plan = MigrationPlan(cluster_name or (eks.cluster_name if eks else "") or "CLUSTER", model.mode)
    aa = model.aws_auth
    if aa is None:
        plan.changes.append(
            Change("!", "-", "no kube-system/aws-auth ConfigMap in the input: nothing to migrate")
        )
        return plan
    node_types = {strip_path(n.role_arn).lower(): n.type for n in (eks.node_roles if eks else [])}
    for p in aa.problems:
        if p.scope in ("key", "entry"):
            plan.changes.append(Change("!", p.field, f"not migrated: {p.message} (it grants nothing today)"))
    for dropped, winner in aa.shadowed:
        plan.changes.append(
            Change(
                "=",
                dropped.arn,
                f"{dropped.field} is a duplicate replaced by {winner.field}; only {winner.field} is migrated",
            )
        )
    for m in aa.mappings:
        if m.sso is not None or not m.arn:
            plan.changes.append(
                Change(
                    "!",
                    m.field,
                    "SSO permission-set matcher: create one entry per AWSReservedSSO role ARN (with its path)",
                )
            )
            continue
        if "*" in m.arn or "?" in m.arn:
            plan.changes.append(
                Change(
                    "!",
                    m.arn,
                    "wildcard rolearn: access entries name one principal each; list the roles explicitly",
                )
            )
            continue
        if eks is not None and eks.entry_for(m.arn) is not None:
            plan.changes.append(
                Change(
                    "=",
                    m.arn,
                    "already has an access entry, which already takes precedence; the aws-auth mapping can go",
                )
            )
            continue
        entry = PlannedEntry(m.arn, source=m.field, before_username=m.username, before_groups=m.groups)
        if has_path(m.arn):
            plan.changes.append(
                Change(
                    "+",
                    m.arn,
                    f"{m.field}: the ARN has a path, so the aws-auth mapping never matched; the access entry WILL match: this principal gains {m.username} {list(m.groups)}",
                )
            )
        ntype = _node_type(m, node_types)
        if ntype is not None:
            entry.type = ntype
            extra = sorted(set(m.groups) - NODE_EXTRA_GROUPS)
            plan.changes.append(
                Change(
                    "=", m.arn, f"node role -> {ntype} entry (EKS supplies system:node:... and system:nodes)"
                )
            )
            if extra:
                plan.changes.append(
                    Change("-", m.arn, f"node entries carry no kubernetesGroups: loses {extra}")
                )
            plan.entries.append(entry)
            continue
        groups = []
        for g in m.groups:
            if g == SUPERUSER_GROUP:
                entry.policies.append((ADMIN_POLICY, "cluster", []))
                plan.changes.append(
                    Change(
                        "=",
                        m.arn,
                        f"{SUPERUSER_GROUP} -> {ADMIN_POLICY} (cluster scope): same rights; `kubectl auth can-i --as` no longer shows them",
                    )
                )
            elif g.startswith("system:"):
                lost = _group_grants(model, g)
                plan.changes.append(
                    Change(
                        "-",
                        m.arn,
                        f"group {g} cannot be a kubernetesGroup (system: prefix); loses "
                        + (", ".join(lost) if lost else "nothing bound to it in RBAC"),
                    )
                )
            else:
                groups.append(g)
        entry.groups = groups
        username, note = _entry_username(m)
        entry.username = username
        if note:
            new_user = username if username is not None else default_username(m.arn)
            lost = _user_grants(model, m.username)
            plan.changes.append(
                Change(
                    "-" if lost else "=",
                    m.arn,
                    note
                    + (
                        f"; RBAC bound to the old username is lost: {', '.join(lost)}"
                        if lost
                        else f" (new username {new_user!r})"
                    ),
                )
            )
        if groups:
            plan.changes.append(
                Change("=", m.arn, f"groups {groups} kept as kubernetesGroups (RBAC bindings unchanged)")
            )
        plan.entries.append(entry)
    for acct in aa.accounts:
        plan.changes.append(
            Change(
                "-",
                f"account {acct}",
                "mapAccounts has no access-entry equivalent: principals of the account that are not listed lose access",
            )
        )
    return plan


def _group_grants(model: AccessModel, group: str) -> list[str]:
    return sorted({f"{b.ref}" for b in model.rbac.subject_bindings("group", group)})


def _user_grants(model: AccessModel, user: str) -> list[str]:
    return sorted({f"{b.ref}" for b in model.rbac.subject_bindings("user", user)})


def apply_plan(model: AccessModel, plan: MigrationPlan) -> AccessModel:
    """The model as it would be after migration in API mode (aws-auth no longer read)."""
    from kubestrata.eks.model import AccessEntry, Association, EKSAccess, Scope

    eks = EKSAccess(cluster_name=plan.cluster_name, authentication_mode="API")
    if model.eks is not None:
        eks.entries = list(model.eks.entries)
        eks.node_roles = model.eks.node_roles
    for i, e in enumerate(plan.entries):
        username = e.username if e.username is not None else ""
        eks.entries.append(
            AccessEntry(
                e.principal_arn,
                e.type,
                username,
                tuple(e.groups),
                [Association(p, Scope(t, tuple(ns))) for p, t, ns in e.policies],
                field=f"planned[{i}]",
            )
        )
    return AccessModel(model.cluster, eks)
