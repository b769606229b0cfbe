"""The JSON report: a documented, stable schema (docs/json-schema.md); ``schemaVersion`` bumps on change."""

from __future__ import annotations

import io
from collections import Counter
from operator import attrgetter
from typing import IO, Any

import orjson

from kubestrata import __version__
from kubestrata.findings import Finding, Layer, Severity
from kubestrata.report.pieces import HOLE, INDENT, around_hole, write_items
from kubestrata.scan import ScanResult

SCHEMA_VERSION = 1


def summary(result: ScanResult) -> dict[str, Any]:
    active = result.active()
    # counted by the enums themselves: an enum's .value is a Python-level descriptor, once per finding
    by_sev = Counter(map(attrgetter("severity"), active))
    by_layer = Counter(map(attrgetter("layer"), active))
    return {
        "total": len(active),
        "suppressed": len(result.findings) - len(active),
        "bySeverity": {s.value: by_sev.get(s, 0) for s in Severity},
        "byLayer": {lay.value: by_layer.get(lay, 0) for lay in Layer},
    }


def to_document(result: ScanResult, target: str = "") -> dict[str, Any]:
    """The report as one dict (what ``write`` writes in pieces)."""
    doc = to_document_without_findings(result, target)
    doc["findings"] = [f.to_dict() for f in result.findings]
    return doc


def _item(f: Finding) -> dict[str, Any]:
    """``f.to_dict()`` as orjson writes it, built with less: enums, the evidence dataclasses and the
    source are written by orjson itself rather than copied into dicts first."""
    if f.event is not None:
        return f.to_dict()
    ref = f.object
    return {
        "ruleId": f.rule_id,
        "title": f.title,
        "severity": f.severity,
        "layer": f.layer,
        "message": f.message,
        "object": None
        if ref is None
        else {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "namespace": ref.namespace or None,
            "name": ref.name,
        },
        "source": f.source,  # a dataclass: {"file", "document", "line"}
        "container": f.container,
        "evidence": f.evidence,
        "remediation": f.remediation,
        "fix": f.fix,
        "fixNote": f.fix_note,
        "references": f.references,
        "fingerprint": f.fingerprint,
        "suppressed": f.suppressed,
    }


def write(result: ScanResult, out: IO[bytes], target: str = "") -> None:
    """The report to ``out``, byte for byte ``render``'s text: the findings a batch at a time."""
    doc = to_document_without_findings(result, target)
    if not result.findings:
        out.write(orjson.dumps(doc, option=INDENT) + b"\n")
        return
    doc["findings"] = [HOLE]
    head, tail = around_hole(doc)
    out.write(head)
    write_items(out, map(_item, result.findings), 2)
    out.write(tail + b"\n")


def to_document_without_findings(result: ScanResult, target: str = "") -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "kubestrata", "version": __version__},
        "target": target,
        "summary": summary(result),
        "findings": [],
        "coverage": result.coverage.to_dict(),
        "notices": result.notices,
    }


def render(result: ScanResult, target: str = "") -> str:
    """``orjson.dumps(to_document(result, target), option=OPT_INDENT_2)`` and a newline."""
    buf = io.BytesIO()
    write(result, buf, target)
    return buf.getvalue().decode()
