"""The finding model every engine emits (scan, admission, detect), and coverage: what was and was
not evaluated."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
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


def fingerprint(parts: Iterable[str], detail: bytes = b"") -> str:
    """The one fingerprint of a finding (32 hex digits of SHA-256): the identity parts joined by
    U+001F, then ``detail``. Stable across runs and line moves. Scan: rule, kind, namespace/name,
    container, first evidence path. Detect: rule, cluster, user, verb, resource, subresource,
    namespace, name, with the evidence as JSON for detail; its dedup window keys on it."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace") + detail).hexdigest()[:32]


@dataclass(slots=True)
class EventRef:
    """The event a detect finding came from. Values come from the client: the engine stores them
    escaped and capped (kubestrata.textsafe.clean), so every renderer can print them."""

    source: str  # the event source: "k8saudit"
    audit_id: str
    stage: str
    cluster: str = ""
    user: str = ""
    impersonated_user: str = ""
    verb: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    request_uri: str = ""
    source_ips: tuple[str, ...] = ()
    user_agent: str = ""
    response_code: int | None = None
    # detect: (time, this event's part of a finding's JSON line: b',"time":...,"evidence":'), set
    # once by the engine that built the reference (detect/factory.py); the reference is not changed
    # after. Not an __init__ argument, so dataclasses.replace() makes a reference without it.
    _line_part: tuple[str, bytes] | None = field(default=None, init=False, repr=False, compare=False)

    def record_fields(self) -> dict[str, Any]:
        """The event's fields in a detect finding's JSON line (docs/json-schema.md, "detect"), in
        their order there; empty optional ones are null."""
        return {
            "cluster": self.cluster,
            "auditID": self.audit_id,
            "stage": self.stage,
            "user": self.user,
            "impersonatedUser": self.impersonated_user or None,
            "verb": self.verb,
            "resource": self.resource,
            "subresource": self.subresource or None,
            "namespace": self.namespace or None,
            "name": self.name or None,
            "requestURI": self.request_uri,
            "sourceIPs": list(self.source_ips),
            "userAgent": self.user_agent,
            "responseCode": self.response_code,
        }


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
    time: str | None = None  # detect: when the event happened (its stage timestamp)
    event: EventRef | None = None  # detect: the event that raised it
    # set by engines that need the fingerprint at creation (detect's dedup); else computed on use
    _fingerprint: str | None = field(default=None, repr=False, compare=False)
    # detect, runtime/CloudTrail/sequence signals: their own blocks (process, container, file, network,
    # cloudtrail, sequence), escaped by the engine, written beside the event's fields
    details: dict[str, Any] | None = None
    # detect: the evidence as its JSON line writes it (path and value), when the engine serialised
    # it already for the fingerprint; the evidence is not changed after the finding is built
    evidence_json: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is not None:
            return self._fingerprint
        ref = self.object
        return fingerprint(
            (
                self.rule_id,
                ref.kind if ref else "",
                f"{ref.namespace}/{ref.name}" if ref else "",
                self.container or "",
                self.evidence[0].path if self.evidence else "",
            )
        )

    def to_dict(self) -> dict[str, Any]:
        if self.event is not None:
            return self._event_record(self.event)
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

    def _event_record(self, e: EventRef) -> dict[str, Any]:
        """A detect finding as one JSON line (docs/json-schema.md, "detect"): the event's fields
        flat beside the rule's, evidence as path and value."""
        if e.source != "k8saudit":
            return self._signal_record(e)
        return {
            "ruleId": self.rule_id,
            "title": self.title,
            "severity": self.severity.value,
            "message": self.message,
            "time": self.time,
            **e.record_fields(),
            "evidence": [{"path": x.path, "value": x.observed} for x in self.evidence],
            "references": self.references,
            "fingerprint": self.fingerprint,
        }

    def _signal_record(self, e: EventRef) -> dict[str, Any]:
        """A runtime (tetragon, falco), CloudTrail or attack-sequence finding as one JSON line: the
        audit-shaped subject keys where they mean something (else null), then its own blocks."""
        rec: dict[str, Any] = {
            "ruleId": self.rule_id,
            "title": self.title,
            "severity": self.severity.value,
            "message": self.message,
            "time": self.time,
            "cluster": e.cluster,
            "source": e.source,
            "user": e.user or None,
            "impersonatedUser": e.impersonated_user or None,
            "verb": e.verb or None,
            "resource": e.resource or None,
            "subresource": e.subresource or None,
            "namespace": e.namespace or None,
            "name": e.name or None,
            "requestURI": e.request_uri or None,
            "userAgent": e.user_agent or None,
            "sourceIPs": list(e.source_ips),
        }
        if self.details:
            rec.update(self.details)
        rec["evidence"] = [{"path": x.path, "value": x.observed} for x in self.evidence]
        rec["references"] = self.references
        rec["fingerprint"] = self.fingerprint
        return rec


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
    flat = dotted.replace("]", "").replace("[", ".")
    if "~" not in flat and "/" not in flat and ".." not in flat and flat[:1] != "." and flat[-1:] != ".":
        return "/" + flat.replace(".", "/")  # nothing to escape, no empty part (the usual path)
    out = []
    for part in flat.split("."):
        if part:
            out.append(pointer_token(part))
    return "/" + "/".join(out)
