"""Inventory of real OCI layouts and docker-save archives: every package database kind, whiteouts,
last-write-wins, purls and source packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubestrata.findings import GapReason
from kubestrata.image.inventory import ImageReader, inventory_of
from tests.image import images
from tests.image.imagebuild import docker_save, write_layout


def test_full_image_from_oci_layout(tmp_path: Path) -> None:
    img = images.full_image()
    write_layout(tmp_path / "lay", {"v1": img})
    inv = inventory_of(f"oci:{tmp_path / 'lay'}:v1")
    assert images.keys(inv) == images.FULL_EXPECTED
    assert inv.digest == img.digest
    assert inv.platform == "linux/amd64"
    assert inv.os_release["ID"] == "debian"  # through the etc/os-release symlink
    assert inv.gaps == []
    by_name = {(p.name, p.path): p for p in inv.packages}
    ssl = by_name[("libssl3", images.DPKG_PATH)]
    assert ssl.source_name == "openssl" and ssl.release == "12"
    assert ssl.purl == "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"
    assert by_name[("bsdutils", images.DPKG_PATH)].source_name == "util-linux"
    assert by_name[("tzdata", images.DPKG_PATH)].layer == img.layers[2].digest  # the upper layer wrote it
    assert by_name[("@babel/core", "srv/web/package-lock.json")].purl == "pkg:npm/%40babel/core@7.24.0"
    assert (
        by_name[("legacy-thing", "opt/legacy/Legacy_Thing.egg-info/PKG-INFO")].purl
        == "pkg:pypi/legacy-thing@0.9"
    )
    assert (
        by_name[("github.com/gorilla/mux", "usr/local/bin/server")].purl
        == "pkg:golang/github.com/gorilla/mux@v1.8.1"
    )
    log4j = by_name[
        ("org.apache.logging.log4j:log4j-core", "opt/app/app.jar!/BOOT-INF/lib/log4j-core-2.14.1.jar")
    ]
    assert log4j.purl == "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
    assert inv.config.env["GITHUB_TOKEN"].startswith("ghp_")
    assert inv.config.exposed_ports == ["8080/tcp"]


def test_alpine_rpm_distroless(tmp_path: Path) -> None:
    write_layout(
        tmp_path / "lay",
        {
            "alpine": images.alpine_image(),
            "rpm": images.rpm_image(),
            "distroless": images.distroless_image(),
        },
    )
    with ImageReader() as reader:
        alpine = reader.inventory(f"oci:{tmp_path / 'lay'}:alpine")
        rpm = reader.inventory(f"oci:{tmp_path / 'lay'}:rpm")
        distroless = reader.inventory(f"oci:{tmp_path / 'lay'}:distroless")
    assert images.keys(alpine) == images.ALPINE_EXPECTED
    crypto = next(p for p in alpine.packages if p.name == "libcrypto3")
    assert (crypto.source_name, crypto.release) == ("openssl", "3.19")
    assert crypto.purl == "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1"

    assert images.keys(rpm) == images.RPM_EXPECTED
    ca = next(p for p in rpm.packages if p.name == "ca-certificates-base")
    assert ca.source_name == "ca-certificates"
    assert ca.purl == "pkg:rpm/amzn/ca-certificates-base@2.0.0-1.cm2?arch=noarch&distro=amzn-2023&epoch=1"
    assert next(p for p in rpm.packages if p.name == "curl").source_name == "curl"

    assert images.keys(distroless) == images.DISTROLESS_EXPECTED
    assert next(p for p in distroless.packages if p.name == "libc6").source_name == "glibc"
    assert distroless.config.user == "65532"


def test_whiteout_of_a_package_database_leaves_a_named_gap(tmp_path: Path) -> None:
    write_layout(tmp_path / "lay", {"w": images.wiped_image()})
    inv = inventory_of(f"oci:{tmp_path / 'lay'}:w")
    assert inv.packages == []
    assert [g.reason for g in inv.gaps] == [GapReason.MISSING_INPUT]  # never a silent empty inventory


@pytest.mark.parametrize("style", ["legacy", "oci"])
def test_docker_save_archive(tmp_path: Path, style: str) -> None:
    img = images.full_image()
    other = images.alpine_image()
    path = docker_save(tmp_path / "save.tar", {"example/full:1": img, "example/alpine:3": other}, style=style)
    inv = inventory_of(f"docker-archive:{path}:example/full:1")
    assert images.keys(inv) == images.FULL_EXPECTED
    assert inv.gaps == []
    assert inv.digest.startswith("sha256:")  # the image ID: docker save has no manifest digest
    alpine = inventory_of(f"docker-archive:{path}:example/alpine:3")
    assert images.keys(alpine) == images.ALPINE_EXPECTED


def test_layer_shared_between_images_is_read_once(tmp_path: Path) -> None:
    a, b = images.full_image(), images.full_image()
    b.config = {"User": "1000"}  # another image (config differs), the same layers
    write_layout(tmp_path / "lay", {"a": a, "b": b})
    with ImageReader() as reader:
        ia = reader.inventory(f"oci:{tmp_path / 'lay'}:a")
        ib = reader.inventory(f"oci:{tmp_path / 'lay'}:b")
        again = reader.inventory(f"oci:{tmp_path / 'lay'}:a")
        assert reader.stats.layers_read == 3
        assert reader.stats.layer_cache_hits == 3
        assert reader.stats.images_read == 2
    assert ia.digest != ib.digest and images.keys(ia) == images.keys(ib) == images.FULL_EXPECTED
    assert again.digest == ia.digest


def test_upper_layer_replacing_a_go_binary_removes_its_modules(tmp_path: Path) -> None:
    from tests.image.imagebuild import DATA, F, Image, layer

    go = (DATA / "go" / "go-inline.elf").read_bytes()
    img = Image(
        [
            layer([F("usr/local/bin/server", go, mode=0o755), F("usr/local/bin/kept", go, mode=0o755)]),
            layer([F("usr/local/bin/server", b"#!/bin/sh\necho replaced\n" + b"#" * 2048, mode=0o755)]),
        ]
    )
    write_layout(tmp_path / "lay", {"g": img})
    inv = inventory_of(f"oci:{tmp_path / 'lay'}:g")
    assert {p.path for p in inv.packages} == {"usr/local/bin/kept"}


def test_zstd_layer(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    from tests.image.imagebuild import DEBIAN_OS_RELEASE, DPKG_STATUS, F, Image, Layer, sha, tar_bytes

    raw = tar_bytes([F("etc/os-release", DEBIAN_OS_RELEASE), F("var/lib/dpkg/status", DPKG_STATUS)])
    blob = zstandard.ZstdCompressor().compress(raw)
    img = Image([Layer(blob, sha(raw), "application/vnd.oci.image.layer.v1.tar+zstd")])
    write_layout(tmp_path / "lay", {"z": img})
    inv = inventory_of(f"oci:{tmp_path / 'lay'}:z")
    assert {p.name for p in inv.packages} == {"libssl3", "tzdata", "bsdutils"} and inv.gaps == []


def test_rpm_berkeley_db(tmp_path: Path) -> None:
    """rpm < 4.16 (RHEL 8, Amazon Linux 2): a Berkeley DB hash file, here go-rpmdb's real libuuid one."""
    from tests.image.imagebuild import DATA, F, Image, layer

    os_release = b'NAME="Red Hat Enterprise Linux"\nID="rhel"\nVERSION_ID="8.8"\n'
    db = (DATA / "rpm" / "libuuid-Packages.bdb").read_bytes()
    img = Image([layer([F("etc/os-release", os_release), F("var/lib/rpm/Packages", db)])])
    write_layout(tmp_path / "lay", {"r": img})
    inv = inventory_of(f"oci:{tmp_path / 'lay'}:r")
    assert images.keys(inv) == {("Red Hat", "libuuid", "2.32.1-42.el8_8", "var/lib/rpm/Packages")}
    (p,) = inv.packages
    assert (p.source_name, p.release) == ("util-linux", "8.8")
    assert p.purl == "pkg:rpm/rhel/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=rhel-8.8"
    assert inv.gaps == []


def test_os_packages_without_os_release_say_so(tmp_path: Path) -> None:
    from tests.image.imagebuild import APK_INSTALLED, F, Image, layer

    write_layout(tmp_path / "lay", {"a": Image([layer([F("lib/apk/db/installed", APK_INSTALLED)])])})
    inv = inventory_of(f"oci:{tmp_path / 'lay'}:a")
    assert {(p.ecosystem, p.release) for p in inv.packages} == {("Alpine", None)}
    assert [(g.reason, g.subject) for g in inv.gaps] == [(GapReason.MISSING_INPUT, "lib/apk/db/installed")]
    assert "release is unknown" in inv.gaps[0].detail


def test_oci_archive(tmp_path: Path) -> None:
    """An OCI layout in a tar (docker buildx --output type=oci), read in place."""
    import tarfile

    write_layout(tmp_path / "lay", {"a": images.alpine_image(), "d": images.distroless_image()})
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("oci-layout", "index.json", "blobs"):
            tar.add(tmp_path / "lay" / name, arcname=name)
    assert images.keys(inventory_of(f"oci-archive:{archive}:a")) == images.ALPINE_EXPECTED
    assert images.keys(inventory_of(f"oci-archive:{archive}:d")) == images.DISTROLESS_EXPECTED
