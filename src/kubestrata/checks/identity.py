"""Workload identity: which IAM role a ServiceAccount gets (IRSA annotations, Pod Identity associations:
KS-ACC-020..024) and whether that role's trust policy is sound (KS-IDN-*, from the ``aws iam get-role``
output carried in the EKSClusterAccess snapshot, ``iamPrincipals[].AssumeRolePolicyDocument``). The trust
engine is kubestrata.identity.trust; these checks map its issues to findings.

Coverage: when trust policies were given but a role a ServiceAccount or association uses is not among
them, one gap names the roles; with no trust policy at all the checks have nothing to judge and stay
silent (trust lint is opt-in input).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from kubestrata.checks.accesssupport import IRSA_REFS, access_model, eks_snapshot
from kubestrata.checks.base import CheckContext, CheckMeta, cluster_check
from kubestrata.checks.ekssupport import IRSA_ANNOTATION, snapshot
from kubestrata.eks.arn import ArnError, parse_arn
from kubestrata.findings import Evidence, Finding, GapReason, Layer, Severity
from kubestrata.kube.objects import KubeObject

if TYPE_CHECKING:
    from kubestrata.identity.trust import TrustIssue

L = Layer.INFRASTRUCTURE
REFS = {
    "cis-eks": ["5.1.x"],
    "nsa-cisa": ["Authentication and authorization"],
    "mitre": ["T1078.004 Valid Accounts: Cloud Accounts"],
}


def _issues(ctx: CheckContext) -> list[tuple[TrustIssue, KubeObject | None]]:
    def build() -> list[tuple[TrustIssue, KubeObject | None]]:
        eks = snapshot(ctx)
        if eks is None or not eks.iam_principals:
            return []
        from kubestrata.identity.trust import lint

        irsa_roles = {
            str(sa.annotations[IRSA_ANNOTATION])
            for sa in ctx.cluster.of_kind("ServiceAccount")
            if isinstance(sa.annotations.get(IRSA_ANNOTATION), str)
        }
        tagged: set[str] = set()
        pod_roles: set[str] = set()
        for assoc in eks.pod_identity:
            pod_roles.add(assoc.role_arn)
            if not assoc.disable_session_tags:
                tagged.add(assoc.role_arn)
        out: list[tuple[TrustIssue, KubeObject | None]] = []
        with_trust = {a for a, p in eks.iam_principals.items() if p.trust_policy is not None}
        for arn, p in eks.iam_principals.items():
            if p.trust_policy is None:
                continue
            try:
                if parse_arn(arn).resource_type != "role":
                    continue
            except ArnError:
                continue
            for issue in lint(
                arn,
                p.trust_policy,
                path=f"{p.field}.AssumeRolePolicyDocument",
                cluster_issuer=eks.oidc_issuer,
                used_by_irsa=arn in irsa_roles,
                # a role no association names yet is judged as EKS would assume it: with tags
                tag_sessions=arn in tagged or arn not in pod_roles,
            ):
                out.append((issue, eks.obj))
        unknown = sorted((irsa_roles | pod_roles) - with_trust - {""})
        if with_trust and unknown:
            ctx.gap(
                "IAM role trust policies",
                GapReason.MISSING_INPUT,
                f"not evaluated: the trust policies of {', '.join(unknown)} (KS-IDN-*). Provide: aws iam get-role "
                "--role-name NAME for each, then kubestrata access import",
            )
        if with_trust and irsa_roles & with_trust and not eks.oidc_issuer:
            ctx.gap(
                "cluster OIDC issuer",
                GapReason.MISSING_INPUT,
                "not evaluated: foreign-issuer trust (KS-IDN-004). Provide: aws eks describe-cluster "
                "(cluster.identity.oidc.issuer), then kubestrata access import",
            )
        return out

    return ctx.memo("identity.trust", build)


def _emit(ctx: CheckContext, rule: str, meta: CheckMeta) -> Iterator[Finding]:
    for issue, obj in _issues(ctx):
        if issue.rule == rule:
            yield meta.finding(
                obj,
                issue.message,
                severity=Severity(issue.severity) if issue.severity else None,
                evidence=[Evidence(issue.path, issue.observed, issue.expected)],
            )


@cluster_check(
    "KS-IDN-001",
    "IRSA trust policy without a :sub condition",
    severity=Severity.HIGH,
    layer=L,
    rationale="Without `<issuer>:sub`, the role trusts every token the cluster's OIDC issuer signs: any pod "
    "of any namespace (and any token a user can request for any service account) can assume it.",
    remediation='Add "StringEquals": {"<issuer>:sub": "system:serviceaccount:<namespace>:<name>"} to the '
    "statement that trusts the OIDC provider.",
    references=REFS,
)
def irsa_sub_missing(ctx: CheckContext) -> Iterator[Finding]:
    yield from _emit(ctx, "sub-missing", irsa_sub_missing.meta)


@cluster_check(
    "KS-IDN-002",
    "IRSA trust policy :sub condition with a wildcard",
    severity=Severity.HIGH,
    layer=L,
    rationale="A StringLike `:sub` with `*` trusts a namespace's every service account (medium) or service "
    "accounts of any namespace (high), so whoever can create a service account or run a pod there gets the role.",
    remediation="Name the one service account with StringEquals; give other workloads their own roles.",
    references=REFS,
)
def irsa_sub_wildcard(ctx: CheckContext) -> Iterator[Finding]:
    yield from _emit(ctx, "sub-wildcard", irsa_sub_wildcard.meta)


@cluster_check(
    "KS-IDN-003",
    "IRSA trust policy without an :aud condition",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="Without `<issuer>:aud`, a service-account token minted for another audience (a vault, a "
    "webhook, the API server) can be exchanged for the role's credentials by whoever receives it.",
    remediation='Add "StringEquals": {"<issuer>:aud": "sts.amazonaws.com"} to the statement.',
    references=REFS,
)
def irsa_aud_missing(ctx: CheckContext) -> Iterator[Finding]:
    yield from _emit(ctx, "aud-missing", irsa_aud_missing.meta)


@cluster_check(
    "KS-IDN-004",
    "IRSA role trusts another cluster's OIDC issuer",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="A ServiceAccount annotated with a role whose trust names another issuer gets no credentials "
    "here (AccessDenied) while the role stays open to the other cluster's service accounts; usually a role "
    "copied between clusters or an issuer that changed when the cluster was re-created.",
    remediation="Trust this cluster's OIDC provider (describe-cluster identity.oidc.issuer) in the role, or "
    "annotate the ServiceAccount with a role made for this cluster.",
    references=REFS,
)
def irsa_foreign_issuer(ctx: CheckContext) -> Iterator[Finding]:
    yield from _emit(ctx, "foreign-issuer", irsa_foreign_issuer.meta)


@cluster_check(
    "KS-IDN-005",
    "IAM role trusted by both IRSA and Pod Identity",
    severity=Severity.LOW,
    layer=L,
    rationale="Two mechanisms reach one role: its effective audience is the union of the IRSA :sub and every "
    "Pod Identity association naming it, which reviews of either one miss.",
    remediation="Keep one trust mechanism per role; migrate IRSA roles to Pod Identity whole.",
    references=REFS,
)
def irsa_and_pod_identity_trust(ctx: CheckContext) -> Iterator[Finding]:
    yield from _emit(ctx, "irsa-and-pod-identity", irsa_and_pod_identity_trust.meta)


@cluster_check(
    "KS-IDN-006",
    "Pod Identity trust policy without sts:TagSession",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="EKS Pod Identity assumes the role with six session tags; a trust policy that allows "
    "sts:AssumeRole but not sts:TagSession makes every credential request fail with AccessDenied, and "
    "workloads fall back to the node role if IMDS is reachable.",
    remediation='Allow ["sts:AssumeRole", "sts:TagSession"] for the pods.eks.amazonaws.com principal (or set '
    "disableSessionTags on the associations).",
    references=REFS,
)
def pod_identity_no_tag_session(ctx: CheckContext) -> Iterator[Finding]:
    yield from _emit(ctx, "no-tag-session", pod_identity_no_tag_session.meta)


# -- ServiceAccounts and Pod Identity associations (KS-ACC-020..024) --------------------------------


@cluster_check(
    "KS-ACC-020",
    "IAM role attached to a namespace's default ServiceAccount",
    severity=Severity.MEDIUM,
    layer=Layer.CLUSTER,
    rationale="Every pod that does not name a ServiceAccount runs as `default`; an IRSA role or Pod Identity "
    "association there hands the IAM role to all of them.",
    remediation="Create a dedicated ServiceAccount for the workload that needs the role.",
    references=IRSA_REFS,
)
def default_sa_role(ctx: CheckContext) -> Iterator[Finding]:
    model = access_model(ctx)
    for sa in ctx.cluster.of_kind("ServiceAccount"):
        if sa.name == "default" and sa.annotations.get(IRSA_ANNOTATION):
            yield default_sa_role.meta.finding(
                sa,
                f"default ServiceAccount of {sa.namespace} carries IAM role {sa.annotations[IRSA_ANNOTATION]}",
                evidence=[
                    Evidence(f"metadata.annotations.{IRSA_ANNOTATION}", sa.annotations[IRSA_ANNOTATION], None)
                ],
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
    layer=Layer.CLUSTER,
    rationale="The AWS SDK credential chain tries web identity (IRSA) before container credentials (Pod "
    "Identity), so one of the two roles is silently unused and reviews of the other are misleading.",
    remediation="Keep one mechanism per ServiceAccount.",
    references=IRSA_REFS,
)
def irsa_and_pod_identity(ctx: CheckContext) -> Iterator[Finding]:
    eks = eks_snapshot(ctx)
    if eks is None:
        return
    for p in eks.pod_identity:
        sa = ctx.cluster.get("ServiceAccount", p.namespace, p.service_account)
        if sa is not None and sa.annotations.get(IRSA_ANNOTATION):
            yield irsa_and_pod_identity.meta.finding(
                sa,
                f"{p.namespace}/{p.service_account}: IRSA role {sa.annotations[IRSA_ANNOTATION]} and Pod Identity role "
                f"{p.role_arn}; the SDK uses IRSA",
                evidence=[
                    Evidence(
                        f"metadata.annotations.{IRSA_ANNOTATION}",
                        sa.annotations[IRSA_ANNOTATION],
                        "one identity mechanism",
                    )
                ],
            )


@cluster_check(
    "KS-ACC-022",
    "Pod Identity association for a missing ServiceAccount",
    severity=Severity.LOW,
    layer=Layer.CLUSTER,
    rationale="EKS accepts associations for namespaces and ServiceAccounts that do not exist; a typo leaves "
    "the workload without its role, and whoever later creates that ServiceAccount gets it.",
    remediation="Fix the namespace/serviceAccount of the association or delete it.",
    references=IRSA_REFS,
)
def pod_identity_missing_sa(ctx: CheckContext) -> Iterator[Finding]:
    eks = eks_snapshot(ctx)
    if eks is None:
        return
    real = set(ctx.cluster.namespaces) - ctx.cluster.synthesized_namespaces
    for p in eks.pod_identity:
        if p.namespace in real and ctx.cluster.get("ServiceAccount", p.namespace, p.service_account) is None:
            yield pod_identity_missing_sa.meta.finding(
                eks.obj,
                f"Pod Identity association for {p.namespace}/{p.service_account}: no such ServiceAccount",
                evidence=[
                    Evidence(f"{p.field}.serviceAccount", p.service_account, "an existing ServiceAccount")
                ],
            )


@cluster_check(
    "KS-ACC-023",
    "One IAM role shared by ServiceAccounts in several namespaces",
    severity=Severity.LOW,
    layer=Layer.CLUSTER,
    rationale="A role serving several namespaces joins their blast radius: compromising any of them yields "
    "the union of the AWS permissions all of them need.",
    remediation="Give each workload its own IAM role.",
    references=IRSA_REFS,
)
def shared_role(ctx: CheckContext) -> Iterator[Finding]:
    model = access_model(ctx)
    users: dict[str, list[tuple[str, KubeObject | None, str]]] = defaultdict(list)
    for sa in ctx.cluster.of_kind("ServiceAccount"):
        role = sa.annotations.get(IRSA_ANNOTATION)
        if isinstance(role, str) and role:
            users[role].append((sa.namespace, sa, f"metadata.annotations.{IRSA_ANNOTATION}"))
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
    layer=Layer.CLUSTER,
    rationale="The Pod Identity webhook injects whatever eks.amazonaws.com/role-arn says; an ARN that is not an "
    "IAM role (a typo, a user or instance-profile ARN, an empty value) leaves the workload without AWS "
    "credentials, or falling back to the node role through IMDS.",
    remediation="Set the annotation to arn:<partition>:iam::<account>:role/<name> of the role whose trust policy "
    "names this ServiceAccount.",
    references=IRSA_REFS,
)
def irsa_bad_arn(ctx: CheckContext) -> Iterator[Finding]:
    for sa in ctx.cluster.of_kind("ServiceAccount"):
        if IRSA_ANNOTATION not in sa.annotations:
            continue
        v = sa.annotations.get(IRSA_ANNOTATION)
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
                f"ServiceAccount {sa.namespace}/{sa.name}: {IRSA_ANNOTATION}={v!r} {problem}",
                evidence=[
                    Evidence(
                        f"metadata.annotations.{IRSA_ANNOTATION}", v, "arn:aws:iam::<account>:role/<name>"
                    )
                ],
            )
