"""RPM's SQLite package database (``rpmdb.sqlite``), read in memory, and the RPM header blobs it holds,
parsed here (no librpm): a blob is ``il`` and ``dl`` (uint32 big-endian), ``il`` 16-byte index
entries ``{tag, type, offset, count}``, then ``dl`` bytes of data. The blob in rpmdb has no leading
magic (rpm docs/manual/format_header.md; knqyf263/go-rpmdb hdrblobInit).
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass

TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH = 1000, 1001, 1002, 1003, 1022
TAG_LICENSE, TAG_VENDOR, TAG_SOURCERPM = 1014, 1011, 1044
TYPE_INT32, TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING = 4, 6, 8, 9
_MAX_INDEX = 100_000
_MAX_DATA = 256 * 1024 * 1024


class RpmHeaderError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RpmHeader:
    name: str
    version: str
    release: str
    epoch: int | None
    arch: str
    source_rpm: str
    license: str = ""
    vendor: str = ""

    @property
    def source_name(self) -> str:
        """The source package: ``openssl`` of ``openssl-3.0.7-24.el9.src.rpm``."""
        srpm = self.source_rpm
        if not srpm or srpm == "(none)":
            return self.name
        srpm = srpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
        parts = srpm.rsplit("-", 2)
        return parts[0] if len(parts) == 3 else self.name


def parse_header(blob: bytes) -> RpmHeader:
    if len(blob) < 8:
        raise RpmHeaderError("header blob shorter than 8 bytes")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il > _MAX_INDEX or dl > _MAX_DATA:
        raise RpmHeaderError(f"implausible header sizes (il={il}, dl={dl})")
    data_start = 8 + 16 * il
    if data_start + dl > len(blob):
        raise RpmHeaderError("header blob shorter than its index says")
    data = blob[data_start : data_start + dl]
    values: dict[int, str | int] = {}
    for i in range(il):
        tag, typ, off, count = struct.unpack_from(">iIiI", blob, 8 + 16 * i)
        if tag not in (
            TAG_NAME,
            TAG_VERSION,
            TAG_RELEASE,
            TAG_EPOCH,
            TAG_ARCH,
            TAG_LICENSE,
            TAG_VENDOR,
            TAG_SOURCERPM,
        ):
            continue
        if off < 0 or off >= dl:
            raise RpmHeaderError(f"tag {tag}: offset {off} outside the data")
        if typ in (TYPE_STRING, TYPE_I18NSTRING, TYPE_STRING_ARRAY):
            end = data.find(b"\x00", off)
            if end < 0:
                raise RpmHeaderError(f"tag {tag}: unterminated string")
            values[tag] = data[off:end].decode("utf-8", "replace")
        elif typ == TYPE_INT32 and count >= 1:
            if off % 4 or off + 4 > dl:
                raise RpmHeaderError(f"tag {tag}: misaligned or truncated int32")
            values[tag] = struct.unpack_from(">i", data, off)[0]
    name, version = values.get(TAG_NAME), values.get(TAG_VERSION)
    if not isinstance(name, str) or not isinstance(version, str) or not name:
        raise RpmHeaderError("header without a name and version")
    epoch = values.get(TAG_EPOCH)
    return RpmHeader(
        name=name,
        version=version,
        release=str(values.get(TAG_RELEASE, "")),
        epoch=epoch if isinstance(epoch, int) else None,
        arch=str(values.get(TAG_ARCH, "")),
        source_rpm=str(values.get(TAG_SOURCERPM, "")),
        license=str(values.get(TAG_LICENSE, "")),
        vendor=str(values.get(TAG_VENDOR, "")),
    )


def sqlite_blobs(data: bytes) -> list[bytes]:
    """Every ``Packages.blob`` of an rpmdb.sqlite held in memory; sqlite3.DatabaseError when it is not
    one."""
    if not data.startswith(b"SQLite format 3\x00"):
        raise sqlite3.DatabaseError("not an SQLite database (bad magic)")
    image = bytearray(data)
    # a WAL-mode database (header bytes 18/19 = 2) would look for its -wal file; read it as rollback
    if len(image) > 20 and image[18] == 2:
        image[18] = image[19] = 1
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(bytes(image))
        return [bytes(row[0]) for row in conn.execute("SELECT blob FROM Packages") if row[0] is not None]
    finally:
        conn.close()


def header_blob(
    tags: list[tuple[int, int, bytes, int]],
) -> bytes:
    """An rpmdb header blob from (tag, type, encoded value, count) entries: used by the tests to
    make databases, kept beside the parser so the two read the same format."""
    index, data = bytearray(), bytearray()
    for tag, typ, value, count in tags:
        if typ == TYPE_INT32:
            while len(data) % 4:
                data.append(0)
        index += struct.pack(">iIiI", tag, typ, len(data), count)
        data += value
    return struct.pack(">II", len(tags), len(data)) + bytes(index) + bytes(data)
