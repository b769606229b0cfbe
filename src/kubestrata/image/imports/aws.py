"""Amazon ECR image scan findings (basic and enhanced) and Amazon Inspector findings, from the AWS CLI's
JSON output or live through boto3. Field names are the API members (botocore ``ecr`` 2015-09-21,
``inspector2`` 2020-06-08 service models).

Basic scanning reports a CVE per package with ``attributes`` (``package_name``, ``package_version``,
``CVSS2_SCORE``/``CVSS3_SCORE``) and no fixed version; enhanced scanning and Inspector report
``packageVulnerabilityDetails.vulnerablePackages[]`` with ``fixedInVersion``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubestrata.findings import CoverageGap, GapReason, Severity
from kubestrata.image.imports import Fields, Imported
from kubestrata.image.severity import from_score, from_word
from kubestrata.image.vulns import ImageReport, ImageVuln

DONE = ("COMPLETE", "ACTIVE")


def _sev(word: str, score: float | None, source: str) -> tuple[Severity, str]:
    w = from_word(word)
    if w is not None:
        return w, f"{source} severity {word}"
    if score is not None:
        return from_score(score), f"{source} score"
    return Severity.MEDIUM, f"unknown: medium assumed ({source} gave {word or 'no severity'})"


def _package_vulns(
    f: Fields,
    d: dict[str, Any],
    where: str,
    vid_default: str,
    severity: str,
    score: float | None,
    source: str,
    summary: str,
) -> Iterator[ImageVuln]:
    pvd = f.obj(d.get("packageVulnerabilityDetails"), f"{where}.packageVulnerabilityDetails")
    vid = f.s(pvd, "vulnerabilityId", f"{where}.packageVulnerabilityDetails") or vid_default
    related = tuple(
        x
        for x in f.lst(pvd.get("relatedVulnerabilities"), f"{where}.relatedVulnerabilities")
        if isinstance(x, str) and x != vid
    )
    if score is None:
        for c in f.lst(pvd.get("cvss"), f"{where}.packageVulnerabilityDetails.cvss"):
            c = f.obj(c, f"{where}.cvss[]")
            s = f.num(c, "baseScore", f"{where}.cvss[]")
            if s is not None and str(c.get("version", "")).startswith(("3", "4")):
                score = max(score or 0.0, s)
    sev, how = _sev(severity, score, source)
    for i, p in enumerate(
        f.lst(pvd.get("vulnerablePackages"), f"{where}.packageVulnerabilityDetails.vulnerablePackages")
    ):
        pw = f"{where}.vulnerablePackages[{i}]"
        p = f.obj(p, pw)
        version = f.s(p, "version", pw)
        release = f.s(p, "release", pw)
        epoch = p.get("epoch")
        full = (
            (f"{epoch}:" if epoch not in (None, 0, "0", "") else "")
            + version
            + (f"-{release}" if release else "")
        )
        fixed = f.s(p, "fixedInVersion", pw)
        yield ImageVuln(
            id=vid,
            package=f.s(p, "name", pw),
            version=full,
            ecosystem=f.s(p, "packageManager", pw),
            severity=sev,
            fixed=(fixed,) if fixed and fixed.upper() != "NOTAVAILABLE" else (),
            aliases=related,
            score=score,
            severity_source=how,
            summary=summary[:300],
            path=f.s(p, "filePath", pw),
            source=source,
        )


def parse_ecr(doc: dict[str, Any], file: str) -> Imported:
    f = Fields(file)
    image = f.obj(doc.get("imageId"), "imageId")
    repo = f.s(doc, "repositoryName", "(document)")
    tag = f.s(image, "imageTag", "imageId")
    ref = repo + (f":{tag}" if tag else "")
    registry = f.s(doc, "registryId", "(document)")
    report = ImageReport(ref, f.s(image, "imageDigest", "imageId"), source=file)
    if registry:
        report.source = f"{file} (registry {registry})"
    status = f.obj(doc.get("imageScanStatus"), "imageScanStatus")
    st = f.s(status, "status", "imageScanStatus")
    if st and st not in DONE:
        report.gaps.append(
            CoverageGap(
                ref,
                GapReason.MISSING_INPUT,
                f"ECR scan status {st}: {f.s(status, 'description', 'imageScanStatus')} "
                "(its findings, if any, are incomplete)",
            )
        )
    findings = f.obj(doc.get("imageScanFindings"), "imageScanFindings")
    basic = f.lst(findings.get("findings"), "imageScanFindings.findings")
    for i, x in enumerate(basic):
        w = f"imageScanFindings.findings[{i}]"
        x = f.obj(x, w)
        attrs = {
            str(a.get("key")): a.get("value")
            for a in (f.obj(a, f"{w}.attributes[]") for a in f.lst(x.get("attributes"), f"{w}.attributes"))
        }
        score = None
        for k in ("CVSS4_SCORE", "CVSS3_SCORE"):
            if attrs.get(k) not in (None, ""):
                score = f.num(attrs, k, f"{w}.attributes")
                break
        sev, how = _sev(f.s(x, "severity", w), score, "ECR basic")
        report.vulns.append(
            ImageVuln(
                id=f.s(x, "name", w),
                package=str(attrs.get("package_name") or ""),
                version=str(attrs.get("package_version") or ""),
                ecosystem="",
                severity=sev,
                score=score,
                severity_source=how,
                summary=f.s(x, "description", w)[:300],
                source="ecr-basic",
            )
        )
    if basic:
        report.gaps.append(
            CoverageGap(
                ref,
                GapReason.MISSING_INPUT,
                "ECR basic scanning reports no fixed versions: whether a fix "
                "exists is not known for its findings (enhanced scanning reports fixedInVersion)",
            )
        )
    for i, x in enumerate(f.lst(findings.get("enhancedFindings"), "imageScanFindings.enhancedFindings")):
        w = f"imageScanFindings.enhancedFindings[{i}]"
        x = f.obj(x, w)
        if f.s(x, "status", w) in ("CLOSED", "SUPPRESSED"):
            continue
        report.vulns.extend(
            _package_vulns(
                f,
                x,
                w,
                f.s(x, "title", w),
                f.s(x, "severity", w),
                f.num(x, "score", w),
                "ecr-enhanced",
                f.s(x, "description", w),
            )
        )
    return Imported("ecr", file, [report])


def parse_inspector(doc: dict[str, Any], file: str) -> Imported:
    f = Fields(file)
    by_image: dict[str, ImageReport] = {}
    other = 0
    for i, x in enumerate(f.lst(doc.get("findings"), "findings")):
        w = f"findings[{i}]"
        x = f.obj(x, w)
        if f.s(x, "status", w) in ("CLOSED", "SUPPRESSED"):
            continue
        if f.s(x, "type", w) not in ("", "PACKAGE_VULNERABILITY"):
            other += 1
            continue
        for j, r in enumerate(f.lst(x.get("resources"), f"{w}.resources")):
            rw = f"{w}.resources[{j}]"
            r = f.obj(r, rw)
            if f.s(r, "type", rw) != "AWS_ECR_CONTAINER_IMAGE":
                other += 1
                continue
            img = f.obj(
                f.obj(r.get("details"), f"{rw}.details").get("awsEcrContainerImage"),
                f"{rw}.details.awsEcrContainerImage",
            )
            repo = f.s(img, "repositoryName", rw)
            registry = f.s(img, "registry", rw)
            tags = [t for t in f.lst(img.get("imageTags"), f"{rw}.imageTags") if isinstance(t, str)]
            digest = f.s(img, "imageHash", rw)
            ref = repo + (f":{tags[0]}" if tags else "")
            rep = by_image.setdefault(
                digest or ref,
                ImageReport(ref, digest, source=file + (f" (registry {registry})" if registry else "")),
            )
            score = f.num(x, "inspectorScore", w)
            rep.vulns.extend(
                _package_vulns(
                    f,
                    x,
                    w,
                    f.s(x, "title", w),
                    f.s(x, "severity", w),
                    score,
                    "inspector2",
                    f.s(x, "description", w),
                )
            )
    out = Imported("inspector2", file, list(by_image.values()))
    if other and out.reports:
        out.reports[0].gaps.append(
            CoverageGap(
                file,
                GapReason.MISSING_INPUT,
                f"{other} Inspector finding(s) or resources that are not ECR "
                "image package vulnerabilities were skipped",
            )
        )
    return out


# -- live ------------------------------------------------------------------------------------------


def _jsonable(resp: dict[str, Any]) -> dict[str, Any]:
    import orjson

    resp.pop("ResponseMetadata", None)
    return orjson.loads(orjson.dumps(resp, default=str))


def fetch_ecr_findings(
    repository: str,
    image: str,
    *,
    registry_id: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
) -> dict[str, Any]:
    """``describe-image-scan-findings`` for one image (a tag, or sha256:... digest), every page merged."""
    import boto3

    ecr = boto3.Session(profile_name=profile, region_name=region).client("ecr", endpoint_url=endpoint_url)
    image_id = {"imageDigest": image} if image.startswith("sha256:") else {"imageTag": image}
    kw: dict[str, Any] = {"repositoryName": repository, "imageId": image_id}
    if registry_id:
        kw["registryId"] = registry_id
    merged: dict[str, Any] | None = None
    token = None
    while True:
        resp = _jsonable(ecr.describe_image_scan_findings(**kw, **({"nextToken": token} if token else {})))
        if merged is None:
            merged = resp
        else:
            into = merged.setdefault("imageScanFindings", {})
            for k in ("findings", "enhancedFindings"):
                into.setdefault(k, []).extend((resp.get("imageScanFindings") or {}).get(k) or [])
        token = resp.get("nextToken")
        if not token:
            merged.pop("nextToken", None)
            return merged


def fetch_inspector_findings(
    *,
    repository: str | None = None,
    image_digest: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
) -> dict[str, Any]:
    """``inspector2 list-findings`` for ECR images (optionally one repository or digest), every page."""
    import boto3

    client = boto3.Session(profile_name=profile, region_name=region).client(
        "inspector2", endpoint_url=endpoint_url
    )
    criteria: dict[str, Any] = {
        "resourceType": [{"comparison": "EQUALS", "value": "AWS_ECR_CONTAINER_IMAGE"}]
    }
    if repository:
        criteria["ecrImageRepositoryName"] = [{"comparison": "EQUALS", "value": repository}]
    if image_digest:
        criteria["ecrImageHash"] = [{"comparison": "EQUALS", "value": image_digest}]
    out: list[Any] = []
    token = None
    while True:
        resp = _jsonable(
            client.list_findings(filterCriteria=criteria, **({"nextToken": token} if token else {}))
        )
        out.extend(resp.get("findings") or [])
        token = resp.get("nextToken")
        if not token:
            return {"findings": out}
