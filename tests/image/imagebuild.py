"""Real images for the tests: tar layers (gzip or plain), OCI manifests and indexes, written as OCI
layouts or docker-save archives, or pushed to a registry over the distribution API (monolithic blob
upload: POST then PUT ?digest=)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import sqlite3
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DATA = Path(__file__).parent / "data"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class F:
    """One tar entry: a file (data), a symlink (link), a directory (is_dir)."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    link: str | None = None
    is_dir: bool = False


def wh(path: str) -> F:
    head, _, base = path.rpartition("/")
    return F(f"{head}/.wh.{base}" if head else f".wh.{base}")


def opaque(directory: str) -> F:
    return F(f"{directory}/.wh..wh..opq")


@dataclass
class Layer:
    blob: bytes
    diff_id: str
    media_type: str

    @property
    def digest(self) -> str:
        return sha(self.blob)


def tar_bytes(entries: list[F]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.path)
            info.mode = e.mode
            info.mtime = 1700000000
            if e.link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = e.link
                tar.addfile(info)
            elif e.is_dir:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


def layer(entries: list[F], compression: str = "gzip") -> Layer:
    raw = tar_bytes(entries)
    if compression == "gzip":
        return Layer(gzip.compress(raw, mtime=0), sha(raw), "application/vnd.oci.image.layer.v1.tar+gzip")
    return Layer(raw, sha(raw), "application/vnd.oci.image.layer.v1.tar")


@dataclass
class Image:
    layers: list[Layer]
    config: dict = field(default_factory=dict)  # the "config" member (User, Env, ExposedPorts, ...)
    history: list[str] = field(default_factory=list)
    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None

    @property
    def config_bytes(self) -> bytes:
        doc = {
            "architecture": self.architecture,
            "os": self.os,
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": [x.diff_id for x in self.layers]},
            "history": [{"created_by": h} for h in self.history],
        }
        if self.variant:
            doc["variant"] = self.variant
        return json.dumps(doc).encode()

    @property
    def manifest_bytes(self) -> bytes:
        cfg = self.config_bytes
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha(cfg), "size": len(cfg)},
                "layers": [
                    {"mediaType": x.media_type, "digest": x.digest, "size": len(x.blob)} for x in self.layers
                ],
            },
            indent=1,
        ).encode()

    @property
    def digest(self) -> str:
        return sha(self.manifest_bytes)

    def blobs(self) -> dict[str, bytes]:
        out = {x.digest: x.blob for x in self.layers}
        out[sha(self.config_bytes)] = self.config_bytes
        return out

    @property
    def platform(self) -> dict:
        p = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            p["variant"] = self.variant
        return p


def index_bytes(images: list[Image]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": img.digest,
                    "size": len(img.manifest_bytes),
                    "platform": img.platform,
                }
                for img in images
            ],
        }
    ).encode()


def write_layout(directory: Path, tagged: dict[str, Image | list[Image]]) -> Path:
    """An OCI image layout holding each tag (an image, or a multi-arch index of images)."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entries = []

    def put(data: bytes) -> str:
        d = sha(data)
        (blobs / d.split(":")[1]).write_bytes(data)
        return d

    for tag, what in tagged.items():
        images = what if isinstance(what, list) else [what]
        for img in images:
            for data in img.blobs().values():
                put(data)
            put(img.manifest_bytes)
        if isinstance(what, list):
            body, mt = index_bytes(images), OCI_INDEX
        else:
            body, mt = what.manifest_bytes, OCI_MANIFEST
        entries.append(
            {
                "mediaType": mt,
                "digest": put(body),
                "size": len(body),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        )
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return directory


def docker_save(path: Path, tagged: dict[str, Image], style: str = "legacy") -> Path:
    """A `docker save` tar: legacy (<id>/layer.tar, <hex>.json) or current moby (blobs/sha256/...)."""
    with tarfile.open(path, "w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        items = []
        for tag, img in tagged.items():
            cfg = img.config_bytes
            layers = []
            for i, x in enumerate(img.layers):
                raw = gzip.decompress(x.blob) if x.blob[:2] == b"\x1f\x8b" else x.blob
                if style == "legacy":
                    name = f"{hashlib.sha256(f'{tag}{i}'.encode()).hexdigest()}/layer.tar"
                else:
                    name = f"blobs/sha256/{x.diff_id.split(':')[1]}"
                add(name, raw)
                layers.append(name)
            cfg_name = (
                f"{sha(cfg).split(':')[1]}.json"
                if style == "legacy"
                else f"blobs/sha256/{sha(cfg).split(':')[1]}"
            )
            add(cfg_name, cfg)
            items.append({"Config": cfg_name, "RepoTags": [tag], "Layers": layers})
        add("manifest.json", json.dumps(items).encode())
        if style != "legacy":
            add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
            add("index.json", json.dumps({"schemaVersion": 2, "manifests": []}).encode())
    return path


class Pusher:
    """Pushes blobs and manifests with the distribution API; follows a Bearer challenge with the
    given credentials."""

    def __init__(self, base: str, username: str | None = None, password: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.http = httpx.Client(timeout=60)
        self.creds = (username, password) if username else None
        self.auth: dict[str, str] = {}

    def _do(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kw: object
    ) -> httpx.Response:
        resp = self.http.request(method, url, headers={**(headers or {}), **self.auth}, **kw)  # type: ignore[arg-type]
        if resp.status_code == 401:
            self._login(resp.headers.get("www-authenticate", ""))
            resp = self.http.request(method, url, headers={**(headers or {}), **self.auth}, **kw)  # type: ignore[arg-type]
        return resp

    def _login(self, challenge: str) -> None:
        from kubestrata.image.registry import parse_challenge

        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            user, pw = self.creds or ("", "")
            self.auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}
            return
        # the challenge lists the actions in any order: ask for both
        repo = params.get("scope", "").split(":")[1] if params.get("scope") else ""
        scope = f"repository:{repo}:pull,push" if repo else ""
        r = self.http.get(
            params["realm"], params={"service": params["service"], "scope": scope}, auth=self.creds
        )
        r.raise_for_status()
        self.auth = {"Authorization": f"Bearer {r.json()['token']}"}

    def blob(self, repo: str, data: bytes) -> str:
        d = sha(data)
        r = self._do("POST", f"{self.base}/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, (r.status_code, r.text)
        loc = httpx.URL(self.base).join(r.headers["location"])
        r = self._do(
            "PUT",
            str(loc.copy_merge_params({"digest": d})),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, (r.status_code, r.text)
        return d

    def manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> None:
        r = self._do(
            "PUT",
            f"{self.base}/v2/{repo}/manifests/{ref}",
            content=body,
            headers={"Content-Type": media_type},
        )
        assert r.status_code == 201, (r.status_code, r.text)

    def image(self, repo: str, tag: str | None, img: Image) -> str:
        for data in img.blobs().values():
            self.blob(repo, data)
        self.manifest(repo, tag or img.digest, img.manifest_bytes, OCI_MANIFEST)
        return img.digest

    def index(self, repo: str, tag: str, images: list[Image]) -> str:
        for img in images:
            self.image(repo, None, img)
        body = index_bytes(images)
        self.manifest(repo, tag, body, OCI_INDEX)
        return sha(body)


# --- package databases ---------------------------------------------------------------------------

DEBIAN_OS_RELEASE = (
    b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    b'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)
DPKG_STATUS = b"""Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6175
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols.

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
Description: time zone and daylight-saving time data

Package: bsdutils
Essential: yes
Status: install ok installed
Architecture: amd64
Source: util-linux (2.38.1-5)
Version: 1:2.38.1-5+b1
Description: basic utilities from 4.4BSD-Lite

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
Description: removed, only its configuration files remain
"""
DISTROLESS_STATUS_D = {
    "base-files": b"Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n",
    "libc6": b"Package: libc6\nSource: glibc\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\n",
}
ALPINE_OS_RELEASE = b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'
APK_INSTALLED = b"""C:Q1p78yvTLG2mdzVj1G/ei/VmE1ZI0=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407278
I:663552
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1705318385
c:e2f3d7fd2ea5d8d0f7bb8a1f2a7a5e0e4e4c6d0c
F:lib
R:ld-musl-x86_64.so.1

C:Q1V3b3zHZ8mTFg0UrRZ0mfOzH2rrA=
P:libcrypto3
V:3.1.4-r5
A:x86_64
L:Apache-2.0
o:openssl
F:usr/lib
R:libcrypto.so.3
"""


def rpmdb_sqlite(headers: list[str]) -> bytes:
    """An rpmdb.sqlite with rpm's schema holding the real header blobs of tests/image/data/rpm."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "rpmdb.sqlite")
        conn = sqlite3.connect(p)
        conn.execute("CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)")
        for name in headers:
            conn.execute(
                "INSERT INTO Packages (blob) VALUES (?)", ((DATA / "rpm" / f"{name}.hdr").read_bytes(),)
            )
        conn.commit()
        conn.close()
        return Path(p).read_bytes()


def jar(
    pom: dict[str, str] | None = None, manifest: str | None = None, nested: dict[str, bytes] | None = None
) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", manifest or "Manifest-Version: 1.0\r\nCreated-By: test\r\n")
        if pom:
            props = "".join(f"{k}={v}\n" for k, v in pom.items())
            zf.writestr(
                f"META-INF/maven/{pom['groupId']}/{pom['artifactId']}/pom.properties", "#Generated\n" + props
            )
        for name, data in (nested or {}).items():
            zf.writestr(name, data)
        zf.writestr("com/example/App.class", b"\xca\xfe\xba\xbe" + b"\x00" * 64)
    return buf.getvalue()
