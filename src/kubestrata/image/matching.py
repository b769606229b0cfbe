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

from collections import defaultdict

from kubestrata.findings import CoverageGap, GapReason, Severity
from kubestrata.image.model import ImageInventory, Package
from kubestrata.image.versions import VersionError, evaluate, supported
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


def _evaluate(eco: str, version: str, rows: list) -> list[tuple[str, str | None, str]]:
    """(vuln id, fixed version, "") per record affecting ``version``; (vuln id, None, why) when the
    version or a record's event cannot be read."""
    out = []
    for aff in rows:
        if aff.git_only:
            continue
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
            hits = db.verdicts[vkey] = _evaluate(eco, pkg.version, db.affected(eco, release, name))
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
                    severity=Severity(rec.severity),
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
