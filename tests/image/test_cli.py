"""`kubestrata image` end to end: db build/info/update (a loopback HTTP server serves OSV zips), scan of
an SBOM, CycloneDX output validated against the 1.6 schema, imports, exit codes, bad input."""

from __future__ import annotations

import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.image.model import ImageInventory, Package
from kubestrata.image.sbom import cyclonedx_json, validate

from .conftest import DATA

RUN = CliRunner()


def run(*args: str):
    return RUN.invoke(app, ["image", *map(str, args)])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "osv.db"
    r = run("db", "build", DATA / "osv", "--db", path)
    assert r.exit_code == 0, r.output
    return path


def _sbom(tmp_path: Path) -> Path:
    inv = ImageInventory(
        "registry.example/shop/api:2.4.1",
        "sha256:" + "d" * 64,
        packages=[
            Package(
                "lodash",
                "4.17.20",
                "npm",
                "pkg:npm/lodash@4.17.20",
                path="app/node_modules/lodash/package.json",
            ),
            Package(
                "zlib1g",
                "1:1.2.11.dfsg-2",
                "Debian",
                "pkg:deb/debian/zlib1g@1:1.2.11.dfsg-2?arch=amd64&distro=debian-11.6",
                source_name="zlib",
                release="11",
            ),
            Package("Jinja2", "3.1.4", "PyPI", "pkg:pypi/jinja2@3.1.4"),
        ],
    )
    p = tmp_path / "api.cdx.json"
    p.write_text(cyclonedx_json(inv))
    return p


def test_db_info(db: Path) -> None:
    r = run("db", "info", "--db", db, "-o", "json")
    info = json.loads(r.output)
    assert info["records"] == 8 and {"ecosystem": "Debian:11", "records": 1} in info["ecosystems"]


def test_scan_an_sbom_round_trip(db: Path, tmp_path: Path) -> None:
    r = run("scan", _sbom(tmp_path), "--db", db, "-o", "json", "--fail-on", "never")
    assert r.exit_code == 0, r.output
    (img,) = json.loads(r.output)["images"]
    assert {(v["id"], v["package"], tuple(v["fixed"])) for v in img["vulnerabilities"]} == {
        ("GHSA-35jh-r3h4-6jhm", "lodash", ("4.17.21",)),
        (
            "DEBIAN-CVE-2022-37434",
            "zlib1g",
            ("1:1.2.11.dfsg-2+deb11u2",),
        ),  # the source name survived the SBOM
    }
    r = run("scan", _sbom(tmp_path), "--db", db, "--fail-on", "high")
    assert r.exit_code == 1 and "vulnerabilities at or above high" in r.output


def test_sbom_output_is_valid_cyclonedx_1_6(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.cdx.json"
    r = run("sbom", _sbom(tmp_path), "-o", "cyclonedx", "--output-file", out, "--db", db)
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert validate(text) is None
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6" and doc["metadata"]["component"]["type"] == "container"
    assert {c["purl"] for c in doc["components"]} >= {"pkg:npm/lodash@4.17.20"}
    assert {v["id"] for v in doc["vulnerabilities"]} == {"GHSA-35jh-r3h4-6jhm", "DEBIAN-CVE-2022-37434"}
    # the validator is not a no-op
    broken = dict(doc, components=[{"name": "x"}])
    assert validate(json.dumps(broken)) is not None


def test_import_shows_and_fails_on(db: Path) -> None:
    r = run(
        "import",
        DATA / "imports" / "trivy-debian-buster.json",
        DATA / "imports" / "spdx-centos7.json",
        "--fail-on",
        "critical",
    )
    assert r.exit_code == 1
    assert "CVE-2019-18224" in r.output and "not matched: no vulnerability database given" in r.output
    r = run("import", DATA / "imports" / "spdx-centos7.json", "--db", db, "--strict", "--fail-on", "never")
    # CentOS is not in the fixture database: named, and --strict turns it into exit 2
    assert r.exit_code == 2 and "no version ordering for ecosystem 'CentOS'" in r.output


def test_bad_inputs_are_one_line_errors(tmp_path: Path, db: Path) -> None:
    (tmp_path / "x.json").write_text('{"hello": 1}')
    r = run("import", tmp_path / "x.json")
    assert r.exit_code == 2 and "not a recognised scanner result" in r.output and "Traceback" not in r.output
    r = run("db", "info", "--db", tmp_path / "none.db")
    assert r.exit_code == 2 and "image db build" in r.output
    r = run("scan", "registry.example/app:1", "--db", db)
    assert r.exit_code == 2 and ("reading images is not available" in r.output or "error" in r.output)
    r = run("scan", DATA / "imports" / "trivy-debian-buster.json", "--db", db)
    assert r.exit_code == 2 and "is not an SBOM" in r.output


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "mirror"
    (root / "npm").mkdir(parents=True)
    (root / "PyPI").mkdir()
    with zipfile.ZipFile(root / "npm" / "all.zip", "w") as zf:
        zf.write(DATA / "osv" / "GHSA-35jh-r3h4-6jhm.json", "GHSA-35jh-r3h4-6jhm.json")
    (root / "PyPI" / "all.zip").write_text("not a zip")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):  # quiet
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()


def test_update_from_a_mirror(mirror: str, tmp_path: Path) -> None:
    path = tmp_path / "u.db"
    r = run("db", "update", "--db", path, "--mirror", mirror, "-e", "npm")
    assert r.exit_code == 0, r.output
    assert "1 records" in r.output
    # a broken export: one line, and the database is left as it was
    r = run("db", "update", "--db", path, "--mirror", mirror, "-e", "PyPI")
    assert r.exit_code == 2 and "is not a zip archive" in r.output and "unchanged" in r.output
    r = run("db", "update", "--db", path, "--mirror", mirror, "-e", "Go")
    assert r.exit_code == 2 and "HTTP 404" in r.output
    assert json.loads(run("db", "info", "--db", path, "-o", "json").output)["records"] == 1


def test_update_without_network_is_one_clear_line(tmp_path: Path) -> None:
    # nothing listens on port 9 of loopback: the same path as no network at all
    r = run(
        "db",
        "update",
        "--db",
        tmp_path / "n.db",
        "--mirror",
        "http://127.0.0.1:9",
        "-e",
        "npm",
        "--timeout",
        "2",
    )
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "update failed, the database is unchanged: cannot reach" in lines[0]


def test_import_live_ecr_through_moto(monkeypatch) -> None:
    import boto3
    import requests

    from tests.conftest import moto_endpoint

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    enhanced = json.loads((DATA / "imports" / "ecr-enhanced.json").read_text())
    with moto_endpoint() as url:
        ecr = boto3.client("ecr", region_name="us-east-1", endpoint_url=url)
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
        r = run(
            "import",
            "--ecr",
            "shop/api:2.4.1",
            "--region",
            "us-east-1",
            "--endpoint-url",
            url,
            "-o",
            "json",
            "--fail-on",
            "never",
        )
        assert r.exit_code == 0, r.output
        (img,) = json.loads(r.output)["images"]
        assert {v["id"] for v in img["vulnerabilities"]} == {"CVE-2019-18224", "CVE-2019-18276"}
        r = run("import", "--ecr", "shop/missing:1", "--region", "us-east-1", "--endpoint-url", url)
        assert r.exit_code == 2 and "AWS: RepositoryNotFoundException" in r.output
