"""The aws-auth ConfigMap, read exactly as the AWS IAM Authenticator reads it (KS-ACC-001..004, -006,
-010..013): mappings that never match, are dropped, shadowed or ambiguous, node mappings, mapAccounts and
caller-chosen usernames."""

from __future__ import annotations

from collections.abc import Iterator

from kubestrata.access.awsauth import NODE_GROUPS, SESSION_TEMPLATES, template_pattern
from kubestrata.access.model import AccessModel
from kubestrata.checks.accesssupport import (
    CAM,
    access_model,
    admin_identities,
    aws_auth,
)
from kubestrata.checks.base import CheckContext, cluster_check
from kubestrata.eks.arn import has_path, strip_path
from kubestrata.findings import Evidence, Finding, Layer, Severity

L = Layer.CLUSTER


@cluster_check(
    "KS-ACC-001",
    "aws-auth role ARN with a path never matches",
    severity=Severity.HIGH,
    layer=L,
    rationale="The authenticator canonicalises an assumed-role session to arn:...:role/<name> without the "
    "IAM path, so a rolearn written with its path (e.g. SSO roles under aws-reserved/) matches no caller: "
    "the people or nodes it was meant for are locked out.",
    remediation="Write the role ARN without its path: arn:aws:iam::<account>:role/<role-name>.",
    references=CAM,
)
def rolearn_with_path(ctx: CheckContext) -> Iterator[Finding]:
    obj, aa = aws_auth(ctx)
    if aa is None:
        return
    for m in aa.roles.values():
        if m.arn and has_path(m.arn):
            yield rolearn_with_path.meta.finding(
                obj,
                f"{m.field}.rolearn {m.arn} has an IAM path and never matches; use {strip_path(m.arn)}",
                evidence=[Evidence(f"{m.field}.rolearn", m.arn, strip_path(m.arn))],
                fix_note=f"replace the rolearn with {strip_path(m.arn)}",
            )


@cluster_check(
    "KS-ACC-002",
    "aws-auth key is unreadable: every mapping in it is dropped",
    severity=Severity.CRITICAL,
    layer=L,
    rationale="The authenticator converts each aws-auth key from YAML on its own; a YAML error (tabs, bad "
    "indentation, a repeated key) or a value that is not a list drops the whole key, so every node role and "
    "admin mapped there loses access at once.",
    remediation="Fix the YAML of the key (spaces, not tabs; a `|` block holding a list) and validate with "
    "`kubestrata scan` before applying; move to access entries, which fail per principal.",
    references=CAM,
)
def aws_auth_key_dropped(ctx: CheckContext) -> Iterator[Finding]:
    obj, aa = aws_auth(ctx)
    if aa is None:
        return
    for p in aa.problems:
        if p.scope == "key":
            yield aws_auth_key_dropped.meta.finding(
                obj,
                f"{p.field}: {p.message}",
                evidence=[Evidence(p.field, _short(p.observed), "a YAML list of mappings")],
            )


@cluster_check(
    "KS-ACC-003",
    "aws-auth entry or field silently ignored",
    severity=Severity.HIGH,
    layer=L,
    rationale="Entries that fail validation (no rolearn or sso, both, an empty userarn) are dropped one by "
    "one, and a field of the wrong type (groups as a string) is left empty while the entry is kept: the "
    "principal authenticates with fewer or no groups.",
    remediation="Give every entry a rolearn (or userarn), a username and groups as a YAML list.",
    references=CAM,
)
def aws_auth_entry_dropped(ctx: CheckContext) -> Iterator[Finding]:
    obj, aa = aws_auth(ctx)
    if aa is None:
        return
    for p in aa.problems:
        if p.scope in ("entry", "field"):
            yield aws_auth_entry_dropped.meta.finding(
                obj,
                f"{p.field}: {p.message}",
                evidence=[Evidence(p.field, _short(p.observed), "a valid mapping")],
            )


def _node_role_types(model: AccessModel) -> dict[str, str]:
    out: dict[str, str] = {}
    if model.eks is not None:
        for n in model.eks.node_roles:
            out[strip_path(n.role_arn).lower()] = n.type
    return out


@cluster_check(
    "KS-ACC-004",
    "Node role mapping lacks the node groups or username",
    severity=Severity.HIGH,
    layer=L,
    rationale="A node's role must map to username system:node:{{EC2PrivateDNSName}} (Fargate: "
    "system:node:{{SessionName}}) in groups system:bootstrappers and system:nodes; otherwise kubelets cannot "
    "register or are refused by the Node authorizer and nodes go NotReady.",
    remediation="Map node roles with username system:node:{{EC2PrivateDNSName}} and groups "
    "[system:bootstrappers, system:nodes] (Fargate adds system:node-proxier), or use EC2_LINUX/FARGATE_LINUX "
    "access entries.",
    references=CAM,
)
def node_mapping(ctx: CheckContext) -> Iterator[Finding]:
    model = access_model(ctx)
    obj, aa = aws_auth(ctx)
    if aa is None:
        return
    types = _node_role_types(model)
    for m in aa.roles.values():
        typ = types.get(m.arn.lower()) if m.arn else None
        looks_node = m.username.startswith("system:node:") or "system:nodes" in m.groups or typ is not None
        if not looks_node:
            continue
        missing = [g for g in NODE_GROUPS if g not in m.groups]
        want_user = (
            "system:node:{{SessionName}}" if typ == "FARGATE_LINUX" else "system:node:{{EC2PrivateDNSName}}"
        )
        ok_users = (
            {want_user} if typ else {"system:node:{{EC2PrivateDNSName}}", "system:node:{{SessionName}}"}
        )
        if missing:
            yield node_mapping.meta.finding(
                obj,
                f"{m.field} maps node role {m.arn} without group(s) {', '.join(missing)}",
                evidence=[Evidence(f"{m.field}.groups", list(m.groups), list(NODE_GROUPS))],
            )
        if m.username not in ok_users:
            yield node_mapping.meta.finding(
                obj,
                f"{m.field} maps node role {m.arn} to username {m.username!r}, not {want_user}",
                evidence=[Evidence(f"{m.field}.username", m.username, want_user)],
            )


@cluster_check(
    "KS-ACC-006",
    "CONFIG_MAP cluster whose only admin is the invisible creator",
    severity=Severity.HIGH,
    layer=L,
    rationale="In CONFIG_MAP mode the identity that created the cluster is an invisible, irrevocable "
    "system:masters; when aws-auth maps no admin, losing that identity (deleted role, departed person) "
    "locks everyone out.",
    remediation="Map a break-glass admin role, or better enable access entries (aws eks "
    "update-cluster-config --access-config authenticationMode=API_AND_CONFIG_MAP) and associate "
    "AmazonEKSClusterAdminPolicy with it.",
    references=CAM,
)
def creator_only_admin(ctx: CheckContext) -> Iterator[Finding]:
    model = access_model(ctx)
    obj, aa = aws_auth(ctx)
    if aa is None or model.mode != "CONFIG_MAP":
        return
    if not [i for i in admin_identities(model) if i.source != "creator"]:
        yield creator_only_admin.meta.finding(
            obj,
            "aws-auth maps no cluster administrator; only the cluster creator (not visible in any "
            "configuration) can administer the cluster",
            evidence=[
                Evidence(
                    "data.mapRoles",
                    "no mapping in system:masters or bound to cluster-admin",
                    "one break-glass admin mapping",
                )
            ],
        )


@cluster_check(
    "KS-ACC-010",
    "aws-auth mapping shadowed or ignored",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="When a principal has both an access entry and an aws-auth mapping the access entry wins; "
    "in API mode aws-auth is not read at all. Reading aws-auth alone then misleads about who has what.",
    remediation="Remove the shadowed aws-auth mapping (or the access entry) so each principal is defined once.",
    references=CAM,
)
def shadowed_mapping(ctx: CheckContext) -> Iterator[Finding]:
    model = access_model(ctx)
    obj, aa = aws_auth(ctx)
    if aa is None or model.eks is None:
        return
    if model.mode == "API" and aa.mappings:
        yield shadowed_mapping.meta.finding(
            obj,
            f"authentication mode is API: none of the {len(aa.mappings)} aws-auth mappings is used",
            evidence=[Evidence("data", f"{len(aa.mappings)} mappings", "no aws-auth in API mode")],
        )
        return
    for ident in model.identities():
        if ident.shadows is not None:
            m = ident.shadows
            yield shadowed_mapping.meta.finding(
                obj,
                f"{m.field} ({m.arn} -> {m.username} {list(m.groups)}) is overridden by the access entry "
                f"(username {ident.username}, groups {list(ident.groups)})",
                evidence=[
                    Evidence(
                        f"{m.field}.{'rolearn' if m.kind == 'role' else 'userarn'}", m.arn, "defined once"
                    )
                ],
            )


@cluster_check(
    "KS-ACC-011",
    "aws-auth mapAccounts admits every principal of an account",
    severity=Severity.HIGH,
    layer=L,
    rationale="Every IAM user and role of a listed account authenticates (username = its ARN, no groups); "
    "any RBAC granted to system:authenticated or to ARN-named users reaches them all.",
    remediation="Remove mapAccounts and map the principals that need access individually.",
    references=CAM,
)
def map_accounts(ctx: CheckContext) -> Iterator[Finding]:
    obj, aa = aws_auth(ctx)
    if aa is None:
        return
    if aa.accounts:
        yield map_accounts.meta.finding(
            obj,
            f"mapAccounts lets every principal of account(s) {', '.join(aa.accounts)} authenticate",
            evidence=[Evidence("data.mapAccounts", aa.accounts, [])],
        )


@cluster_check(
    "KS-ACC-012",
    "Username built from a caller-chosen session name",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="{{SessionName}}/{{SessionNameRaw}} come from the caller's role session name: anyone who can "
    "assume the role picks the Kubernetes username, and so can pose as any user RBAC names that way.",
    remediation="Use a fixed username (or {{AccessKeyID}}/{{AccountID}} for audit) and grant through groups; "
    "restrict sts:AssumeRole on the role.",
    references=CAM,
)
def session_template(ctx: CheckContext) -> Iterator[Finding]:
    obj, aa = aws_auth(ctx)
    if aa is None:
        return
    model = access_model(ctx)
    if not model.config_map_active:
        return  # aws-auth is not read in API mode (KS-ACC-010 says so)
    users = {
        str(sub.get("name")) for b in model.rbac.bindings for sub in b.subjects if sub.get("kind") == "User"
    }
    shadowed = {id(i.shadows) for i in model.identities() if i.shadows is not None}
    for m in aa.mappings:
        if id(m) in shadowed:
            continue  # an access entry decides for this principal
        if m.username.startswith("system:node:"):
            continue  # node usernames are checked against the instance (EC2) or enforced by EKS (Fargate)
        if any(t in m.username for t in SESSION_TEMPLATES):
            pat = template_pattern(m.username)
            posed = sorted(u for u in users if pat.fullmatch(u))
            yield session_template.meta.finding(
                obj,
                f"{m.field} username {m.username!r} is chosen by whoever assumes {m.arn}"
                + (
                    f"; they can pose as RBAC user(s) {', '.join(posed[:5])}"
                    if posed
                    else "; audit logs name whoever they claim"
                ),
                severity=Severity.HIGH if posed else None,
                evidence=[Evidence(f"{m.field}.username", m.username, "a fixed username")],
            )


@cluster_check(
    "KS-ACC-013",
    "Duplicate or ambiguous aws-auth mappings",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="Role mappings are keyed by the lower-cased ARN, so a later duplicate silently replaces an "
    "earlier one; user entries differing only in case are both kept and the one that matches depends on "
    "Go map order.",
    remediation="Keep exactly one mapping per principal.",
    references=CAM,
)
def duplicate_mappings(ctx: CheckContext) -> Iterator[Finding]:
    obj, aa = aws_auth(ctx)
    if aa is None:
        return
    for lost, winner in aa.shadowed:
        yield duplicate_mappings.meta.finding(
            obj,
            f"{lost.field} is replaced by {winner.field} (same principal {winner.arn}); its username "
            f"{lost.username!r} and groups {list(lost.groups)} are lost",
            evidence=[Evidence(lost.field, lost.arn, "one mapping per principal")],
        )
    for p in aa.problems:
        if p.scope == "ambiguous":
            yield duplicate_mappings.meta.finding(
                obj,
                f"{p.field}: {p.message}",
                evidence=[Evidence(p.field, p.observed, "one mapping per principal")],
            )


def _short(v: object) -> object:
    if isinstance(v, str) and len(v) > 200:
        return v[:200] + "..."
    return v
