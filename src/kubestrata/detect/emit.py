"""The one place runtime, CloudTrail and attack-sequence findings are built.

``build_finding`` builds the finding's JSON-lines record (ruleId, title, severity, message, time,
cluster, source, the audit-shaped subject keys, the source's own blocks, evidence, references,
fingerprint), which the correlator reads; ``as_finding`` makes it the one kubestrata Finding that the
findings store, the sinks and the renderers take, so these findings share the output, the dedup
window and the Falco/falcosidekick sinks with audit findings (``Finding.to_dict`` gives the record
back, key for key).

Every string that reaches a finding passes through ``escape.clean`` here (process arguments, file
paths, pod names, user agents are attacker-controlled).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from kubestrata.detect.catalogue import RuleSpec
from kubestrata.detect.escape import MAX_VALUE_CHARS, clean, clean_any
from kubestrata.findings import EventRef, Evidence, Finding, Layer, Severity

# subject keys every detect finding has (an audit finding's event fields); runtime and CloudTrail
# findings fill the ones that mean something for them and leave the rest None
_SUBJECT_KEYS = (
    "user",
    "impersonatedUser",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "name",
    "requestURI",
    "userAgent",
)


def build_finding(
    spec: RuleSpec,
    *,
    message: str,
    time: str,
    cluster: str,
    source: str,
    subject: dict[str, Any],
    evidence: list[tuple[str, Any]],
    fingerprint_parts: tuple[str, ...],
    severity: Severity | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A detect finding. ``subject``: values for the audit-shaped keys (user, verb, resource,
    namespace, name, requestURI, userAgent ...); ``extra``: source-specific blocks (``process``,
    ``container``, ``cloudtrail``, ``sequence``); ``fingerprint_parts``: what makes two findings the
    same (actor and target, never the time)."""
    ev = [{"path": p, "value": clean_any(v)} for p, v in evidence]
    fp_src = "\x1f".join((spec.id, cluster, *fingerprint_parts)).encode("utf-8", "replace") + orjson.dumps(
        ev, default=str
    )
    finding: dict[str, Any] = {
        "ruleId": spec.id,
        "title": spec.title,
        "severity": (severity or spec.severity).value,
        "message": clean(message),
        "time": clean(time, 64),
        "cluster": clean(cluster, 253),
        "source": source,
    }
    for k in _SUBJECT_KEYS:
        v = subject.get(k)
        finding[k] = clean(str(v), MAX_VALUE_CHARS) if v not in (None, "") else None
    finding["sourceIPs"] = [clean(str(ip), 64) for ip in (subject.get("sourceIPs") or [])][:16]
    if extra:
        finding.update(clean_any(extra))
    finding["evidence"] = ev
    finding["references"] = spec.references()
    finding["fingerprint"] = hashlib.sha256(fp_src).hexdigest()[:32]
    return finding


_SPECIAL = frozenset({"ruleId", "title", "severity", "message", "time", "cluster", "source", "sourceIPs",
                      "evidence", "references", "fingerprint", *_SUBJECT_KEYS})  # fmt: skip
# runtime protection is the infrastructure layer; CloudTrail and attack sequences concern the cluster
_LAYER = {"tetragon": Layer.INFRASTRUCTURE, "falco": Layer.INFRASTRUCTURE}


def as_finding(record: dict[str, Any]) -> Finding:
    """The Finding of a record made by ``build_finding`` (values are already escaped)."""
    source = record.get("source") or ""
    ref = EventRef(
        source,
        "",
        "",
        cluster=record.get("cluster") or "",
        user=record.get("user") or "",
        impersonated_user=record.get("impersonatedUser") or "",
        verb=record.get("verb") or "",
        resource=record.get("resource") or "",
        subresource=record.get("subresource") or "",
        namespace=record.get("namespace") or "",
        name=record.get("name") or "",
        request_uri=record.get("requestURI") or "",
        source_ips=tuple(record.get("sourceIPs") or ()),
        user_agent=record.get("userAgent") or "",
    )
    return Finding(
        record["ruleId"],
        record["title"],
        Severity(record["severity"]),
        _LAYER.get(source, Layer.CLUSTER),
        record["message"],
        evidence=[Evidence(e["path"], e["value"]) for e in record.get("evidence") or ()],
        references=record.get("references") or {},
        time=record.get("time"),
        event=ref,
        details={k: v for k, v in record.items() if k not in _SPECIAL} or None,
        _fingerprint=record["fingerprint"],
    )
