"""Scanner result imports: real Trivy/Grype/CycloneDX/SPDX output and ECR/Inspector shapes land in
the one ImageVuln model; broken files are errors naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubestrata.errors import InputError
from kubestrata.findings import Severity
from kubestrata.image.imports import load, parse

from .conftest import DATA

IMPORTS = DATA / "imports"


def test_trivy() -> None:
    imp = load(str(IMPORTS / "trivy-debian-buster.json"))
    (rep,) = imp.reports
    assert imp.format == "trivy" and rep.reference == "testdata/fixtures/images/debian-buster.tar.gz"
    by_id = {v.id: v for v in rep.vulns}
    bash, idn = by_id["CVE-2019-18276"], by_id["CVE-2019-18224"]
    assert (bash.package, bash.version, bash.severity, bash.score, bash.fixed) == (
        "bash",
        "5.0-4",
        Severity.LOW,
        7.8,
        (),
    )
    assert (idn.severity, idn.fixed, idn.aliases, idn.ecosystem) == (
        Severity.CRITICAL,
        ("2.0.5-1+deb10u1",),
        ("DSA-4613-1",),
        "debian:10.1",
    )
    assert idn.purl.startswith("pkg:deb/debian/libidn2-0@2.0.5-1")


def test_grype() -> None:
    (rep,) = load(str(IMPORTS / "grype-imgs.json")).reports
    assert rep.reference == "user-input"
    assert rep.digest == "sha256:ca738abb87a8d58f112d3400ebb079b61ceae7dc290beb34bda735be4b1941d5"
    one, two = sorted(rep.vulns, key=lambda v: v.id)
    assert (one.id, one.severity, one.score, one.fixed, one.ecosystem, one.path) == (
        "CVE-1999-0001",
        Severity.LOW,
        4.0,
        ("1.2.1", "2.1.3", "3.4.0"),
        "centos:8.0",
        "/foo/bar/somefile-1.txt",
    )
    # a v2-only score is not used as the score; the word decides
    assert (two.severity, two.score, two.fixed, two.purl) == (
        Severity.CRITICAL,
        None,
        (),
        "pkg:deb/package-2@2.2.2",
    )


def test_cyclonedx_vulnerabilities() -> None:
    imp = load(str(IMPORTS / "cyclonedx-centos7.json"))
    (rep,) = imp.reports
    by_id = {v.id: v for v in rep.vulns}
    bash, ossl = by_id["CVE-2019-18276"], by_id["CVE-2019-1559"]
    # the CVSS v3.1 nvd rating decides, not cbl-mariner's word or redhat's "low"
    assert (bash.package, bash.version, bash.severity, bash.score) == (
        "bash",
        "4.2.46-31.el7",
        Severity.HIGH,
        7.8,
    )
    assert bash.severity_source == "CycloneDX rating CVSSv31"
    assert (ossl.version, ossl.fixed, ossl.severity) == (
        "1:1.0.2k-16.el7",
        ("1:1.0.2k-19.el7",),
        Severity.MEDIUM,
    )
    assert imp.inventories == []  # this BOM lists no components


def test_spdx_packages_become_an_inventory() -> None:
    imp = load(str(IMPORTS / "spdx-centos7.json"))
    (inv,) = imp.inventories
    assert [(p.name, p.version, p.ecosystem, p.release) for p in inv.packages] == [
        ("bash", "4.2.46-31.el7", "CentOS", "7.6.1810"),
        ("openssl-libs", "1:1.0.2k-16.el7", "CentOS", "7.6.1810"),  # the purl's epoch qualifier is kept
    ]


def test_ecr_basic_says_fixes_are_unknown() -> None:
    (rep,) = load(str(IMPORTS / "ecr-basic.json")).reports
    (v,) = rep.vulns
    assert (rep.reference, rep.digest[:15]) == ("golang_example-codemash:0.1.20", "sha256:25653137")
    assert (v.id, v.package, v.version, v.severity, v.fixed, v.source) == (
        "CVE-2021-30139",
        "apk-tools",
        "2.10.5-r1",
        Severity.MEDIUM,
        (),
        "ecr-basic",
    )
    assert any("no fixed versions" in g.detail for g in rep.gaps)


def test_ecr_enhanced_skips_closed_and_reads_packages() -> None:
    (rep,) = load(str(IMPORTS / "ecr-enhanced.json")).reports
    got = sorted((v.id, v.package, v.version, v.fixed, v.severity, v.score) for v in rep.vulns)
    assert got == [
        ("CVE-2019-18224", "libidn2-0", "2.0.5-1", ("0:2.0.5-1+deb10u1",), Severity.CRITICAL, 9.8),
        ("CVE-2019-18276", "bash", "5.0-4", (), Severity.HIGH, 7.8),
    ]
    assert rep.gaps == []  # ACTIVE is a finished (continuous) scan


def test_inspector_groups_by_image_and_names_what_it_skipped() -> None:
    (rep,) = load(str(IMPORTS / "inspector2.json")).reports
    (v,) = rep.vulns
    assert (rep.reference, rep.digest[-4:]) == ("shop/web:1.0.3", "2222")
    assert (v.id, v.aliases, v.fixed, v.path, v.score) == (
        "CVE-2021-23337",
        ("GHSA-35jh-r3h4-6jhm",),
        ("4.17.21",),
        "app/node_modules/lodash/package.json",
        7.2,
    )
    assert "1 Inspector finding(s)" in rep.gaps[0].detail


@pytest.mark.parametrize(
    ("doc", "message", "field"),
    [
        ({"hello": 1}, "not a recognised scanner result", None),
        ({"SchemaVersion": 2, "ArtifactName": "x", "Results": {"no": "list"}}, "expected a list", "Results"),
        (
            {
                "SchemaVersion": 2,
                "ArtifactName": "x",
                "Results": [
                    {"Vulnerabilities": [{"VulnerabilityID": "C", "CVSS": {"nvd": {"V3Score": "high"}}}]}
                ],
            },
            "expected a number",
            "Results[0].Vulnerabilities[0].CVSS.nvd.V3Score",
        ),
        (
            {"matches": [{"vulnerability": "CVE-1"}], "source": {}},
            "expected an object",
            "matches[0].vulnerability",
        ),
        ({"bomFormat": "CycloneDX", "components": [7]}, "expected an object", "components[0]"),
        (
            {
                "imageScanFindings": {"findings": [{"name": "CVE-1", "attributes": "x"}]},
                "repositoryName": "r",
            },
            "expected a list",
            "imageScanFindings.findings[0].attributes",
        ),
    ],
)
def test_broken_documents_name_file_and_field(doc, message: str, field) -> None:
    with pytest.raises(InputError) as e:
        parse(doc, "results.json")
    assert message in e.value.detail and e.value.file == "results.json" and e.value.field == field


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(InputError, match="invalid JSON"):
        load(str(tmp_path / "x.json"))
    with pytest.raises(InputError, match="cannot read"):
        load(str(tmp_path / "missing.json"))


def test_trivy_vulnerability_without_id_is_a_gap_not_a_crash() -> None:
    doc = json.loads((IMPORTS / "trivy-debian-buster.json").read_text())
    doc["Results"][0]["Vulnerabilities"].append({"PkgName": "x"})
    (rep,) = parse(doc, "t.json").reports
    assert len(rep.vulns) == 2 and "has no VulnerabilityID" in rep.gaps[0].detail


def test_live_ecr_and_inspector_through_moto() -> None:
    import boto3
    import requests

    from kubestrata.image.imports import aws
    from tests.conftest import moto_endpoint

    enhanced = json.loads((IMPORTS / "ecr-enhanced.json").read_text())
    inspector = json.loads((IMPORTS / "inspector2.json").read_text())
    with moto_endpoint() as url:
        kw = {
            "region_name": "us-east-1",
            "endpoint_url": url,
            "aws_access_key_id": "k",
            "aws_secret_access_key": "s",
        }
        ecr = boto3.client("ecr", **kw)
        ecr.create_repository(repositoryName="shop/api")
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {},
                "layers": [],
            }
        )
        ecr.put_image(repositoryName="shop/api", imageManifest=manifest, imageTag="2.4.1")
        ecr.start_image_scan(repositoryName="shop/api", imageId={"imageTag": "2.4.1"})
        requests.post(
            f"{url}/moto-api/static/ecr/scan-finding-results",
            json={"results": [enhanced], "region": "us-east-1"},
            timeout=10,
        ).raise_for_status()
        requests.post(
            f"{url}/moto-api/static/inspector2/findings-results",
            json={"results": [inspector["findings"]], "region": "us-east-1"},
            timeout=10,
        ).raise_for_status()
        import os

        env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            doc = aws.fetch_ecr_findings("shop/api", "2.4.1", region="us-east-1", endpoint_url=url)
            idoc = aws.fetch_inspector_findings(region="us-east-1", endpoint_url=url)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    (rep,) = parse(doc, "live").reports
    assert {v.id for v in rep.vulns} == {"CVE-2019-18224", "CVE-2019-18276"}
    (irep,) = parse(idoc, "live").reports
    assert [v.id for v in irep.vulns] == ["CVE-2021-23337"]
