"""EKS Cluster Access Management (KS-ACC-005, -007..009, -015..018): the authentication mode, access
entries and their access policy associations, node roles, and the snapshot they come from."""

from __future__ import annotations

from collections.abc import Iterator

from kubestrata.access.policies import catalog
from kubestrata.checks.accesssupport import (
    CAM,
    access_model,
    admin_identities,
    aws_auth_missing,
    eks_snapshot,
)
from kubestrata.checks.base import CheckContext, cluster_check
from kubestrata.checks.ekssupport import described, missing
from kubestrata.findings import Evidence, Finding, Layer, Severity

L = Layer.CLUSTER


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
    model = access_model(ctx)
    eks = eks_snapshot(ctx)
    if eks is None or not eks.node_roles:
        return
    for i, n in enumerate(eks.node_roles):
        ident = model.resolve(n.role_arn)
        if ident is None and aws_auth_missing(ctx, model):
            continue  # the mapping may be in aws-auth, which is not in the input
        if ident is None:
            yield node_role_unmapped.meta.finding(
                eks.obj,
                f"node role {n.role_arn} of {n.source} is mapped neither by an access entry nor by aws-auth "
                f"(mode {model.mode}); its nodes cannot join",
                evidence=[
                    Evidence(
                        f"nodeRoles[{i}].roleArn", n.role_arn, "an aws-auth mapping or node access entry"
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
    model = access_model(ctx)
    eks = eks_snapshot(ctx)
    if eks is None or not described(ctx, eks, "authentication_mode") or not model.entries_active:
        return
    if aws_auth_missing(ctx, model):
        return  # aws-auth may hold the admin and is not in the input: unknown, not a finding
    if admin_identities(model):
        return
    boot = eks.bootstrap_creator_admin
    yield no_admin_entry.meta.finding(
        eks.obj,
        f"authentication mode {model.mode}: no access entry (or aws-auth mapping) grants cluster "
        f"administration"
        + (" and bootstrapClusterCreatorAdminPermissions is false" if boot is False else ""),
        evidence=[
            Evidence(
                "accessEntries",
                len(eks.entries),
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
    eks = eks_snapshot(ctx)
    if eks is None or not eks.entries:
        return
    if eks.iam_principals is None:
        missing(ctx, "iam", f"IAM principals of {len(eks.entries)} access entries")
        return
    for e in eks.entries:
        p = eks.iam_principals.get(e.principal_arn)
        if p is None:
            yield stale_entry.meta.finding(
                eks.obj,
                f"access entry for {e.principal_arn}: the principal does not exist in IAM",
                evidence=[Evidence(f"{e.field}.principalArn", e.principal_arn, "an existing IAM principal")],
            )
        elif p.create_date and e.created_at and p.create_date > e.created_at:
            yield stale_entry.meta.finding(
                eks.obj,
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
    real = [n for n in ctx.cluster.namespaces if n not in ctx.cluster.synthesized_namespaces]
    eks = eks_snapshot(ctx)
    if eks is None or not real:
        return
    for e in eks.entries:
        for a in e.associations:
            if a.scope.type != "namespace":
                continue
            for i, p in enumerate(a.scope.namespaces):
                if not any(a.scope.__class__("namespace", (p,)).covers(n) for n in real):
                    yield scope_missing_namespace.meta.finding(
                        eks.obj,
                        f"{e.principal_arn}: {a.policy} is scoped to namespace {p!r}, which matches no namespace",
                        evidence=[
                            Evidence(
                                f"{a.field}.accessScope.namespaces[{i}]", p, f"one of {', '.join(real[:8])}"
                            )
                        ],
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
    eks = eks_snapshot(ctx)
    if eks is None or not described(ctx, eks, "authentication_mode"):
        return
    if eks.authentication_mode == "CONFIG_MAP":
        yield config_map_mode.meta.finding(
            eks.obj,
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
    eks = eks_snapshot(ctx)
    if eks is None or not described(ctx, eks, "authentication_mode"):
        return
    if eks.bootstrap_creator_admin is True:
        yield creator_admin.meta.finding(
            eks.obj,
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
    eks = eks_snapshot(ctx)
    if eks is None:
        return
    broad = {
        "AmazonEKSAdminViewPolicy": "reads all Secrets",
        "AmazonEKSEditPolicy": "secrets, exec and impersonate in every namespace",
        "AmazonEKSAdminPolicy": "secrets, exec, impersonate and RoleBindings in every namespace",
    }
    for e in eks.entries:
        for a in e.associations:
            if a.policy in broad and a.scope.type == "cluster":
                yield broad_policy.meta.finding(
                    eks.obj,
                    f"{e.principal_arn}: {a.policy} at cluster scope ({broad[a.policy]})",
                    evidence=[Evidence(f"{a.field}.accessScope.type", "cluster", "namespace")],
                )
            elif catalog().get(a.policy) is None:
                yield broad_policy.meta.finding(
                    eks.obj,
                    f"{e.principal_arn}: access policy {a.policy} is not in kubestrata's catalog "
                    f"(version {catalog().version}); its grants are not evaluated",
                    severity=Severity.INFO,
                    evidence=[Evidence(f"{a.field}.policyArn", a.policy, "a known access policy")],
                )


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
    model = access_model(ctx)
    for e in model.errors:
        obj = next(
            (o for o in ctx.cluster.of_kind("EKSClusterAccess") if o.source and o.source.file == e.file), None
        )
        yield snapshot_invalid.meta.finding(
            obj,
            f"not evaluated: {e}",
            evidence=[Evidence(e.field or "(document)", e.detail, "a value as the AWS CLI prints it")],
        )
