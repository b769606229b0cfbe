"""Levels, versions and namespace policies, as kubernetes/pod-security-admission api/helpers.go has them.

A ``Version`` keeps what the label said (``latest``, ``v1.40``): PSA prints the policy unclamped in its
messages and clamps only when it picks the checks to run (policy/registry.go ``EvaluatePod``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from kubestrata.errors import KubestrataError

LABEL_PREFIX = "pod-security.kubernetes.io/"
ENFORCE_LEVEL_LABEL = LABEL_PREFIX + "enforce"
ENFORCE_VERSION_LABEL = LABEL_PREFIX + "enforce-version"
AUDIT_LEVEL_LABEL = LABEL_PREFIX + "audit"
AUDIT_VERSION_LABEL = LABEL_PREFIX + "audit-version"
WARN_LEVEL_LABEL = LABEL_PREFIX + "warn"
WARN_VERSION_LABEL = LABEL_PREFIX + "warn-version"
MODES = ("enforce", "audit", "warn")


class Level(StrEnum):
    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


_STRICTNESS = {Level.PRIVILEGED: 0, Level.BASELINE: 1, Level.RESTRICTED: 2}
VALID_LEVELS = "privileged, baseline, restricted"

# upstream api.ParseVersion: `^v1\.([0-9]|[1-9][0-9]*)$`
_VERSION_RE = re.compile(r"v1\.(0|[1-9][0-9]*)")


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """A policy version: ``minor`` of v1.<minor>, or None for ``latest``."""

    minor: int | None = None

    @property
    def latest(self) -> bool:
        return self.minor is None

    def __str__(self) -> str:
        return "latest" if self.minor is None else f"v1.{self.minor}"

    def older(self, other: Version) -> bool:
        """api.Version.Older: latest is newer than everything, even future versions."""
        if self.minor is None:
            return False
        if other.minor is None:
            return True
        return self.minor < other.minor


LATEST = Version(None)


def parse_level(value: str) -> tuple[Level, str | None]:
    """(level, error); an invalid level yields restricted and an error (api.ParseLevel)."""
    try:
        return Level(value), None
    except ValueError:
        return Level.RESTRICTED, f"must be one of {VALID_LEVELS}"


def parse_version(value: str) -> tuple[Version, str | None]:
    """(version, error); an invalid version yields latest and an error (api.ParseVersion)."""
    if value == "latest":
        return LATEST, None
    m = _VERSION_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        return LATEST, 'must be "latest" or "v1.x"'
    return Version(int(m.group(1))), None


@dataclass(frozen=True, slots=True)
class LevelVersion:
    level: Level
    version: Version = LATEST

    def __str__(self) -> str:
        return f"{self.level.value}:{self.version}"

    @classmethod
    def parse(cls, text: str, default_version: Version = LATEST) -> LevelVersion:
        """``restricted``, ``restricted:v1.30`` or ``restricted:latest`` (for the CLI; strict)."""
        level_s, _, version_s = str(text).partition(":")
        try:
            level = Level(level_s)
        except ValueError:
            raise KubestrataError(f"invalid level {level_s!r}: must be one of {VALID_LEVELS}") from None
        version = default_version
        if version_s:
            version = parse_version_strict(version_s)
        return cls(level, version)


def parse_version_strict(text: str) -> Version:
    v, err = parse_version(text)
    if err:
        raise KubestrataError(f"invalid version {text!r}: {err}")
    return v


@dataclass(frozen=True, slots=True)
class LabelError:
    """An invalid pod-security label, as PSA reports it (field metadata.labels[key])."""

    label: str
    value: str
    message: str

    def __str__(self) -> str:
        return f'metadata.labels[{self.label}]: Invalid value: "{self.value}": {self.message}'


@dataclass(frozen=True, slots=True)
class Policy:
    """The enforce, audit and warn level-versions of a namespace."""

    enforce: LevelVersion = LevelVersion(Level.PRIVILEGED)
    audit: LevelVersion = LevelVersion(Level.PRIVILEGED)
    warn: LevelVersion = LevelVersion(Level.PRIVILEGED)

    @property
    def fully_privileged(self) -> bool:
        return all(lv.level is Level.PRIVILEGED for lv in (self.enforce, self.audit, self.warn))

    def __str__(self) -> str:
        return f"enforce={self.enforce}, audit={self.audit}, warn={self.warn}"


@dataclass(frozen=True, slots=True)
class NamespacePolicy:
    """A namespace's effective policy and the label errors met while reading it."""

    policy: Policy
    errors: tuple[LabelError, ...] = field(default=())

    @property
    def enforce(self) -> LevelVersion:
        return self.policy.enforce

    @property
    def audit(self) -> LevelVersion:
        return self.policy.audit

    @property
    def warn(self) -> LevelVersion:
        return self.policy.warn

    @classmethod
    def from_labels(cls, labels: dict[str, str] | None, defaults: Policy | None = None) -> NamespacePolicy:
        """api.PolicyToEvaluate: labels over defaults. An invalid enforce level fails closed
        (restricted), an invalid audit or warn level fails open (privileged), an invalid version
        means latest. When enforce is labelled and warn is not, warn follows a stricter enforce."""
        p = defaults or Policy()
        if not labels:
            return cls(p)
        errs: list[LabelError] = []
        lvs = {"enforce": p.enforce, "audit": p.audit, "warn": p.warn}
        present: set[str] = set()
        for mode in MODES:
            lv = lvs[mode]
            level, version = lv.level, lv.version
            key = LABEL_PREFIX + mode
            if key in labels:
                present.add(mode)
                raw = labels[key]
                level, err = (
                    parse_level(raw) if isinstance(raw, str) else (Level.RESTRICTED, "must be a string")
                )
                if err:
                    errs.append(LabelError(key, str(raw), err))
                    if mode != "enforce":
                        level = Level.PRIVILEGED
            vkey = key + "-version"
            if vkey in labels:
                present.add(mode + "-version")
                raw = labels[vkey]
                version, err = parse_version(raw) if isinstance(raw, str) else (LATEST, "must be a string")
                if err:
                    errs.append(LabelError(vkey, str(raw), err))
            lvs[mode] = LevelVersion(level, version)
        enforce, warn = lvs["enforce"], lvs["warn"]
        if (
            "enforce" in present
            and "warn" not in present
            and enforce.level.strictness > warn.level.strictness
        ):
            lvs["warn"] = LevelVersion(
                enforce.level, warn.version if "warn-version" in present else enforce.version
            )
        return cls(Policy(lvs["enforce"], lvs["audit"], lvs["warn"]), tuple(errs))
