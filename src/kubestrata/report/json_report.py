"""The JSON report: a documented, stable schema (docs/json-schema.md); ``schemaVersion`` bumps on change."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from kubestrata import __version__
from kubestrata.findings import Layer, Severity
from kubestrata.scan import ScanResult

SCHEMA_VERSION = 1


def summary(result: ScanResult) -> dict[str, Any]:
    active = result.active()
    by_sev = Counter(f.severity.value for f in active)
    by_layer = Counter(f.layer.value for f in active)
    return {
        "total": len(active),
        "suppressed": len(result.findings) - len(active),
        "bySeverity": {s.value: by_sev.get(s.value, 0) for s in Severity},
        "byLayer": {lay.value: by_layer.get(lay.value, 0) for lay in Layer},
    }


def to_document(result: ScanResult, target: str = "") -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "kubestrata", "version": __version__},
        "target": target,
        "summary": summary(result),
        "findings": [f.to_dict() for f in result.findings],
        "coverage": result.coverage.to_dict(),
        "notices": result.notices,
    }


def render(result: ScanResult, target: str = "") -> str:
    return orjson.dumps(to_document(result, target), option=orjson.OPT_INDENT_2).decode() + "\n"
