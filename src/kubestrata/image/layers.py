"""Layers, streamed: each layer blob is decompressed (gzip, zstd when `zstandard` is installed, or
plain tar) and walked member by member; only package databases and metadata files are kept, and
candidate executables and Java archives are parsed as they pass and kept as the packages they hold.
Nothing else is read into memory, so memory does not grow with the size of the image.

Flattening follows the OCI layer spec: ``.wh.<name>`` deletes ``<name>`` (and what is under it) from
lower layers, ``.wh..wh..opq`` empties its directory of what lower layers put there, and the last
layer to write a path wins.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, BinaryIO

from kubestrata.findings import CoverageGap, GapReason
from kubestrata.image import gobinary, langpkgs
from kubestrata.image.model import Package

# files of interest: OS package databases and os-release are kept whole (their packages need the
# distribution, known only once all layers are read); language metadata is parsed as it passes
OS_FILES = {
    "etc/os-release": "os-release",
    "usr/lib/os-release": "os-release",
    "var/lib/dpkg/status": "dpkg",
    "lib/apk/db/installed": "apk",
    "usr/lib/apk/db/installed": "apk",
    "var/lib/rpm/rpmdb.sqlite": "rpm-sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite": "rpm-sqlite",
    "usr/share/rpm/rpmdb.sqlite": "rpm-sqlite",
    "var/lib/rpm/Packages": "rpm-bdb",
    "var/lib/rpm/Packages.db": "rpm-ndb",
    "usr/lib/sysimage/rpm/Packages.db": "rpm-ndb",
}
DPKG_STATUS_D = "var/lib/dpkg/status.d/"
MAX_DB_BYTES = 256 * 1024 * 1024  # an rpmdb.sqlite of a large RHEL image is ~100 MB
MAX_METADATA_BYTES = 16 * 1024 * 1024
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024  # jars read in memory up to 32 MB, spooled to disk beyond
MAX_EXECUTABLE_BYTES = 512 * 1024 * 1024
JAVA_SUFFIXES = (".jar", ".war", ".ear", ".par")
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(slots=True)
class LayerFile:
    kind: str  # os-release, dpkg, apk, rpm-sqlite, ..., or "packages" for parsed language files
    data: bytes | None = None
    packages: tuple[Package, ...] = ()
    link: str | None = None  # a symlink's target, resolved to an image path


@dataclass(slots=True)
class LayerContents:
    """What one layer contributes: files of interest, whiteouts, and what could not be read."""

    digest: str
    files: dict[str, LayerFile] = field(default_factory=dict)
    whiteouts: set[str] = field(default_factory=set)
    opaque_dirs: set[str] = field(default_factory=set)
    gaps: list[CoverageGap] = field(default_factory=list)
    members: int = 0

    @property
    def held_bytes(self) -> int:
        return sum(len(f.data or b"") + 200 * len(f.packages) for f in self.files.values()) + 100


_NOTHING = LayerFile("packages")  # a path written by a layer that holds no packages


def classify(path: str, mode: int, size: int) -> str | None:
    """The kind of file this path is, for the inventory; None to skip it."""
    kind = OS_FILES.get(path)
    if kind:
        return kind
    if path.startswith(DPKG_STATUS_D):
        name = path[len(DPKG_STATUS_D) :]
        return None if "/" in name or name.endswith(".md5sums") or not name else "dpkg"
    base = path.rsplit("/", 1)[-1]
    if path.endswith(".dist-info/METADATA") or path.endswith(".egg-info/PKG-INFO"):
        return "python"
    if base.endswith(".egg-info"):
        return "python"
    if base == "package-lock.json" and "node_modules/" not in path:
        return "npm-lock"
    if base == "package.json" and "node_modules/" in path and langpkgs.is_node_module_manifest(path):
        return "npm-package"
    if base.endswith(JAVA_SUFFIXES):
        return "java"
    if mode & 0o111 and size >= 1024:
        return "executable"
    return None


def open_decompressed(raw: BinaryIO, what: str) -> BinaryIO:
    """A stream of the tar bytes of a layer, whatever its compression (sniffed, not trusted from
    the media type)."""
    buffered = io.BufferedReader(raw, 1 << 20)  # type: ignore[arg-type,type-var]
    head = buffered.peek(4)[:4]
    if head[:2] == b"\x1f\x8b":
        return _GzipStream(buffered)  # type: ignore[return-value,arg-type]
    if head == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard
        except ImportError:
            raise UnsupportedLayer(
                f"{what}: zstd-compressed; install the zstandard package to read it"
            ) from None
        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)  # type: ignore[return-value]
    return buffered


class UnsupportedLayer(Exception):
    pass


class _GzipStream(io.RawIOBase):
    """gzip decompression with zlib directly: gzip.GzipFile re-checks the CRC per member in Python
    and reads in small pieces; this is several times cheaper on large layers."""

    def __init__(self, raw: io.BufferedReader) -> None:
        super().__init__()
        self._raw = raw
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self._out = b""
        self._pos = 0  # an offset into _out: slicing the rest off on every read would copy it
        self._eof = False

    def readable(self) -> bool:
        return True

    def _refill(self) -> None:
        while not self._eof:
            chunk = self._z.unconsumed_tail or self._raw.read(1 << 20)
            if not chunk:
                if not self._z.eof:
                    raise EOFError("gzip stream ended before its end-of-stream marker (truncated)")
                self._eof = True
                return
            out = self._z.decompress(chunk, 1 << 20)
            if self._z.eof:
                rest = self._z.unused_data
                if rest.strip(b"\x00"):
                    # a concatenated gzip member (allowed by RFC 1952)
                    self._z = zlib.decompressobj(zlib.MAX_WBITS | 16)
                    out += self._z.decompress(rest, 1 << 20)
                else:
                    self._eof = not out
            if out:
                self._out, self._pos = out, 0
                return

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._pos >= len(self._out):
            self._refill()
            if self._pos >= len(self._out):
                return 0
        n = min(len(b), len(self._out) - self._pos)
        b[:n] = memoryview(self._out)[self._pos : self._pos + n]  # one copy, not two
        self._pos += n
        return n


def read_layer(stream: BinaryIO, digest: str, what: str) -> LayerContents:
    """The files of interest of one layer stream (compressed or not). A corrupt or truncated layer
    gives a LayerContents with no files and a gap naming the layer."""
    out = LayerContents(digest)
    try:
        tar_stream = open_decompressed(stream, what)
        with tarfile.open(fileobj=tar_stream, mode="r|") as tar:
            for member in tar:
                out.members += 1
                _take(tar, member, out, what)
        drain = getattr(stream, "drain", None)
        if drain:
            drain()  # the rest of the blob (tar padding, gzip trailer) is hashed too
    except UnsupportedLayer as e:
        return LayerContents(digest, gaps=[CoverageGap(what, GapReason.UNKNOWN_KIND, str(e))])
    except Exception as e:  # tarfile, zlib, zstandard, the digest check: each names its cause
        detail = f"layer unreadable, its files are left out: {type(e).__name__}: {e}"
        return LayerContents(digest, gaps=[CoverageGap(what, GapReason.INVALID, detail)])
    return out


def _take(tar: tarfile.TarFile, m: tarfile.TarInfo, out: LayerContents, what: str) -> None:
    path = normalise(m.name)
    if not path:
        return
    head, _, base = path.rpartition("/")
    if base.startswith(WHITEOUT):
        if base == OPAQUE:
            out.opaque_dirs.add(head)
        elif base != WHITEOUT:
            out.whiteouts.add(f"{head}/{base[len(WHITEOUT) :]}" if head else base[len(WHITEOUT) :])
        return
    if m.islnk():
        target = out.files.get(normalise(m.linkname))
        if target is not None:
            out.files[path] = target
        return
    if m.issym():
        if path in OS_FILES:
            out.files[path] = LayerFile("link", link=resolve_link(path, m.linkname))
        return
    if not m.isreg():
        # a directory or device replaces a file of interest at that path
        out.files.pop(path, None)
        return
    kind = classify(path, m.mode, m.size)
    if kind is None:
        out.files.pop(path, None)
        return
    fh = tar.extractfile(m)
    if fh is None:
        return
    subject = f"{what}:{path}"
    if kind == "executable":
        # an executable with no Go modules still replaces a Go binary a lower layer put here
        out.files[path] = _NOTHING
        if m.size > MAX_EXECUTABLE_BYTES or fh.read(4) != b"\x7fELF":
            return
        pkgs, gaps = gobinary.packages_of_stream(fh, b"\x7fELF", path, m.size)
        out.gaps.extend(gaps)
        if pkgs:
            out.files[path] = LayerFile("packages", packages=tuple(_in_layer(pkgs, out.digest)))
        return
    if kind == "java":
        if m.size > MAX_ARCHIVE_BYTES:
            out.gaps.append(
                CoverageGap(
                    subject,
                    GapReason.INVALID,
                    f"archive of {m.size} bytes is over the {MAX_ARCHIVE_BYTES} limit",
                )
            )
            return
        with _spool(fh, m.size) as spooled:
            pkgs, gaps = langpkgs.java_packages(spooled, path)
        out.gaps.extend(CoverageGap(f"{what}:{g.subject}", g.reason, g.detail) for g in gaps)
        out.files[path] = LayerFile("packages", packages=tuple(_in_layer(pkgs, out.digest)))
        return
    cap = MAX_DB_BYTES if kind in ("rpm-sqlite", "rpm-bdb", "rpm-ndb", "dpkg", "apk") else MAX_METADATA_BYTES
    if m.size > cap:
        out.gaps.append(CoverageGap(subject, GapReason.INVALID, f"{m.size} bytes is over the {cap} limit"))
        return
    data = fh.read()
    if kind in ("python", "npm-lock", "npm-package"):
        pkgs, gaps = langpkgs.parse(kind, data, path)
        out.gaps.extend(CoverageGap(f"{what}:{g.subject}", g.reason, g.detail) for g in gaps)
        out.files[path] = LayerFile("packages", packages=tuple(_in_layer(pkgs, out.digest)))
        return
    out.files[path] = LayerFile(kind, data=data)


def _in_layer(pkgs: Iterable[Package], digest: str) -> Iterable[Package]:
    from dataclasses import replace

    return (replace(p, layer=digest) for p in pkgs)


class _spool:
    """A seekable copy of a tar member: in memory up to 32 MB, a temporary file beyond."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self._fh = fh
        self._size = size

    def __enter__(self) -> BinaryIO:
        self._tmp = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
        while chunk := self._fh.read(1 << 20):
            self._tmp.write(chunk)
        self._tmp.seek(0)
        return self._tmp  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        self._tmp.close()


def normalise(name: str) -> str:
    """A tar member name as an image path without leading ./ or /; '' for the root or an escape."""
    parts: list[str] = []
    for part in name.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return ""
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def resolve_link(path: str, target: str) -> str:
    if target.startswith("/"):
        return normalise(target)
    base = path.rsplit("/", 1)[0] if "/" in path else ""
    return normalise(f"{base}/{target}")


def flatten(layers: Iterable[LayerContents]) -> dict[str, tuple[LayerFile, str]]:
    """path -> (file, digest of the layer that wrote it), whiteouts applied in layer order."""
    merged: dict[str, tuple[LayerFile, str]] = {}
    for layer in layers:
        if layer.whiteouts or layer.opaque_dirs:
            merged = {p: v for p, v in merged.items() if not _hidden(p, layer.whiteouts, layer.opaque_dirs)}
        for path, f in layer.files.items():
            merged[path] = (f, layer.digest)
    # symlinked files of interest (etc/os-release -> ../usr/lib/os-release) take their target's content
    for path, (f, _layer) in list(merged.items()):
        if f.kind == "link":
            target = merged.get(f.link or "")
            if target and target[0].kind != "link":
                merged[path] = target
            else:
                del merged[path]
    return merged


def _hidden(path: str, whiteouts: set[str], opaque: set[str]) -> bool:
    if path in whiteouts:
        return True
    parts = path.split("/")
    for i in range(len(parts) - 1, -1, -1):
        parent = "/".join(parts[:i])
        if parent in opaque or (i and parent in whiteouts):
            return True
    return False
