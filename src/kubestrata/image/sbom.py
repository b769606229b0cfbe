"""The SBOM of an image as CycloneDX 1.6 JSON (cyclonedx-python-lib): the image as the root
``container`` component, one ``library`` (or ``operating-system`` packages as ``library`` with
their distro purls) component per installed package, dependencies from the root, and, when a
vulnerability report is given, its ``vulnerabilities`` with ratings and affected components.

cyclonedx-python-lib is imported here only, so commands that write no SBOM never load it.
"""

from __future__ import annotations

from decimal import Decimal

from kubestrata.image.model import ImageInventory
from kubestrata.image.purls import purl_of
from kubestrata.image.vulns import ImageReport

TOOL = "kubestrata"


def cyclonedx_json(inv: ImageInventory, report: ImageReport | None = None, *, indent: int | None = 2) -> str:
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.vulnerability import (
        BomTarget,
        Vulnerability,
        VulnerabilityRating,
        VulnerabilityScoreSource,
        VulnerabilitySeverity,
        VulnerabilitySource,
    )
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    bom = Bom()
    name, _, tag = (
        inv.reference.rpartition(":") if ":" in inv.reference.rsplit("/", 1)[-1] else (inv.reference, "", "")
    )
    root = Component(
        name=name or inv.reference,
        version=tag or None,
        type=ComponentType.CONTAINER,
        bom_ref=f"image:{inv.digest or inv.reference}",
        properties=[Property(name="kubestrata:image:digest", value=inv.digest)] if inv.digest else [],
    )
    bom.metadata.component = root
    by_purl: dict[str, Component] = {}
    for p in sorted(inv.packages, key=lambda p: (p.ecosystem, p.name, p.version, p.path)):
        purl = purl_of(p)
        if purl in by_purl:
            continue
        props = [Property(name="kubestrata:package:ecosystem", value=p.ecosystem)]
        if p.source_name:
            props.append(Property(name="kubestrata:package:source", value=p.source_name))
        if p.path:
            props.append(Property(name="kubestrata:package:path", value=p.path))
        try:
            parsed = PackageURL.from_string(purl)
        except ValueError:
            parsed = None
        comp = Component(
            name=p.name,
            version=p.version or None,
            type=ComponentType.LIBRARY,
            purl=parsed,
            bom_ref=purl,
            properties=props,
        )
        by_purl[purl] = comp
        bom.components.add(comp)
    bom.register_dependency(root, list(by_purl.values()))
    if report is not None:
        sev_map = {
            "critical": VulnerabilitySeverity.CRITICAL,
            "high": VulnerabilitySeverity.HIGH,
            "medium": VulnerabilitySeverity.MEDIUM,
            "low": VulnerabilitySeverity.LOW,
            "info": VulnerabilitySeverity.INFO,
        }
        for i, v in enumerate(report.vulns):
            target = v.purl if v.purl in by_purl else None
            rating = VulnerabilityRating(
                score=None
                if v.score is None
                else Decimal(str(v.score)),  # the library writes floats as strings
                severity=sev_map[v.severity.value],
                method=VulnerabilityScoreSource.OTHER
                if v.score is None
                else VulnerabilityScoreSource.CVSS_V3_1,
                justification=v.severity_source or None,
            )
            bom.vulnerabilities.add(
                Vulnerability(
                    bom_ref=f"vuln:{i}:{v.id}",
                    id=v.id,
                    source=VulnerabilitySource(name=v.source or "osv"),
                    ratings=[rating],
                    description=v.summary or None,
                    recommendation=f"Upgrade {v.package} to {' or '.join(v.fixed)}" if v.fixed else None,
                    affects=[BomTarget(ref=target)] if target else [],
                )
            )
    return JsonV1Dot6(bom).output_as_string(indent=indent)


def validate(text: str) -> str | None:
    """The CycloneDX 1.6 schema error in ``text``, or None when it is valid."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    return None if err is None else str(err)
