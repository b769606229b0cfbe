"""Language packages from their metadata files: Python (``*.dist-info/METADATA``, ``*.egg-info``),
npm (``package-lock.json`` v1/v2/v3, ``node_modules/**/package.json``) and Java archives
(``META-INF/maven/**/pom.properties``, else ``META-INF/MANIFEST.MF``; nested jars one level down).
Each parser returns packages and gaps, never raises on malformed input.
"""

from __future__ import annotations

import io
import re
import zipfile
from email.parser import BytesHeaderParser
from typing import Any, BinaryIO

import orjson
from packageurl import PackageURL

from kubestrata.findings import CoverageGap, GapReason
from kubestrata.image.model import Package

MAX_NESTED_JAR = 32 * 1024 * 1024
MAX_ZIP_MEMBER = 1024 * 1024
_NESTED_LIB = re.compile(r"^(BOOT-INF|WEB-INF)/lib/[^/]+\.jar$|^lib/[^/]+\.jar$")

Result = tuple[list[Package], list[CoverageGap]]


def parse(kind: str, data: bytes, path: str) -> Result:
    if kind == "python":
        return python_packages(data, path)
    if kind == "npm-lock":
        return npm_lock_packages(data, path)
    return npm_package_json(data, path)


def _gap(path: str, detail: str) -> Result:
    return [], [CoverageGap(path, GapReason.INVALID, detail)]


# --- Python ----------------------------------------------------------------------------------------


def python_packages(data: bytes, path: str) -> Result:
    headers = BytesHeaderParser().parsebytes(data)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return _gap(path, "Python metadata without Name and Version")
    name, version = str(name).strip(), str(version).strip()
    purl = PackageURL(type="pypi", name=_pep503(name), version=version).to_string()
    return [Package(name=_pep503(name), version=version, ecosystem="PyPI", purl=purl, path=path)], []


def _pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- npm -------------------------------------------------------------------------------------------


def is_node_module_manifest(path: str) -> bool:
    """node_modules/<name>/package.json or node_modules/@scope/<name>/package.json (at any depth of
    node_modules nesting), not a package.json deeper inside a package's own directories."""
    parts = path.split("/")
    if len(parts) < 3:
        return False
    if parts[-3] == "node_modules":
        return not parts[-2].startswith("@") and not parts[-2].startswith(".")
    return len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@")


def _npm_package(name: str, version: str, path: str) -> Package | None:
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    namespace, _, bare = name.rpartition("/")
    purl = PackageURL(type="npm", namespace=namespace or None, name=bare, version=version).to_string()
    return Package(name=name, version=version, ecosystem="npm", purl=purl, path=path)


def _json(data: bytes, path: str) -> tuple[Any, list[CoverageGap]]:
    try:
        return orjson.loads(data), []
    except orjson.JSONDecodeError as e:
        return None, [CoverageGap(path, GapReason.INVALID, f"not JSON: {e}")]


def npm_package_json(data: bytes, path: str) -> Result:
    doc, gaps = _json(data, path)
    if gaps:
        return [], gaps
    if not isinstance(doc, dict):
        return _gap(path, "package.json is not an object")
    pkg = _npm_package(doc.get("name", ""), doc.get("version", ""), path)
    return ([pkg] if pkg else []), []


def npm_lock_packages(data: bytes, path: str) -> Result:
    """Lock v2/v3 ``packages`` (keys ``node_modules/<name>``; ``""`` is the project itself), else
    lock v1's nested ``dependencies``. Dev dependencies are kept: they are installed in the image."""
    doc, gaps = _json(data, path)
    if gaps:
        return [], gaps
    if not isinstance(doc, dict):
        return _gap(path, "package-lock.json is not an object")
    out: list[Package] = []
    packages = doc.get("packages")
    if isinstance(packages, dict):
        for key, meta in packages.items():
            if not key or not isinstance(meta, dict) or meta.get("link"):
                continue
            name = meta.get("name") or key.rpartition("node_modules/")[2]
            pkg = _npm_package(name, meta.get("version", ""), path)
            if pkg:
                out.append(pkg)
        return out, []
    deps = doc.get("dependencies")
    if not isinstance(deps, dict):
        return _gap(path, "package-lock.json has neither packages nor dependencies")
    stack = [deps]
    while stack:
        level = stack.pop()
        for name, meta in level.items():
            if not isinstance(meta, dict):
                continue
            pkg = _npm_package(name, meta.get("version", ""), path)
            if pkg:
                out.append(pkg)
            if isinstance(meta.get("dependencies"), dict):
                stack.append(meta["dependencies"])
    return out, []


# --- Java ------------------------------------------------------------------------------------------


def java_packages(fh: BinaryIO, path: str, depth: int = 0) -> Result:
    """Packages in a jar/war/ear read from a seekable file: one per pom.properties (a shaded jar has
    several), else one from MANIFEST.MF; jars under BOOT-INF/lib, WEB-INF/lib or lib/ too."""
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        return _gap(path, f"not a readable zip archive: {e}")
    out: list[Package] = []
    gaps: list[CoverageGap] = []
    with zf:
        names = zf.namelist()
        for name in names:
            if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
                props = _properties(_member(zf, name))
                pkg = _maven(props.get("groupId"), props.get("artifactId"), props.get("version"), path)
                if pkg:
                    out.append(pkg)
        if not out and "META-INF/MANIFEST.MF" in names:
            pkg = _from_manifest(_member(zf, "META-INF/MANIFEST.MF"), path)
            if pkg:
                out.append(pkg)
        if depth == 0:
            for name in names:
                if not _NESTED_LIB.match(name):
                    continue
                info = zf.getinfo(name)
                inner = f"{path}!/{name}"
                if info.file_size > MAX_NESTED_JAR:
                    gaps.append(
                        CoverageGap(inner, GapReason.INVALID, f"nested archive over {MAX_NESTED_JAR} bytes")
                    )
                    continue
                try:
                    data = zf.read(name)
                except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
                    gaps.append(CoverageGap(inner, GapReason.INVALID, f"unreadable: {e}"))
                    continue
                pkgs, more = java_packages(io.BytesIO(data), inner, depth + 1)
                out.extend(pkgs)
                gaps.extend(more)
    return out, gaps


def _member(zf: zipfile.ZipFile, name: str) -> str:
    try:
        with zf.open(name) as fh:
            return fh.read(MAX_ZIP_MEMBER).decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return ""


def _properties(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _from_manifest(text: str, path: str) -> Package | None:
    # MANIFEST.MF: "Key: value" lines, a continuation line starts with one space
    fields: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if line.startswith(" ") and last:
            fields[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            fields[last] = value.strip()
    artifact = fields.get("Implementation-Title") or fields.get("Bundle-SymbolicName", "").split(";")[0]
    version = fields.get("Implementation-Version") or fields.get("Bundle-Version")
    group = fields.get("Implementation-Vendor-Id") or ""
    if not group and "." in artifact and fields.get("Bundle-SymbolicName"):
        group, _, artifact = artifact.rpartition(".")
    return _maven(group or None, artifact, version, path)


def _maven(group: str | None, artifact: str | None, version: str | None, path: str) -> Package | None:
    if not artifact or not version:
        return None
    name = f"{group}:{artifact}" if group else artifact
    purl = PackageURL(type="maven", namespace=group or None, name=artifact, version=version).to_string()
    return Package(name=name, version=version, ecosystem="Maven", purl=purl, path=path)
