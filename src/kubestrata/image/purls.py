"""Package URLs <-> the inventory model: an SBOM's purls become Packages matched like our own
inventory, and our Packages carry purls into the CycloneDX SBOM we write."""

from __future__ import annotations

import re

from kubestrata.image.model import Package

# purl type (and namespace for OS packages) -> OSV ecosystem
_OS_NAMESPACES = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "alpine": "Alpine",
    "wolfi": "Wolfi",
    "chainguard": "Chainguard",
    "redhat": "Red Hat",
    "rhel": "Red Hat",
    "almalinux": "AlmaLinux",
    "rocky": "Rocky Linux",
    "sles": "SUSE",
    "opensuse": "openSUSE",
    "amzn": "Amazon Linux",
    "amazon": "Amazon Linux",
    "centos": "CentOS",
}
_LANG = {
    "pypi": "PyPI",
    "npm": "npm",
    "golang": "Go",
    "maven": "Maven",
    "gem": "RubyGems",
    "nuget": "NuGet",
    "cargo": "crates.io",
    "composer": "Packagist",
}
_RELEASE = re.compile(r"(\d+(?:\.\d+)*)")
_DEBIAN_CODENAMES = {"bookworm": "12", "bullseye": "11", "buster": "10", "trixie": "13", "stretch": "9"}


def ecosystem_of(purl_type: str, namespace: str | None) -> str:
    if purl_type in ("deb", "apk", "rpm"):
        return _OS_NAMESPACES.get((namespace or "").lower(), (namespace or purl_type).capitalize())
    return _LANG.get(purl_type, purl_type)


def _release(distro: str | None) -> str | None:
    """``debian-12.5``, ``bookworm``, ``3.20.3``, ``alpine-3.17.2`` -> the version part."""
    if not distro:
        return None
    if distro in _DEBIAN_CODENAMES:
        return _DEBIAN_CODENAMES[distro]
    m = _RELEASE.search(distro)
    return m.group(1) if m else None


def package_from_purl(purl: str, *, path: str = "", source_name: str | None = None) -> Package:
    """A Package from a purl string; ValueError when it is not one."""
    from packageurl import PackageURL

    p = PackageURL.from_string(purl)
    eco = ecosystem_of(p.type, p.namespace)
    name = p.name
    if p.type == "npm" and p.namespace:
        name = f"{p.namespace}/{p.name}"
    elif p.type == "golang" and p.namespace:
        name = f"{p.namespace}/{p.name}"
    elif p.type == "maven" and p.namespace:
        name = f"{p.namespace}:{p.name}"
    q = p.qualifiers if isinstance(p.qualifiers, dict) else {}
    version = p.version or ""
    if p.type == "rpm" and q.get("epoch") and ":" not in version:
        version = f"{q['epoch']}:{version}"
    upstream = source_name or q.get("upstream")
    if upstream and p.type in ("deb", "apk", "rpm"):
        upstream = upstream.split("@", 1)[0].strip()
    return Package(
        name=name,
        version=version,
        ecosystem=eco,
        purl=purl,
        path=path,
        source_name=upstream or None,
        release=_release(q.get("distro")) if p.type in ("deb", "apk", "rpm") else None,
    )


def purl_of(pkg: Package) -> str:
    """The package's purl (as recorded by inventory, else built from its fields)."""
    if pkg.purl.startswith("pkg:"):
        return pkg.purl
    from packageurl import PackageURL

    typ = {v: k for k, v in _LANG.items()}.get(pkg.ecosystem, "generic")
    return PackageURL(type=typ, name=pkg.name, version=pkg.version).to_string()
