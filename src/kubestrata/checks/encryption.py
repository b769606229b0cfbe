"""Encryption posture (KS-ENC-*): the API server's EncryptionConfiguration for data at rest in etcd,
and encryption of AWS volumes (EBS, EFS, FSx for Lustre) from StorageClasses and PersistentVolumes.

EncryptionConfiguration semantics (kubernetes.io encrypt-data and kms-provider guides): for each
resource the FIRST matching ``resources`` entry applies (``secrets``, ``*.`` = every core resource,
``*.*`` = everything); within it the FIRST provider encrypts new writes and every provider is tried
for reads. ``identity`` writes plaintext; ``aescbc``/``aesgcm``/``secretbox`` keep their keys in the
file beside the API server; ``kms`` without ``apiVersion: v2`` is KMS v1 (deprecated in 1.28,
disabled by default from 1.29). Resources matched by no entry are stored unencrypted.

EKS's own Secrets encryption with a customer key and its rotation stay KS-EKS-001/002 (checks/eks.py):
they read the EKS snapshot and their ids are already in users' suppressions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubestrata.checks.base import CheckContext, check
from kubestrata.findings import Evidence, Finding, GapReason, Layer, Severity
from kubestrata.kube.objects import KubeObject

EC_KIND = "EncryptionConfiguration"
STATIC_KEY_PROVIDERS = ("aescbc", "aesgcm", "secretbox")
PROVIDER_TYPES = ("identity", "kms", *STATIC_KEY_PROVIDERS)
SECRETS_REFS = {
    "cis-eks": ["5.3.1"],
    "nsa-cisa": ["Kubernetes Pod security: protect Secrets, encrypt at rest (KMS)"],
    "mitre": ["T1552.007 Unsecured Credentials: Container API"],
}
VOLUME_REFS = {
    "nsa-cisa": ["Kubernetes Pod security: encrypt data at rest"],
    "mitre": ["T1530 Data from Cloud Storage"],
}
TRANSIT_REFS = {
    "nsa-cisa": ["Network separation and hardening: encrypt traffic"],
    "mitre": ["T1040 Network Sniffing"],
}
L = Layer.CLUSTER
EBS_PROVISIONERS = ("ebs.csi.aws.com", "kubernetes.io/aws-ebs")


# --- EncryptionConfiguration model ----------------------------------------------------------------


def _entries(obj: KubeObject) -> list[tuple[int, list[str], list[tuple[str, dict[str, Any]]]]]:
    """(index, resources, [(provider type, its config)]) of each well-formed resources entry."""
    out = []
    res = obj.raw.get("resources")
    for i, entry in enumerate(res if isinstance(res, list) else []):
        if not isinstance(entry, dict):
            continue
        names = [str(r) for r in entry.get("resources") or [] if isinstance(r, str)]
        providers: list[tuple[str, dict[str, Any]]] = []
        for p in entry.get("providers") or []:
            if isinstance(p, dict):
                for t in PROVIDER_TYPES:
                    if t in p:
                        providers.append((t, p[t] if isinstance(p[t], dict) else {}))
                        break
        out.append((i, names, providers))
    return out


def _matches(name: str) -> bool:
    """Does a resources name cover core-group Secrets? (secrets, every core resource, everything)"""
    return name in ("secrets", "*.", "*.*")


def _secrets_entry(obj: KubeObject):  # noqa: ANN202
    """The entry that governs Secrets (the first that matches), or None."""
    for i, names, providers in _entries(obj):
        if any(_matches(n) for n in names):
            return i, names, providers
    return None


def _where(i: int, j: int | None = None) -> str:
    return f"resources[{i}].providers" + (f"[{j}]" if j is not None else "")


@check(
    "KS-ENC-001",
    "EncryptionConfiguration writes plaintext: identity is the first provider",
    severity=Severity.HIGH,
    layer=L,
    kinds=[EC_KIND],
    rationale="The first provider of an entry encrypts every new write; identity as the first provider "
    "stores those resources in etcd as plaintext, readable from any etcd backup or snapshot, while the "
    "configuration looks like encryption is set up. This is how a migration starts, not how it ends.",
    remediation="Put the kms provider (apiVersion: v2) first and identity last, restart or reload the "
    "API server (--encryption-provider-config-automatic-reload), then rewrite existing objects "
    "(kubestrata kms rewrap --cluster).",
    references=SECRETS_REFS,
)
def identity_first(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    governing = _secrets_entry(obj)
    for i, names, providers in _entries(obj):
        if providers and providers[0][0] == "identity":
            secrets = governing is not None and governing[0] == i
            yield identity_first.meta.finding(
                obj,
                f"resources[{i}] ({', '.join(names)}): identity is the first provider, so new writes are "
                "stored unencrypted" + (" (this entry governs Secrets)" if secrets else ""),
                severity=None if secrets else Severity.LOW,
                evidence=[Evidence(_where(i, 0), "identity", "kms (apiVersion: v2)")],
            )


@check(
    "KS-ENC-002",
    "EncryptionConfiguration does not cover Secrets",
    severity=Severity.HIGH,
    layer=L,
    kinds=[EC_KIND],
    rationale="Resources that no entry names (secrets, *. or *.*) are stored without encryption even "
    "though the API server has an encryption configuration.",
    remediation="Add an entry with resources: [secrets] (or *.*) whose first provider is kms with "
    "apiVersion: v2, then rewrite existing Secrets (kubestrata kms rewrap --cluster).",
    references=SECRETS_REFS,
)
def secrets_not_covered(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    if _secrets_entry(obj) is None:
        listed = sorted({n for _, names, _ in _entries(obj) for n in names})
        yield secrets_not_covered.meta.finding(
            obj,
            "no resources entry names secrets (or *. / *.*): Secrets are stored unencrypted",
            evidence=[Evidence("resources[*].resources", listed, ["secrets"])],
        )


@check(
    "KS-ENC-003",
    "KMS provider without apiVersion v2 (KMS v1)",
    severity=Severity.MEDIUM,
    layer=L,
    kinds=[EC_KIND],
    rationale="A kms provider without apiVersion: v2 is KMS v1: deprecated in Kubernetes 1.28 and disabled "
    "by default from 1.29 (the API server refuses to start without --feature-gates=KMSv1=true). v1 calls "
    "the plugin for every data key, has no key_id to detect stale data after a key rotation, and "
    "cannot be rotated without restarting the API server.",
    remediation="Run a KMS v2 plugin (kubestrata kms serve, or the cloud provider's) and set "
    "apiVersion: v2 on the kms provider (a new provider name), reload, then rewrite existing objects.",
    references=SECRETS_REFS,
)
def kms_v1(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    for i, _names, providers in _entries(obj):
        for j, (t, cfg) in enumerate(providers):
            if t == "kms" and str(cfg.get("apiVersion") or "v1") != "v2":
                yield kms_v1.meta.finding(
                    obj,
                    f"resources[{i}].providers[{j}] kms {cfg.get('name', '')!r} uses KMS "
                    f"{cfg.get('apiVersion') or 'v1 (apiVersion unset)'}",
                    evidence=[Evidence(f"{_where(i, j)}.kms.apiVersion", cfg.get("apiVersion"), "v2")],
                )


@check(
    "KS-ENC-004",
    "EncryptionConfiguration keeps static keys (aescbc, aesgcm, secretbox)",
    severity=Severity.MEDIUM,
    layer=L,
    kinds=[EC_KIND],
    rationale="Local providers keep their keys in the configuration file on every control-plane host, so "
    "whoever reads the host's disk or its backups reads the key next to the data it protects; rotating "
    "them means editing the file on every API server. aescbc is not recommended (CBC padding-oracle "
    "weakness) and aesgcm keys must be rotated every 200,000 writes. A KMS provider keeps the key "
    "encryption key outside the host.",
    remediation="Encrypt with a kms v2 provider (kubestrata kms serve --backend aws, or a cloud KMS plugin) "
    "first; keep the static provider after it only until kubestrata kms rewrap --cluster has rewritten "
    "every object, then remove it and its keys.",
    references=SECRETS_REFS,
)
def static_keys(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    for i, _names, providers in _entries(obj):
        for j, (t, cfg) in enumerate(providers):
            if t not in STATIC_KEY_PROVIDERS:
                continue
            n = len(cfg.get("keys") or [])
            yield static_keys.meta.finding(
                obj,
                f"resources[{i}].providers[{j}] {t} with {n} static key(s) in the file"
                + (" encrypts new writes" if j == 0 else ", kept for reading old data"),
                severity=None if j == 0 else Severity.LOW,
                evidence=[Evidence(f"{_where(i, j)}.{t}.keys", f"{n} key(s)", "a kms v2 provider")],
            )


@check(
    "KS-ENC-005",
    "identity provider left in place after migrating to encryption",
    severity=Severity.LOW,
    layer=L,
    kinds=[EC_KIND],
    rationale="identity after an encrypting provider lets the API server read plaintext values: needed "
    "while old objects are rewritten, but once the migration is over it means data written to etcd "
    "directly in plaintext is accepted as genuine and a missed object stays unencrypted unnoticed.",
    remediation="After kubestrata kms rewrap --cluster reports nothing left, remove the identity provider "
    "from the entry and reload the API server.",
    references=SECRETS_REFS,
)
def leftover_identity(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    for i, names, providers in _entries(obj):
        if not providers or providers[0][0] == "identity":
            continue  # KS-ENC-001's case
        for j, (t, _) in enumerate(providers):
            if t == "identity":
                yield leftover_identity.meta.finding(
                    obj,
                    f"resources[{i}] ({', '.join(names)}): identity is still accepted for reads after "
                    f"{providers[0][0]}",
                    evidence=[Evidence(_where(i, j), "identity", "(removed)")],
                )


# --- AWS volumes -----------------------------------------------------------------------------------


def _dict_at(d: dict[str, Any], key: str) -> dict[str, Any]:
    """The mapping under ``key``; {} when it is missing or not a mapping."""
    v = d.get(key)
    return v if isinstance(v, dict) else {}


def _params(obj: KubeObject) -> dict[str, Any]:
    return _dict_at(obj.raw, "parameters")


def _param(params: dict[str, Any], name: str) -> Any:
    """StorageClass parameter keys are case-insensitive for the AWS drivers."""
    for k, v in params.items():
        if str(k).lower() == name.lower():
            return v
    return None


@check(
    "KS-ENC-006",
    "EBS StorageClass does not request encryption",
    severity=Severity.MEDIUM,
    layer=Layer.INFRASTRUCTURE,
    kinds=["StorageClass"],
    rationale="Volumes of an ebs.csi.aws.com (or in-tree kubernetes.io/aws-ebs) StorageClass are created "
    'unencrypted unless the class says encrypted: "true" or the account has EBS encryption by default '
    "turned on in that region, a setting outside the cluster that the class does not show. Unencrypted "
    "volumes and their snapshots expose data to anyone who can attach or share them.",
    remediation='Set parameters.encrypted: "true" (and kmsKeyId: a customer-managed key ARN) in a new '
    "StorageClass (parameters are immutable); also enable EBS encryption by default "
    "(aws ec2 enable-ebs-encryption-by-default).",
    references=VOLUME_REFS,
)
def ebs_unencrypted(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    if obj.raw.get("provisioner") not in EBS_PROVISIONERS:
        return
    value = _param(_params(obj), "encrypted")
    if str(value).lower() != "true":
        yield ebs_unencrypted.meta.finding(
            obj,
            f"StorageClass {obj.name} ({obj.raw.get('provisioner')}) creates volumes without encryption "
            f"(encrypted: {value!r})",
            evidence=[Evidence("parameters.encrypted", value, "true")],
            fix=[{"op": "add", "path": "/parameters/encrypted", "value": "true"}]
            if isinstance(obj.raw.get("parameters"), dict)
            else [{"op": "add", "path": "/parameters", "value": {"encrypted": "true"}}],
            fix_note="StorageClass parameters are immutable: create a new class and move claims to it.",
        )


def _eks(ctx: CheckContext) -> Any:
    """The EKS snapshot (kubestrata access import), if the input has one; its errors are KS-ACC-018's."""

    def build() -> Any:
        from kubestrata.eks.model import SNAPSHOT_KIND
        from kubestrata.eks.objects import from_objects

        return from_objects(ctx.cluster.of_kind(SNAPSHOT_KIND))[0]

    return ctx.memo("encryption.eks", build)


def _cluster_account(ctx: CheckContext) -> str | None:
    def build() -> str | None:
        eks = _eks(ctx)
        arn = getattr(eks, "cluster_arn", "") if eks else ""
        parts = arn.split(":")
        return parts[4] if len(parts) > 5 and parts[4] else None

    return ctx.memo("encryption.account", build)


@check(
    "KS-ENC-007",
    "EBS StorageClass encrypts with a KMS key of another account",
    severity=Severity.MEDIUM,
    layer=Layer.INFRASTRUCTURE,
    kinds=["StorageClass"],
    rationale="kmsKeyId names the key that protects every volume of the class. A key ARN of another AWS "
    "account puts the volumes' availability and access under that account's key policy: it can revoke "
    "the key (volumes fail to attach) or read the key's use; a typo or a copied manifest does the same "
    "silently.",
    remediation="Use a customer-managed key of the cluster's account in kmsKeyId (a new StorageClass), or "
    "document the cross-account key and suppress the finding.",
    references=VOLUME_REFS,
)
def ebs_foreign_key(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    if obj.raw.get("provisioner") not in EBS_PROVISIONERS:
        return
    key = _param(_params(obj), "kmsKeyId")
    if not isinstance(key, str) or not key.startswith("arn:"):
        return  # a key id or alias resolves in the account that creates the volume
    parts = key.split(":")
    key_account = parts[4] if len(parts) > 5 else ""
    account = _cluster_account(ctx)
    if account is None:
        ctx.gap(
            f"StorageClass/{obj.name} kmsKeyId",
            GapReason.MISSING_INPUT,
            "the cluster's AWS account is unknown: provide the EKS snapshot (kubestrata access import) "
            "to check that the key belongs to it",
        )
        return
    if key_account != account:
        yield ebs_foreign_key.meta.finding(
            obj,
            f"StorageClass {obj.name} encrypts with KMS key {key} of account {key_account or '?'}, not the "
            f"cluster's account {account}",
            evidence=[Evidence("parameters.kmsKeyId", key, f"arn:aws:kms:REGION:{account}:key/ID")],
        )


_FALSE = ("0", "f", "false")  # Go strconv.ParseBool, which the EFS CSI driver uses


@check(
    "KS-ENC-008",
    "EFS volume mounted without encryption in transit",
    severity=Severity.MEDIUM,
    layer=Layer.INFRASTRUCTURE,
    kinds=["PersistentVolume"],
    rationale="The EFS CSI driver mounts with TLS by default and always through an access point (every "
    "dynamically provisioned volume); a statically provisioned PersistentVolume with volumeAttributes "
    'encryptInTransit: "false" and no access point in its volumeHandle is mounted as plain NFS, so file '
    "contents cross the VPC unencrypted (aws-efs-csi-driver pkg/driver/node.go). StorageClasses cannot "
    "turn it off, so the PersistentVolume is where this is decided.",
    remediation='Remove encryptInTransit: "false" from the PersistentVolume (recreate it; volume '
    "attributes are immutable), or mount through an access point (volumeHandle fs-ID::fsap-ID).",
    references=TRANSIT_REFS,
)
def efs_no_tls(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    csi = _dict_at(_dict_at(obj.raw, "spec"), "csi")
    if csi.get("driver") != "efs.csi.aws.com":
        return
    attrs = _dict_at(csi, "volumeAttributes")
    value = next((v for k, v in attrs.items() if str(k).lower() == "encryptintransit"), None)
    handle = str(csi.get("volumeHandle") or "")
    access_point = len(handle.split(":")) > 2 and bool(handle.split(":")[2])
    if value is not None and str(value).lower() in _FALSE and not access_point:
        yield efs_no_tls.meta.finding(
            obj,
            f"PersistentVolume {obj.name} mounts EFS {handle.split(':')[0]} as plain NFS (encryptInTransit: "
            f"{value!r}, no access point)",
            evidence=[Evidence("spec.csi.volumeAttributes.encryptInTransit", value, "true (or unset)")],
        )


@check(
    "KS-ENC-009",
    "FSx for Lustre StorageClass without encryption in transit (SCRATCH_1)",
    severity=Severity.MEDIUM,
    layer=Layer.INFRASTRUCTURE,
    kinds=["StorageClass"],
    rationale="FSx for Lustre encrypts in transit only on SCRATCH_2 and PERSISTENT_1/2 file systems (from "
    "EC2 instances that support it); SCRATCH_1, the default deploymentType of fsx.csi.aws.com, never "
    "does. Scratch file systems also always use an FSx-managed key at rest; only persistent ones accept "
    "a customer kmsKeyId.",
    remediation="Set parameters.deploymentType: PERSISTENT_2 (or SCRATCH_2 for temporary data), with "
    "kmsKeyId a customer-managed key for persistent classes, in a new StorageClass.",
    references=TRANSIT_REFS,
)
def fsx_scratch1(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    if obj.raw.get("provisioner") != "fsx.csi.aws.com":
        return
    dt = _param(_params(obj), "deploymentType")
    if dt is None or str(dt).upper() == "SCRATCH_1":
        yield fsx_scratch1.meta.finding(
            obj,
            f"StorageClass {obj.name} creates FSx for Lustre SCRATCH_1 file systems"
            + (" (deploymentType unset: the default)" if dt is None else "")
            + ", which do not encrypt data in transit",
            evidence=[Evidence("parameters.deploymentType", dt, "PERSISTENT_2 or SCRATCH_2")],
        )


@check(
    "KS-ENC-010",
    "EncryptionConfiguration has no usable resources entry",
    severity=Severity.MEDIUM,
    layer=L,
    kinds=[EC_KIND],
    rationale="The API server refuses to start with an EncryptionConfiguration whose entries have no "
    "resources or no providers, or providers it does not know; a file like that is either not the one "
    "in use or about to break the control plane on the next restart.",
    remediation="Give every resources entry a resources list and at least one provider of identity, kms, "
    "aescbc, aesgcm or secretbox.",
    references=SECRETS_REFS,
)
def malformed(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    res = obj.raw.get("resources")
    if not isinstance(res, list) or not res:
        yield malformed.meta.finding(
            obj, "the file has no resources entries", evidence=[Evidence("resources", res, "[...]")]
        )
        return
    for i, entry in enumerate(res):
        names = entry.get("resources") if isinstance(entry, dict) else None
        provs = entry.get("providers") if isinstance(entry, dict) else None
        if not isinstance(names, list) or not names:
            yield malformed.meta.finding(
                obj,
                f"resources[{i}] names no resources",
                evidence=[Evidence(f"resources[{i}].resources", names, "[secrets]")],
            )
        if not isinstance(provs, list) or not provs:
            yield malformed.meta.finding(
                obj,
                f"resources[{i}] has no providers",
                evidence=[Evidence(f"resources[{i}].providers", provs, "[{kms: ...}]")],
            )
            continue
        for j, p in enumerate(provs):
            if not isinstance(p, dict) or not any(t in p for t in PROVIDER_TYPES):
                yield malformed.meta.finding(
                    obj,
                    f"resources[{i}].providers[{j}] is not a known provider",
                    evidence=[Evidence(_where(i, j), p, "one of " + ", ".join(PROVIDER_TYPES))],
                )


def _ebs_volume_id(obj: KubeObject) -> tuple[str, str] | None:
    """The EBS volume behind a PersistentVolume: CSI volumeHandle or in-tree awsElasticBlockStore
    volumeID (``vol-...`` or ``aws://ZONE/vol-...``)."""
    spec = _dict_at(obj.raw, "spec")
    csi = _dict_at(spec, "csi")
    if csi.get("driver") == "ebs.csi.aws.com":
        handle = csi.get("volumeHandle")
        return (str(handle), "spec.csi.volumeHandle") if handle else None
    tree = _dict_at(spec, "awsElasticBlockStore")
    vid = tree.get("volumeID")
    return (str(vid).rsplit("/", 1)[-1], "spec.awsElasticBlockStore.volumeID") if vid else None


@check(
    "KS-ENC-011",
    "PersistentVolume is bound to an unencrypted EBS volume",
    severity=Severity.MEDIUM,
    layer=Layer.INFRASTRUCTURE,
    kinds=["PersistentVolume"],
    rationale="Whatever its StorageClass says today, a PersistentVolume may sit on a volume created before "
    "encryption was required, imported statically, or made by a class that was later fixed: the volume "
    "itself (aws ec2 describe-volumes .Encrypted) is what decides whether its data and snapshots are "
    "encrypted. EBS cannot encrypt a volume in place.",
    remediation="Snapshot the volume, copy the snapshot with encryption (aws ec2 copy-snapshot --encrypted "
    "--kms-key-id KEY), create a volume from it and a PersistentVolume for that volume, then move the "
    "claim; or migrate the data to a claim of an encrypted StorageClass.",
    references=VOLUME_REFS,
)
def pv_unencrypted_ebs(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    found = _ebs_volume_id(obj)
    if not found:
        return
    vid, path = found
    eks = _eks(ctx)
    volumes = getattr(eks, "ebs_volumes", None) if eks else None
    if volumes is None:

        def once() -> bool:
            ctx.gap(
                "EBS volumes of PersistentVolumes",
                GapReason.MISSING_INPUT,
                "not evaluated: whether EBS volumes are encrypted. Provide: aws ec2 describe-volumes "
                "--volume-ids ... > volumes.json; kubestrata access import volumes.json (with the "
                "cluster's other JSON)",
            )
            return True

        ctx.memo("encryption.volumes-gap", once)
        return
    vol = volumes.get(vid)
    if vol is None:
        ctx.gap(
            f"PersistentVolume/{obj.name} volume {vid}",
            GapReason.MISSING_INPUT,
            f"{vid} is not in the describe-volumes output of the EKS snapshot",
        )
        return
    if not vol.encrypted:
        yield pv_unencrypted_ebs.meta.finding(
            obj,
            f"PersistentVolume {obj.name} is bound to EBS volume {vid}, which is not encrypted",
            evidence=[
                Evidence(path, f"{vid} (describe-volumes Encrypted: false)", "an encrypted EBS volume")
            ],
        )
