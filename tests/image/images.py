"""The test images, and the packages each must be found to hold (asserted exactly)."""

from __future__ import annotations

import json

from tests.image.imagebuild import (
    ALPINE_OS_RELEASE,
    APK_INSTALLED,
    DATA,
    DEBIAN_OS_RELEASE,
    DISTROLESS_STATUS_D,
    DPKG_STATUS,
    F,
    Image,
    jar,
    layer,
    opaque,
    rpmdb_sqlite,
    wh,
)

METADATA_REQUESTS = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: Python HTTP for Humans.\n\nLong description\n"
PKG_INFO_LEGACY = b"Metadata-Version: 1.0\nName: Legacy_Thing\nVersion: 0.9\n"
LOCK_V3 = json.dumps(
    {
        "name": "web",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "web", "version": "1.0.0"},
            "node_modules/express": {"version": "4.18.2"},
            "node_modules/@babel/core": {"version": "7.24.0", "dev": True},
            "node_modules/express/node_modules/debug": {"version": "2.6.9"},
        },
    }
).encode()


def full_image() -> Image:
    """Debian base + Python, npm, Go, Java on top; an upper layer that rewrites dpkg status,
    whites out a jar and a dist-info, and makes a node_modules directory opaque."""
    base = layer(
        [
            F("etc", is_dir=True),
            F("etc/os-release", link="../usr/lib/os-release"),
            F("usr/lib/os-release", DEBIAN_OS_RELEASE),
            F("var/lib/dpkg/status", DPKG_STATUS.replace(b"Version: 2024a-0+deb12u1", b"Version: 2023c-5")),
            F("usr/bin/true", b"\x7fELF" + b"\x02\x01\x01" + b"\x00" * 2000, mode=0o755),  # not Go
            F("usr/share/doc/readme.txt", b"filler " * 500),
        ]
    )
    apps = layer(
        [
            F("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", METADATA_REQUESTS),
            F("usr/lib/python3/dist-packages/gone-1.0.dist-info/METADATA", b"Name: gone\nVersion: 1.0\n"),
            F("opt/legacy/Legacy_Thing.egg-info/PKG-INFO", PKG_INFO_LEGACY),
            F("srv/web/package-lock.json", LOCK_V3),
            F("srv/web/node_modules/express/package.json", b'{"name": "express", "version": "4.18.2"}'),
            F("srv/web/node_modules/express/lib/package.json", b'{"name": "not-a-package", "version": "0"}'),
            F(
                "srv/web/node_modules/@babel/core/package.json",
                b'{"name": "@babel/core", "version": "7.24.0"}',
            ),
            F("srv/old/node_modules/left-pad/package.json", b'{"name": "left-pad", "version": "1.3.0"}'),
            F("usr/local/bin/server", (DATA / "go" / "go-inline.elf").read_bytes(), mode=0o755),
            F("usr/local/bin/legacy", (DATA / "go" / "go-pointer.elf").read_bytes(), mode=0o755),
            F(
                "opt/app/app.jar",
                jar(
                    {"groupId": "com.example", "artifactId": "app", "version": "1.0.0"},
                    nested={
                        "BOOT-INF/lib/log4j-core-2.14.1.jar": jar(
                            {
                                "groupId": "org.apache.logging.log4j",
                                "artifactId": "log4j-core",
                                "version": "2.14.1",
                            }
                        ),
                        "BOOT-INF/lib/guava.jar": jar(
                            manifest="Manifest-Version: 1.0\r\nImplementation-Title: guava\r\n"
                            "Implementation-Vendor-Id: com.google.guava\r\nImplementation-Version: 32.1.2.jre\r\n"
                        ),
                    },
                ),
            ),
            F("opt/app/old.jar", jar({"groupId": "org.old", "artifactId": "old", "version": "0.1"})),
        ]
    )
    upper = layer(
        [
            F("var/lib/dpkg/status", DPKG_STATUS),  # tzdata upgraded: the last write wins
            wh("opt/app/old.jar"),
            wh("usr/lib/python3/dist-packages/gone-1.0.dist-info"),
            opaque("srv/old/node_modules"),
        ],
        compression="none",
    )
    return Image(
        [base, apps, upper],
        config={
            "User": "",
            "Env": ["PATH=/usr/bin", "GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789"],
            "ExposedPorts": {"8080/tcp": {}},
        },
        history=[
            "/bin/sh -c #(nop) ADD file:abc in / ",
            "RUN /bin/sh -c curl -fsSL https://x.example/i.sh | sh",
        ],
    )


DPKG_PATH = "var/lib/dpkg/status"
FULL_EXPECTED = {
    ("Debian", "bsdutils", "1:2.38.1-5+b1", DPKG_PATH),
    ("Debian", "libssl3", "3.0.11-1~deb12u2", DPKG_PATH),
    ("Debian", "tzdata", "2024a-0+deb12u1", DPKG_PATH),
    ("PyPI", "requests", "2.31.0", "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA"),
    ("PyPI", "legacy-thing", "0.9", "opt/legacy/Legacy_Thing.egg-info/PKG-INFO"),
    ("npm", "express", "4.18.2", "srv/web/package-lock.json"),
    ("npm", "@babel/core", "7.24.0", "srv/web/package-lock.json"),
    ("npm", "debug", "2.6.9", "srv/web/package-lock.json"),
    ("npm", "express", "4.18.2", "srv/web/node_modules/express/package.json"),
    ("npm", "@babel/core", "7.24.0", "srv/web/node_modules/@babel/core/package.json"),
    ("Go", "example.com/app", "v1.2.3", "usr/local/bin/server"),
    ("Go", "github.com/gorilla/mux", "v1.8.1", "usr/local/bin/server"),
    ("Go", "golang.org/x/net", "v0.23.0", "usr/local/bin/server"),
    ("Go", "stdlib", "v1.22.1", "usr/local/bin/server"),
    ("Go", "github.com/pkg/errors", "v0.9.1", "usr/local/bin/legacy"),
    ("Go", "stdlib", "v1.16.15", "usr/local/bin/legacy"),
    ("Maven", "com.example:app", "1.0.0", "opt/app/app.jar"),
    (
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        "2.14.1",
        "opt/app/app.jar!/BOOT-INF/lib/log4j-core-2.14.1.jar",
    ),
    ("Maven", "com.google.guava:guava", "32.1.2.jre", "opt/app/app.jar!/BOOT-INF/lib/guava.jar"),
}


def alpine_image() -> Image:
    return Image([layer([F("etc/os-release", ALPINE_OS_RELEASE), F("lib/apk/db/installed", APK_INSTALLED)])])


ALPINE_EXPECTED = {
    ("Alpine", "musl", "1.2.4_git20230717-r4", "lib/apk/db/installed"),
    ("Alpine", "libcrypto3", "3.1.4-r5", "lib/apk/db/installed"),
}


def rpm_image() -> Image:
    os_release = b'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n'
    db = rpmdb_sqlite(["curl", "ca-certificates-base", "publicsuffix-list-dafsa"])
    return Image([layer([F("etc/os-release", os_release), F("var/lib/rpm/rpmdb.sqlite", db)])])


RPM_PATH = "var/lib/rpm/rpmdb.sqlite"
RPM_EXPECTED = {
    ("Amazon Linux", "curl", "7.76.0-6.cm2", RPM_PATH),
    ("Amazon Linux", "ca-certificates-base", "1:2.0.0-1.cm2", RPM_PATH),
    ("Amazon Linux", "publicsuffix-list-dafsa", "20210518-2.fc35", RPM_PATH),
}


def distroless_image() -> Image:
    files = [F("etc/os-release", DEBIAN_OS_RELEASE)]
    files += [F(f"var/lib/dpkg/status.d/{n}", d) for n, d in DISTROLESS_STATUS_D.items()]
    files.append(F("var/lib/dpkg/status.d/libc6.md5sums", b"abc  lib/x86_64-linux-gnu/libc.so.6\n"))
    return Image([layer(files)], config={"User": "65532"})


DISTROLESS_EXPECTED = {
    ("Debian", "base-files", "12.4+deb12u5", "var/lib/dpkg/status.d/base-files"),
    ("Debian", "libc6", "2.36-9+deb12u4", "var/lib/dpkg/status.d/libc6"),
}


def wiped_image() -> Image:
    """A package database deleted by a whiteout in an upper layer: nothing is installed."""
    return Image(
        [
            layer([F("etc/os-release", DEBIAN_OS_RELEASE), F("var/lib/dpkg/status", DPKG_STATUS)]),
            layer([wh("var/lib/dpkg/status")]),
        ]
    )


def keys(inv: object) -> set[tuple[str, str, str, str]]:
    return {(p.ecosystem, p.name, p.version, p.path) for p in inv.packages}  # type: ignore[attr-defined]
