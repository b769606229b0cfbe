"""What an image holds, as every image module reads and writes it.

Reading (registry, layout, archive) and inventory produce an ``ImageInventory``; vulnerability
matching, SBOM output, scanner imports and the scan's workload ranking consume it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubestrata.findings import CoverageGap


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package, named the way its vulnerability database names it."""

    name: str
    version: str
    ecosystem: (
        str  # OSV ecosystem name without release: "Debian", "Alpine", "PyPI", "npm", "Go", "Maven", ...
    )
    purl: str  # package URL (packageurl-python), e.g. pkg:deb/debian/openssl@3.0.11-1?distro=debian-12
    path: str = ""  # the file in the image that recorded it (dpkg status, METADATA, package.json, binary)
    layer: str | None = None  # digest of the layer that added it
    source_name: str | None = None  # the source package (dpkg Source:, apk origin, rpm sourcerpm) OSV keys on
    release: str | None = None  # distribution release for OS packages: "12" (Debian), "3.19" (Alpine)


@dataclass(slots=True)
class ImageConfig:
    """The runtime settings recorded in the image config blob."""

    user: str = ""  # "" means root
    env: dict[str, str] = field(default_factory=dict)
    exposed_ports: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)  # created_by of each history entry, in order
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    os: str = ""
    architecture: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ImageInventory:
    """One image, resolved to its digest, with what is installed in it and what could not be read."""

    reference: str  # as the workload or user named it
    digest: str  # manifest digest (sha256:...), the identity used to scan each image once
    platform: str = "linux/amd64"
    os_release: dict[str, str] = field(default_factory=dict)  # /etc/os-release key/values
    packages: list[Package] = field(default_factory=list)
    config: ImageConfig = field(default_factory=ImageConfig)
    gaps: list[CoverageGap] = field(default_factory=list)  # per image or per package database
