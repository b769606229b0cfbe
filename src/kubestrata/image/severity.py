"""Severity of a vulnerability record: CVSS base score from its vector, else the database's own rating.

Order of preference: a CVSS v3.x vector (base score by the ``cvss`` library, FIRST's equations), a
CVSS v4.0 vector, a CVSS v2 vector, ``database_specific.severity`` (GitHub: LOW, MODERATE, HIGH,
CRITICAL), an affected entry's ``ecosystem_specific.severity``/``urgency``, Ubuntu's priority word.
A record with none of these is medium, with a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubestrata.findings import Severity


@dataclass(frozen=True, slots=True)
class Rating:
    severity: Severity
    score: float | None = None
    source: str = ""  # "CVSS:3.1 vector", "database_specific", "unknown: medium assumed"
    vector: str = ""


def from_score(score: float) -> Severity:
    """CVSS v3/v4 qualitative scale (FIRST): 0 none, 0.1-3.9 low, 4-6.9 medium, 7-8.9 high, 9+ critical."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0:
        return Severity.LOW
    return Severity.INFO


WORDS = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "important": Severity.HIGH,
    "moderate": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "negligible": Severity.INFO,
    "unimportant": Severity.INFO,
    "informational": Severity.INFO,
    "info": Severity.INFO,
    "none": Severity.INFO,
}


def from_word(word: Any) -> Severity | None:
    return WORDS.get(str(word).strip().lower()) if isinstance(word, str) else None


def cvss_score(vector: str) -> float | None:
    """Base score of a CVSS v2, v3.x or v4.0 vector; None when the vector is malformed."""
    try:
        import cvss
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    try:
        if vector.startswith("CVSS:4"):
            return float(cvss.CVSS4(vector).base_score)
        if vector.startswith("CVSS:3"):
            return float(cvss.CVSS3(vector).base_score)
        return float(cvss.CVSS2(vector).base_score)
    except Exception:  # cvss raises its own CVSSError family and ValueError for broken vectors
        return None


_ORDER = {"CVSS_V3": 0, "CVSS_V4": 1, "CVSS_V2": 2}


def rate_osv(record: dict[str, Any]) -> Rating:
    """The rating of one OSV record (top-level severity, then affected-level, then database words)."""
    sev = [s for s in record.get("severity") or [] if isinstance(s, dict)]
    for a in record.get("affected") or []:
        if isinstance(a, dict):
            sev.extend(s for s in a.get("severity") or [] if isinstance(s, dict))
    for s in sorted(sev, key=lambda s: _ORDER.get(str(s.get("type")), 9)):
        typ, score = str(s.get("type")), s.get("score")
        if typ in _ORDER and isinstance(score, str):
            value = cvss_score(score)
            if value is not None:
                return Rating(from_score(value), value, f"{score.split('/', 1)[0]} vector", score)
        if typ == "Ubuntu" and from_word(score):
            return Rating(from_word(score), None, "Ubuntu priority")  # type: ignore[arg-type]
    db = record.get("database_specific")
    if isinstance(db, dict) and from_word(db.get("severity")):
        return Rating(from_word(db.get("severity")), None, "database_specific.severity")  # type: ignore[arg-type]
    for a in record.get("affected") or []:
        if not isinstance(a, dict):
            continue
        for where in ("ecosystem_specific", "database_specific"):
            d = a.get(where)
            if isinstance(d, dict):
                for k in ("severity", "urgency"):
                    w = from_word(d.get(k))
                    if w is not None:
                        return Rating(w, None, f"affected.{where}.{k}")
    return Rating(Severity.MEDIUM, None, "unknown: medium assumed (the record has no CVSS vector or rating)")
