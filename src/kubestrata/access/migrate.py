"""aws-auth -> access entries: a plan, rendered as AWS CLI commands, eksctl config, Terraform or JSON,
with a dry-run diff of who gains and who loses what.

Rules: ``system:masters`` cannot be a kubernetesGroup (EKS rejects ``system:`` groups) and becomes
AmazonEKSClusterAdminPolicy at cluster scope; node roles become EC2_LINUX / EC2_WINDOWS / FARGATE_LINUX
entries (EKS supplies username and groups); other groups stay kubernetesGroups bound by RBAC as before.
Usernames keep their templates when access entries accept them ({{SessionName}} after a ``:``,
{{AccountID}}); others fall back to EKS's generated username, and the diff says what that changes.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

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
class Plan:
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


def _partition(arn: str) -> str:
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


def plan_migration(model: AccessModel, cluster_name: str = "") -> Plan:
    eks = model.eks
    plan = Plan(cluster_name or (eks.cluster_name if eks else "") or "CLUSTER", model.mode)
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
    for lost, winner in aa.shadowed:
        plan.changes.append(
            Change(
                "=",
                lost.arn,
                f"{lost.field} is a duplicate replaced by {winner.field}; only {winner.field} is migrated",
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


# -- renderers -----------------------------------------------------------------------------------------


def render_cli(plan: Plan, region: str | None = None) -> str:
    q = shlex.quote
    base = ["aws", "eks"] + (["--region", region] if region else [])
    lines = [
        "#!/bin/sh",
        "# generated by kubestrata access migrate; review the diff before running",
        "set -eu",
    ]
    if plan.mode == "CONFIG_MAP":
        lines.append(
            " ".join(
                map(
                    q,
                    [
                        *base,
                        "update-cluster-config",
                        "--name",
                        plan.cluster_name,
                        "--access-config",
                        "authenticationMode=API_AND_CONFIG_MAP",
                    ],
                )
            )
        )
        lines.append(" ".join(map(q, [*base, "wait", "cluster-active", "--name", plan.cluster_name])))
    for e in plan.entries:
        cmd = [
            *base,
            "create-access-entry",
            "--cluster-name",
            plan.cluster_name,
            "--principal-arn",
            e.principal_arn,
            "--type",
            e.type,
        ]
        if e.username is not None:
            cmd += ["--username", e.username]
        if e.groups:
            cmd += ["--kubernetes-groups", *e.groups]
        lines.append(" ".join(map(q, cmd)))
        for p, t, ns in e.policies:
            scope = f"type={t}" + (f",namespaces={','.join(ns)}" if ns else "")
            lines.append(
                " ".join(
                    map(
                        q,
                        [
                            *base,
                            "associate-access-policy",
                            "--cluster-name",
                            plan.cluster_name,
                            "--principal-arn",
                            e.principal_arn,
                            "--policy-arn",
                            policy_arn(p, _partition(e.principal_arn)),
                            "--access-scope",
                            scope,
                        ],
                    )
                )
            )
    return "\n".join(lines) + "\n"


def render_eksctl(plan: Plan, region: str | None = None) -> str:
    entries = []
    for e in plan.entries:
        d: dict[str, Any] = {"principalARN": e.principal_arn}
        if e.type != "STANDARD":
            d["type"] = e.type
        if e.username is not None:
            d["username"] = e.username
        if e.groups:
            d["kubernetesGroups"] = list(e.groups)
        if e.policies:
            d["accessPolicies"] = [
                {
                    "policyARN": policy_arn(p, _partition(e.principal_arn)),
                    "accessScope": {"type": t, **({"namespaces": ns} if ns else {})},
                }
                for p, t, ns in e.policies
            ]
        entries.append(d)
    doc = {
        "apiVersion": "eksctl.io/v1alpha5",
        "kind": "ClusterConfig",
        "metadata": {"name": plan.cluster_name, **({"region": region} if region else {})},
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP", "accessEntries": entries},
    }
    return "# eksctl create accessentry -f <this file>\n" + yaml.safe_dump(doc, sort_keys=False)


def _hcl(s: str) -> str:
    # a JSON string is a valid HCL string once template sequences are escaped
    return json.dumps(s).replace("${", "$${").replace("%{", "%%{")


def _slug(arn: str, used: set[str]) -> str:
    base = (
        re.sub(r"[^a-zA-Z0-9_]", "_", arn.rsplit(":", 1)[-1].replace("/", "_")).strip("_").lower() or "entry"
    )
    if base[0].isdigit():
        base = "p_" + base
    slug, i = base, 2
    while slug in used:
        slug, i = f"{base}_{i}", i + 1
    used.add(slug)
    return slug


def render_terraform(plan: Plan) -> str:
    out = ["# generated by kubestrata access migrate", ""]
    used: set[str] = set()
    for e in plan.entries:
        slug = _slug(e.principal_arn, used)
        out.append(f'resource "aws_eks_access_entry" "{slug}" {{')
        out.append(f"  cluster_name  = {_hcl(plan.cluster_name)}")
        out.append(f"  principal_arn = {_hcl(e.principal_arn)}")
        out.append(f"  type          = {_hcl(e.type)}")
        if e.username is not None:
            out.append(f"  user_name     = {_hcl(e.username)}")
        if e.groups:
            out.append("  kubernetes_groups = [" + ", ".join(_hcl(g) for g in e.groups) + "]")
        out.append("}")
        out.append("")
        for p, t, ns in e.policies:
            out.append(f'resource "aws_eks_access_policy_association" "{slug}_{p.lower()}" {{')
            out.append(f"  cluster_name  = {_hcl(plan.cluster_name)}")
            out.append(f"  principal_arn = aws_eks_access_entry.{slug}.principal_arn")
            out.append(f"  policy_arn    = {_hcl(policy_arn(p, _partition(e.principal_arn)))}")
            out.append("  access_scope {")
            out.append(f"    type       = {_hcl(t)}")
            if ns:
                out.append("    namespaces = [" + ", ".join(_hcl(n) for n in ns) + "]")
            out.append("  }")
            out.append("}")
            out.append("")
    return "\n".join(out)


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2) + "\n"


def render_diff(plan: Plan) -> str:
    lines = [
        f"# dry run: {len(plan.entries)} access entries for cluster {plan.cluster_name} (current mode {plan.mode})"
    ]
    for c in plan.changes:
        lines.append(f"{c.sign} {c.principal}: {c.text}")
    return "\n".join(lines) + "\n"


def apply_plan(model: AccessModel, plan: Plan) -> AccessModel:
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
