"""Imported results as ImageReports: scanner findings as they are, SBOM packages matched against the
offline database (or named as not evaluated when no database is given)."""

from __future__ import annotations

from collections.abc import Iterable

from kubestrata.findings import CoverageGap, GapReason
from kubestrata.image import imports
from kubestrata.image.vulndb import VulnDB
from kubestrata.image.vulns import ImageReport


def load_results(files: Iterable[str], db: VulnDB | None) -> list[ImageReport]:
    out: list[ImageReport] = []
    for f in files:
        imp = imports.load(f)
        reports = list(imp.reports)
        for inv in imp.inventories:
            target = next((r for r in reports if r.reference == inv.reference), None)
            if target is None:
                target = ImageReport(inv.reference, inv.digest, source=f)
                reports.append(target)
            if db is None:
                if not target.vulns:
                    target.gaps.append(
                        CoverageGap(
                            inv.reference,
                            GapReason.MISSING_INPUT,
                            f"{len(inv.packages)} SBOM package(s) not matched: no vulnerability database given (--db)",
                        )
                    )
                continue
            from kubestrata.image.matching import match

            matched = match(inv, db)
            known = {(v.id, v.package, v.version) for v in target.vulns}
            target.vulns.extend(v for v in matched.vulns if (v.id, v.package, v.version) not in known)
            target.gaps.extend(matched.gaps)
            target.packages = len(inv.packages)
        out.extend(reports)
    return out
