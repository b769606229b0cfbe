"""Bad input never crashes and is never a silent empty inventory: corrupt and truncated layers,
digest mismatches, unknown media types, registry errors (401/404/429/5xx, with retries), malformed
package databases."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kubestrata.findings import GapReason
from kubestrata.image.blobs import ImageReadError
from kubestrata.image.inventory import ImageReader, inventory_of
from kubestrata.image.registry import RetryPolicy
from tests.image.imagebuild import (
    DATA,
    DEBIAN_OS_RELEASE,
    DPKG_STATUS,
    OCI_MANIFEST,
    F,
    Image,
    Layer,
    layer,
    sha,
    write_layout,
)


def _layout(tmp_path: Path, img: Image) -> str:
    write_layout(tmp_path / "lay", {"t": img})
    return f"oci:{tmp_path / 'lay'}:t"


def _good_layer() -> Layer:
    return layer([F("etc/os-release", DEBIAN_OS_RELEASE), F("var/lib/dpkg/status", DPKG_STATUS)])


def _gap_details(inv: object) -> list[str]:
    return [f"{g.reason.value} {g.subject}: {g.detail}" for g in inv.gaps]  # type: ignore[attr-defined]


def test_corrupt_layer_is_a_gap_and_the_rest_is_read(tmp_path: Path) -> None:
    garbage = b"\x1f\x8b" + b"not really gzip" * 50
    bad = Layer(garbage, sha(garbage), "application/vnd.oci.image.layer.v1.tar+gzip")
    inv = inventory_of(_layout(tmp_path, Image([_good_layer(), bad])))
    assert {p.name for p in inv.packages} == {"libssl3", "tzdata", "bsdutils"}
    assert len(inv.gaps) == 1 and inv.gaps[0].reason is GapReason.INVALID
    assert bad.digest in inv.gaps[0].subject and "layer unreadable" in inv.gaps[0].detail


def test_truncated_layer(tmp_path: Path) -> None:
    full = _good_layer().blob
    cut = full[: len(full) // 2]
    inv = inventory_of(
        _layout(tmp_path, Image([Layer(cut, sha(cut), "application/vnd.oci.image.layer.v1.tar+gzip")]))
    )
    details = _gap_details(inv)
    assert any(
        "layer unreadable" in d and ("truncated" in d or "EOF" in d or "ReadError" in d) for d in details
    ), details
    assert any(g.reason is GapReason.MISSING_INPUT for g in inv.gaps)


def test_layer_blob_that_does_not_match_its_digest(tmp_path: Path) -> None:
    img = Image([_good_layer()])
    source = _layout(tmp_path, img)
    blob = tmp_path / "lay" / "blobs" / "sha256" / img.layers[0].digest.split(":")[1]
    tampered = gzip.compress(
        gzip.decompress(blob.read_bytes()).replace(b"3.0.11-1~deb12u2", b"9.9.99-9~deb12u9")
    )
    blob.write_bytes(tampered)
    inv = inventory_of(source)
    assert inv.packages == []  # the tampered layer's files are not trusted
    assert any("DigestMismatch" in d or "hashes to" in d for d in _gap_details(inv))


def test_manifest_that_does_not_match_its_digest(tmp_path: Path) -> None:
    img = Image([_good_layer()])
    source = _layout(tmp_path, img)
    path = tmp_path / "lay" / "blobs" / "sha256" / img.digest.split(":")[1]
    path.write_bytes(path.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion":2'))
    with pytest.raises(ImageReadError, match="hashes to"):
        inventory_of(source)


def test_unknown_media_types(tmp_path: Path) -> None:
    img = Image([_good_layer()])
    source = _layout(tmp_path, img)
    manifest_path = tmp_path / "lay" / "blobs" / "sha256" / img.digest.split(":")[1]
    doc = json.loads(manifest_path.read_bytes())

    def rewrite(d: dict) -> None:
        body = json.dumps(d).encode()
        (tmp_path / "lay" / "blobs" / "sha256" / sha(body).split(":")[1]).write_bytes(body)
        idx = json.loads((tmp_path / "lay" / "index.json").read_text())
        idx["manifests"][0].update(digest=sha(body), size=len(body), mediaType=d["mediaType"])
        (tmp_path / "lay" / "index.json").write_text(json.dumps(idx))

    # an unknown layer type: that layer is a gap
    d = json.loads(json.dumps(doc))
    d["layers"].append(
        {"mediaType": "application/vnd.example.wasm.v1", "digest": img.layers[0].digest, "size": 1}
    )
    rewrite(d)
    inv = inventory_of(source)
    assert {p.name for p in inv.packages} == {"libssl3", "tzdata", "bsdutils"}
    assert [g.reason for g in inv.gaps] == [GapReason.UNKNOWN_KIND]
    # an artifact, not an image: the image cannot be read
    d = json.loads(json.dumps(doc))
    d["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
    rewrite(d)
    with pytest.raises(ImageReadError, match="not a container image"):
        inventory_of(source)
    # an unknown manifest type
    d = json.loads(json.dumps(doc))
    d["mediaType"] = "application/vnd.example.manifest.v9+json"
    rewrite(d)
    with pytest.raises(ImageReadError, match="unsupported manifest media type"):
        inventory_of(source)


def test_zstd_layer_without_zstandard_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if not installed
    frame = b"\x28\xb5\x2f\xfd" + b"\x00" * 32
    inv = inventory_of(
        _layout(
            tmp_path,
            Image([_good_layer(), Layer(frame, sha(frame), "application/vnd.oci.image.layer.v1.tar+zstd")]),
        )
    )
    assert any(g.reason is GapReason.UNKNOWN_KIND and "zstandard" in g.detail for g in inv.gaps)
    assert len(inv.packages) == 3


@pytest.mark.parametrize(
    ("path", "data", "expected"),
    [
        (
            "var/lib/dpkg/status",
            b"Package: broken\nDescription: no version\n\nPackage: ok\nVersion: 1\n",
            "1 of 2 entries malformed",
        ),
        ("var/lib/dpkg/status", b"\x00\x01\x02 binary junk \xff\xfe", "no readable entries"),
        ("lib/apk/db/installed", b"P:nover\nA:x86_64\n", "1 of 1 entries malformed"),
        ("var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\x00" + b"\x00" * 200, "rpm database unreadable"),
        ("var/lib/rpm/rpmdb.sqlite", b"not sqlite at all", "rpm database unreadable"),
        ("var/lib/rpm/Packages", b"\x00" * 4096, "not a Berkeley DB hash database"),
        ("var/lib/rpm/Packages.db", b"\x00" * 4096, "NDB database (SUSE) is not read"),
        (
            "var/lib/rpm/Packages",
            (DATA / "rpm" / "libuuid-Packages.bdb").read_bytes()[:20000],
            "overflow chain broken",
        ),
        ("srv/package-lock.json", b"{not json", "not JSON"),
        ("srv/app.jar", b"PK\x03\x04 truncated zip", "not a readable zip archive"),
        ("usr/lib/python3/x-1.dist-info/METADATA", b"Summary: no name\n", "without Name and Version"),
    ],
)
def test_malformed_package_databases(tmp_path: Path, path: str, data: bytes, expected: str) -> None:
    inv = inventory_of(
        _layout(tmp_path, Image([layer([F("etc/os-release", DEBIAN_OS_RELEASE), F(path, data)])]))
    )
    assert any(expected in g.detail and path in g.subject for g in inv.gaps), _gap_details(inv)


def test_corrupt_rpm_header_is_counted(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "rpmdb.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)")
    good = (DATA / "rpm" / "curl.hdr").read_bytes()
    conn.execute("INSERT INTO Packages (blob) VALUES (?)", (good,))
    conn.execute("INSERT INTO Packages (blob) VALUES (?)", (good[:40],))  # index says more than there is
    conn.commit()
    conn.close()
    inv = inventory_of(_layout(tmp_path, Image([layer([F("var/lib/rpm/rpmdb.sqlite", db.read_bytes())])])))
    assert [p.name for p in inv.packages] == ["curl"]
    assert any("1 of 2 entries malformed" in g.detail for g in inv.gaps)


def test_go_binary_with_a_broken_header(tmp_path: Path) -> None:
    elf = bytearray((DATA / "go" / "go-inline.elf").read_bytes())
    at = elf.find(b"\xff Go buildinf:")
    elf[at + 32] = 0xFF  # the version string's varint length now runs past the end
    elf[at + 33 : at + 43] = b"\xff" * 10
    inv = inventory_of(_layout(tmp_path, Image([layer([F("usr/bin/app", bytes(elf), mode=0o755)])])))
    assert any("Go build info unreadable" in g.detail for g in inv.gaps), _gap_details(inv)


def test_docker_archive_that_is_not_a_tar(tmp_path: Path) -> None:
    bad = tmp_path / "x.tar"
    bad.write_bytes(b"this is not a tar file" * 100)
    with pytest.raises(ImageReadError, match="not a readable tar archive|manifest.json"):
        inventory_of(f"docker-archive:{bad}")


def test_source_strings_that_are_malformed() -> None:
    for source, message in [
        ("Registry.Example.com/UPPER/case:1", "malformed repository name"),
        ("example.com/a@sha256:abc", "malformed digest"),
        ("oci:/nonexistent-dir-kubestrata", "no such directory"),
        ("oci-archive:/nonexistent-kubestrata.tar", "not a readable tar archive"),
    ]:
        with pytest.raises(ImageReadError, match=message):
            inventory_of(source)


# --- registry errors, from a scripted registry -------------------------------------------------


@dataclass
class Script:
    img: Image
    failures: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server  # type: ignore[assignment]

    def do_GET(self) -> None:  # noqa: N802
        script = self.server.script
        script.seen.append(self.path)
        for prefix, queue in script.failures.items():
            if prefix in self.path and queue:
                status, headers = queue.pop(0)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        img = script.img
        if "/manifests/" in self.path:
            body, ct = img.manifest_bytes, OCI_MANIFEST
            digest = script.failures.get("@digest-header", [(0, {"d": img.digest})])[0][1]["d"]
            headers = {"Content-Type": ct, "Docker-Content-Digest": digest}
        elif "/blobs/" in self.path:
            body = img.blobs().get(self.path.rsplit("/", 1)[1], b"")
            headers = {"Content-Type": "application/octet-stream"}
            if not body:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        else:
            body, headers = b"{}", {}
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    script: Script


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script(Image([_good_layer()]))
    server = _Server(("127.0.0.1", 0), _Handler)
    server.script = script
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()


def _reader(sleeps: list[float]) -> ImageReader:
    return ImageReader(
        insecure=True, retry=RetryPolicy(attempts=4, backoff=0.25, max_wait=5, sleep=sleeps.append)
    )


def test_429_and_5xx_are_retried_with_retry_after(scripted: tuple[str, Script]) -> None:
    host, script = scripted
    script.failures = {
        "/manifests/": [(429, {"Retry-After": "2"}), (503, {})],
        "/blobs/": [(502, {}), (429, {"Retry-After": "3600"})],
    }
    sleeps: list[float] = []
    with _reader(sleeps) as reader:
        inv = reader.inventory(f"{host}/app/x:1")
        assert reader.registry.stats.retries == 4
    assert len(inv.packages) == 3
    # Retry-After honoured (2 s); then backoff 0.5 s; 0.25 s; an hour's Retry-After cut to 5 s
    assert sleeps == [2.0, 0.5, 0.25, 5]


def test_5xx_that_persists_gives_up(scripted: tuple[str, Script]) -> None:
    host, script = scripted
    script.failures = {"/manifests/": [(503, {})] * 10}
    sleeps: list[float] = []
    with pytest.raises(ImageReadError, match=r"manifest 1: HTTP 503 \(gave up after retries\)"):
        _reader(sleeps).inventory(f"{host}/app/x:1")
    assert len(sleeps) == 3


@pytest.mark.parametrize(
    ("status", "message"), [(401, "unauthorised"), (403, "forbidden"), (404, "not found")]
)
def test_client_errors_are_not_retried(scripted: tuple[str, Script], status: int, message: str) -> None:
    host, script = scripted
    script.failures = {"/manifests/": [(status, {})] * 3}
    sleeps: list[float] = []
    with pytest.raises(ImageReadError, match=message):
        _reader(sleeps).inventory(f"{host}/app/x:1")
    assert sleeps == []


def test_wrong_docker_content_digest(scripted: tuple[str, Script]) -> None:
    host, script = scripted
    script.failures = {"@digest-header": [(0, {"d": "sha256:" + "0" * 64})]}
    with pytest.raises(ImageReadError, match="Docker-Content-Digest"):
        _reader([]).inventory(f"{host}/app/x:1")


def test_missing_layer_blob_is_a_gap(scripted: tuple[str, Script]) -> None:
    host, script = scripted
    script.failures = {f"/blobs/{script.img.layers[0].digest}": [(404, {})] * 2}
    inv = _reader([]).inventory_or_gap(f"{host}/app/x:1")
    assert inv.digest == script.img.digest
    assert any(g.reason is GapReason.ERROR and "not found" in g.detail for g in inv.gaps)


def test_inventory_or_gap_for_an_unreadable_image(scripted: tuple[str, Script]) -> None:
    host, script = scripted
    script.failures = {"/manifests/": [(404, {})]}
    inv = _reader([]).inventory_or_gap(f"{host}/app/x:1")
    assert inv.digest == "" and inv.packages == []
    assert [g.reason for g in inv.gaps] == [GapReason.ERROR]


def test_blob_redirect_to_object_storage_drops_the_registry_credentials(scripted: tuple[str, Script]) -> None:
    """Registries (ECR, Docker Hub) answer blob GETs with a redirect to object storage: followed, and
    the registry's Authorization header is not sent to the other host."""
    host, script = scripted
    seen_auth: list[str | None] = []

    class Storage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen_auth.append(self.headers.get("Authorization"))
            body = script.img.blobs()[self.path.rsplit("/", 1)[1]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    storage = ThreadingHTTPServer(("127.0.0.1", 0), Storage)
    threading.Thread(target=storage.serve_forever, daemon=True).start()
    try:
        target = f"http://localhost:{storage.server_address[1]}/bucket"
        digests = list(script.img.blobs())
        script.failures = {f"/blobs/{d}": [(307, {"Location": f"{target}/{d}"})] for d in digests}
        from kubestrata.image.registry import Credentials

        reader = ImageReader(insecure=True, credentials=Credentials("u", "p"))
        reader.registry._tokens[(host, "repository:app/x:pull")] = "Basic dTpw"  # as after a 401
        inv = reader.inventory(f"{host}/app/x:1")
    finally:
        storage.shutdown()
    assert len(inv.packages) == 3 and inv.gaps == []
    assert len(seen_auth) == 2 and seen_auth == [None, None]


def test_ecr_hosts_get_ecr_credentials_without_being_told(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubestrata.image import registry as registry_mod

    asked: list[object] = []

    def fake(auth: object) -> registry_mod.Credentials:
        asked.append(auth)
        return registry_mod.Credentials("AWS", "pw")

    monkeypatch.setattr(registry_mod, "ecr_credentials", fake)
    client = registry_mod.RegistryClient()
    host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert client._credentials_for(host) == registry_mod.Credentials("AWS", "pw")
    assert asked == [registry_mod.EcrAuth(region="eu-west-1", registry_id="123456789012")]
    client._credentials_for(host)
    assert len(asked) == 1  # once per run
    assert client._credentials_for("ghcr.io") is None


def test_docker_archive_layer_that_does_not_match_its_diff_id(tmp_path: Path) -> None:
    from tests.image.imagebuild import docker_save

    good = _good_layer()
    bad = Layer(good.blob, "sha256:" + "1" * 64, good.media_type)  # the config claims another diff_id
    path = docker_save(tmp_path / "save.tar", {"x/y:1": Image([bad])})
    inv = inventory_of(f"docker-archive:{path}")
    assert inv.packages == []
    assert any("hashes to" in g.detail for g in inv.gaps), _gap_details(inv)


def test_manifest_by_digest_that_hashes_to_something_else(scripted: tuple[str, Script]) -> None:
    host, _ = scripted
    other = "sha256:" + "2" * 64
    with pytest.raises(ImageReadError, match=f"manifest {other}: content hashes to sha256:"):
        _reader([]).inventory(f"{host}/app/x@{other}")
