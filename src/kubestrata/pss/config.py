"""PodSecurityConfiguration (pod-security.admission.config.k8s.io v1 / v1beta1), the file the API
server's PodSecurity admission plugin reads: default levels and exemptions. Accepted on its own or
embedded in an AdmissionConfiguration (apiserver.config.k8s.io) under the PodSecurity plugin.

Validation follows admission/api/validation: levels and versions must parse, exemption entries must
be non-empty and unique, namespaces DNS-1123 labels, runtime classes DNS-1123 subdomains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubestrata.errors import InputError
from kubestrata.pss.api import Level, LevelVersion, Policy, parse_level, parse_version

GROUP = "pod-security.admission.config.k8s.io"
API_VERSIONS = (f"{GROUP}/v1", f"{GROUP}/v1beta1", f"{GROUP}/v1alpha1")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True)
class Exemptions:
    usernames: frozenset[str] = frozenset()
    runtime_classes: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()

    def namespace(self, ns: str) -> bool:
        return bool(ns) and ns in self.namespaces

    def user(self, username: str | None) -> bool:
        return bool(username) and username in self.usernames

    def runtime_class(self, rc: str | None) -> bool:
        return bool(rc) and rc in self.runtime_classes


@dataclass(frozen=True)
class PodSecurityConfig:
    defaults: Policy = field(default_factory=Policy)
    exemptions: Exemptions = field(default_factory=Exemptions)
    source: str | None = None


def parse_pod_security_configuration(doc: Any, file: str | None = None) -> PodSecurityConfig:
    """Validate and read a PodSecurityConfiguration (or an AdmissionConfiguration holding one)."""
    if not isinstance(doc, dict):
        raise InputError("expected a PodSecurityConfiguration mapping", file=file)
    if doc.get("kind") == "AdmissionConfiguration":
        for i, plugin in enumerate(doc.get("plugins") or []):
            if isinstance(plugin, dict) and plugin.get("name") == "PodSecurity":
                inner = plugin.get("configuration")
                if inner is None and plugin.get("path"):
                    base = Path(file).parent if file else Path(".")
                    return load_pod_security_configuration(str(base / str(plugin["path"])))
                if not isinstance(inner, dict):
                    raise InputError("expected a mapping", file=file, field=f"plugins[{i}].configuration")
                return parse_pod_security_configuration(inner, file)
        raise InputError("AdmissionConfiguration has no PodSecurity plugin", file=file, field="plugins")
    if doc.get("kind") != "PodSecurityConfiguration":
        raise InputError(
            f"expected kind PodSecurityConfiguration, got {doc.get('kind')!r}", file=file, field="kind"
        )
    if doc.get("apiVersion") not in API_VERSIONS:
        raise InputError(
            f"unsupported apiVersion {doc.get('apiVersion')!r}; expected one of {', '.join(API_VERSIONS)}",
            file=file,
            field="apiVersion",
        )
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InputError("expected a mapping", file=file, field="defaults")
    lvs = {}
    for mode in ("enforce", "audit", "warn"):
        level_s = defaults.get(mode, "privileged")
        version_s = defaults.get(f"{mode}-version", "latest")
        if not isinstance(level_s, str) or parse_level(level_s)[1]:
            raise InputError(
                f"invalid level {level_s!r}: must be one of privileged, baseline, restricted",
                file=file,
                field=f"defaults.{mode}",
            )
        version, err = parse_version(version_s) if isinstance(version_s, str) else (None, "must be a string")
        if err or version is None:
            raise InputError(
                f"invalid version {version_s!r}: {err}", file=file, field=f"defaults.{mode}-version"
            )
        lvs[mode] = LevelVersion(Level(level_s), version)
    ex = doc.get("exemptions") or {}
    if not isinstance(ex, dict):
        raise InputError("expected a mapping", file=file, field="exemptions")

    def names(key: str, pattern: re.Pattern[str] | None, what: str) -> frozenset[str]:
        items = ex.get(key) or []
        if not isinstance(items, list):
            raise InputError("expected a list", file=file, field=f"exemptions.{key}")
        seen: set[str] = set()
        for i, item in enumerate(items):
            fld = f"exemptions.{key}[{i}]"
            if not isinstance(item, str) or not item.strip():
                raise InputError("must be a non-empty string", file=file, field=fld)
            if pattern is not None and not pattern.fullmatch(item):
                raise InputError(f"{item!r} is not a valid {what}", file=file, field=fld)
            if item in seen:
                raise InputError(f"duplicate value {item!r}", file=file, field=fld)
            seen.add(item)
        return frozenset(seen)

    exemptions = Exemptions(
        usernames=names("usernames", None, "username"),
        runtime_classes=names("runtimeClasses", _DNS1123_SUBDOMAIN, "RuntimeClass name"),
        namespaces=names("namespaces", _DNS1123_LABEL, "namespace name"),
    )
    return PodSecurityConfig(Policy(lvs["enforce"], lvs["audit"], lvs["warn"]), exemptions, file)


def load_pod_security_configuration(path: str) -> PodSecurityConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", file=path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte {e.start}); expected YAML", file=path) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise InputError(
            f"not valid YAML: {getattr(e, 'problem', e)}",
            file=path,
            line=line + 1 if line is not None else None,
        ) from None
    return parse_pod_security_configuration(doc, path)
