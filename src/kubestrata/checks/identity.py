"""Workload identity trust policies (KS-IDN-*): IRSA and Pod Identity role trust, from the ``aws iam
get-role`` output carried in the EKSClusterAccess snapshot (``iamPrincipals[].AssumeRolePolicyDocument``).
The engine is kubestrata.identity.trust; these checks map its issues to findings.

Coverage: when trust policies were given but a role a ServiceAccount or association uses is not among
them, one gap names the roles; with no trust policy at all the checks have nothing to judge and stay
silent (trust lint is opt-in input).
"""

from __future__ import annotations

from collections.abc import Iterator

from kubestrata.checks.base import CheckContext, cluster_check
from kubestrata.checks.ekssupport import IRSA_ANNOTATION, snapshot
from kubestrata.eks.arn import ArnError, parse_arn
from kubestrata.findings import Evidence, Finding, GapReason, Layer, Severity
from kubestrata.identity.trust import TrustIssue, lint

L = Layer.INFRASTRUCTURE
REFS = {
    "cis-eks": ["5.1.x"],
    "nsa-cisa": ["Authentication and authorization"],
    "mitre": ["T1078.004 Valid Accounts: Cloud Accounts"],
}


def _issues(ctx: CheckContext) -> list[tuple[TrustIssue, object]]:
    def build() -> list[tuple[TrustIssue, object]]:
        eks = snapshot(ctx)
        if eks is None or not eks.iam_principals:
            return []
        irsa_roles = {
            str(sa.annotations[IRSA_ANNOTATION])
            for sa in ctx.cluster.of_kind("ServiceAccount")
            if isinstance(sa.annotations.get(IRSA_ANNOTATION), str)
        }
        tagged: set[str] = set()
        pod_roles: set[str] = set()
        for p in eks.pod_identity:
            pod_roles.add(p.role_arn)
            if not p.disable_session_tags:
                tagged.add(p.role_arn)
        out: list[tuple[TrustIssue, object]] = []
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


def _emit(ctx: CheckContext, rule: str, meta) -> Iterator[Finding]:  # type: ignore[no-untyped-def]
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
