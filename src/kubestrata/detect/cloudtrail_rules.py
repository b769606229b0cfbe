"""CloudTrail rules (KS-CT-*) over EKS management events: who changed the cluster's access,
logging, endpoint, identity providers and encryption.

Request shapes: botocore's eks-2017-11-01 model (reference note runtime-cloudtrail.md §4); examples:
AWS EKS user guide "Analyze AWS CloudTrail log file entries" (CreateCluster) and
DataDog/stratus-red-team docs eks.lateral-movement.create-access-entry (CreateAccessEntry,
AssociateAccessPolicy, URL-encoded principalArn). Failed calls (``errorCode`` set) change nothing
and raise nothing; they are counted.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from kubestrata.detect.catalogue import RuleSpec
from kubestrata.detect.cloudtrail import TrailRecord, unquote
from kubestrata.findings import Severity

H, M, L, INFO = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO


def _r(
    id_: str, title: str, sev: Severity, desc: str, mitre: tuple[str, ...], sigma: tuple[str, ...] = ()
) -> RuleSpec:
    return RuleSpec(id_, title, sev, desc, mitre, sigma=tuple(sigma))


SIGMA = "SigmaHQ/sigma:rules/cloud/aws/cloudtrail/"
CLOUDTRAIL_RULES: list[RuleSpec] = [
    _r("KS-CT-01", "EKS cluster created", L,
       "CreateCluster; evidence names its risky settings (public endpoint, control-plane logs off, no "
       "secrets encryption, cluster-creator admin).", ("T1578",),
       sigma=(SIGMA + "aws_eks_cluster_created_or_deleted.yml",)),
    _r("KS-CT-02", "EKS API endpoint opened to the internet", H,
       "CreateCluster or UpdateClusterConfig with the public endpoint on and publicAccessCidrs containing "
       "0.0.0.0/0 or ::/0 (or not given: the default is 0.0.0.0/0).", ("T1133",)),
    _r("KS-CT-03", "EKS control-plane logging turned off", H,
       "UpdateClusterConfig with logging.clusterLogging enabled: false for audit, authenticator or api "
       "logs (medium for the other log types): the audit trail detection reads goes dark.",
       ("T1562.008",)),
    _r("KS-CT-04", "Cluster admin access policy associated", H,
       "AssociateAccessPolicy with AmazonEKSClusterAdminPolicy or AmazonEKSAdminPolicy (cluster scope: high; "
       "namespace scope: medium): the principal becomes a Kubernetes administrator without RBAC objects.",
       ("T1098",)),
    _r("KS-CT-05", "EKS access entry created", M,
       "CreateAccessEntry: a new IAM principal can authenticate to the cluster (high when it is put in "
       "system:masters through kubernetesGroups).", ("T1098",)),
    _r("KS-CT-06", "EKS access entry deleted", M,
       "DeleteAccessEntry: a principal's access removed (lock-out, or an attacker cleaning up).", ("T1531",)),
    _r("KS-CT-07", "Pod Identity association created", M,
       "CreatePodIdentityAssociation or UpdatePodIdentityAssociation: pods of a ServiceAccount receive an "
       "IAM role's credentials.", ("T1098.003",)),
    _r("KS-CT-08", "Identity provider config changed", M,
       "AssociateIdentityProviderConfig (a new OIDC issuer can mint cluster identities) or "
       "DisassociateIdentityProviderConfig.", ("T1556.007", "T1484.002")),
    _r("KS-CT-09", "EKS cluster version updated", INFO,
       "UpdateClusterVersion (context for other findings: an upgrade restarts the control plane).", ()),
    _r("KS-CT-10", "Secrets encryption configuration changed", M,
       "AssociateEncryptionConfig: envelope encryption of Secrets with a KMS key changed.", ("T1562",)),
    _r("KS-CT-11", "EKS cluster deleted", H, "DeleteCluster.", ("T1485",),
       sigma=(SIGMA + "aws_eks_cluster_created_or_deleted.yml",)),
    _r("KS-CT-12", "Cluster authentication mode or deletion protection changed", M,
       "UpdateClusterConfig changing accessConfig.authenticationMode or turning deletionProtection off.",
       ("T1556",)),
]  # fmt: skip
CLOUDTRAIL_CATALOGUE: dict[str, RuleSpec] = {r.id: r for r in CLOUDTRAIL_RULES}

ADMIN_POLICIES = ("AmazonEKSClusterAdminPolicy", "AmazonEKSAdminPolicy")
OPEN_CIDRS = ("0.0.0.0/0", "::/0")
KEY_LOGS = ("audit", "authenticator", "api")


class CTHit(NamedTuple):
    rule_id: str
    message: str
    evidence: list[tuple[str, Any]]
    severity: Severity | None = None


def _open_endpoint(vpc: dict[str, Any], creating: bool) -> list[str] | None:
    if type(vpc) is not dict:
        return None
    public = vpc.get("endpointPublicAccess")
    cidrs = vpc.get("publicAccessCidrs")
    if public is False:
        return None
    if creating and public is None and cidrs is None:
        return ["0.0.0.0/0 (default)"]
    if (public is True or creating) and type(cidrs) is list:
        return [c for c in cidrs if c in OPEN_CIDRS] or None
    if public is True and cidrs is None and creating:
        return ["0.0.0.0/0 (default)"]
    return None


def evaluate(rec: TrailRecord, enabled: set[str]) -> list[CTHit]:
    if rec.error:
        return []
    fn = _RULES.get(rec.event_name)
    if fn is None:
        return []
    return [h for h in fn(rec) if h.rule_id in enabled]


def _create_cluster(rec: TrailRecord) -> list[CTHit]:
    p = rec.params
    hits: list[CTHit] = []
    risky: list[tuple[str, Any]] = []
    vpc = p.get("resourcesVpcConfig") or {}
    opened = _open_endpoint(vpc, creating=True)
    if opened:
        hits.append(CTHit("KS-CT-02", f"{rec.actor} created cluster {rec.cluster} with its API endpoint open to "
                          f"{', '.join(opened)}", [("requestParameters.resourcesVpcConfig.publicAccessCidrs", opened)]))  # fmt: skip
        risky.append(("publicEndpoint", opened))
    logging = (p.get("logging") or {}).get("clusterLogging") if type(p.get("logging")) is dict else None
    on = {t for s in logging or [] if type(s) is dict and s.get("enabled") for t in s.get("types") or []}
    if "audit" not in on:
        risky.append(("auditLogging", "off"))
    if not p.get("encryptionConfig"):
        risky.append(("secretsEncryption", "none"))
    ac = ac_ if type(ac_ := p.get("accessConfig")) is dict else {}
    if ac.get("bootstrapClusterCreatorAdminPermissions") is not False:
        risky.append(("bootstrapClusterCreatorAdminPermissions", True))
    hits.append(CTHit("KS-CT-01", f"{rec.actor} created EKS cluster {rec.cluster}",
                      [("eventName", "CreateCluster"), *risky]))  # fmt: skip
    return hits


def _update_config(rec: TrailRecord) -> list[CTHit]:
    p = rec.params
    hits: list[CTHit] = []
    opened = _open_endpoint(p.get("resourcesVpcConfig") or {}, creating=False)
    if opened:
        hits.append(CTHit("KS-CT-02", f"{rec.actor} opened the API endpoint of {rec.cluster} to {', '.join(opened)}",
                          [("requestParameters.resourcesVpcConfig.publicAccessCidrs", opened)]))  # fmt: skip
    logging = p.get("logging")
    if type(logging) is dict:
        off = [t for s in logging.get("clusterLogging") or [] if type(s) is dict and s.get("enabled") is False
               for t in s.get("types") or [] if type(t) is str]  # fmt: skip
        if off:
            key = [t for t in off if t in KEY_LOGS]
            hits.append(CTHit("KS-CT-03", f"{rec.actor} turned off {', '.join(off)} logs of {rec.cluster}",
                              [("requestParameters.logging.clusterLogging.disabled", off)],
                              None if key else Severity.MEDIUM))  # fmt: skip
    ac = p.get("accessConfig")
    if type(ac) is dict and ac.get("authenticationMode"):
        hits.append(CTHit("KS-CT-12", f"{rec.actor} set the authentication mode of {rec.cluster} to "
                          f"{ac['authenticationMode']}", [("requestParameters.accessConfig.authenticationMode",
                                                           ac["authenticationMode"])]))  # fmt: skip
    if p.get("deletionProtection") is False:
        hits.append(CTHit("KS-CT-12", f"{rec.actor} turned off deletion protection of {rec.cluster}",
                          [("requestParameters.deletionProtection", False)]))  # fmt: skip
    return hits


def _associate_policy(rec: TrailRecord) -> list[CTHit]:
    p = rec.params
    policy = unquote(p.get("policyArn"))
    if not policy.endswith(ADMIN_POLICIES):
        return []
    scope = scope_ if type(scope_ := p.get("accessScope")) is dict else {}
    principal = unquote(p.get("principalArn"))
    sev = None if scope.get("type", "cluster") == "cluster" else Severity.MEDIUM
    return [CTHit("KS-CT-04", f"{rec.actor} gave {principal} {policy.rsplit('/', 1)[-1]} on {rec.cluster} "
                  f"({scope.get('type', 'cluster')} scope)",
                  [("requestParameters.principalArn", principal), ("requestParameters.policyArn", policy),
                   ("requestParameters.accessScope", scope)], sev)]  # fmt: skip


def _create_entry(rec: TrailRecord) -> list[CTHit]:
    p = rec.params
    principal = unquote(p.get("principalArn"))
    groups = [g for g in p.get("kubernetesGroups") or [] if type(g) is str]
    sev = Severity.HIGH if "system:masters" in groups else None
    ev: list[tuple[str, Any]] = [("requestParameters.principalArn", principal)]
    if groups:
        ev.append(("requestParameters.kubernetesGroups", groups))
    return [
        CTHit("KS-CT-05", f"{rec.actor} created an access entry for {principal} on {rec.cluster}", ev, sev)
    ]


def _delete_entry(rec: TrailRecord) -> list[CTHit]:
    principal = unquote(rec.params.get("principalArn"))
    return [CTHit("KS-CT-06", f"{rec.actor} deleted the access entry of {principal} on {rec.cluster}",
                  [("requestParameters.principalArn", principal)])]  # fmt: skip


def _pod_identity(rec: TrailRecord) -> list[CTHit]:
    p = rec.params
    sa = f"{p.get('namespace') or '?'}/{p.get('serviceAccount') or '?'}"
    role = unquote(p.get("roleArn"))
    ev: list[tuple[str, Any]] = [("requestParameters.roleArn", role)]
    if p.get("namespace"):
        ev.append(("requestParameters.serviceAccount", sa))
    what = "bound" if rec.event_name.startswith("Create") else "rebound"
    return [
        CTHit(
            "KS-CT-07", f"{rec.actor} {what} {role or 'a role'} to ServiceAccount {sa} on {rec.cluster}", ev
        )
    ]


def _idp(rec: TrailRecord) -> list[CTHit]:
    p = rec.params
    if rec.event_name.startswith("Associate"):
        oidc = oidc_ if type(oidc_ := p.get("oidc")) is dict else {}
        return [CTHit("KS-CT-08", f"{rec.actor} added OIDC provider {oidc.get('issuerUrl', '?')} to {rec.cluster}",
                      [("requestParameters.oidc.issuerUrl", oidc.get("issuerUrl")),
                       ("requestParameters.oidc.identityProviderConfigName",
                        oidc.get("identityProviderConfigName"))], Severity.HIGH)]  # fmt: skip
    cfg = cfg_ if type(cfg_ := p.get("identityProviderConfig")) is dict else {}
    return [CTHit("KS-CT-08", f"{rec.actor} removed identity provider {cfg.get('name', '?')} from {rec.cluster}",
                  [("requestParameters.identityProviderConfig", cfg)])]  # fmt: skip


def _version(rec: TrailRecord) -> list[CTHit]:
    v = rec.params.get("version")
    return [CTHit("KS-CT-09", f"{rec.actor} updated {rec.cluster} to Kubernetes {v}",
                  [("requestParameters.version", v)])]  # fmt: skip


def _encryption(rec: TrailRecord) -> list[CTHit]:
    cfg = rec.params.get("encryptionConfig")
    keys = [((c.get("provider") or {}).get("keyArn")) for c in cfg or [] if type(c) is dict]
    return [CTHit("KS-CT-10", f"{rec.actor} changed the secrets encryption of {rec.cluster}",
                  [("requestParameters.encryptionConfig.provider.keyArn", keys)])]  # fmt: skip


def _delete_cluster(rec: TrailRecord) -> list[CTHit]:
    return [
        CTHit("KS-CT-11", f"{rec.actor} deleted EKS cluster {rec.cluster}", [("eventName", "DeleteCluster")])
    ]


_RULES = {
    "CreateCluster": _create_cluster,
    "UpdateClusterConfig": _update_config,
    "AssociateAccessPolicy": _associate_policy,
    "CreateAccessEntry": _create_entry,
    "DeleteAccessEntry": _delete_entry,
    "CreatePodIdentityAssociation": _pod_identity,
    "UpdatePodIdentityAssociation": _pod_identity,
    "AssociateIdentityProviderConfig": _idp,
    "DisassociateIdentityProviderConfig": _idp,
    "UpdateClusterVersion": _version,
    "AssociateEncryptionConfig": _encryption,
    "DeleteCluster": _delete_cluster,
}
