"""A scan against an earlier report (`scan --baseline`): which findings are new, fixed or unchanged.

Findings are matched by fingerprint (rule, object, container, first evidence path: stable across
runs and line moves). The earlier report is a `scan -o json` or SARIF document; what it says about
each finding (rule, title, severity, object, message) is kept so fixed findings can be listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kubestrata.errors import InputError
from kubestrata.findings import Finding


@dataclass
class BaselineEntry:
    """One finding of the earlier report, as it described it."""

    fingerprint: str
    rule_id: str = ""
    title: str = ""
    severity: str = ""
    object: str = ""
    message: str = ""


@dataclass
class Baseline:
    path: str
    entries: dict[str, BaselineEntry] = field(default_factory=dict)

    @property
    def fingerprints(self) -> set[str]:
        return set(self.entries)


@dataclass
class BaselineComparison:
    """What changed since the baseline. ``new`` are in the report's findings; ``unchanged`` were
    found again and left out of it; ``fixed`` are in the baseline and no longer found."""

    path: str
    new: int
    unchanged: list[Finding]
    fixed: list[BaselineEntry]


def _text(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _object_name(o: Any) -> str:
    if not isinstance(o, dict):
        return ""
    parts = [_text(o.get("kind")), _text(o.get("namespace")), _text(o.get("name"))]
    return "/".join(p for p in parts if p)


def load_baseline(path: str) -> Baseline:
    """Findings of a previous `scan -o json` (or SARIF) report."""
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except OSError as e:
        raise InputError(f"cannot read baseline: {e.strerror or e}", file=path) from None
    except orjson.JSONDecodeError as e:
        raise InputError(f"baseline is not JSON: {e}", file=path) from None
    out = Baseline(path)
    if isinstance(doc, dict) and isinstance(doc.get("findings"), list):
        for f in doc["findings"]:
            if isinstance(f, dict) and isinstance(f.get("fingerprint"), str) and f["fingerprint"]:
                out.entries[f["fingerprint"]] = BaselineEntry(
                    f["fingerprint"],
                    _text(f.get("ruleId")),
                    _text(f.get("title")),
                    _text(f.get("severity")),
                    _object_name(f.get("object")),
                    _text(f.get("message")),
                )
        return out
    if isinstance(doc, dict) and isinstance(doc.get("runs"), list):  # SARIF
        for run in doc["runs"]:
            for r in run.get("results", []) if isinstance(run, dict) else []:
                if not isinstance(r, dict):
                    continue
                fp = (r.get("partialFingerprints") or {}).get("kubestrata/v1")
                if isinstance(fp, str) and fp:
                    msg = r.get("message")
                    out.entries[fp] = BaselineEntry(
                        fp,
                        _text(r.get("ruleId")),
                        severity=_text((r.get("properties") or {}).get("severity")),
                        message=_text(msg.get("text")) if isinstance(msg, dict) else "",
                    )
        return out
    raise InputError("expected a kubestrata JSON or SARIF report", file=path, field="findings")


def compare(baseline: Baseline, new: list[Finding], unchanged: list[Finding]) -> BaselineComparison:
    """``new`` and ``unchanged``: this scan's findings outside and inside the baseline."""
    seen = {f.fingerprint for f in unchanged}
    fixed = [e for fp, e in baseline.entries.items() if fp not in seen]
    fixed.sort(key=lambda e: (e.rule_id, e.object, e.message))
    return BaselineComparison(baseline.path, len(new), unchanged, fixed)
