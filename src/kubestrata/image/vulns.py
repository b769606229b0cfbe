"""One vulnerability-finding model for every source: our OSV matching, Trivy, Grype, ECR (basic and
enhanced), Inspector, CycloneDX and SPDX imports. Each is tied to the image (reference and digest) it
was found in, and each report says what it could not evaluate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubestrata.findings import CoverageGap, Severity


@dataclass(frozen=True, slots=True)
class ImageVuln:
    id: str  # the advisory id (CVE-..., GHSA-..., DSA-..., ALPINE-CVE-...)
    package: str
    version: str
    ecosystem: str  # OSV ecosystem with release when known ("Debian:12") or the scanner's type
    severity: Severity
    fixed: tuple[str, ...] = ()  # versions that fix it; empty: no fix known
    aliases: tuple[str, ...] = ()
    score: float | None = None
    severity_source: str = ""  # how the severity was decided ("CVSS:3.1 vector", "trivy", ...)
    summary: str = ""
    purl: str = ""
    path: str = ""  # the file in the image that recorded the package, when known
    source: str = ""  # osv, trivy, grype, ecr-basic, ecr-enhanced, inspector2, cyclonedx, spdx

    @property
    def fix_available(self) -> bool:
        return bool(self.fixed)

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "aliases": list(self.aliases),
            "package": self.package,
            "version": self.version,
            "ecosystem": self.ecosystem,
            "severity": self.severity.value,
            "score": self.score,
            "severitySource": self.severity_source,
            "fixed": list(self.fixed),
            "summary": self.summary,
            "purl": self.purl,
            "path": self.path,
            "source": self.source,
        }


@dataclass(slots=True)
class ImageReport:
    """The vulnerabilities of one image and what was not evaluated in it."""

    reference: str
    digest: str = ""
    source: str = ""  # where the results came from (osv database path, or the imported file)
    packages: int | None = None  # packages looked at (None: the source does not say)
    vulns: list[ImageVuln] = field(default_factory=list)
    gaps: list[CoverageGap] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.digest or self.reference

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in reversed(list(Severity))}
        for v in self.vulns:
            out[v.severity.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest or None,
            "source": self.source,
            "packages": self.packages,
            "counts": self.counts(),
            "vulnerabilities": [v.to_dict() for v in sorted_vulns(self.vulns)],
            "notEvaluated": [g.to_dict() for g in self.gaps],
        }


def sorted_vulns(vulns: list[ImageVuln]) -> list[ImageVuln]:
    return sorted(vulns, key=lambda v: (-v.severity.rank, -(v.score or 0), v.id, v.package, v.version))
