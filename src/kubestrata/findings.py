"""The finding model every engine emits, and coverage: what was and was not evaluated."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jsonpointer import escape as pointer_token

from kubestrata.kube.objects import ObjectRef, Source


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.lower())
        except ValueError:
            raise ValueError(
                f"unknown severity {value!r}; expected one of {', '.join(s.value for s in cls)}"
            ) from None


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class Layer(StrEnum):
    CLUSTER = "cluster"
    INFRASTRUCTURE = "infrastructure"
    APPLICATION = "application"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Field path (dotted, from the object root), what was observed and what was expected."""

    path: str
    observed: Any = None
    expected: Any = None


@dataclass(slots=True)
class Finding:
    rule_id: str
    title: str
    severity: Severity
    layer: Layer
    message: str
    object: ObjectRef | None = None
    source: Source | None = None
    container: str | None = None
    evidence: list[Evidence] = field(default_factory=list)
    remediation: str = ""
    fix: list[dict[str, Any]] | None = None  # RFC 6902 JSON patch operations, when safe
    fix_note: str | None = None  # e.g. "may require an image change"
    references: dict[str, list[str]] = field(default_factory=dict)
    suppressed: str | None = None  # reason, when a suppression matched

    @property
    def fingerprint(self) -> str:
        """Stable across runs and line moves: rule, kind, namespace/name, container, first path."""
        ref = self.object
        parts = [
            self.rule_id,
            ref.kind if ref else "",
            f"{ref.namespace}/{ref.name}" if ref else "",
            self.container or "",
            self.evidence[0].path if self.evidence else "",
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        ref = self.object
        return {
            "ruleId": self.rule_id,
            "title": self.title,
            "severity": self.severity.value,
            "layer": self.layer.value,
            "message": self.message,
            "object": None
            if ref is None
            else {
                "apiVersion": ref.api_version,
                "kind": ref.kind,
                "namespace": ref.namespace or None,
                "name": ref.name,
            },
            "source": None
            if self.source is None
            else {
                "file": self.source.file,
                "document": self.source.document,
                "line": self.source.line,
            },
            "container": self.container,
            "evidence": [
                {"path": e.path, "observed": e.observed, "expected": e.expected} for e in self.evidence
            ],
            "remediation": self.remediation,
            "fix": self.fix,
            "fixNote": self.fix_note,
            "references": self.references,
            "fingerprint": self.fingerprint,
            "suppressed": self.suppressed,
        }


class GapReason(StrEnum):
    INVALID = "invalid-input"
    UNKNOWN_KIND = "unknown-kind"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not-found"
    MISSING_INPUT = "missing-input"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class CoverageGap:
    subject: str  # a file, an object, a kind, a check id
    reason: GapReason
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"subject": self.subject, "reason": self.reason.value, "detail": self.detail}


@dataclass
class Coverage:
    """What was evaluated (objects per kind, checks run) and what was not, with why."""

    evaluated: Counter[str] = field(default_factory=Counter)
    checks_run: set[str] = field(default_factory=set)
    gaps: list[CoverageGap] = field(default_factory=list)

    def gap(self, subject: str, reason: GapReason, detail: str) -> None:
        self.gaps.append(CoverageGap(subject, reason, detail))

    def merge(self, other: Coverage) -> None:
        self.evaluated.update(other.evaluated)
        self.checks_run |= other.checks_run
        self.gaps.extend(other.gaps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluated": dict(sorted(self.evaluated.items())),
            "checksRun": sorted(self.checks_run),
            "notEvaluated": [g.to_dict() for g in self.gaps],
        }


def json_pointer(dotted: str) -> str:
    """A dotted field path with [i] indexes (``spec.containers[0].image``) as an RFC 6901 JSON pointer."""
    out = []
    for part in dotted.replace("]", "").replace("[", ".").split("."):
        if part:
            out.append(pointer_token(part))
    return "/" + "/".join(out)
