"""Results of scanners people already run, read into the one ImageVuln model.

``load(path)`` recognises the file by its shape: Trivy JSON (``trivy image -f json``), Grype JSON
(``grype -o json``), CycloneDX 1.4-1.6 JSON (vulnerabilities and components), SPDX 2.2/2.3 JSON
(packages with purls), ECR ``describe-image-scan-findings`` (basic and enhanced) and Inspector
``list-findings``. SBOM packages come back as inventories, to be matched against the offline database.
A file that is none of these, or a field of the wrong type, is an InputError naming file and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from kubestrata.errors import InputError
from kubestrata.image.model import ImageInventory
from kubestrata.image.vulns import ImageReport

FORMATS = ("trivy", "grype", "cyclonedx", "spdx", "ecr", "inspector2")


@dataclass
class Imported:
    format: str
    file: str
    reports: list[ImageReport] = field(default_factory=list)
    inventories: list[ImageInventory] = field(default_factory=list)  # SBOM packages to match


def detect(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    if "SchemaVersion" in doc and "ArtifactName" in doc:
        return "trivy"
    if isinstance(doc.get("matches"), list) and ("descriptor" in doc or "source" in doc):
        return "grype"
    if doc.get("bomFormat") == "CycloneDX":
        return "cyclonedx"
    if str(doc.get("spdxVersion", "")).startswith("SPDX-"):
        return "spdx"
    if "imageScanFindings" in doc or ("imageScanStatus" in doc and "repositoryName" in doc):
        return "ecr"
    if isinstance(doc.get("findings"), list) and all(
        isinstance(f, dict) and ("findingArn" in f or "packageVulnerabilityDetails" in f)
        for f in doc["findings"]
    ):
        return "inspector2"
    return None


def parse(doc: Any, file: str) -> Imported:
    fmt = detect(doc)
    if fmt is None:
        raise InputError(
            "not a recognised scanner result (expected Trivy JSON, Grype JSON, CycloneDX JSON, SPDX JSON, "
            "ECR describe-image-scan-findings or Inspector list-findings output)",
            file=file,
        )
    if fmt in ("trivy", "grype"):
        from kubestrata.image.imports import scanners

        return scanners.parse_trivy(doc, file) if fmt == "trivy" else scanners.parse_grype(doc, file)
    if fmt in ("cyclonedx", "spdx"):
        from kubestrata.image.imports import sbom

        return sbom.parse_cyclonedx(doc, file) if fmt == "cyclonedx" else sbom.parse_spdx(doc, file)
    from kubestrata.image.imports import aws

    return aws.parse_ecr(doc, file) if fmt == "ecr" else aws.parse_inspector(doc, file)


def load(path: str) -> Imported:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", file=path) from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e}", file=path) from None
    return parse(doc, path)


class Fields:
    """Typed access to a scanner document; a wrong type is an InputError naming file and field."""

    def __init__(self, file: str) -> None:
        self.file = file

    def obj(self, d: Any, where: str) -> dict[str, Any]:
        if d is None:
            return {}
        if not isinstance(d, dict):
            raise InputError(f"expected an object, got {type(d).__name__}", file=self.file, field=where)
        return d

    def lst(self, d: Any, where: str) -> list[Any]:
        if d is None:
            return []
        if not isinstance(d, list):
            raise InputError(f"expected a list, got {type(d).__name__}", file=self.file, field=where)
        return d

    def s(self, d: dict[str, Any], key: str, where: str) -> str:
        v = d.get(key)
        if v is None:
            return ""
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise InputError(
                f"expected a string, got {type(v).__name__}", file=self.file, field=f"{where}.{key}"
            )
        return str(v)

    def num(self, d: dict[str, Any], key: str, where: str) -> float | None:
        v = d.get(key)
        if v is None or v == "":
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            raise InputError(
                f"expected a number, got {v!r}", file=self.file, field=f"{where}.{key}"
            ) from None
