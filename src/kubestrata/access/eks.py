"""EKS Cluster Access Management data: authentication mode, access entries, policy associations, Pod
Identity associations and node roles, read from JSON as the AWS CLI prints it or collected live.

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
exactly as describe-cluster prints it; see kubestrata.access.posture.

``kubestrata access import`` writes that document from AWS CLI output files or a live account.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubestrata.access.arn import ArnError, parse_arn
from kubestrata.access.policies import Association, Scope, policy_name
from kubestrata.errors import InputError
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
    # ECR repositories, registry scanning, VPC endpoints as AWS prints them (kubestrata.image.ecr)
    image_registry: dict[str, Any] = field(default_factory=dict)
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

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "apiVersion": SNAPSHOT_API_VERSION,
            "kind": SNAPSHOT_KIND,
            "metadata": {"name": self.cluster_name or "eks", "namespace": "kube-system"},
        }
        cluster: dict[str, Any] = {}
        if self.cluster_name:
            cluster["name"] = self.cluster_name
        if self.cluster_arn:
            cluster["arn"] = self.cluster_arn
        if self.authentication_mode is not None or self.bootstrap_creator_admin is not None:
            ac: dict[str, Any] = {}
            if self.authentication_mode is not None:
                ac["authenticationMode"] = self.authentication_mode
            if self.bootstrap_creator_admin is not None:
                ac["bootstrapClusterCreatorAdminPermissions"] = self.bootstrap_creator_admin
            cluster["accessConfig"] = ac
        if self.oidc_issuer:
            cluster["identity"] = {"oidc": {"issuer": self.oidc_issuer}}
        if self.version:
            cluster["version"] = self.version
        if self.platform_version:
            cluster["platformVersion"] = self.platform_version
        if self.encryption:
            cluster["encryptionConfig"] = [
                {"resources": list(e.resources), "provider": {"keyArn": e.key_arn}} for e in self.encryption
            ]
        if self.logging is not None:
            on = [t for t, v in self.logging.items() if v]
            off = [t for t, v in self.logging.items() if not v]
            cluster["logging"] = {
                "clusterLogging": [
                    *([{"types": on, "enabled": True}] if on else []),
                    *([{"types": off, "enabled": False}] if off else []),
                ]
            }
        if self.endpoint is not None:
            cluster["resourcesVpcConfig"] = {
                "endpointPublicAccess": self.endpoint.public,
                "endpointPrivateAccess": self.endpoint.private,
                "publicAccessCidrs": list(self.endpoint.public_cidrs),
            }
        if cluster:
            doc["cluster"] = cluster
        doc["accessEntries"] = [
            {
                "principalArn": e.principal_arn,
                "type": e.type,
                **({"username": e.username} if e.username else {}),
                "kubernetesGroups": list(e.groups),
                **({"createdAt": e.created_at} if e.created_at else {}),
                "associatedAccessPolicies": [
                    {
                        "policyArn": f"arn:aws:eks::aws:cluster-access-policy/{a.policy}",
                        "accessScope": {"type": a.scope.type, "namespaces": list(a.scope.namespaces)},
                    }
                    for a in e.associations
                ],
            }
            for e in self.entries
        ]
        if self.pod_identity:
            doc["podIdentityAssociations"] = [
                {
                    "namespace": p.namespace,
                    "serviceAccount": p.service_account,
                    "roleArn": p.role_arn,
                    **({"associationId": p.association_id} if p.association_id else {}),
                    **({"targetRoleArn": p.target_role_arn} if p.target_role_arn else {}),
                }
                for p in self.pod_identity
            ]
        if self.node_roles:
            doc["nodeRoles"] = [
                {"roleArn": n.role_arn, "source": n.source, "type": n.type} for n in self.node_roles
            ]
        if self.iam_principals is not None:
            doc["iamPrincipals"] = [
                {
                    "Arn": p.arn,
                    "PrincipalId": p.principal_id,
                    **({"CreateDate": p.create_date} if p.create_date else {}),
                    **({"AssumeRolePolicyDocument": p.trust_policy} if p.trust_policy is not None else {}),
                }
                for p in self.iam_principals.values()
            ]
        if self.creator_arn:
            doc["creatorArn"] = self.creator_arn
        if self.kms_keys:
            doc["kmsKeys"] = [
                {
                    "keyArn": k.arn,
                    **({"keyId": k.key_id} if k.key_id else {}),
                    **({"keyRotationEnabled": k.rotation_enabled} if k.rotation_enabled is not None else {}),
                    **(
                        {"rotationPeriodInDays": k.rotation_period_days}
                        if k.rotation_period_days is not None
                        else {}
                    ),
                    **({"keyManager": k.key_manager} if k.key_manager else {}),
                    **({"origin": k.origin} if k.origin else {}),
                    **({"keyState": k.key_state} if k.key_state else {}),
                }
                for k in self.kms_keys.values()
            ]
        if self.ebs_volumes is not None:
            doc["ebsVolumes"] = [
                {
                    "volumeId": v.volume_id,
                    "encrypted": v.encrypted,
                    **({"kmsKeyId": v.kms_key_id} if v.kms_key_id else {}),
                }
                for v in self.ebs_volumes.values()
            ]
        if self.version_dates:
            doc["clusterVersions"] = [
                {
                    "clusterVersion": v.version,
                    **({"releaseDate": v.release.isoformat()} if v.release else {}),
                    "endOfStandardSupportDate": v.end_of_standard.isoformat(),
                    "endOfExtendedSupportDate": v.end_of_extended.isoformat(),
                }
                for v in self.version_dates.values()
            ]
        if self.nodegroups:
            doc["nodegroups"] = self.nodegroups
        if self.launch_template_versions:
            doc["launchTemplateVersions"] = self.launch_template_versions
        from kubestrata.image import ecr as _ecr

        doc.update(_ecr.to_document(self))
        if self.guardduty is not None:
            g = self.guardduty
            doc["guardDuty"] = {
                "status": g.status,
                "features": [
                    {
                        "name": n,
                        "status": st,
                        **(
                            {
                                "additionalConfiguration": [
                                    {"name": an, "status": ast} for an, ast in g.additional[n].items()
                                ]
                            }
                            if g.additional.get(n)
                            else {}
                        ),
                    }
                    for n, st in g.features.items()
                ],
            }
        return doc


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


# -- reading AWS CLI JSON -------------------------------------------------------------------------------


class _Reader:
    """Typed access to a JSON document with errors naming file and field."""

    def __init__(self, file: str) -> None:
        self.file = file

    def err(self, field_: str, msg: str) -> InputError:
        return InputError(msg, file=self.file, field=field_)

    def obj(self, v: Any, where: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.err(where, f"expected an object, got {_tname(v)}")
        return v

    def lst(self, v: Any, where: str, optional: bool = True) -> list[Any]:
        if v is None and optional:
            return []
        if not isinstance(v, list):
            raise self.err(where, f"expected a list, got {_tname(v)}")
        return v

    def s(self, d: dict[str, Any], key: str, where: str, required: bool = False) -> str:
        v = d.get(key)
        if v is None:
            if required:
                raise self.err(f"{where}.{key}", "required field is missing")
            return ""
        if not isinstance(v, str):
            raise self.err(f"{where}.{key}", f"expected a string, got {_tname(v)}")
        return v

    def strs(self, d: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        out = []
        for i, x in enumerate(self.lst(d.get(key), f"{where}.{key}")):
            if not isinstance(x, str):
                raise self.err(f"{where}.{key}[{i}]", f"expected a string, got {_tname(x)}")
            out.append(x)
        return tuple(out)

    def b(self, d: dict[str, Any], key: str, where: str) -> bool | None:
        v = d.get(key)
        if v is not None and not isinstance(v, bool):
            raise self.err(f"{where}.{key}", f"expected a boolean, got {_tname(v)}")
        return v

    def status(self, d: dict[str, Any], key: str, where: str, required: bool = True) -> str:
        v = self.s(d, key, where, required)
        if v and v not in ("ENABLED", "DISABLED"):
            raise self.err(f"{where}.{key}", f"expected ENABLED or DISABLED, got {v!r}")
        return v

    def arn(self, d: dict[str, Any], key: str, where: str, required: bool = True) -> str:
        v = self.s(d, key, where, required)
        if v:
            try:
                parse_arn(v)
            except ArnError as e:
                raise self.err(f"{where}.{key}", str(e)) from None
        return v


def _tname(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number"
    )


def _entry(r: _Reader, d: dict[str, Any], where: str) -> AccessEntry:
    typ = r.s(d, "type", where) or "STANDARD"
    if typ not in ENTRY_TYPES:
        raise r.err(
            f"{where}.type", f"unknown access entry type {typ!r}; expected one of {', '.join(ENTRY_TYPES)}"
        )
    e = AccessEntry(
        principal_arn=r.arn(d, "principalArn", where),
        type=typ,
        username=r.s(d, "username", where),
        groups=r.strs(d, "kubernetesGroups", where),
        created_at=str(d.get("createdAt") or ""),
        field=where,
    )
    for i, a in enumerate(r.lst(d.get("associatedAccessPolicies"), f"{where}.associatedAccessPolicies")):
        e.associations.append(_association(r, a, f"{where}.associatedAccessPolicies[{i}]"))
    return e


def _association(r: _Reader, a: Any, where: str) -> Association:
    a = r.obj(a, where)
    arn = r.s(a, "policyArn", where, required=True)
    if "cluster-access-policy/" not in arn:
        raise r.err(f"{where}.policyArn", f"not an EKS access policy ARN: {arn!r}")
    scope = r.obj(a.get("accessScope"), f"{where}.accessScope")
    typ = r.s(scope, "type", f"{where}.accessScope", required=True)
    if typ not in ("cluster", "namespace"):
        raise r.err(f"{where}.accessScope.type", f"expected cluster or namespace, got {typ!r}")
    namespaces = r.strs(scope, "namespaces", f"{where}.accessScope")
    if typ == "namespace" and not namespaces:
        raise r.err(f"{where}.accessScope.namespaces", "a namespace scope needs at least one namespace")
    return Association(policy_name(arn), Scope(typ, namespaces if typ == "namespace" else ()), where)


def _apply_cluster(r: _Reader, c: dict[str, Any], out: EKSAccess, where: str) -> None:
    out.cluster_name = r.s(c, "name", where) or out.cluster_name
    out.cluster_arn = r.s(c, "arn", where) or out.cluster_arn
    ac = c.get("accessConfig")
    if ac is not None:
        ac = r.obj(ac, f"{where}.accessConfig")
        mode = r.s(ac, "authenticationMode", f"{where}.accessConfig")
        if mode and mode not in AUTH_MODES:
            raise r.err(
                f"{where}.accessConfig.authenticationMode",
                f"expected one of {', '.join(AUTH_MODES)}, got {mode!r}",
            )
        out.authentication_mode = mode or out.authentication_mode
        b = ac.get("bootstrapClusterCreatorAdminPermissions")
        if b is not None and not isinstance(b, bool):
            raise r.err(
                f"{where}.accessConfig.bootstrapClusterCreatorAdminPermissions",
                f"expected a boolean, got {_tname(b)}",
            )
        if b is not None:
            out.bootstrap_creator_admin = b
    elif out.authentication_mode is None:
        # describe-cluster of a cluster that predates access entries has no accessConfig: CONFIG_MAP
        out.authentication_mode = "CONFIG_MAP"
    oidc = ((c.get("identity") or {}).get("oidc") or {}) if isinstance(c.get("identity"), dict) else {}
    if isinstance(oidc, dict) and isinstance(oidc.get("issuer"), str):
        out.oidc_issuer = oidc["issuer"]
    _apply_posture(r, c, out, where)


def _apply_posture(r: _Reader, c: dict[str, Any], out: EKSAccess, where: str) -> None:
    """version, encryptionConfig, logging and endpoint access, as describe-cluster prints them."""
    version = c.get("version")
    if version is not None:
        if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+", version):
            raise r.err(
                f"{where}.version", f'expected a Kubernetes minor version like "1.31", got {version!r}'
            )
        out.version = version
        out.platform_version = r.s(c, "platformVersion", where) or out.platform_version
        # describe-cluster omits encryptionConfig when no key is configured: none, not unknown
        out.encryption = out.encryption or []
    for i, e in enumerate(r.lst(c.get("encryptionConfig"), f"{where}.encryptionConfig")):
        w = f"{where}.encryptionConfig[{i}]"
        e = r.obj(e, w)
        prov = r.obj(e.get("provider"), f"{w}.provider")
        key = r.s(prov, "keyArn", f"{w}.provider", required=True)
        if not key.startswith("arn:"):
            raise r.err(f"{w}.provider.keyArn", f"expected a KMS key ARN, got {key!r}")
        ec = EncryptionConfig(r.strs(e, "resources", w), key, w)
        if all((x.resources, x.key_arn) != (ec.resources, ec.key_arn) for x in out.encryption or []):
            out.encryption = [*(out.encryption or []), ec]
    lg = c.get("logging")
    if lg is not None:
        lg = r.obj(lg, f"{where}.logging")
        types: dict[str, bool] = {}
        for i, cl in enumerate(r.lst(lg.get("clusterLogging"), f"{where}.logging.clusterLogging")):
            w = f"{where}.logging.clusterLogging[{i}]"
            cl = r.obj(cl, w)
            enabled = r.b(cl, "enabled", w)
            for t in r.strs(cl, "types", w):
                # an enabled setup wins over a disabled one for the same type
                types[t] = types.get(t, False) or bool(enabled)
        out.logging = types
    vpc = c.get("resourcesVpcConfig")
    if vpc is not None:
        w = f"{where}.resourcesVpcConfig"
        vpc = r.obj(vpc, w)
        cidrs = r.strs(vpc, "publicAccessCidrs", w)
        for i, cidr in enumerate(cidrs):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise r.err(f"{w}.publicAccessCidrs[{i}]", f"not a CIDR block: {cidr!r}") from None
        pub = r.b(vpc, "endpointPublicAccess", w)
        priv = r.b(vpc, "endpointPrivateAccess", w)
        # EKS defaults: public on, private off, public CIDRs 0.0.0.0/0
        out.endpoint = EndpointAccess(True if pub is None else pub, bool(priv), cidrs)


def _date(r: _Reader, d: dict[str, Any], key: str, where: str, required: bool = True) -> dt.date | None:
    """An AWS timestamp ("2025-11-25T16:00:00-08:00") or date as the UTC calendar day."""
    v = d.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str):
        raise r.err(f"{where}.{key}", f"expected a date, got {_tname(v)}")
    try:
        t = dt.datetime.fromisoformat(v)
    except ValueError:
        raise r.err(f"{where}.{key}", f"not an ISO 8601 date: {v!r}") from None
    return (t.astimezone(dt.UTC) if t.tzinfo else t).date()


def _apply_versions(r: _Reader, d: dict[str, Any], out: EKSAccess, where: str) -> None:
    """`aws eks describe-cluster-versions`: EKS's own support dates, preferred to the shipped calendar."""
    for i, v in enumerate(r.lst(d.get("clusterVersions"), f"{where}clusterVersions")):
        w = f"{where}clusterVersions[{i}]"
        v = r.obj(v, w)
        version = r.s(v, "clusterVersion", w, required=True)
        std, ext = _date(r, v, "endOfStandardSupportDate", w), _date(r, v, "endOfExtendedSupportDate", w)
        assert std is not None and ext is not None  # required
        out.version_dates[version] = VersionDates(version, _date(r, v, "releaseDate", w, False), std, ext)


def _apply_rotation(r: _Reader, d: dict[str, Any], out: EKSAccess, where: str, camel: bool) -> None:
    """`aws kms get-key-rotation-status` (KeyId, KeyRotationEnabled, RotationPeriodInDays)."""
    k_id, k_rot, k_per = (
        ("keyArn", "keyRotationEnabled", "rotationPeriodInDays")
        if camel
        else (
            "KeyId",
            "KeyRotationEnabled",
            "RotationPeriodInDays",
        )
    )
    arn = r.s(d, k_id, where)
    if not arn.startswith("arn:"):
        raise r.err(
            f"{where}.{k_id}",
            "required: the key ARN (AWS CLI v2 prints KeyId with get-key-rotation-status; "
            "older output needs it added)"
            if not arn
            else f"expected a KMS key ARN, got {arn!r}",
        )
    key = out.kms_keys.setdefault(arn, KMSKey(arn, field=where))
    rot = r.b(d, k_rot, where)
    if rot is not None:
        key.rotation_enabled = rot
    per = d.get(k_per)
    if per is not None:
        if not isinstance(per, int) or isinstance(per, bool):
            raise r.err(f"{where}.{k_per}", f"expected a number of days, got {_tname(per)}")
        key.rotation_period_days = per


def _apply_key_metadata(r: _Reader, m: dict[str, Any], out: EKSAccess, where: str, camel: bool) -> None:
    """`aws kms describe-key` .KeyMetadata (or the snapshot's camelCase copy)."""
    names = (
        ("keyArn", "keyId", "keyManager", "origin", "keyState")
        if camel
        else (
            "Arn",
            "KeyId",
            "KeyManager",
            "Origin",
            "KeyState",
        )
    )
    arn = r.s(m, names[0], where, required=True)
    if not arn.startswith("arn:"):
        raise r.err(f"{where}.{names[0]}", f"expected a KMS key ARN, got {arn!r}")
    key = out.kms_keys.setdefault(arn, KMSKey(arn, field=where))
    key.key_id = r.s(m, names[1], where) or key.key_id
    key.key_manager = r.s(m, names[2], where) or key.key_manager
    key.origin = r.s(m, names[3], where) or key.origin
    key.key_state = r.s(m, names[4], where) or key.key_state


def _apply_guardduty(r: _Reader, d: dict[str, Any], out: EKSAccess, where: str, camel: bool) -> None:
    """`aws guardduty get-detector` (Status, Features[].Name/Status/AdditionalConfiguration, or the older
    DataSources.Kubernetes.AuditLogs.Status)."""
    st, fs, nm, ac = (
        ("status", "features", "name", "additionalConfiguration")
        if camel
        else (
            "Status",
            "Features",
            "Name",
            "AdditionalConfiguration",
        )
    )
    g = GuardDuty(status=r.status(d, st, where), field=where)
    for i, f in enumerate(r.lst(d.get(fs), f"{where}.{fs}" if camel else fs)):
        w = f"{where}.{fs}[{i}]" if camel else f"{fs}[{i}]"
        f = r.obj(f, w)
        name = r.s(f, nm, w, required=True)
        g.features[name] = r.status(f, st, w)
        for j, a in enumerate(r.lst(f.get(ac), f"{w}.{ac}")):
            wa = f"{w}.{ac}[{j}]"
            a = r.obj(a, wa)
            g.additional.setdefault(name, {})[r.s(a, nm, wa, required=True)] = r.status(a, st, wa)
    ds = d.get("DataSources")
    if not camel and isinstance(ds, dict) and "EKS_AUDIT_LOGS" not in g.features:
        audit = (
            ((ds.get("Kubernetes") or {}).get("AuditLogs") or {})
            if isinstance(ds.get("Kubernetes"), dict)
            else {}
        )
        if isinstance(audit, dict) and audit.get("Status") in ("ENABLED", "DISABLED"):
            g.features["EKS_AUDIT_LOGS"] = audit["Status"]
    out.guardduty = g


def _pod_identity(r: _Reader, d: dict[str, Any], where: str) -> PodIdentityAssociation:
    return PodIdentityAssociation(
        namespace=r.s(d, "namespace", where, required=True),
        service_account=r.s(d, "serviceAccount", where, required=True),
        role_arn=r.arn(d, "roleArn", where, required=False),
        association_id=r.s(d, "associationId", where),
        target_role_arn=r.arn(d, "targetRoleArn", where, required=False),
        field=where,
        disable_session_tags=bool(r.b(d, "disableSessionTags", where)),
        external_id=r.s(d, "externalId", where),
    )


def merge_aws_json(docs: Iterable[tuple[str, Any]], out: EKSAccess | None = None) -> EKSAccess:
    """Combine AWS CLI outputs (recognised by their top-level key) into one EKSAccess.

    Accepted: describe-cluster, list-access-entries, describe-access-entry, list-associated-access-policies,
    describe-pod-identity-association, list-pod-identity-associations, describe-nodegroup,
    describe-fargate-profile, iam get-role / get-user, kms get-key-rotation-status / describe-key, guardduty
    get-detector, and kubestrata's own EKSClusterAccess document.
    """
    out = out or EKSAccess()
    pending_policies: list[tuple[str, list[Association]]] = []
    listed: list[str] = []
    for file, doc in docs:
        r = _Reader(file)
        if isinstance(doc, list):
            items = list(enumerate(doc))
        else:
            items = [(None, doc)]
        for idx, d in items:
            pre = f"[{idx}]." if idx is not None else ""
            d = r.obj(d, pre.rstrip(".") or "(document)")
            matched = False
            if d.get("kind") == SNAPSHOT_KIND:
                _apply_snapshot(r, d, out)
                continue
            if "cluster" in d:
                _apply_cluster(r, r.obj(d["cluster"], pre + "cluster"), out, pre + "cluster")
                matched = True
            if "accessEntry" in d:
                e = _entry(r, r.obj(d["accessEntry"], pre + "accessEntry"), pre + "accessEntry")
                _upsert_entry(out, e)
                matched = True
            if "accessEntries" in d:
                for i, a in enumerate(r.lst(d["accessEntries"], pre + "accessEntries")):
                    w = f"{pre}accessEntries[{i}]"
                    if isinstance(a, str):  # list-access-entries prints ARNs only
                        try:
                            parse_arn(a)
                        except ArnError as e:
                            raise r.err(w, str(e)) from None
                        listed.append(a)
                    else:
                        _upsert_entry(out, _entry(r, r.obj(a, w), w))
                matched = True
            if "associatedAccessPolicies" in d:
                principal = r.arn(d, "principalArn", pre.rstrip(".") or "(document)")
                assocs = [
                    _association(r, a, f"{pre}associatedAccessPolicies[{i}]")
                    for i, a in enumerate(
                        r.lst(d["associatedAccessPolicies"], pre + "associatedAccessPolicies")
                    )
                ]
                pending_policies.append((principal, assocs))
                matched = True
            if "association" in d:
                out.pod_identity.append(
                    _pod_identity(r, r.obj(d["association"], pre + "association"), pre + "association")
                )
                matched = True
            if "associations" in d:
                for i, a in enumerate(r.lst(d["associations"], pre + "associations")):
                    w = f"{pre}associations[{i}]"
                    out.pod_identity.append(_pod_identity(r, r.obj(a, w), w))
                matched = True
            if "nodegroup" in d:
                ng = r.obj(d["nodegroup"], pre + "nodegroup")
                ami = r.s(ng, "amiType", pre + "nodegroup")
                out.node_roles.append(
                    NodeRole(
                        r.arn(ng, "nodeRole", pre + "nodegroup"),
                        "nodegroup/" + r.s(ng, "nodegroupName", pre + "nodegroup"),
                        "EC2_WINDOWS" if ami.startswith("WINDOWS") else "EC2_LINUX",
                    )
                )
                out.nodegroups.append(ng)
                matched = True
            if "LaunchTemplateVersions" in d:
                for i, v in enumerate(r.lst(d["LaunchTemplateVersions"], pre + "LaunchTemplateVersions")):
                    out.launch_template_versions.append(r.obj(v, f"{pre}LaunchTemplateVersions[{i}]"))
                matched = True
            if "fargateProfile" in d:
                fp = r.obj(d["fargateProfile"], pre + "fargateProfile")
                out.node_roles.append(
                    NodeRole(
                        r.arn(fp, "podExecutionRoleArn", pre + "fargateProfile"),
                        "fargateprofile/" + r.s(fp, "fargateProfileName", pre + "fargateProfile"),
                        "FARGATE_LINUX",
                    )
                )
                matched = True
            if "clusterVersions" in d:
                _apply_versions(r, d, out, pre)
                matched = True
            if "KeyRotationEnabled" in d:
                _apply_rotation(r, d, out, pre.rstrip(".") or "(document)", camel=False)
                matched = True
            if "KeyMetadata" in d:
                _apply_key_metadata(
                    r, r.obj(d["KeyMetadata"], pre + "KeyMetadata"), out, pre + "KeyMetadata", False
                )
                matched = True
            if "Volumes" in d:
                _apply_volumes(r, r.lst(d["Volumes"], pre + "Volumes"), out, pre + "Volumes", camel=False)
                matched = True
            if "Features" in d or ("ServiceRole" in d and "Status" in d):
                _apply_guardduty(r, d, out, pre.rstrip(".") or "(document)", camel=False)
                matched = True
            for key, id_key in (("Role", "RoleId"), ("User", "UserId")):
                if key in d:
                    p = r.obj(d[key], pre + key)
                    if out.iam_principals is None:
                        out.iam_principals = {}
                    arn = r.arn(p, "Arn", pre + key)
                    out.iam_principals[arn] = IAMPrincipal(
                        arn,
                        r.s(p, id_key, pre + key),
                        str(p.get("CreateDate") or ""),
                        _trust_policy(r, p, pre + key),
                        pre + key,
                    )
                    matched = True
            from kubestrata.image import ecr as _ecr

            if _ecr.apply_aws_json(r, d, out, pre):
                matched = True
            if not matched:
                keys = ", ".join(sorted(map(str, d))[:6]) or "none"
                raise r.err(
                    pre.rstrip(".") or "(document)",
                    f"not a recognised AWS CLI output (top-level keys: {keys}); expected describe-cluster, "
                    "list-access-entries, describe-access-entry, list-associated-access-policies, "
                    "pod identity, nodegroup, ec2 describe-launch-template-versions, fargate profile, iam "
                    "get-role/get-user, kms get-key-rotation-status/describe-key, describe-cluster-versions, "
                    "guardduty get-detector, ec2 describe-volumes, ecr describe-repositories, ecr "
                    "get-registry-scanning-configuration or ec2 describe-vpc-endpoints JSON",
                )
    for arn in listed:
        if out.entry_for(arn) is None:
            out.entries.append(AccessEntry(arn, field=f"accessEntries[{len(out.entries)}]"))
    for principal, assocs in pending_policies:
        e = out.entry_for(principal)
        if e is None:
            e = AccessEntry(principal, field=f"accessEntries[{len(out.entries)}]")
            out.entries.append(e)
        e.associations = assocs
    return out


def _upsert_entry(out: EKSAccess, e: AccessEntry) -> None:
    old = out.entry_for(e.principal_arn)
    if old is None:
        out.entries.append(e)
        return
    old.type, old.username, old.groups, old.created_at = e.type, e.username, e.groups, e.created_at
    if e.associations:
        old.associations = e.associations


def _apply_snapshot(r: _Reader, d: dict[str, Any], out: EKSAccess) -> None:
    if d.get("cluster") is not None:
        _apply_cluster(r, r.obj(d["cluster"], "cluster"), out, "cluster")
    meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
    out.cluster_name = out.cluster_name or str(meta.get("name") or "")
    for i, a in enumerate(r.lst(d.get("accessEntries"), "accessEntries")):
        w = f"accessEntries[{i}]"
        _upsert_entry(out, _entry(r, r.obj(a, w), w))
    for i, a in enumerate(r.lst(d.get("podIdentityAssociations"), "podIdentityAssociations")):
        w = f"podIdentityAssociations[{i}]"
        out.pod_identity.append(_pod_identity(r, r.obj(a, w), w))
    for i, n in enumerate(r.lst(d.get("nodeRoles"), "nodeRoles")):
        w = f"nodeRoles[{i}]"
        n = r.obj(n, w)
        typ = r.s(n, "type", w) or "EC2_LINUX"
        out.node_roles.append(NodeRole(r.arn(n, "roleArn", w), r.s(n, "source", w), typ))
    if d.get("iamPrincipals") is not None:
        out.iam_principals = out.iam_principals or {}
        for i, p in enumerate(r.lst(d.get("iamPrincipals"), "iamPrincipals")):
            w = f"iamPrincipals[{i}]"
            p = r.obj(p, w)
            arn = r.arn(p, "Arn", w)
            pid = r.s(p, "PrincipalId", w) or r.s(p, "RoleId", w) or r.s(p, "UserId", w)
            out.iam_principals[arn] = IAMPrincipal(
                arn, pid, str(p.get("CreateDate") or ""), _trust_policy(r, p, w), w
            )
    if d.get("creatorArn") is not None:
        out.creator_arn = r.arn(d, "creatorArn", "(document)")
    for i, k in enumerate(r.lst(d.get("kmsKeys"), "kmsKeys")):
        w = f"kmsKeys[{i}]"
        k = r.obj(k, w)
        _apply_key_metadata(r, k, out, w, camel=True)
        _apply_rotation(r, k, out, w, camel=True)
    if d.get("clusterVersions") is not None:
        _apply_versions(r, d, out, "")
    if d.get("guardDuty") is not None:
        _apply_guardduty(r, r.obj(d["guardDuty"], "guardDuty"), out, "guardDuty", camel=True)
    if d.get("ebsVolumes") is not None:
        _apply_volumes(r, r.lst(d["ebsVolumes"], "ebsVolumes"), out, "ebsVolumes", camel=True)
    for i, ng in enumerate(r.lst(d.get("nodegroups"), "nodegroups")):
        out.nodegroups.append(r.obj(ng, f"nodegroups[{i}]"))
    for i, v in enumerate(r.lst(d.get("launchTemplateVersions"), "launchTemplateVersions")):
        out.launch_template_versions.append(r.obj(v, f"launchTemplateVersions[{i}]"))
    from kubestrata.image import ecr as _ecr

    _ecr.apply_snapshot(r, d, out)


def _apply_volumes(r: _Reader, vols: list[Any], out: EKSAccess, where: str, camel: bool) -> None:
    """`aws ec2 describe-volumes` .Volumes (or the snapshot's camelCase copy)."""
    vid, enc, key = ("volumeId", "encrypted", "kmsKeyId") if camel else ("VolumeId", "Encrypted", "KmsKeyId")
    if out.ebs_volumes is None:
        out.ebs_volumes = {}
    for i, v in enumerate(vols):
        w = f"{where}[{i}]"
        v = r.obj(v, w)
        volume_id = r.s(v, vid, w, required=True)
        encrypted = r.b(v, enc, w)
        if encrypted is None:
            raise r.err(f"{w}.{enc}", "missing; describe-volumes always prints it")
        out.ebs_volumes[volume_id] = EBSVolume(volume_id, encrypted, r.s(v, key, w), f"ebsVolumes[{i}]")


def is_aws_cli_json(path: str) -> bool:
    """Whether a file is AWS CLI output kubestrata reads (describe-cluster, list-access-entries...),
    as opposed to other JSON found among manifests (an IAM policy document, package.json, a
    dashboard), which callers skip like any non-Kubernetes file."""
    try:
        with open(path, "rb") as fh:
            docs = _json_stream(fh.read(), path)
    except (OSError, InputError):
        return False
    try:
        merge_aws_json([(path, d) for d in docs])
    except InputError as e:
        # AWS CLI output with a broken field is still AWS CLI output: its reader names the field
        return not e.detail.startswith("not a recognised AWS CLI output")
    return True


def _trust_policy(r: _Reader, p: dict[str, Any], where: str) -> dict[str, Any] | None:
    """AssumeRolePolicyDocument as the CLI prints it (an object) or as the API returns it (URL-encoded JSON)."""
    doc = p.get("AssumeRolePolicyDocument")
    if doc is None:
        return None
    if isinstance(doc, str):
        import json
        import urllib.parse

        try:
            doc = json.loads(urllib.parse.unquote(doc))
        except ValueError as e:
            raise r.err(f"{where}.AssumeRolePolicyDocument", f"not a JSON policy: {e}") from None
    if not isinstance(doc, dict):
        raise r.err(f"{where}.AssumeRolePolicyDocument", f"expected an object, got {_tname(doc)}")
    return doc


def read_aws_json_files(paths: Iterable[str], stdin: Any = None) -> EKSAccess:
    """Read AWS CLI JSON files ("-" = stdin, which may hold several concatenated documents)."""
    import os
    import sys

    paths = list(paths)
    docs: list[tuple[str, Any]] = []
    expanded: list[str] = []
    for p in paths:
        if p != "-" and os.path.isdir(p):
            expanded.extend(sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".json")))
        else:
            expanded.append(p)
    for p in expanded:
        if p == "-":
            data = (stdin or sys.stdin.buffer).read()
            if isinstance(data, str):
                data = data.encode()
            name = "<stdin>"
        else:
            try:
                with open(p, "rb") as fh:
                    data = fh.read()
            except OSError as e:
                raise InputError(f"cannot read: {e.strerror or e}", file=p) from None
            name = p
        for doc in _json_stream(data, name):
            docs.append((name, doc))
    if not docs:
        # an empty snapshot would make every EKS check pass: say the input was wrong instead
        raise InputError(
            "no AWS CLI JSON found (expected the .json output of `aws eks describe-cluster` and friends)",
            file=", ".join(paths),
        )
    return merge_aws_json(docs)


def _json_stream(data: bytes, name: str) -> list[Any]:
    """One JSON document, or several concatenated (as `aws ... ; aws ...` piped together prints)."""
    text = data.decode("utf-8-sig", "replace")
    try:
        return [orjson.loads(text)]
    except orjson.JSONDecodeError:
        pass
    import json

    dec = json.JSONDecoder()
    out, i = [], 0
    while True:
        m = re.compile(r"\S").search(text, i)
        if m is None:
            break
        try:
            doc, i = dec.raw_decode(text, m.start())
        except json.JSONDecodeError as e:
            raise InputError(
                f"invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})", file=name
            ) from None
        out.append(doc)
    if not out:
        raise InputError("empty input, expected AWS CLI JSON", file=name)
    return out


def from_objects(objects: Iterable[KubeObject]) -> tuple[EKSAccess | None, list[InputError]]:
    """The EKSClusterAccess snapshot(s) among loaded objects, merged; errors name file and field."""
    out: EKSAccess | None = None
    errors: list[InputError] = []
    for o in objects:
        if o.kind != SNAPSHOT_KIND:
            continue
        try:
            out = merge_aws_json([(o.source.file if o.source else "<input>", o.raw)], out)
            out.obj = out.obj or o
        except InputError as e:
            errors.append(e)
    return out, errors


# -- live -----------------------------------------------------------------------------------------------


def collect_live(
    cluster_name: str,
    *,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    gaps: list[str] | None = None,
) -> EKSAccess:
    """Read the same data through boto3 (read-only calls). Calls the endpoint does not support are
    recorded in ``gaps`` rather than failing the whole collection."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    gaps = gaps if gaps is not None else []
    session = boto3.Session(profile_name=profile, region_name=region)
    eks = session.client("eks", endpoint_url=endpoint_url)
    docs: list[tuple[str, Any]] = []

    def call(label: str, fn: Any, **kw: Any) -> dict[str, Any] | None:
        try:
            resp = fn(**kw)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("ResourceNotFoundException",) and label == "describe-cluster":
                raise InputError(f"cluster {cluster_name!r} not found", field="clusterName") from None
            gaps.append(f"{label}: {code or e}")
            return None
        except BotoCoreError as e:
            gaps.append(f"{label}: {e}")
            return None
        resp.pop("ResponseMetadata", None)
        return orjson.loads(orjson.dumps(resp, default=str))

    def pages(label: str, op: str, key: str, **kw: Any) -> list[Any] | None:
        items: list[Any] = []
        token = None
        while True:
            args = dict(kw, **({"nextToken": token} if token else {}))
            resp = call(label, getattr(eks, op), **args)
            if resp is None:
                return None
            items.extend(resp.get(key) or [])
            token = resp.get("nextToken")
            if not token:
                return items

    d = call("describe-cluster", eks.describe_cluster, name=cluster_name)
    if d is not None:
        docs.append(("describe-cluster", d))
    arns = pages("list-access-entries", "list_access_entries", "accessEntries", clusterName=cluster_name)
    for arn in arns or []:
        e = call(
            "describe-access-entry", eks.describe_access_entry, clusterName=cluster_name, principalArn=arn
        )
        if e is not None:
            docs.append(("describe-access-entry", e))
        pol = pages(
            "list-associated-access-policies",
            "list_associated_access_policies",
            "associatedAccessPolicies",
            clusterName=cluster_name,
            principalArn=arn,
        )
        if pol is not None:
            docs.append(
                ("list-associated-access-policies", {"principalArn": arn, "associatedAccessPolicies": pol})
            )
    assocs = pages(
        "list-pod-identity-associations",
        "list_pod_identity_associations",
        "associations",
        clusterName=cluster_name,
    )
    for a in assocs or []:
        got = call(
            "describe-pod-identity-association",
            eks.describe_pod_identity_association,
            clusterName=cluster_name,
            associationId=a.get("associationId"),
        )
        if got is not None:
            docs.append(("describe-pod-identity-association", got))
    for ng in pages("list-nodegroups", "list_nodegroups", "nodegroups", clusterName=cluster_name) or []:
        got = call("describe-nodegroup", eks.describe_nodegroup, clusterName=cluster_name, nodegroupName=ng)
        if got is not None:
            docs.append(("describe-nodegroup", got))
            lt = (got.get("nodegroup") or {}).get("launchTemplate") or {}
            if lt.get("id") or lt.get("name"):
                ec2 = session.client("ec2", endpoint_url=endpoint_url)
                ref = {"LaunchTemplateId": lt["id"]} if lt.get("id") else {"LaunchTemplateName": lt["name"]}
                got = call(
                    "ec2 describe-launch-template-versions",
                    ec2.describe_launch_template_versions,
                    Versions=[str(lt.get("version") or "$Default")],
                    **ref,
                )
                if got is not None:
                    docs.append(("ec2 describe-launch-template-versions", got))
    for fp in (
        pages(
            "list-fargate-profiles", "list_fargate_profiles", "fargateProfileNames", clusterName=cluster_name
        )
        or []
    ):
        got = call(
            "describe-fargate-profile",
            eks.describe_fargate_profile,
            clusterName=cluster_name,
            fargateProfileName=fp,
        )
        if got is not None:
            docs.append(("describe-fargate-profile", got))
    version = ((d or {}).get("cluster") or {}).get("version")
    if isinstance(version, str):
        got = call("describe-cluster-versions", eks.describe_cluster_versions, clusterVersions=[version])
        if got is not None:
            docs.append(("describe-cluster-versions", got))
    keys = [
        (e.get("provider") or {}).get("keyArn")
        for e in ((d or {}).get("cluster") or {}).get("encryptionConfig") or []
        if isinstance(e, dict)
    ]
    if any(keys):
        kms = session.client("kms", endpoint_url=endpoint_url)
        for key in filter(None, keys):
            got = call("kms get-key-rotation-status", kms.get_key_rotation_status, KeyId=key)
            if got is not None:
                # older KMS responses omit KeyId; the request names the key
                docs.append(("kms get-key-rotation-status", {"KeyId": key, **got}))
            got = call("kms describe-key", kms.describe_key, KeyId=key)
            if got is not None:
                docs.append(("kms describe-key", got))
    gd = session.client("guardduty", endpoint_url=endpoint_url)
    detectors = call("guardduty list-detectors", gd.list_detectors)
    for det in (detectors or {}).get("DetectorIds") or []:
        got = call("guardduty get-detector", gd.get_detector, DetectorId=det)
        if got is not None:
            docs.append(("guardduty get-detector", got))
            break  # one detector per account and region
    else:
        if detectors is not None:  # no detector: GuardDuty is off in this account and region
            docs.append(
                ("guardduty list-detectors", {"Status": "DISABLED", "ServiceRole": "", "Features": []})
            )
    from kubestrata.image import ecr as _ecr

    vpc = (((d or {}).get("cluster") or {}).get("resourcesVpcConfig") or {}).get("vpcId")
    docs.extend(_ecr.collect_live(session, call, endpoint_url, vpc if isinstance(vpc, str) else None))
    out = merge_aws_json(docs)
    out.cluster_name = out.cluster_name or cluster_name
    return out
