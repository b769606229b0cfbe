"""CycloneDX (1.4-1.6 JSON) and SPDX (2.2/2.3 JSON) documents.

CycloneDX: ``components[]`` (with purls) become an inventory; ``vulnerabilities[]`` (id, ratings,
affects[].ref to a component's bom-ref, or Trivy's ``urn:cdx:<serial>/<version>#<purl>`` refs) become
ImageVulns. SPDX: ``packages[]`` whose ``externalRefs`` hold a purl become an inventory. Shapes:
CycloneDX 1.6 schema (cyclonedx-python-lib's bundled copy), Trivy
integration/testdata/centos-7-cyclonedx.json.golden and fixtures/sbom/centos-7-spdx.json.
"""

from __future__ import annotations

import re
from typing import Any

from kubestrata.findings import CoverageGap, GapReason, Severity
from kubestrata.image.imports import Fields, Imported
from kubestrata.image.model import ImageInventory, Package
from kubestrata.image.purls import package_from_purl
from kubestrata.image.severity import cvss_score, from_score, from_word
from kubestrata.image.vulns import ImageReport, ImageVuln

_METHOD_RANK = {"CVSSv4": 0, "CVSSv31": 1, "CVSSv3": 2, "CVSSv2": 3}
_UPGRADE = re.compile(r"to version (\S+?)[.,;]?(?:\s|$)")


def _rating(f: Fields, ratings: list[Any], where: str) -> tuple[Severity, float | None, str]:
    rs = [f.obj(r, f"{where}[{i}]") for i, r in enumerate(ratings)]
    scored = sorted(
        (
            r
            for r in rs
            if r.get("method") in _METHOD_RANK and (r.get("score") is not None or r.get("vector"))
        ),
        key=lambda r: (_METHOD_RANK[r["method"]], (r.get("source") or {}).get("name") != "nvd"),
    )
    for r in scored:
        score = f.num(r, "score", where)
        if score is None and isinstance(r.get("vector"), str):
            score = cvss_score(r["vector"])
        if score is not None:
            return from_score(score), score, f"CycloneDX rating {r['method']}"
    for r in rs:
        w = from_word(r.get("severity"))
        if w is not None:
            return w, None, f"CycloneDX rating severity {r.get('severity')}"
    return Severity.MEDIUM, None, "unknown: medium assumed (no rating in the CycloneDX vulnerability)"


def _component_index(f: Fields, comps: list[Any], where: str, out: dict[str, dict[str, Any]]) -> None:
    for i, c in enumerate(comps):
        c = f.obj(c, f"{where}[{i}]")
        if c.get("bom-ref"):
            out[str(c["bom-ref"])] = c
        _component_index(
            f, f.lst(c.get("components"), f"{where}[{i}].components"), f"{where}[{i}].components", out
        )


def parse_cyclonedx(doc: dict[str, Any], file: str) -> Imported:
    f = Fields(file)
    spec = f.s(doc, "specVersion", "(document)")
    meta = f.obj(doc.get("metadata"), "metadata")
    root = f.obj(meta.get("component"), "metadata.component")
    ref = f.s(root, "name", "metadata.component") + (
        f":{root['version']}" if isinstance(root.get("version"), str) and root.get("version") else ""
    )
    ref = ref or file
    digest = ""
    for p in f.lst(root.get("properties"), "metadata.component.properties"):
        if (
            isinstance(p, dict)
            and p.get("name") in ("aquasecurity:trivy:RepoDigest",)
            and "@" in str(p.get("value"))
        ):
            digest = str(p["value"]).split("@", 1)[1]
    report = ImageReport(ref, digest, source=file)
    if spec and spec not in ("1.4", "1.5", "1.6"):
        report.gaps.append(
            CoverageGap(ref, GapReason.INVALID, f"{file}: CycloneDX {spec}; read as 1.4-1.6 JSON")
        )
    index: dict[str, dict[str, Any]] = {}
    comps = f.lst(doc.get("components"), "components")
    _component_index(f, comps, "components", index)
    inv = ImageInventory(ref, digest)
    unreadable = []
    for c in index.values():
        purl = c.get("purl")
        if isinstance(purl, str) and purl:
            try:
                inv.packages.append(package_from_purl(purl, source_name=_trivy_src(c)))
            except ValueError:
                unreadable.append(purl)
        elif c.get("type") in ("library", "application", "framework"):
            unreadable.append(f"{c.get('name')} (no purl)")
    for i, v in enumerate(f.lst(doc.get("vulnerabilities"), "vulnerabilities")):
        w = f"vulnerabilities[{i}]"
        v = f.obj(v, w)
        vid = f.s(v, "id", w)
        if not vid:
            report.gaps.append(CoverageGap(ref, GapReason.INVALID, f"{file}: {w} has no id: skipped"))
            continue
        sev, score, how = _rating(f, f.lst(v.get("ratings"), f"{w}.ratings"), f"{w}.ratings")
        m = _UPGRADE.search(f.s(v, "recommendation", w))
        for j, a in enumerate(f.lst(v.get("affects"), f"{w}.affects")):
            aw = f"{w}.affects[{j}]"
            a = f.obj(a, aw)
            target = f.s(a, "ref", aw)
            comp = index.get(target)
            pkg: Package | None = None
            if comp is not None and isinstance(comp.get("purl"), str):
                target = comp["purl"]
            purl = target.split("#", 1)[1] if "#" in target else target
            try:
                pkg = package_from_purl(purl) if purl.startswith("pkg:") else None
            except ValueError:
                pkg = None
            fixed = [
                str(x.get("version"))
                for x in f.lst(a.get("versions"), f"{aw}.versions")
                if isinstance(x, dict) and x.get("status") == "unaffected" and x.get("version")
            ]
            if not fixed and m:
                fixed = [m.group(1)]
            affected_versions = [
                str(x.get("version"))
                for x in f.lst(a.get("versions"), f"{aw}.versions")
                if isinstance(x, dict) and x.get("status") == "affected" and x.get("version")
            ]
            report.vulns.append(
                ImageVuln(
                    id=vid,
                    package=pkg.name if pkg else (comp or {}).get("name", target),
                    version=(affected_versions[0] if affected_versions else (pkg.version if pkg else "")),
                    ecosystem=(pkg.ecosystem + (f":{pkg.release}" if pkg.release else "")) if pkg else "",
                    severity=sev,
                    fixed=tuple(fixed),
                    score=score,
                    severity_source=how,
                    summary=f.s(v, "description", w)[:300],
                    purl=purl if purl.startswith("pkg:") else "",
                    source="cyclonedx",
                )
            )
    if unreadable:
        report.gaps.append(
            CoverageGap(
                ref,
                GapReason.INVALID,
                f"{len(unreadable)} component(s) without a readable purl not matched: "
                + ", ".join(unreadable[:8]),
            )
        )
    return Imported("cyclonedx", file, [report], [inv] if inv.packages else [])


def _trivy_src(c: dict[str, Any]) -> str | None:
    for p in c.get("properties") or []:
        if isinstance(p, dict) and p.get("name") in (
            "aquasecurity:trivy:SrcName",
            "kubestrata:package:source",
        ):
            return str(p.get("value") or "") or None
    return None


def parse_spdx(doc: dict[str, Any], file: str) -> Imported:
    f = Fields(file)
    ref = f.s(doc, "name", "(document)") or file
    version = f.s(doc, "spdxVersion", "(document)")
    report = ImageReport(ref, "", source=file)
    if version not in ("SPDX-2.2", "SPDX-2.3"):
        report.gaps.append(CoverageGap(ref, GapReason.INVALID, f"{file}: {version}; read as SPDX 2.3 JSON"))
    inv = ImageInventory(ref, "")
    without = []
    for i, p in enumerate(f.lst(doc.get("packages"), "packages")):
        w = f"packages[{i}]"
        p = f.obj(p, w)
        purls = [
            f.s(r, "referenceLocator", f"{w}.externalRefs[]")
            for r in (
                f.obj(x, f"{w}.externalRefs[]") for x in f.lst(p.get("externalRefs"), f"{w}.externalRefs")
            )
            if r.get("referenceType") == "purl"
        ]
        if not purls:
            if p.get("versionInfo") and not str(p.get("SPDXID", "")).startswith(
                ("SPDXRef-ContainerImage", "SPDXRef-OperatingSystem")
            ):
                without.append(f.s(p, "name", w))
            continue
        try:
            inv.packages.append(package_from_purl(purls[0]))
        except ValueError:
            without.append(purls[0])
    for att in (p for p in (doc.get("packages") or []) if isinstance(p, dict)):
        for t in att.get("attributionTexts") or []:
            if isinstance(t, str) and t.startswith("RepoDigest: ") and "@" in t:
                inv.digest = report.digest = t.split("@", 1)[1]
    if without:
        report.gaps.append(
            CoverageGap(
                ref,
                GapReason.INVALID,
                f"{len(without)} SPDX package(s) without a readable purl not matched: "
                + ", ".join(without[:8]),
            )
        )
    report.packages = len(inv.packages)
    return Imported("spdx", file, [report], [inv])
