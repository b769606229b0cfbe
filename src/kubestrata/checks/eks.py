"""EKS cluster posture (KS-EKS-*): Secrets envelope encryption with a customer-managed KMS key, key
rotation, control-plane audit logs, API endpoint exposure, version support and GuardDuty EKS protection.

They read the EKSClusterAccess snapshot (`kubestrata access import`); data the snapshot lacks is a
coverage gap, recorded once per missing input kind (kubestrata.checks.ekssupport).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from kubestrata.checks.base import CheckContext, cluster_check
from kubestrata.checks.ekssupport import described, missing, snapshot
from kubestrata.eks.model import EKSAccess, minor_key
from kubestrata.findings import Evidence, Finding, GapReason, Layer, Severity

L = Layer.CLUSTER
NSA_LOG = "Logging and threat detection"


def _eks(ctx: CheckContext) -> EKSAccess | None:
    return snapshot(ctx)


def _secrets_keys(eks: EKSAccess) -> list[tuple[str, str]]:
    """(key ARN, field) of every encryptionConfig entry covering secrets."""
    return [(e.key_arn, e.field) for e in eks.encryption or [] if "secrets" in e.resources and e.key_arn]


@cluster_check(
    "KS-EKS-001",
    "Secrets are not envelope-encrypted with a customer-managed KMS key",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="Since Kubernetes 1.28 EKS envelope-encrypts all Kubernetes API data with KMS v2 and an "
    "AWS-owned key; you neither see nor control that key. A customer-managed KMS key as the key "
    "encryption key (encryptionConfig resources [secrets]) puts its use under your key policy and "
    "CloudTrail, and lets you revoke it. Before 1.28 Secrets without it are protected only by "
    "disk-level encryption of etcd.",
    remediation="aws eks associate-encryption-config --cluster-name CLUSTER --encryption-config "
    '\'[{"resources":["secrets"],"provider":{"keyArn":"arn:aws:kms:REGION:ACCOUNT:key/ID"}}]\' '
    "(or eksctl utils enable-secrets-encryption, which also rewrites existing Secrets). It cannot be "
    "removed once enabled.",
    references={
        "cis-eks": ["5.3.1"],
        "nsa-cisa": ["Kubernetes Pod security: protect Secrets, encrypt at rest (KMS)"],
        "mitre": ["T1552.007 Unsecured Credentials: Container API"],
    },
)
def secrets_cmk(ctx: CheckContext) -> Iterator[Finding]:
    eks = _eks(ctx)
    if eks is None or not described(ctx, eks, "encryption"):
        return
    if _secrets_keys(eks):
        return
    old = bool(eks.version) and minor_key(eks.version) < (1, 28)
    yield secrets_cmk.meta.finding(
        eks.obj,
        (
            f"Kubernetes {eks.version}: Secrets are not envelope-encrypted at all (EKS encrypts API data by "
            "default only from 1.28); only etcd disk encryption protects them"
            if old
            else "Secrets are envelope-encrypted only with the AWS-owned default key (EKS >= 1.28), not with "
            "a customer-managed KMS key you control and audit"
        ),
        severity=Severity.HIGH if old else None,
        evidence=[
            Evidence(
                "cluster.encryptionConfig",
                [{"resources": list(e.resources), "keyArn": e.key_arn} for e in eks.encryption or []],
                [{"resources": ["secrets"], "provider": {"keyArn": "<customer-managed KMS key ARN>"}}],
            )
        ],
    )


@cluster_check(
    "KS-EKS-002",
    "KMS key encrypting Secrets has automatic rotation disabled",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="Automatic rotation replaces the key material of a customer-managed key (yearly by default) "
    "under the same key ARN, so the KMS v2 plugin keeps working and nothing has to be re-encrypted by "
    "hand; a key that never rotates keeps one key material protecting every Secret for the life of the "
    "cluster. Kubernetes' KMS guidance is to rotate the key encryption key regularly.",
    remediation="aws kms enable-key-rotation --key-id KEY_ARN [--rotation-period-in-days 90..2560]. Keys "
    "with imported material or in a custom key store cannot rotate automatically: rotate them by hand.",
    references={
        "cis-eks": ["5.3.1"],
        "nsa-cisa": ["Kubernetes Pod security: protect Secrets, encrypt at rest (KMS)"],
        "mitre": ["T1552.007 Unsecured Credentials: Container API"],
    },
)
def kms_rotation(ctx: CheckContext) -> Iterator[Finding]:
    eks = _eks(ctx)
    if eks is None or not described(ctx, eks, "encryption"):
        return
    for arn, _ in _secrets_keys(eks):
        key = eks.kms_key(arn)
        if key is None or key.rotation_enabled is None:
            missing(ctx, "kms", f"KMS key {arn} rotation", f"no get-key-rotation-status output for {arn}")
            continue
        if key.key_manager == "AWS":
            continue  # AWS-managed keys rotate yearly and cannot be configured
        if key.rotation_enabled:
            continue
        manual = key.origin not in ("", "AWS_KMS")
        yield kms_rotation.meta.finding(
            eks.obj,
            f"KMS key {arn} (Secrets encryption) has automatic rotation disabled"
            + (
                f"; its origin {key.origin} does not support automatic rotation, rotate it by hand"
                if manual
                else ""
            ),
            evidence=[Evidence(f"{key.field}.keyRotationEnabled", False, True)],
        )


# KMS key states in which the key cannot decrypt (describe-key KeyState)
_UNUSABLE = {
    "Disabled": "is disabled",
    "PendingDeletion": "is scheduled for deletion",
    "PendingReplicaDeletion": "is scheduled for deletion",
    "PendingImport": "has no key material (imported material missing or expired)",
    "Unavailable": "is unavailable (its custom key store is disconnected)",
}


@cluster_check(
    "KS-EKS-007",
    "KMS key encrypting Secrets cannot decrypt",
    severity=Severity.CRITICAL,
    layer=L,
    rationale="With a customer-managed key as the key encryption key, every Secret (and on 1.28+ all "
    "Kubernetes API data) is decrypted through it: a disabled key or missing key material stops the API "
    "server from reading them (EKS reports KmsKeyDisabled / KmsKeyNotFound cluster health issues), and once "
    "a key scheduled for deletion is deleted the data it protected cannot be recovered.",
    remediation="aws kms enable-key / aws kms cancel-key-deletion --key-id KEY_ARN (then enable-key); "
    "reconnect the custom key store or re-import the key material. Guard the key with a key policy that "
    "denies kms:DisableKey and kms:ScheduleKeyDeletion to all but break-glass roles.",
    references={
        "cis-eks": ["5.3.1"],
        "nsa-cisa": ["Kubernetes Pod security: protect Secrets, encrypt at rest (KMS)"],
        "mitre": ["T1485 Data Destruction", "T1490 Inhibit System Recovery"],
    },
)
def kms_key_state(ctx: CheckContext) -> Iterator[Finding]:
    eks = _eks(ctx)
    if eks is None or not described(ctx, eks, "encryption"):
        return
    for arn, _ in _secrets_keys(eks):
        key = eks.kms_key(arn)
        if key is None or not key.key_state:
            missing(ctx, "kms-key", f"KMS key {arn}", f"no describe-key output for {arn}")
            continue
        why = _UNUSABLE.get(key.key_state)
        if why:
            yield kms_key_state.meta.finding(
                eks.obj,
                f"KMS key {arn} (Secrets encryption) {why}: the API server cannot decrypt Secrets",
                severity=Severity.HIGH if key.key_state == "Unavailable" else None,
                evidence=[Evidence(f"{key.field}.keyState", key.key_state, "Enabled")],
            )


@cluster_check(
    "KS-EKS-003",
    "Control-plane audit logging is not enabled",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="EKS writes the Kubernetes API server audit log to CloudWatch Logs (log group "
    "/aws/eks/CLUSTER/cluster) only when the audit log type is enabled. Without it there is no record of "
    "who read Secrets, exec'd into pods or changed RBAC, and kubestrata detect (and GuardDuty-independent "
    "investigation) has nothing to read.",
    remediation="aws eks update-cluster-config --name CLUSTER --logging "
    '\'{"clusterLogging":[{"types":["api","audit","authenticator"],"enabled":true}]}\' and set a '
    "retention on the log group.",
    references={
        "cis-eks": ["2.1.1"],
        "nsa-cisa": [NSA_LOG],
        "mitre": ["T1562.008 Impair Defenses: Disable or Modify Cloud Logs"],
    },
)
def audit_logging(ctx: CheckContext) -> Iterator[Finding]:
    eks = _eks(ctx)
    if eks is None or not described(ctx, eks, "logging"):
        return
    logging = eks.logging or {}
    if logging.get("audit"):
        return
    enabled = sorted(t for t, on in logging.items() if on)
    yield audit_logging.meta.finding(
        eks.obj,
        "control-plane audit logs are not sent to CloudWatch Logs"
        + (f" (enabled: {', '.join(enabled)})" if enabled else " (no control-plane log type is enabled)"),
        evidence=[Evidence("cluster.logging.clusterLogging", enabled, ["audit", "..."])],
    )


def _open_cidrs(cidrs: tuple[str, ...]) -> list[str]:
    if not cidrs:
        return ["0.0.0.0/0"]  # EKS's default when public access has no CIDR list
    return [c for c in cidrs if ipaddress.ip_network(c, strict=False).prefixlen == 0]


@cluster_check(
    "KS-EKS-004",
    "Kubernetes API endpoint is reachable from the whole internet",
    severity=Severity.HIGH,
    layer=L,
    rationale="A public endpoint open to 0.0.0.0/0 lets anyone on the internet reach the API server: "
    "authentication still applies, but credential stuffing, stolen tokens and any pre-auth API server "
    "bug are exposed worldwide. With private access off, nodes also reach the API through the public "
    "endpoint.",
    remediation="aws eks update-cluster-config --name CLUSTER --resources-vpc-config "
    "endpointPrivateAccess=true,endpointPublicAccess=false (or keep public access with "
    "publicAccessCidrs limited to your egress ranges).",
    references={
        "cis-eks": ["5.4.1", "5.4.2"],
        "nsa-cisa": ["Network separation and hardening: restrict access to the control plane"],
        "mitre": ["T1133 External Remote Services", "T1190 Exploit Public-Facing Application"],
    },
)
def public_endpoint(ctx: CheckContext) -> Iterator[Finding]:
    eks = _eks(ctx)
    if eks is None or not described(ctx, eks, "endpoint"):
        return
    ep = eks.endpoint
    assert ep is not None  # described() said so
    if not ep.public:
        return
    opened = _open_cidrs(ep.public_cidrs)
    if opened:
        yield public_endpoint.meta.finding(
            eks.obj,
            f"public API endpoint accepts {', '.join(opened)}"
            + ("; private endpoint access is off" if not ep.private else ""),
            severity=None if not ep.private else Severity.MEDIUM,
            evidence=[
                Evidence(
                    "cluster.resourcesVpcConfig.publicAccessCidrs",
                    list(ep.public_cidrs) or None,
                    "specific CIDR blocks, or endpointPublicAccess false",
                )
            ],
        )
    elif not ep.private:
        yield public_endpoint.meta.finding(
            eks.obj,
            f"public endpoint limited to {', '.join(ep.public_cidrs)} but private endpoint access is off: node "
            "and in-VPC traffic to the API server leaves the VPC",
            severity=Severity.LOW,
            evidence=[Evidence("cluster.resourcesVpcConfig.endpointPrivateAccess", False, True)],
        )


@cluster_check(
    "KS-EKS-005",
    "Kubernetes version is past EKS standard support",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="EKS gives each minor version 14 months of standard support and 12 months of paid extended "
    "support; past extended support the control plane is upgraded automatically at a time EKS chooses. "
    "Upstream stops CVE fixes well before that, so an old version accumulates known vulnerabilities.",
    remediation="Upgrade the control plane one minor version at a time (aws eks update-cluster-version), "
    "then node groups and add-ons; check removed APIs first.",
    references={
        "nsa-cisa": ["Upgrading and application security practices: apply patches and updates promptly"],
        "mitre": ["T1190 Exploit Public-Facing Application", "T1068 Exploitation for Privilege Escalation"],
    },
)
def version_support(ctx: CheckContext) -> Iterator[Finding]:
    eks = _eks(ctx)
    if eks is None or not described(ctx, eks, "version"):
        return
    from kubestrata.eks.posture import calendar

    cal = calendar()
    today = ctx.now.date()
    key = minor_key(eks.version)
    ev_path = "cluster.version"
    # EKS's own dates (describe-cluster-versions) win over the calendar shipped with kubestrata
    info = eks.version_dates.get(eks.version) or cal.versions.get(eks.version)
    if info is None:
        if key < cal.oldest:
            yield version_support.meta.finding(
                eks.obj,
                f"Kubernetes {eks.version} is past the end of EKS extended support (older than every version "
                "in EKS's calendar): the control plane is due for an automatic upgrade",
                severity=Severity.HIGH,
                evidence=[Evidence(ev_path, eks.version, f">= {'.'.join(map(str, cal.oldest))}")],
            )
        else:
            ctx.gap(
                f"{ev_path} {eks.version}",
                GapReason.UNKNOWN_KIND,
                f"KS-EKS-005: version {eks.version} is not in kubestrata's EKS release calendar (data "
                f"retrieved {cal.retrieved}); support status not evaluated. Provide: aws eks "
                f"describe-cluster-versions --cluster-versions {eks.version}, then access import",
            )
        return
    if today >= info.end_of_extended:
        yield version_support.meta.finding(
            eks.obj,
            f"Kubernetes {eks.version}: EKS extended support ended {info.end_of_extended.isoformat()}; the "
            "control plane is due for an automatic upgrade",
            severity=Severity.HIGH,
            evidence=[Evidence(ev_path, eks.version, "a version in standard support")],
        )
    elif today >= info.end_of_standard:
        yield version_support.meta.finding(
            eks.obj,
            f"Kubernetes {eks.version}: standard support ended {info.end_of_standard.isoformat()}; in paid "
            f"extended support until {info.end_of_extended.isoformat()}",
            evidence=[Evidence(ev_path, eks.version, "a version in standard support")],
        )
    elif (info.end_of_standard - today).days <= 60:
        # EKS announces the end of standard support at least 60 days ahead
        yield version_support.meta.finding(
            eks.obj,
            f"Kubernetes {eks.version}: standard support ends {info.end_of_standard.isoformat()} "
            f"(in {(info.end_of_standard - today).days} days)",
            severity=Severity.LOW,
            evidence=[Evidence(ev_path, eks.version, "a version with more than 60 days of standard support")],
        )


@cluster_check(
    "KS-EKS-006",
    "GuardDuty EKS protection is off",
    severity=Severity.MEDIUM,
    layer=L,
    rationale="GuardDuty EKS Protection analyses the cluster's audit log (EKS_AUDIT_LOGS) for known attack "
    "patterns, and Runtime Monitoring watches nodes for malicious processes, file and network activity "
    "that never reaches the audit log. Off, or with the detector disabled, neither is watched.",
    remediation="aws guardduty update-detector --detector-id ID --features "
    '\'[{"Name":"EKS_AUDIT_LOGS","Status":"ENABLED"},{"Name":"RUNTIME_MONITORING","Status":'
    '"ENABLED","AdditionalConfiguration":[{"Name":"EKS_ADDON_MANAGEMENT","Status":"ENABLED"}]}]\' '
    "(better: enable it for the whole AWS Organization).",
    references={
        "nsa-cisa": [NSA_LOG],
        "mitre": ["T1562.001 Impair Defenses: Disable or Modify Tools"],
    },
)
def guardduty(ctx: CheckContext) -> Iterator[Finding]:
    eks = _eks(ctx)
    if eks is None:
        return
    g = eks.guardduty
    if g is None:
        missing(ctx, "guardduty", f"GuardDuty detector for {eks.cluster_name or 'the cluster'}")
        return
    if g.status == "DISABLED":
        yield guardduty.meta.finding(
            eks.obj,
            "the GuardDuty detector is disabled: no EKS audit-log or runtime threat detection",
            evidence=[Evidence(f"{g.field}.status", "DISABLED", "ENABLED")],
        )
        return
    if g.features.get("EKS_AUDIT_LOGS") != "ENABLED":
        yield guardduty.meta.finding(
            eks.obj,
            "GuardDuty EKS Protection (EKS_AUDIT_LOGS) is "
            + ("disabled" if "EKS_AUDIT_LOGS" in g.features else "not reported by the detector")
            + ": the audit log is not analysed",
            evidence=[
                Evidence(f"{g.field}.features.EKS_AUDIT_LOGS", g.features.get("EKS_AUDIT_LOGS"), "ENABLED")
            ],
        )
    runtime = [f for f in ("RUNTIME_MONITORING", "EKS_RUNTIME_MONITORING") if g.features.get(f) == "ENABLED"]
    if not runtime:
        yield guardduty.meta.finding(
            eks.obj,
            "GuardDuty Runtime Monitoring is off: malicious activity on nodes is not detected",
            severity=Severity.LOW,
            evidence=[
                Evidence(
                    f"{g.field}.features.RUNTIME_MONITORING", g.features.get("RUNTIME_MONITORING"), "ENABLED"
                )
            ],
        )
