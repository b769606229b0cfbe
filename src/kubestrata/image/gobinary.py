"""Go modules compiled into an ELF executable, read from its build-info blob (the format of Go's
src/debug/buildinfo/buildinfo.go, re-implemented: no Go toolchain is needed).

The blob starts with the 14-byte magic ``\\xff Go buildinf:``, 16-byte aligned, in the
``.go.buildinfo`` section; byte 14 is the pointer size, byte 15 flags (bit 0 big-endian, bit 1
"strings inline"). Go >= 1.18 writes two varint-length strings at offset 32 (the Go version, then the
module info); older Go writes two pointers to Go string headers, resolved through the ELF program
headers. The module info is tab-separated lines (``path``, ``mod``, ``dep``, ``=>``, ``build``)
between 16-byte sentinels.
"""

from __future__ import annotations

import struct
import tempfile
from typing import IO

from packageurl import PackageURL

from kubestrata.findings import CoverageGap, GapReason
from kubestrata.image.model import Package

MAGIC = b"\xff Go buildinf:"
_MAX_STRING = 4 * 1024 * 1024


class BuildInfoError(ValueError):
    pass


def packages_of_stream(
    fh: IO[bytes], head: bytes, path: str, size: int
) -> tuple[list[Package], list[CoverageGap]]:
    """The Go modules of an executable being streamed (``head`` = bytes already read from it). Files
    without the magic cost one pass of ``bytes.find`` and are not kept."""
    with tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024) as spool:
        spool.write(head)
        found = False
        tail = head
        while chunk := fh.read(1 << 20):
            spool.write(chunk)
            if not found:
                found = MAGIC in (tail[-len(MAGIC) :] + chunk)
                tail = chunk
        if not found:
            return [], []
        try:
            go_version, modinfo = read_buildinfo(spool)
        except (BuildInfoError, struct.error) as e:
            return [], [CoverageGap(path, GapReason.INVALID, f"Go build info unreadable: {e}")]
    return packages_from_modinfo(go_version, modinfo, path), []


def read_buildinfo(f: IO[bytes]) -> tuple[str, str]:
    """(Go version, module info text) of an ELF file."""
    elf = _Elf(f)
    offsets = []
    section = elf.section_offset(".go.buildinfo")
    if section is not None:
        offsets.append(section)
    offsets.extend(_aligned_magic_offsets(f))
    for off in offsets:
        f.seek(off)
        hdr = f.read(32)
        if hdr[:14] != MAGIC or hdr[14] not in (4, 8):
            continue
        ptr_size, flags = hdr[14], hdr[15]
        if flags & 2:
            f.seek(off + 32)
            data = f.read(_MAX_STRING * 2)
            version, n = _varint_string(data, 0)
            mod, _ = _varint_string(data, n)
        else:
            order = ">" if flags & 1 else "<"
            fmt = order + ("Q" if ptr_size == 8 else "I")
            vaddr_version = struct.unpack_from(fmt, hdr, 16)[0]
            vaddr_mod = struct.unpack_from(fmt, hdr, 16 + ptr_size)[0]
            version = elf.go_string(vaddr_version, fmt, ptr_size)
            mod = elf.go_string(vaddr_mod, fmt, ptr_size)
        return version, _strip_sentinels(mod)
    raise BuildInfoError("no build-info header at a 16-byte boundary")


def _aligned_magic_offsets(f: IO[bytes]) -> list[int]:
    out: list[int] = []
    f.seek(0)
    pos, tail = 0, b""
    while chunk := f.read(1 << 20):
        buf = tail + chunk
        base = pos - len(tail)
        i = buf.find(MAGIC)
        while i >= 0:
            if (base + i) % 16 == 0:
                out.append(base + i)
            i = buf.find(MAGIC, i + 1)
        pos += len(chunk)
        tail = chunk[-(len(MAGIC) - 1) :]
    return out


def _varint_string(data: bytes, pos: int) -> tuple[str, int]:
    length, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise BuildInfoError("truncated varint length")
        b = data[pos]
        pos += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    if length > _MAX_STRING or pos + length > len(data):
        raise BuildInfoError("string runs past the end of the file")
    return data[pos : pos + length].decode("utf-8", "replace"), pos + length


def _strip_sentinels(mod: str) -> str:
    # buildinfo.go: the module info is framed by 16 bytes each side; anything else is not module info
    if len(mod) >= 33 and mod[-17] == "\n":
        return mod[16:-16]
    return ""


class _Elf:
    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        f.seek(0)
        ident = f.read(64)
        if ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise BuildInfoError("not an ELF file")
        self.is64 = ident[4] == 2
        self.order = "<" if ident[5] == 1 else ">"
        o = self.order
        if self.is64:
            self.phoff, self.shoff = struct.unpack_from(o + "QQ", ident, 0x20)
            self.phentsize, self.phnum, self.shentsize, self.shnum, self.shstrndx = struct.unpack_from(
                o + "HHHHH", ident, 0x36
            )
        else:
            self.phoff, self.shoff = struct.unpack_from(o + "II", ident, 0x1C)
            self.phentsize, self.phnum, self.shentsize, self.shnum, self.shstrndx = struct.unpack_from(
                o + "HHHHH", ident, 0x2A
            )

    def _read(self, off: int, n: int) -> bytes:
        self.f.seek(off)
        data = self.f.read(n)
        if len(data) != n:
            raise BuildInfoError("offset past the end of the file")
        return data

    def section_offset(self, name: str) -> int | None:
        if not self.shoff or not self.shnum or self.shnum > 4096 or self.shstrndx >= self.shnum:
            return None
        try:
            table = self._read(self.shoff, self.shentsize * self.shnum)
        except BuildInfoError:
            return None
        sections = [self._shdr(table, i * self.shentsize) for i in range(self.shnum)]
        _, strtab_off, strtab_size = sections[self.shstrndx]
        if strtab_size > 1 << 20:
            return None
        try:
            strtab = self._read(strtab_off, strtab_size)
        except BuildInfoError:
            return None
        for name_off, off, _size in sections:
            end = strtab.find(b"\x00", name_off)
            if strtab[name_off:end].decode("latin-1") == name:
                return off
        return None

    def _shdr(self, table: bytes, at: int) -> tuple[int, int, int]:
        o = self.order
        if self.is64:
            name, _t, _fl, _addr, off, size = struct.unpack_from(o + "IIQQQQ", table, at)
        else:
            name, _t, _fl, _addr, off, size = struct.unpack_from(o + "IIIIII", table, at)
        return name, off, size

    def vaddr_to_offset(self, vaddr: int) -> int:
        table = self._read(self.phoff, self.phentsize * min(self.phnum, 512))
        o = self.order
        for i in range(min(self.phnum, 512)):
            at = i * self.phentsize
            if self.is64:
                p_type, _fl, p_off, p_vaddr, _pa, p_filesz = struct.unpack_from(o + "IIQQQQ", table, at)
            else:
                p_type, p_off, p_vaddr, _pa, p_filesz = struct.unpack_from(o + "IIIII", table, at)
            if p_type == 1 and p_vaddr <= vaddr < p_vaddr + p_filesz:  # PT_LOAD
                return p_off + (vaddr - p_vaddr)
        raise BuildInfoError(f"address {vaddr:#x} is in no loaded segment")

    def go_string(self, vaddr: int, fmt: str, ptr_size: int) -> str:
        header = self._read(self.vaddr_to_offset(vaddr), 2 * ptr_size)
        data_addr = struct.unpack_from(fmt, header, 0)[0]
        length = struct.unpack_from(fmt, header, ptr_size)[0]
        if length > _MAX_STRING:
            raise BuildInfoError("string longer than 4 MiB")
        if length == 0:
            return ""
        return self._read(self.vaddr_to_offset(data_addr), length).decode("utf-8", "replace")


def packages_from_modinfo(go_version: str, modinfo: str, path: str) -> list[Package]:
    """The main module (when it has a version), every dependency (replacements applied), and the
    standard library as ``stdlib`` with the Go version, as Trivy and OSV name it."""
    mods: list[tuple[str, str]] = []
    main: tuple[str, str] | None = None
    for line in modinfo.splitlines():
        fields = line.split("\t")
        if fields[0] == "mod" and len(fields) >= 3:
            main = (fields[1], fields[2])
        elif fields[0] == "dep" and len(fields) >= 3:
            mods.append((fields[1], fields[2]))
        elif fields[0] == "=>" and len(fields) >= 3:
            if mods:
                mods[-1] = (fields[1], fields[2])
            elif main:
                main = (fields[1], fields[2])
    out: list[Package] = []
    if main and main[1] and main[1] != "(devel)":
        out.append(_go_package(*main, path))
    out.extend(_go_package(name, version, path) for name, version in mods)
    if go_version.startswith("go"):
        # "go1.21.5 X:boringcrypto" -> v1.21.5
        out.append(_go_package("stdlib", "v" + go_version[2:].split()[0], path))
    return out


def _go_package(module: str, version: str, path: str) -> Package:
    namespace, _, name = module.rpartition("/")
    purl = PackageURL(type="golang", namespace=namespace or None, name=name, version=version or None)
    return Package(name=module, version=version, ecosystem="Go", purl=purl.to_string(), path=path)
