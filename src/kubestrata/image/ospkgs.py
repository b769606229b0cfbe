"""OS packages: the distribution from os-release, then dpkg (``status``, distroless ``status.d/*``),
apk (``lib/apk/db/installed``) and rpm (``rpmdb.sqlite``) databases. Packages are named as OSV names
them: the ecosystem from os-release ``ID`` (Debian, Ubuntu, Alpine, Red Hat, ...), ``release`` from
``VERSION_ID`` (Alpine: major.minor), ``source_name`` from dpkg ``Source:``, apk ``o:`` or rpm
SOURCERPM, the version as installed (rpm: ``epoch:version-release``).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from packageurl import PackageURL

from kubestrata.findings import CoverageGap, GapReason
from kubestrata.image.model import Package
from kubestrata.image.rpmdb import RpmHeaderError, bdb_blobs, parse_header, sqlite_blobs

Result = tuple[list[Package], list[CoverageGap]]

# os-release ID -> OSV ecosystem (ossf/osv-schema ecosystems.json); Amazon Linux is not one of OSV's
# but is named so that another feed (ALAS) can be matched
ECOSYSTEMS = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "alpine": "Alpine",
    "rhel": "Red Hat",
    "centos": "CentOS",
    "rocky": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "amzn": "Amazon Linux",
    "ol": "Oracle Linux",
    "fedora": "Fedora",
    "sles": "SUSE",
    "opensuse-leap": "openSUSE",
    "opensuse-tumbleweed": "openSUSE",
    "wolfi": "Wolfi",
    "chainguard": "Chainguard",
    "photon": "Photon OS",
    "mariner": "Azure Linux",
    "azurelinux": "Azure Linux",
}
# when there is no os-release: the family a package manager implies
_DEFAULT_ID = {"dpkg": "debian", "apk": "alpine", "rpm": "rhel"}


@dataclass(frozen=True, slots=True)
class Distro:
    id: str  # os-release ID
    version_id: str
    ecosystem: str
    release: str | None

    @property
    def qualifier(self) -> str | None:
        return f"{self.id}-{self.version_id}" if self.version_id else None


def parse_os_release(data: bytes) -> dict[str, str]:
    """KEY=value lines; values may be quoted (os-release(5))."""
    out: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if re.match(r"^[A-Z0-9_]+$", key):
            out[key] = value
    return out


def distro_of(os_release: dict[str, str], manager: str) -> Distro:
    os_id = os_release.get("ID", "").lower() or _DEFAULT_ID[manager]
    version_id = os_release.get("VERSION_ID", "")
    release: str | None = version_id or os_release.get("VERSION_CODENAME") or None
    if os_id == "alpine" and version_id:
        release = ".".join(version_id.split(".")[:2])
    ecosystem = ECOSYSTEMS.get(os_id) or os_release.get("NAME") or os_id
    return Distro(os_id, version_id, ecosystem, release)


def _stanzas(text: str) -> list[dict[str, str]]:
    """RFC 822-like paragraphs separated by blank lines; continuation lines start with space or tab."""
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                out.append(current)
            current, last = {}, ""
            continue
        if line[0] in " \t":
            if last:
                current[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            current[last] = value.strip()
    if current:
        out.append(current)
    return out


def dpkg_packages(data: bytes, path: str, distro: Distro) -> Result:
    stanzas = _stanzas(data.decode("utf-8", "replace"))
    out: list[Package] = []
    bad = 0
    for st in stanzas:
        name, version = st.get("Package"), st.get("Version")
        status = st.get("Status", "install ok installed")
        if not name or not version:
            bad += 1
            continue
        if "deinstall" in status or "purge" in status or status.endswith("not-installed"):
            continue
        source = st.get("Source", "")
        m = re.match(r"^(\S+)(?: \((.*)\))?$", source)
        source_name = m.group(1) if m else name
        arch = st.get("Architecture") or None
        qualifiers = {k: v for k, v in (("arch", arch), ("distro", distro.qualifier)) if v}
        purl = PackageURL(type="deb", namespace=distro.id, name=name, version=version, qualifiers=qualifiers)
        out.append(
            Package(
                name=name,
                version=version,
                ecosystem=distro.ecosystem,
                purl=purl.to_string(),
                path=path,
                source_name=source_name,
                release=distro.release,
            )
        )
    return out, _gaps(path, "dpkg", bad, len(stanzas), data, out)


def apk_packages(data: bytes, path: str, distro: Distro) -> Result:
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            if current:
                records.append(current)
            current = {}
            continue
        if len(line) >= 2 and line[1] == ":" and line[0] not in current:
            current[line[0]] = line[2:].strip()
    if current:
        records.append(current)
    out: list[Package] = []
    bad = 0
    for r in records:
        name, version = r.get("P"), r.get("V")
        if not name or not version:
            bad += 1
            continue
        qualifiers = {k: v for k, v in (("arch", r.get("A")), ("distro", distro.qualifier)) if v}
        purl = PackageURL(type="apk", namespace=distro.id, name=name, version=version, qualifiers=qualifiers)
        out.append(
            Package(
                name=name,
                version=version,
                ecosystem=distro.ecosystem,
                purl=purl.to_string(),
                path=path,
                source_name=r.get("o") or name,
                release=distro.release,
            )
        )
    return out, _gaps(path, "apk", bad, len(records), data, out)


def rpm_packages(data: bytes, path: str, distro: Distro) -> Result:
    """From rpmdb.sqlite, or from a Berkeley DB ``Packages`` file (the path says which)."""
    try:
        blobs = bdb_blobs(data) if path.endswith("/Packages") else sqlite_blobs(data)
    except (sqlite3.Error, RpmHeaderError) as e:
        return [], [CoverageGap(path, GapReason.INVALID, f"rpm database unreadable: {e}")]
    out: list[Package] = []
    bad = 0
    for blob in blobs:
        try:
            h = parse_header(blob)
        except (RpmHeaderError, IndexError, ValueError):
            bad += 1
            continue
        if h.name == "gpg-pubkey":  # imported signing keys are recorded as pseudo-packages
            continue
        vr = f"{h.version}-{h.release}" if h.release else h.version
        qualifiers = {
            k: v
            for k, v in (
                ("arch", h.arch),
                ("epoch", str(h.epoch) if h.epoch else None),
                ("distro", distro.qualifier),
            )
            if v
        }
        purl = PackageURL(type="rpm", namespace=distro.id, name=h.name, version=vr, qualifiers=qualifiers)
        out.append(
            Package(
                name=h.name,
                version=f"{h.epoch}:{vr}" if h.epoch else vr,
                ecosystem=distro.ecosystem,
                purl=purl.to_string(),
                path=path,
                source_name=h.source_name,
                release=distro.release,
            )
        )
    return out, _gaps(path, "rpm", bad, len(blobs), data, out)


def _gaps(path: str, db: str, bad: int, total: int, data: bytes, out: list[Package]) -> list[CoverageGap]:
    if bad:
        return [
            CoverageGap(
                path, GapReason.INVALID, f"{db} database: {bad} of {total} entries malformed, skipped"
            )
        ]
    if not out and data.strip() and not total:
        return [CoverageGap(path, GapReason.INVALID, f"{db} database holds no readable entries")]
    return []


def unsupported_rpm(path: str) -> CoverageGap:
    return CoverageGap(
        path,
        GapReason.UNKNOWN_KIND,
        "rpm NDB database (SUSE) is not read (rpmdb.sqlite and Berkeley DB Packages are): "
        "the image's rpm packages are not inventoried",
    )
