"""What the checks share about EKS input: the snapshot (parsed once per scan), and "not evaluated" gaps
for missing EKS data.

Gap policy (docs/access.md, "EKS cluster posture"): a check that needs EKS data the input lacks records
a coverage gap instead of passing silently, but only

- when the input has an EKSClusterAccess snapshot that lacks a piece (describe-cluster, KMS, GuardDuty,
  IAM principals), or
- when there is no snapshot but the manifests clearly come from EKS (the kube-system/aws-auth
  ConfigMap, an IRSA annotation, or a Node with an ``eks.amazonaws.com/`` label).

Plain manifests of some other cluster get no EKS gaps. Each missing input kind is one gap per scan,
whatever the number of checks that needed it; the detail names those checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubestrata.eks.model import SNAPSHOT_KIND, EKSAccess
from kubestrata.eks.objects import from_objects
from kubestrata.findings import GapReason
from kubestrata.kube.cluster import Cluster

if TYPE_CHECKING:
    from kubestrata.checks.base import CheckContext

IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"

# What each input kind feeds, for the gap detail (one gap per kind, so it lists every consumer).
NEEDED_BY = {
    "snapshot": "access entries, access policies, Pod Identity and EKS posture (KS-ACC-005, -007, -008, "
    "-009, -015, -016, -017, -021, -022, KS-EKS-*)",
    "describe-cluster": "authentication mode, version, Secrets encryption, audit logging and endpoint "
    "access (KS-ACC-007, -015, -016, KS-EKS-001..005, -007)",
    "kms": "KMS key rotation (KS-EKS-002)",
    "kms-key": "KMS key state (KS-EKS-007)",
    "guardduty": "GuardDuty EKS protection (KS-EKS-006)",
    "iam": "access entries for deleted or re-created principals (KS-ACC-008)",
    "aws-auth": "aws-auth mappings in a mode that reads them (KS-ACC-005, KS-ACC-007)",
}
HOW = {
    "snapshot": "kubestrata access import <aws-cli-json...> --output-file eks.yaml (or --live), then scan it with the "
    "manifests",
    "describe-cluster": "aws eks describe-cluster --name CLUSTER > describe-cluster.json, then access import",
    "kms": "aws kms get-key-rotation-status --key-id KEY_ARN, then access import",
    "kms-key": "aws kms describe-key --key-id KEY_ARN, then access import",
    "guardduty": "aws guardduty get-detector --detector-id $(aws guardduty list-detectors --query "
    "'DetectorIds[0]' --output text), then access import",
    "iam": "aws iam get-role --role-name NAME / aws iam get-user --user-name NAME, then access import",
    "aws-auth": "kubectl get configmap -n kube-system aws-auth -o yaml",
}


def looks_like_eks(cluster: Cluster) -> bool:
    """Manifests that can only come from EKS (so missing EKS data is worth a gap)."""
    if cluster.of_kind(SNAPSHOT_KIND) or cluster.get("ConfigMap", "kube-system", "aws-auth") is not None:
        return True
    if any(IRSA_ANNOTATION in sa.annotations for sa in cluster.of_kind("ServiceAccount")):
        return True
    return any(any(k.startswith("eks.amazonaws.com/") for k in n.labels) for n in cluster.of_kind("Node"))


def missing(ctx: CheckContext, kind: str, subject: str, detail: str = "") -> None:
    """Record that an input kind is missing, once per scan."""

    def record() -> bool:
        text = (detail + "; " if detail else "") + f"not evaluated: {NEEDED_BY[kind]}. Provide: {HOW[kind]}"
        ctx.gap(subject, GapReason.MISSING_INPUT, text)
        return True

    ctx.memo(f"eks.gap.{kind}", record)


def snapshot(ctx: CheckContext, eks: EKSAccess | None = None, errors: bool = False) -> EKSAccess | None:
    """The EKS snapshot for a check that needs one; a gap (once) when the input is EKS but has none.

    ``eks``/``errors`` let the access checks pass the model they already built; without them the
    snapshot documents are parsed here (once per scan). An unreadable snapshot is KS-ACC-018's finding,
    not a second report here.
    """
    if eks is None and not errors:
        eks, errs = ctx.memo("eks.snapshot", lambda: from_objects(ctx.cluster.of_kind(SNAPSHOT_KIND)))
        errors = bool(errs)
    if eks is None and not errors and ctx.memo("eks.looks", lambda: looks_like_eks(ctx.cluster)):
        missing(
            ctx,
            "snapshot",
            SNAPSHOT_KIND,
            "the input looks like an EKS cluster (aws-auth, IRSA or EKS node labels) but has no EKS snapshot",
        )
    return eks


POSTURE_FIELDS = {
    "version": "cluster.version",
    "encryption": "cluster.encryptionConfig",
    "logging": "cluster.logging",
    "endpoint": "cluster.resourcesVpcConfig",
}


def described(ctx: CheckContext, eks: EKSAccess, attr: str) -> bool:
    """Whether describe-cluster supplied ``attr``; else one gap naming every posture field absent."""
    if attr == "authentication_mode":
        ok = eks.authentication_mode is not None
    else:
        ok = getattr(eks, attr) not in (None, "")
    if ok:
        return True
    if eks.authentication_mode is None:
        detail = "the EKS snapshot has no describe-cluster data"
    else:
        absent = [f for a, f in POSTURE_FIELDS.items() if getattr(eks, a) in (None, "")]
        detail = (
            f"the EKS snapshot's describe-cluster data lacks {', '.join(absent)} (a snapshot from an older "
            "`access import`, or a trimmed describe-cluster output)"
        )
    missing(ctx, "describe-cluster", f"{SNAPSHOT_KIND}/{eks.cluster_name or 'eks'}", detail)
    return False
