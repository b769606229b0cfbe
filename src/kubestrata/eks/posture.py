"""EKS cluster posture as AWS prints it: describe-cluster's version, encryption, logging and endpoint
access; KMS key rotation and metadata; GuardDuty; EBS volumes; EKS's version support dates, and the
release calendar shipped as data (data/eks-versions.yaml) for when describe-cluster-versions is absent."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from kubestrata.eks.model import (
    EBSVolume,
    EKSAccess,
    EncryptionConfig,
    EndpointAccess,
    GuardDuty,
    KMSKey,
    VersionDates,
    minor_key,
)
from kubestrata.eks.reader import Reader, read_date, tname
from kubestrata.packagedata import load_yaml


def apply_posture(r: Reader, c: dict[str, Any], out: EKSAccess, where: str) -> None:
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


def apply_versions(r: Reader, d: dict[str, Any], out: EKSAccess, where: str) -> None:
    """`aws eks describe-cluster-versions`: EKS's own support dates, preferred to the shipped calendar."""
    for i, v in enumerate(r.lst(d.get("clusterVersions"), f"{where}clusterVersions")):
        w = f"{where}clusterVersions[{i}]"
        v = r.obj(v, w)
        version = r.s(v, "clusterVersion", w, required=True)
        std, ext = (
            read_date(r, v, "endOfStandardSupportDate", w),
            read_date(r, v, "endOfExtendedSupportDate", w),
        )
        assert std is not None and ext is not None  # required
        out.version_dates[version] = VersionDates(version, read_date(r, v, "releaseDate", w, False), std, ext)


def apply_rotation(r: Reader, d: dict[str, Any], out: EKSAccess, where: str, camel: bool) -> None:
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
            raise r.err(f"{where}.{k_per}", f"expected a number of days, got {tname(per)}")
        key.rotation_period_days = per


def apply_key_metadata(r: Reader, m: dict[str, Any], out: EKSAccess, where: str, camel: bool) -> None:
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


def apply_guardduty(r: Reader, d: dict[str, Any], out: EKSAccess, where: str, camel: bool) -> None:
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


def apply_volumes(r: Reader, vols: list[Any], out: EKSAccess, where: str, camel: bool) -> None:
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


# -- version calendar ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    retrieved: str
    versions: dict[str, VersionDates]

    @property
    def oldest(self) -> tuple[int, int]:
        return min(minor_key(v) for v in self.versions)

    @property
    def newest(self) -> tuple[int, int]:
        return max(minor_key(v) for v in self.versions)


@cache
def calendar() -> Calendar:
    """The EKS release calendar shipped as data (data/eks-versions.yaml, with its source)."""

    raw = load_yaml("kubestrata.eks", "data/eks-versions.yaml")
    out = {}
    for v, d in raw["versions"].items():
        out[str(v)] = VersionDates(
            str(v),
            dt.date.fromisoformat(d["eksRelease"]),
            dt.date.fromisoformat(d["endOfStandardSupport"]),
            dt.date.fromisoformat(d["endOfExtendedSupport"]),
        )
    return Calendar(str(raw["retrieved"]), out)
