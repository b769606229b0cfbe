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


# Berkeley DB hash database (rpm < 4.16: RHEL/CentOS 7 and 8, Amazon Linux 2). Layout facts from
# Berkeley DB's db_page.h as go-rpmdb's pkg/bdb documents them: a metadata page 0 (magic 0x061561 at
# offset 12, page size at 20, page type 8 at 25, last page number at 32), hash pages (type 2 or 13)
# whose 26-byte header is followed by uint16 offsets of key/value items, and values too big for a
# page stored as an "off-page" item (type 3: page number at +4, length at +8) pointing to a chain
# of overflow pages (type 7: next page at 16, bytes used on the last page at 22).
_BDB_HASH_MAGIC = 0x00061561
_BDB_PAGE_HEADER = 26
_BDB_PAGE_SIZES = frozenset(512 << i for i in range(8))


def bdb_blobs(data: bytes) -> list[bytes]:
    """Every header blob in an rpm ``Packages`` Berkeley DB hash file held in memory; ValueError
    (RpmHeaderError) when it is not one."""
    if len(data) < 512:
        raise RpmHeaderError("too short for a Berkeley DB file")
    order = "<"
    if struct.unpack_from("<I", data, 12)[0] != _BDB_HASH_MAGIC:
        if struct.unpack_from(">I", data, 12)[0] != _BDB_HASH_MAGIC:
            raise RpmHeaderError("not a Berkeley DB hash database (bad magic)")
        order = ">"
    page_size = struct.unpack_from(order + "I", data, 20)[0]
    if page_size not in _BDB_PAGE_SIZES or data[24] != 0 or data[25] != 8:
        raise RpmHeaderError("unsupported Berkeley DB page size, encryption or metadata page type")
    last = struct.unpack_from(order + "I", data, 32)[0]
    pages = min(last + 1, len(data) // page_size)
    out: list[bytes] = []
    for pgno in range(1, pages):
        page = data[pgno * page_size : (pgno + 1) * page_size]
        if page[25] not in (2, 13):  # hash pages (unsorted, sorted)
            continue
        entries = struct.unpack_from(order + "H", page, 20)[0]
        if entries % 2 or _BDB_PAGE_HEADER + 2 * entries > page_size:
            raise RpmHeaderError(f"page {pgno}: malformed item index")
        for i in range(1, entries, 2):  # values follow their keys
            off = struct.unpack_from(order + "H", page, _BDB_PAGE_HEADER + 2 * i)[0]
            if off + 12 > page_size or page[off] != 3:  # only off-page values hold headers
                continue
            first, length = struct.unpack_from(order + "II", page, off + 4)
            out.append(_bdb_overflow(data, page_size, first, length, order))
    return out


def _bdb_overflow(data: bytes, page_size: int, pgno: int, length: int, order: str) -> bytes:
    chunks: list[bytes] = []
    seen: set[int] = set()
    total = 0
    while pgno:
        if pgno in seen or (pgno + 1) * page_size > len(data):
            raise RpmHeaderError(f"overflow chain broken at page {pgno}")
        seen.add(pgno)
        page = data[pgno * page_size : (pgno + 1) * page_size]
        if page[25] != 7:
            raise RpmHeaderError(f"page {pgno} is not an overflow page")
        nxt = struct.unpack_from(order + "I", page, 16)[0]
        used = struct.unpack_from(order + "H", page, 22)[0]
        chunk = page[_BDB_PAGE_HEADER:] if nxt else page[_BDB_PAGE_HEADER : _BDB_PAGE_HEADER + used]
        chunks.append(chunk)
        total += len(chunk)
        if total > _MAX_DATA:
            raise RpmHeaderError("overflow value larger than 256 MiB")
        pgno = nxt
    return b"".join(chunks)[:length]


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
