"""Cluster access: aws-auth lock-out and misconfiguration, access entries, workload identity hygiene,
and RBAC escalation paths (KS-ACC-*, KS-RBAC-*). Built on kubestrata.access."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

from kubestrata.access.awsauth import NODE_GROUPS, SESSION_TEMPLATES, template_pattern
from kubestrata.access.model import AccessModel, Identity
from kubestrata.access.paths import ALL, AttackGraph, Edge, is_direct_admin, is_public, rule_caps
from kubestrata.access.policies import catalog
from kubestrata.checks.base import CheckContext, cluster_check
from kubestrata.checks.ekssupport import described, missing, snapshot
from kubestrata.eks.arn import ArnError, has_path, parse_arn, strip_path
from kubestrata.findings import Evidence, Finding, GapReason, Layer, Severity
from kubestrata.kube.objects import KubeObject
from kubestrata.rbac.evaluator import SUPERUSER_GROUP

L = Layer.CLUSTER
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


def _model(ctx: CheckContext) -> AccessModel:
    return ctx.memo("access.model", lambda: AccessModel(ctx.cluster))


def _graph(ctx: CheckContext) -> AttackGraph:
    return ctx.memo("access.graph", lambda: AttackGraph(_rbac_model(ctx)))


def _rbac_model(ctx: CheckContext) -> AccessModel:
    """The model for a check that judges RBAC grants: a binding whose role is neither in the input nor
    a built-in role is recorded (once per scan) as "not evaluated", never read as granting nothing."""

    def record() -> bool:
        for b, detail in _model(ctx).rbac.unresolved_bindings():
            obj = _binding_obj(ctx, b.ref)
            where = f" ({obj.source})" if obj is not None and obj.source else ""
            ctx.gap(f"{b.ref}{where}", GapReason.MISSING_INPUT, detail)
        return True

    ctx.memo("access.rbac.unresolved", record)
    return _model(ctx)


def _eks(ctx: CheckContext):  # -> EKSAccess | None
    """The EKS snapshot for a check that needs it: absent from EKS-looking input, one coverage gap."""
    m = _model(ctx)
    return snapshot(ctx, m.eks, bool(m.errors))


def _aws_auth_missing(ctx: CheckContext, model: AccessModel) -> bool:
    """The mode reads aws-auth but the ConfigMap is not in the input: a gap (once), no verdict."""
    if model.config_map_active and model.aws_auth is None:
        missing(
            ctx, "aws-auth", "ConfigMap kube-system/aws-auth", f"authentication mode {model.mode} reads it"
        )
        return True
    return False


def _aws_auth(ctx: CheckContext):  # -> (obj, parsed) or (None, None)
    m = _model(ctx)
    return m.aws_auth_obj, m.aws_auth


# -- aws-auth ------------------------------------------------------------------------------------------


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
    obj, aa = _aws_auth(ctx)
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
    obj, aa = _aws_auth(ctx)
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
    obj, aa = _aws_auth(ctx)
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
    model = _model(ctx)
    obj, aa = _aws_auth(ctx)
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
    "KS-ACC-005",
    "EKS-managed node role is not mapped",
    severity=Severity.CRITICAL,
    layer=L,
    rationale="Managed node groups and Fargate profiles rely on aws-auth entries EKS writes (or on access "
    "entries); removing them without an equivalent access entry stops nodes and Fargate pods from joining.",
    remediation="Restore the aws-auth mapping or create an EC2_LINUX / EC2_WINDOWS / FARGATE_LINUX access "
    "entry for the role before deleting the aws-auth entry.",
    references=CAM,
)
def node_role_unmapped(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    if _eks(ctx) is None or not model.eks.node_roles:
        return
    for i, n in enumerate(model.eks.node_roles):
        ident = model.resolve(n.role_arn)
        if ident is None and _aws_auth_missing(ctx, model):
            continue  # the mapping may be in aws-auth, which is not in the input
        if ident is None:
            yield node_role_unmapped.meta.finding(
                model.eks.obj,
                f"node role {n.role_arn} of {n.source} is mapped neither by an access entry nor by aws-auth "
                f"(mode {model.mode}); its nodes cannot join",
                evidence=[
                    Evidence(
                        f"nodeRoles[{i}].roleArn", n.role_arn, "an aws-auth mapping or node access entry"
                    )
                ],
            )


def _admin_identities(model: AccessModel) -> list[Identity]:
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
    model = _model(ctx)
    obj, aa = _aws_auth(ctx)
    if aa is None or model.mode != "CONFIG_MAP":
        return
    if not [i for i in _admin_identities(model) if i.source != "creator"]:
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
    "KS-ACC-007",
    "No identity holds cluster-admin through access entries",
    severity=Severity.HIGH,
    layer=L,
    rationale="With access entries as the only store (API mode), or with no admin in aws-auth, an account "
    "without a ClusterAdmin association (bootstrapClusterCreatorAdminPermissions=false, creator entry "
    "deleted) leaves nobody able to administer Kubernetes; recovery needs the EKS API.",
    remediation="aws eks create-access-entry + associate-access-policy --policy-arn "
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy --access-scope type=cluster for a "
    "break-glass role.",
    references=CAM,
)
def no_admin_entry(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    eks = _eks(ctx)
    if eks is None or not described(ctx, eks, "authentication_mode") or not model.entries_active:
        return
    if _aws_auth_missing(ctx, model):
        return  # aws-auth may hold the admin and is not in the input: unknown, not a finding
    if _admin_identities(model):
        return
    boot = model.eks.bootstrap_creator_admin
    yield no_admin_entry.meta.finding(
        model.eks.obj,
        f"authentication mode {model.mode}: no access entry (or aws-auth mapping) grants cluster "
        f"administration"
        + (" and bootstrapClusterCreatorAdminPermissions is false" if boot is False else ""),
        evidence=[
            Evidence(
                "accessEntries",
                len(model.eks.entries),
                "an entry with AmazonEKSClusterAdminPolicy at cluster scope",
            )
        ],
    )


@cluster_check(
    "KS-ACC-008",
    "Access entry for a deleted or re-created IAM principal",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="EKS binds an access entry to the principal's unique ID: after the role or user is deleted "
    "(or deleted and re-created with the same ARN) the entry is silently inert.",
    remediation="Delete the entry and create it again for the current principal.",
    references=CAM,
)
def stale_entry(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    eks = _eks(ctx)
    if eks is None or not eks.entries:
        return
    if eks.iam_principals is None:
        missing(ctx, "iam", f"IAM principals of {len(eks.entries)} access entries")
        return
    for e in model.eks.entries:
        p = model.eks.iam_principals.get(e.principal_arn)
        if p is None:
            yield stale_entry.meta.finding(
                model.eks.obj,
                f"access entry for {e.principal_arn}: the principal does not exist in IAM",
                evidence=[Evidence(f"{e.field}.principalArn", e.principal_arn, "an existing IAM principal")],
            )
        elif p.create_date and e.created_at and p.create_date > e.created_at:
            yield stale_entry.meta.finding(
                model.eks.obj,
                f"access entry for {e.principal_arn} (created {e.created_at}) predates the principal "
                f"(created {p.create_date}): it refers to an earlier principal with that ARN",
                evidence=[Evidence(f"{e.field}.createdAt", e.created_at, f"after {p.create_date}")],
            )


@cluster_check(
    "KS-ACC-009",
    "Access policy scoped to namespaces that do not exist",
    severity=Severity.LOW,
    layer=L,
    rationale="EKS does not validate namespace scopes; a misspelt namespace or pattern grants nothing.",
    remediation="Correct the namespaces of the association (aws eks associate-access-policy replaces the scope).",
    references=CAM,
)
def scope_missing_namespace(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    real = [n for n in ctx.cluster.namespaces if n not in ctx.cluster.synthesized_namespaces]
    if _eks(ctx) is None or not real:
        return
    for e in model.eks.entries:
        for a in e.associations:
            if a.scope.type != "namespace":
                continue
            for i, p in enumerate(a.scope.namespaces):
                if not any(a.scope.__class__("namespace", (p,)).covers(n) for n in real):
                    yield scope_missing_namespace.meta.finding(
                        model.eks.obj,
                        f"{e.principal_arn}: {a.policy} is scoped to namespace {p!r}, which matches no namespace",
                        evidence=[
                            Evidence(
                                f"{a.field}.accessScope.namespaces[{i}]", p, f"one of {', '.join(real[:8])}"
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
    model = _model(ctx)
    obj, aa = _aws_auth(ctx)
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
    obj, aa = _aws_auth(ctx)
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
    obj, aa = _aws_auth(ctx)
    if aa is None:
        return
    model = _model(ctx)
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
    obj, aa = _aws_auth(ctx)
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


def _binding_obj(ctx: CheckContext, ref: str) -> KubeObject | None:
    parts = ref.split("/")
    if parts[0] == "RoleBinding" and len(parts) == 3:
        return ctx.cluster.get("RoleBinding", parts[1], parts[2])
    if parts[0] == "ClusterRoleBinding" and len(parts) == 2:
        return ctx.cluster.get("ClusterRoleBinding", "", parts[1])
    return None


def _public_subject(kind: str, name: str) -> bool:
    """system:authenticated, system:unauthenticated, system:anonymous, system:serviceaccounts[:NS]:
    populations, not platform components, whatever their prefix."""
    return is_public(f"{kind.lower()}:{name}")


def _system_subject(kind: str, name: str, ns: str) -> bool:
    if kind in ("User", "Group"):
        if _public_subject(kind, name):
            return False
        return name.startswith("system:") or name.startswith("eks:")
    return ns == "kube-system"


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
    model = _rbac_model(ctx)
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
            if _system_subject(kind, name, ns) or any(c.kind == "admin" for c in ev):
                continue  # cluster admins are reported by KS-RBAC-001
            yield aws_auth_writers.meta.finding(
                _binding_obj(ctx, b.ref),
                f"{kind} {name} may update kube-system/aws-auth through {b.ref} ({b.role_kind}/{b.role_name})",
                evidence=[Evidence(f"subjects[{i}]", f"{kind} {name}", "no write access to aws-auth")],
            )


@cluster_check(
    "KS-ACC-015",
    "Cluster still authenticates through the aws-auth ConfigMap only",
    severity=Severity.LOW,
    layer=L,
    rationale="CONFIG_MAP mode keeps access in an unvalidated YAML document inside the cluster, with an "
    "invisible creator admin; access entries are validated, per principal and managed through IAM.",
    remediation="aws eks update-cluster-config --access-config authenticationMode=API_AND_CONFIG_MAP, migrate "
    "with `kubestrata access migrate`, then switch to API.",
    references=CAM,
)
def config_map_mode(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    eks = _eks(ctx)
    if eks is None or not described(ctx, eks, "authentication_mode"):
        return
    if eks.authentication_mode == "CONFIG_MAP":
        yield config_map_mode.meta.finding(
            model.eks.obj,
            "authentication mode is CONFIG_MAP",
            evidence=[Evidence("cluster.accessConfig.authenticationMode", "CONFIG_MAP", "API")],
        )


@cluster_check(
    "KS-ACC-016",
    "Cluster creator keeps bootstrap admin permissions",
    severity=Severity.LOW,
    layer=L,
    rationale="bootstrapClusterCreatorAdminPermissions gives the creating identity cluster-admin; AWS best "
    "practice is to create clusters without it (or remove the creator's association) and keep an explicit "
    "break-glass entry instead.",
    remediation="Disassociate AmazonEKSClusterAdminPolicy from the creator's entry once another admin entry exists.",
    references=CAM,
)
def creator_admin(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    eks = _eks(ctx)
    if eks is None or not described(ctx, eks, "authentication_mode"):
        return
    if eks.bootstrap_creator_admin is True:
        yield creator_admin.meta.finding(
            model.eks.obj,
            "bootstrapClusterCreatorAdminPermissions is true",
            evidence=[Evidence("cluster.accessConfig.bootstrapClusterCreatorAdminPermissions", True, False)],
        )


@cluster_check(
    "KS-ACC-017",
    "Broad access policy association",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="AmazonEKSAdminViewPolicy reads every Secret; AmazonEKSEditPolicy and AmazonEKSAdminPolicy "
    "include secrets read/write, pods/exec and serviceaccounts impersonate (Admin also RoleBindings): at "
    "cluster scope each is close to cluster-admin.",
    remediation="Scope the association to the namespaces the principal needs, or use AmazonEKSViewPolicy.",
    references=CAM,
)
def broad_policy(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    if _eks(ctx) is None:
        return
    broad = {
        "AmazonEKSAdminViewPolicy": "reads all Secrets",
        "AmazonEKSEditPolicy": "secrets, exec and impersonate in every namespace",
        "AmazonEKSAdminPolicy": "secrets, exec, impersonate and RoleBindings in every namespace",
    }
    for e in model.eks.entries:
        for a in e.associations:
            if a.policy in broad and a.scope.type == "cluster":
                yield broad_policy.meta.finding(
                    model.eks.obj,
                    f"{e.principal_arn}: {a.policy} at cluster scope ({broad[a.policy]})",
                    evidence=[Evidence(f"{a.field}.accessScope.type", "cluster", "namespace")],
                )
            elif catalog().get(a.policy) is None:
                yield broad_policy.meta.finding(
                    model.eks.obj,
                    f"{e.principal_arn}: access policy {a.policy} is not in kubestrata's catalog "
                    f"(version {catalog().version}); its grants are not evaluated",
                    severity=Severity.INFO,
                    evidence=[Evidence(f"{a.field}.policyArn", a.policy, "a known access policy")],
                )


# -- workload identity ---------------------------------------------------------------------------------

IRSA = "eks.amazonaws.com/role-arn"


@cluster_check(
    "KS-ACC-018",
    "EKS access snapshot cannot be read",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="An EKSClusterAccess document with a malformed field is left out of the analysis, so access "
    "entries, policies or the authentication mode it holds are not evaluated; the scan says so instead of "
    "passing silently.",
    remediation="Regenerate the snapshot with `kubestrata access import` from unmodified AWS CLI output.",
    references=CAM,
)
def snapshot_invalid(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    for e in model.errors:
        obj = next(
            (o for o in ctx.cluster.of_kind("EKSClusterAccess") if o.source and o.source.file == e.file), None
        )
        yield snapshot_invalid.meta.finding(
            obj,
            f"not evaluated: {e}",
            evidence=[Evidence(e.field or "(document)", e.detail, "a value as the AWS CLI prints it")],
        )


@cluster_check(
    "KS-ACC-020",
    "IAM role attached to a namespace's default ServiceAccount",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="Every pod that does not name a ServiceAccount runs as `default`; an IRSA role or Pod Identity "
    "association there hands the IAM role to all of them.",
    remediation="Create a dedicated ServiceAccount for the workload that needs the role.",
    references=IRSA_REFS,
)
def default_sa_role(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    for sa in ctx.cluster.of_kind("ServiceAccount"):
        if sa.name == "default" and sa.annotations.get(IRSA):
            yield default_sa_role.meta.finding(
                sa,
                f"default ServiceAccount of {sa.namespace} carries IAM role {sa.annotations[IRSA]}",
                evidence=[Evidence(f"metadata.annotations.{IRSA}", sa.annotations[IRSA], None)],
            )
    if model.eks is not None:
        for p in model.eks.pod_identity:
            if p.service_account == "default":
                yield default_sa_role.meta.finding(
                    model.eks.obj,
                    f"Pod Identity association gives {p.role_arn} to default ServiceAccount of {p.namespace}",
                    evidence=[Evidence(f"{p.field}.serviceAccount", "default", "a dedicated ServiceAccount")],
                )


@cluster_check(
    "KS-ACC-021",
    "ServiceAccount has both IRSA and a Pod Identity association",
    severity=Severity.LOW,
    layer=L,
    rationale="The AWS SDK credential chain tries web identity (IRSA) before container credentials (Pod "
    "Identity), so one of the two roles is silently unused and reviews of the other are misleading.",
    remediation="Keep one mechanism per ServiceAccount.",
    references=IRSA_REFS,
)
def irsa_and_pod_identity(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    if _eks(ctx) is None:
        return
    for p in model.eks.pod_identity:
        sa = ctx.cluster.get("ServiceAccount", p.namespace, p.service_account)
        if sa is not None and sa.annotations.get(IRSA):
            yield irsa_and_pod_identity.meta.finding(
                sa,
                f"{p.namespace}/{p.service_account}: IRSA role {sa.annotations[IRSA]} and Pod Identity role "
                f"{p.role_arn}; the SDK uses IRSA",
                evidence=[
                    Evidence(f"metadata.annotations.{IRSA}", sa.annotations[IRSA], "one identity mechanism")
                ],
            )


@cluster_check(
    "KS-ACC-022",
    "Pod Identity association for a missing ServiceAccount",
    severity=Severity.LOW,
    layer=L,
    rationale="EKS accepts associations for namespaces and ServiceAccounts that do not exist; a typo leaves "
    "the workload without its role, and whoever later creates that ServiceAccount gets it.",
    remediation="Fix the namespace/serviceAccount of the association or delete it.",
    references=IRSA_REFS,
)
def pod_identity_missing_sa(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    if _eks(ctx) is None:
        return
    real = set(ctx.cluster.namespaces) - ctx.cluster.synthesized_namespaces
    for p in model.eks.pod_identity:
        if p.namespace in real and ctx.cluster.get("ServiceAccount", p.namespace, p.service_account) is None:
            yield pod_identity_missing_sa.meta.finding(
                model.eks.obj,
                f"Pod Identity association for {p.namespace}/{p.service_account}: no such ServiceAccount",
                evidence=[
                    Evidence(f"{p.field}.serviceAccount", p.service_account, "an existing ServiceAccount")
                ],
            )


@cluster_check(
    "KS-ACC-023",
    "One IAM role shared by ServiceAccounts in several namespaces",
    severity=Severity.LOW,
    layer=L,
    rationale="A role serving several namespaces joins their blast radius: compromising any of them yields "
    "the union of the AWS permissions all of them need.",
    remediation="Give each workload its own IAM role.",
    references=IRSA_REFS,
)
def shared_role(ctx: CheckContext) -> Iterator[Finding]:
    model = _model(ctx)
    users: dict[str, list[tuple[str, KubeObject | None, str]]] = defaultdict(list)
    for sa in ctx.cluster.of_kind("ServiceAccount"):
        role = sa.annotations.get(IRSA)
        if isinstance(role, str) and role:
            users[role].append((sa.namespace, sa, f"metadata.annotations.{IRSA}"))
    if model.eks is not None:
        for p in model.eks.pod_identity:
            if p.role_arn:
                users[p.role_arn].append((p.namespace, model.eks.obj, f"{p.field}.roleArn"))
    for role, uses in sorted(users.items()):
        namespaces = sorted({u[0] for u in uses})
        if len(namespaces) > 1:
            yield shared_role.meta.finding(
                uses[0][1],
                f"IAM role {role} serves ServiceAccounts in namespaces {', '.join(namespaces)}",
                evidence=[Evidence(u[2], role, "one role per workload") for u in uses],
            )


@cluster_check(
    "KS-ACC-024",
    "IRSA annotation is not a usable IAM role ARN",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="The Pod Identity webhook injects whatever eks.amazonaws.com/role-arn says; an ARN that is not an "
    "IAM role (a typo, a user or instance-profile ARN, an empty value) leaves the workload without AWS "
    "credentials, or falling back to the node role through IMDS.",
    remediation="Set the annotation to arn:<partition>:iam::<account>:role/<name> of the role whose trust policy "
    "names this ServiceAccount.",
    references=IRSA_REFS,
)
def irsa_bad_arn(ctx: CheckContext) -> Iterator[Finding]:
    for sa in ctx.cluster.of_kind("ServiceAccount"):
        if IRSA not in sa.annotations:
            continue
        v = sa.annotations.get(IRSA)
        problem = ""
        try:
            a = parse_arn(str(v or ""))
            if a.service != "iam" or a.resource_type != "role" or not a.name or a.name == "role":
                problem = "is not an IAM role ARN"
            elif not re.fullmatch(r"[0-9]{12}", a.account):
                problem = "has no 12-digit account ID"
        except ArnError as e:
            problem = f"is not an ARN ({e})"
        if problem:
            yield irsa_bad_arn.meta.finding(
                sa,
                f"ServiceAccount {sa.namespace}/{sa.name}: {IRSA}={v!r} {problem}",
                evidence=[Evidence(f"metadata.annotations.{IRSA}", v, "arn:aws:iam::<account>:role/<name>")],
            )


# -- RBAC ----------------------------------------------------------------------------------------------


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
    model = _rbac_model(ctx)
    for b in model.rbac.bindings:
        if b.namespace:
            continue
        if not any(c.kind == "admin" for r in model.rbac.role_rules(b) for c in rule_caps(r, ALL, "")):
            continue
        for i, s in enumerate(b.subjects):
            kind, name = str(s.get("kind")), str(s.get("name") or "")
            ns = str(s.get("namespace") or "")
            if _system_subject(kind, name, ns):
                continue
            who = f"{kind} {ns + '/' if kind == 'ServiceAccount' else ''}{name}"
            public = _public_subject(kind, name)
            yield cluster_admin_subjects.meta.finding(
                _binding_obj(ctx, b.ref),
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
    model = _model(ctx)
    if ident is not None:
        return (
            model.aws_auth_obj
            if ident.source.startswith("aws-auth")
            else (model.eks.obj if model.eks else None)
        )
    ev = path[0].evidence if path else ""
    ref = ev.split(" -> ", 1)[0].split(" ", 1)[0]
    return _binding_obj(ctx, ref)


def _path_findings(ctx: CheckContext, meta, target: str, skip_admin_reachers: bool) -> Iterator[Finding]:
    graph = _graph(ctx)
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


def _short(v: object) -> object:
    if isinstance(v, str) and len(v) > 200:
        return v[:200] + "..."
    return v
