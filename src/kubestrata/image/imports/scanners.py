"""Trivy (``trivy image -f json``, SchemaVersion 2) and Grype (``grype -o json``) results.

Shapes: Trivy pkg/types/report.go and integration/testdata/*.json.golden; Grype
grype/presenter/models and presenter/json/test-fixtures/snapshot/*.golden.
"""

from __future__ import annotations

from typing import Any

from kubestrata.findings import CoverageGap, GapReason, Severity
from kubestrata.image.imports import Fields, Imported
from kubestrata.image.severity import from_score, from_word
from kubestrata.image.vulns import ImageReport, ImageVuln


def _severity(word: str, score: float | None, scanner: str) -> tuple[Severity, str]:
    sev = from_word(word)
    if sev is not None:
        return sev, f"{scanner} severity {word}"
    if score is not None:
        return from_score(score), f"{scanner} CVSS score"
    return Severity.MEDIUM, f"unknown: medium assumed ({scanner} gave {word or 'no severity'})"


def _digest_of(refs: list[Any]) -> str:
    for r in refs:
        if isinstance(r, str) and "@sha256:" in r:
            return r.split("@", 1)[1]
    return ""


def parse_trivy(doc: dict[str, Any], file: str) -> Imported:
    f = Fields(file)
    meta = f.obj(doc.get("Metadata"), "Metadata")
    os_ = f.obj(meta.get("OS"), "Metadata.OS")
    ref = f.s(doc, "ArtifactName", "(document)")
    report = ImageReport(ref, _digest_of(f.lst(meta.get("RepoDigests"), "Metadata.RepoDigests")), source=file)
    os_name = f"{f.s(os_, 'Family', 'Metadata.OS')}:{f.s(os_, 'Name', 'Metadata.OS')}".strip(":")
    if os_.get("EOSL"):
        report.gaps.append(
            CoverageGap(
                ref,
                GapReason.MISSING_INPUT,
                f"Trivy: {os_name} is end of service life; its advisories are incomplete",
            )
        )
    for i, res in enumerate(f.lst(doc.get("Results"), "Results")):
        w = f"Results[{i}]"
        res = f.obj(res, w)
        eco = os_name if f.s(res, "Class", w) == "os-pkgs" else f.s(res, "Type", w)
        for j, v in enumerate(f.lst(res.get("Vulnerabilities"), f"{w}.Vulnerabilities")):
            vw = f"{w}.Vulnerabilities[{j}]"
            v = f.obj(v, vw)
            vid = f.s(v, "VulnerabilityID", vw)
            if not vid:
                report.gaps.append(
                    CoverageGap(ref, GapReason.INVALID, f"{file}: {vw} has no VulnerabilityID: skipped")
                )
                continue
            score = None
            cvss = f.obj(v.get("CVSS"), f"{vw}.CVSS")
            src = f.s(v, "SeveritySource", vw)
            for vendor in (src, "nvd", *cvss):
                c = cvss.get(vendor)
                if isinstance(c, dict) and (c.get("V3Score") or c.get("V40Score")):
                    score = f.num(c, "V40Score" if c.get("V40Score") else "V3Score", f"{vw}.CVSS.{vendor}")
                    break
            sev, how = _severity(f.s(v, "Severity", vw), score, "Trivy")
            fixed = tuple(x.strip() for x in f.s(v, "FixedVersion", vw).split(",") if x.strip())
            ident = f.obj(v.get("PkgIdentifier"), f"{vw}.PkgIdentifier")
            report.vulns.append(
                ImageVuln(
                    id=vid,
                    package=f.s(v, "PkgName", vw),
                    version=f.s(v, "InstalledVersion", vw),
                    ecosystem=eco,
                    severity=sev,
                    fixed=fixed,
                    aliases=tuple(
                        x for x in f.lst(v.get("VendorIDs"), f"{vw}.VendorIDs") if isinstance(x, str)
                    ),
                    score=score,
                    severity_source=how,
                    summary=f.s(v, "Title", vw)[:300],
                    purl=f.s(ident, "PURL", vw) or f.s(v, "Ref", vw),
                    path=f.s(v, "PkgPath", vw),
                    source="trivy",
                )
            )
    return Imported("trivy", file, [report])


def parse_grype(doc: dict[str, Any], file: str) -> Imported:
    f = Fields(file)
    source = f.obj(doc.get("source"), "source")
    target = source.get("target")
    target = target if isinstance(target, dict) else {"userInput": target if isinstance(target, str) else ""}
    distro = f.obj(doc.get("distro"), "distro")
    ref = f.s(target, "userInput", "source.target")
    report = ImageReport(ref, f.s(target, "manifestDigest", "source.target"), source=file)
    os_name = f"{f.s(distro, 'name', 'distro')}:{f.s(distro, 'version', 'distro')}".strip(":")
    for i, m in enumerate(f.lst(doc.get("matches"), "matches")):
        w = f"matches[{i}]"
        m = f.obj(m, w)
        vuln = f.obj(m.get("vulnerability"), f"{w}.vulnerability")
        art = f.obj(m.get("artifact"), f"{w}.artifact")
        vid = f.s(vuln, "id", f"{w}.vulnerability")
        if not vid:
            report.gaps.append(
                CoverageGap(ref, GapReason.INVALID, f"{file}: {w} has no vulnerability id: skipped")
            )
            continue
        score = None
        for c in f.lst(vuln.get("cvss"), f"{w}.vulnerability.cvss"):
            c = f.obj(c, f"{w}.vulnerability.cvss[]")
            s = f.num(f.obj(c.get("metrics"), f"{w}.vulnerability.cvss[].metrics"), "baseScore", f"{w}.cvss")
            if s is not None and str(c.get("version", "")).startswith(("3", "4")):
                score = max(score or 0.0, s)
        sev, how = _severity(f.s(vuln, "severity", f"{w}.vulnerability"), score, "Grype")
        fix = f.obj(vuln.get("fix"), f"{w}.vulnerability.fix")
        related = [
            f.s(f.obj(r, f"{w}.relatedVulnerabilities[]"), "id", f"{w}.relatedVulnerabilities[]")
            for r in f.lst(m.get("relatedVulnerabilities"), f"{w}.relatedVulnerabilities")
        ]
        typ = f.s(art, "type", f"{w}.artifact")
        locs = f.lst(art.get("locations"), f"{w}.artifact.locations")
        report.vulns.append(
            ImageVuln(
                id=vid,
                package=f.s(art, "name", f"{w}.artifact"),
                version=f.s(art, "version", f"{w}.artifact"),
                ecosystem=os_name if typ in ("deb", "apk", "rpm") and os_name else typ,
                severity=sev,
                fixed=tuple(
                    x
                    for x in f.lst(fix.get("versions"), f"{w}.vulnerability.fix.versions")
                    if isinstance(x, str)
                ),
                aliases=tuple(r for r in related if r and r != vid),
                score=score,
                severity_source=how,
                summary=f.s(vuln, "description", f"{w}.vulnerability")[:300],
                purl=f.s(art, "purl", f"{w}.artifact"),
                path=f.s(f.obj(locs[0], f"{w}.artifact.locations[0]"), "path", f"{w}.artifact.locations[0]")
                if locs
                else "",
                source="grype",
            )
        )
    return Imported("grype", file, [report])
