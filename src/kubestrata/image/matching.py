"""Match an image's inventory against the offline OSV database.

OS packages are looked up by their *source* package (OSV's Debian, Ubuntu and Alpine records name
the source; ``Package.source_name``) in their release ("Debian:12", "Alpine:v3.19"), language packages
by name. Whatever cannot be judged is a named gap in the report, never an empty result:

- Amazon Linux OS packages: OSV has no Amazon Linux data (it is not an OSV ecosystem);
- an ecosystem without a version ordering here, or with no records in the database;
- an OS package whose release is unknown, or whose release the database has no records for;
- a version the ecosystem's ordering cannot read.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from kubestrata.findings import CoverageGap, GapReason
from kubestrata.image.model import ImageInventory, Package
from kubestrata.image.versions import VersionError, evaluate, key_function, supported
from kubestrata.image.vulndb import VulnDB, normalize_release
from kubestrata.image.vulns import ImageReport, ImageVuln

OS_ECOSYSTEMS = frozenset(
    {
        "Debian",
        "Ubuntu",
        "Alpine",
        "Red Hat",
        "AlmaLinux",
        "Rocky Linux",
        "SUSE",
        "openSUSE",
        "Wolfi",
        "Chainguard",
    }
)
AMAZON = frozenset({"Amazon Linux", "amzn", "Amazon"})
_RELEASE_FREE = frozenset({"Wolfi", "Chainguard"})  # rolling distributions: OSV records carry no release


def _release(pkg: Package, inv: ImageInventory) -> str:
    return normalize_release(pkg.ecosystem, pkg.release or inv.os_release.get("VERSION_ID"))


@dataclass
class _Index:
    """One package's records, prepared once. Most records are one range ``introduced: A`` (often 0) ..
    ``fixed: X`` or ``.. last_affected: L``: those are kept sorted by X (and L), so a version is matched
    with a binary search (only records whose upper bound lies above the version are candidates, then
    their lower bound is checked); records with several ranges or a versions list are evaluated one by
    one."""

    fixed_keys: list[Any]
    fixed: list[tuple[Any, str, str]]  # (lower key or None, vuln id, fixed) in fixed_keys order
    last_keys: list[Any]
    last: list[tuple[Any, str]]  # (lower key or None, vuln id) in last_keys order
    other: list[Any]
    errors: list[tuple[str, str]]  # (vuln id, why) for records whose events cannot be read


def _index(eco: str, rows: list) -> _Index:
    key = key_function(eco)
    fixed: list[tuple[Any, Any, str, str]] = []
    last: list[tuple[Any, Any, str]] = []
    other, errors = [], []
    for aff in rows:
        if aff.git_only:
            continue
        r = aff.ranges
        ev = r[0][1] if len(r) == 1 else None
        if (
            aff.versions
            or ev is None
            or len(ev) != 2
            or ev[0][0] != "introduced"
            or ev[1][0] not in ("fixed", "last_affected")
        ):
            other.append(aff)
            continue
        try:
            lower = None if ev[0][1] == "0" else key(ev[0][1])
            upper = key(ev[1][1])
        except VersionError as e:
            errors.append((aff.vuln, str(e)))
            continue
        if ev[1][0] == "fixed":
            fixed.append((upper, lower, aff.vuln, ev[1][1]))
        else:
            last.append((upper, lower, aff.vuln))
    fixed.sort(key=lambda t: t[0])
    last.sort(key=lambda t: t[0])
    return _Index(
        [t[0] for t in fixed],
        [t[1:] for t in fixed],
        [t[0] for t in last],
        [t[1:] for t in last],
        other,
        errors,
    )


def _evaluate(eco: str, version: str, idx: _Index) -> list[tuple[str, str | None, str]]:
    """(vuln id, fixed version, "") per record affecting ``version``; (vuln id, None, why) when the
    version or a record's event cannot be read."""
    try:
        v = key_function(eco)(version)
    except VersionError as e:
        ids = [t[1] for t in idx.fixed] + [t[1] for t in idx.last] + [a.vuln for a in idx.other]
        return [(vid, None, str(e)) for vid in ids]
    out: list[tuple[str, str | None, str]] = [(vid, None, why) for vid, why in idx.errors]
    # fixed X affects v when v < X: every X above v; last_affected L when v <= L: every L not below v
    out.extend(
        (vid, fx, "")
        for lower, vid, fx in idx.fixed[bisect_right(idx.fixed_keys, v) :]
        if lower is None or not v < lower
    )
    out.extend(
        (vid, None, "")
        for lower, vid in idx.last[bisect_left(idx.last_keys, v) :]
        if lower is None or not v < lower
    )
    for aff in idx.other:
        try:
            verdict = evaluate(eco, version, aff.ranges, aff.versions)
        except VersionError as e:
            out.append((aff.vuln, None, str(e)))
            continue
        if verdict.affected:
            out.append((aff.vuln, verdict.fixed, ""))
    return out


def match(inv: ImageInventory, db: VulnDB) -> ImageReport:
    """The vulnerabilities of ``inv``'s packages per ``db``, with every gap named."""
    report = ImageReport(inv.reference, inv.digest, source=str(db.path), packages=len(inv.packages))
    report.gaps.extend(inv.gaps)
    subject = inv.reference + (f"@{inv.digest}" if inv.digest and inv.digest not in inv.reference else "")
    known = db.ecosystems()
    known_bases = {e for e, _ in known}
    skipped: dict[str, list[str]] = defaultdict(list)  # reason -> package names
    seen: set[tuple[str, str, str]] = set()
    amazon = inv.os_release.get("ID") == "amzn"
    for pkg in inv.packages:
        eco = pkg.ecosystem
        if eco in AMAZON or (amazon and eco in ("rpm", "RPM", "Red Hat")):
            skipped[
                "OSV has no Amazon Linux data (Amazon Linux is not an OSV ecosystem): these OS packages "
                "were not checked; use Inspector or ECR enhanced scanning results (image import)"
            ].append(pkg.name)
            continue
        if not supported(eco):
            skipped[f"no version ordering for ecosystem {eco!r}"].append(pkg.name)
            continue
        if eco not in known_bases:
            skipped[f"the database has no {eco} records (build it with that ecosystem's export)"].append(
                pkg.name
            )
            continue
        release = ""
        name = pkg.name
        if eco in OS_ECOSYSTEMS:
            name = pkg.source_name or pkg.name
            if eco not in _RELEASE_FREE:
                release = _release(pkg, inv)
                if not release:
                    skipped[f"{eco} release unknown (no Package.release or os-release VERSION_ID)"].append(
                        pkg.name
                    )
                    continue
                if (eco, release) not in known:
                    skipped[f"the database has no {eco}:{release} records"].append(pkg.name)
                    continue
        vkey = (eco, release, name, pkg.version)
        hits = db.verdicts.get(vkey)
        if hits is None:
            ikey = ("index", eco, release, name)
            idx = db.verdicts.get(ikey)
            if idx is None:
                idx = db.verdicts[ikey] = _index(eco, db.affected(eco, release, name))
            hits = db.verdicts[vkey] = _evaluate(eco, pkg.version, idx)
        for vuln_id, fixed, error in hits:
            if error:
                skipped[f"version not comparable: {error}"].append(f"{pkg.name} ({vuln_id})")
                continue
            key = (vuln_id, pkg.name, pkg.version)
            if key in seen:
                continue
            seen.add(key)
            rec = db.vuln(vuln_id)
            report.vulns.append(
                ImageVuln(
                    id=rec.id,
                    package=pkg.name,
                    version=pkg.version,
                    ecosystem=eco + (f":{release}" if release else ""),
                    severity=rec.severity,
                    fixed=(fixed,) if fixed else (),
                    aliases=rec.aliases,
                    score=rec.score,
                    severity_source=rec.severity_source,
                    summary=rec.summary,
                    purl=pkg.purl,
                    path=pkg.path,
                    source="osv",
                )
            )
    for reason, names in skipped.items():
        shown = ", ".join(sorted(set(names))[:8]) + (" ..." if len(set(names)) > 8 else "")
        report.gaps.append(
            CoverageGap(
                subject, GapReason.MISSING_INPUT, f"{len(names)} package(s) not checked: {reason}: {shown}"
            )
        )
    return report
