"""The EKS snapshot model: Cluster Access Management (authentication mode, access entries, policy
associations, Pod Identity associations, node roles, IAM principals) and cluster posture (version,
Secrets encryption, logging, endpoint access, KMS keys, GuardDuty, EBS volumes, node groups).

The scan reads it from a snapshot document any loader understands::

    apiVersion: kubestrata.io/v1alpha1
    kind: EKSClusterAccess
    metadata: {name: <cluster>, namespace: kube-system}
    cluster: {...}                 # `aws eks describe-cluster` .cluster
    accessEntries: [{...}]         # `describe-access-entry` .accessEntry, plus associatedAccessPolicies
    podIdentityAssociations: [{...}]
    nodeRoles: [{roleArn, source, type}]   # from describe-nodegroup / describe-fargate-profile
    iamPrincipals: [{Arn, RoleId|UserId, CreateDate}]   # optional `aws iam get-role|get-user`
    creatorArn: arn...             # optional: who created the cluster (CloudTrail), for CONFIG_MAP clusters
    kmsKeys: [{keyArn, keyRotationEnabled, keyManager, origin, keyState}]  # optional `aws kms` JSON
    guardDuty: {status, features: [{name, status, additionalConfiguration}]}  # optional `aws guardduty get-detector`
    ebsVolumes: [{volumeId, encrypted, kmsKeyId}]  # optional `aws ec2 describe-volumes` (KS-ENC-011)

Cluster posture (version, encryptionConfig, logging, resourcesVpcConfig) rides along in ``cluster``
exactly as describe-cluster prints it. kubestrata.eks.awsjson reads that document and AWS CLI output,
kubestrata.eks.document writes it, kubestrata.eks.live collects it through boto3.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from kubestrata.eks.arn import ArnError, parse_arn
from kubestrata.kube.objects import KubeObject

SNAPSHOT_API_VERSION = "kubestrata.io/v1alpha1"
SNAPSHOT_KIND = "EKSClusterAccess"
AUTH_MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")
ENTRY_TYPES = (
    "STANDARD",
    "EC2_LINUX",
    "EC2_WINDOWS",
    "FARGATE_LINUX",
    "HYBRID_LINUX",
    "EC2",
    "HYPERPOD_LINUX",
)
NODE_ENTRY_TYPES = ("EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "HYBRID_LINUX", "EC2", "HYPERPOD_LINUX")
RESERVED_USERNAME_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")
POLICY_ARN_PREFIX = "cluster-access-policy/"


@dataclass(frozen=True, slots=True)
class Scope:
    """An access policy association's scope: the whole cluster, or namespaces (names or wildcard
    patterns such as ``dev-*``, never checked for existence by EKS)."""

    type: str  # "cluster" or "namespace"
    namespaces: tuple[str, ...] = ()

    def covers(self, namespace: str) -> bool:
        """Whether a request in ``namespace`` ("" = cluster-scoped or non-resource) is in scope."""
        if self.type == "cluster":
            return True
        return bool(namespace) and any(fnmatchcase(namespace, p) for p in self.namespaces)

    def __str__(self) -> str:
        return "cluster" if self.type == "cluster" else "namespaces " + ",".join(self.namespaces)


@dataclass(frozen=True, slots=True)
class Association:
    """An access policy associated with an access entry (kubestrata.access.policies evaluates it)."""

    policy: str  # policy name
    scope: Scope
    field: str = ""  # where it came from, for evidence


@dataclass
class AccessEntry:
    principal_arn: str
    type: str = "STANDARD"
    username: str = ""  # as EKS reports it (EKS fills in the generated default)
    groups: tuple[str, ...] = ()
    associations: list[Association] = field(default_factory=list)
    created_at: str = ""
    field: str = ""  # e.g. accessEntries[3]

    @property
    def effective_username(self) -> str:
        return self.username or default_username(self.principal_arn, self.type)

    @property
    def effective_groups(self) -> tuple[str, ...]:
        # EKS puts node entries in system:nodes itself; kubernetesGroups apply to STANDARD only
        if self.type in NODE_ENTRY_TYPES:
            return ("system:nodes",)
        return self.groups


@dataclass(frozen=True)
class PodIdentityAssociation:
    namespace: str
    service_account: str
    role_arn: str
    association_id: str = ""
    target_role_arn: str = ""
    field: str = ""
    disable_session_tags: bool = False
    external_id: str = ""


@dataclass(frozen=True)
class NodeRole:
    role_arn: str
    source: str  # nodegroup/<name> or fargateprofile/<name>
    type: str = "EC2_LINUX"  # or FARGATE_LINUX / EC2_WINDOWS


@dataclass(frozen=True)
class IAMPrincipal:
    arn: str
    principal_id: str = ""
    create_date: str = ""
    trust_policy: dict[str, Any] | None = None  # a role's AssumeRolePolicyDocument (`aws iam get-role`)
    field: str = ""


@dataclass(frozen=True)
class EncryptionConfig:
    resources: tuple[str, ...]
    key_arn: str
    field: str = ""


@dataclass(frozen=True)
class EndpointAccess:
    public: bool
    private: bool
    public_cidrs: tuple[str, ...]  # as EKS reports them; empty with public access means 0.0.0.0/0


@dataclass
class KMSKey:
    """What `aws kms get-key-rotation-status` and `describe-key` say about one key (None: not given)."""

    arn: str
    key_id: str = ""
    rotation_enabled: bool | None = None
    rotation_period_days: int | None = None
    key_manager: str = ""  # CUSTOMER | AWS
    origin: str = ""  # AWS_KMS | EXTERNAL | AWS_CLOUDHSM | EXTERNAL_KEY_STORE
    key_state: str = ""
    field: str = ""


@dataclass
class EBSVolume:
    """One volume of `aws ec2 describe-volumes` (for PersistentVolumes backed by EBS)."""

    volume_id: str
    encrypted: bool
    kms_key_id: str = ""
    field: str = ""


@dataclass
class GuardDuty:
    """`aws guardduty get-detector` for the cluster's account and region."""

    status: str = ""  # ENABLED | DISABLED
    features: dict[str, str] = field(default_factory=dict)  # feature name -> ENABLED | DISABLED
    additional: dict[str, dict[str, str]] = field(default_factory=dict)  # feature -> {name: status}
    field: str = "guardDuty"


@dataclass(frozen=True)
class VersionDates:
    """One row of `aws eks describe-cluster-versions` (dates in UTC)."""

    version: str
    release: dt.date | None
    end_of_standard: dt.date
    end_of_extended: dt.date


@dataclass
class EKSAccess:
    cluster_name: str = ""
    cluster_arn: str = ""
    authentication_mode: str | None = None  # None when describe-cluster was not given
    bootstrap_creator_admin: bool | None = None
    oidc_issuer: str = ""
    entries: list[AccessEntry] = field(default_factory=list)
    pod_identity: list[PodIdentityAssociation] = field(default_factory=list)
    node_roles: list[NodeRole] = field(default_factory=list)
    iam_principals: dict[str, IAMPrincipal] | None = None  # None: not collected
    creator_arn: str = ""
    # posture from describe-cluster; None (or "") when describe-cluster was not given
    version: str = ""
    platform_version: str = ""
    encryption: list[EncryptionConfig] | None = None
    logging: dict[str, bool] | None = None  # log type -> enabled
    endpoint: EndpointAccess | None = None
    kms_keys: dict[str, KMSKey] = field(default_factory=dict)  # by key ARN
    guardduty: GuardDuty | None = None
    version_dates: dict[str, VersionDates] = field(default_factory=dict)  # describe-cluster-versions
    ebs_volumes: dict[str, EBSVolume] | None = None  # by volume id; None: describe-volumes not given
    # node posture: describe-nodegroup .nodegroup objects and ec2 describe-launch-template-versions items,
    # as AWS prints them (kubestrata.checks.nodeos reads them)
    nodegroups: list[dict[str, Any]] = field(default_factory=list)
    launch_template_versions: list[dict[str, Any]] = field(default_factory=list)
    obj: KubeObject | None = None  # the snapshot document, when it came through the loader

    @property
    def described(self) -> bool:
        """describe-cluster output was part of the input (it always carries the version)."""
        return bool(self.version)

    def kms_key(self, ref: str) -> KMSKey | None:
        """The key a cluster names, by ARN or key id (rotation status prints the ARN, EKS may hold either)."""
        if ref in self.kms_keys:
            return self.kms_keys[ref]
        tail = ref.rsplit("/", 1)[-1]
        for k in self.kms_keys.values():
            if tail and tail in (k.key_id, k.arn.rsplit("/", 1)[-1]):
                return k
        return None

    def entry_for(self, principal_arn: str) -> AccessEntry | None:
        # EKS matches the principal, whose ARN it stores as given; IAM ARNs compare case-sensitively
        for e in self.entries:
            if e.principal_arn == principal_arn:
                return e
        return None


def default_username(principal_arn: str, entry_type: str = "STANDARD") -> str:
    """The username EKS generates for an access entry without one (GKA table)."""
    if entry_type in ("EC2_LINUX", "EC2_WINDOWS"):
        return "system:node:{{EC2PrivateDNSName}}"
    if entry_type in ("FARGATE_LINUX", "HYBRID_LINUX", "EC2", "HYPERPOD_LINUX"):
        return "system:node:{{SessionName}}"
    try:
        p = parse_arn(principal_arn)
    except ArnError:
        return principal_arn
    if p.resource_type == "role":
        return f"arn:{p.partition}:sts::{p.account}:assumed-role/{p.name}/{{{{SessionName}}}}"
    return principal_arn


def policy_name(name_or_arn: str) -> str:
    """``arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy`` -> ``AmazonEKSViewPolicy``."""
    if POLICY_ARN_PREFIX in name_or_arn:
        return name_or_arn.split(POLICY_ARN_PREFIX, 1)[1]
    return name_or_arn


def policy_arn(name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:eks::aws:{POLICY_ARN_PREFIX}{policy_name(name)}"


def minor_key(version: str) -> tuple[int, int]:
    """ "1.31" -> (1, 31), for ordering Kubernetes minor versions."""
    major, minor = version.split(".")[:2]
    return int(major), int(minor)
