"""Writes and compiles the two ELF test vectors for the Go build-info reader (no Go toolchain here).

Each C program places a build-info blob in a `.go.buildinfo` section, 16-byte aligned, laid out as
Go's src/debug/buildinfo/buildinfo.go reads it:
- go-inline.elf: Go >= 1.18 layout (flags & 2): two varint-length strings at offset 32.
- go-pointer.elf: the older layout: two pointers to Go string headers {data, len}, linked -no-pie so
  the pointers are the virtual addresses the reader maps through the program headers.
The module info is framed by the 16-byte sentinels cmd/go writes (modload/build.go infoStart/infoEnd).

Run: python tests/image/data/go/make_go_binaries.py  (needs gcc; rewrites the two .elf files)
"""

import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
END = bytes.fromhex("f932433186182072008242104116d8f2")
MAGIC = b"\xff Go buildinf:"

INLINE_MOD = (
    "path\texample.com/app/cmd/server\n"
    "mod\texample.com/app\tv1.2.3\th1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    "dep\tgithub.com/gorilla/mux\tv1.8.1\th1:TuBL49tXwgrFYWhqrNgrUNEY92u81SPhu7sTdzQEiWY=\n"
    "dep\tgolang.org/x/net\tv0.17.0\th1:pVaXccu2ozPjCXewfr1S7xoGSEaZXbQr5GeVeXsvMDs=\n"
    "=>\tgolang.org/x/net\tv0.23.0\th1:7mQgc2BO3Yl7bN2Gw3xMhaX5Ym2i8EfcYYJBo/cq4Rs=\n"
    "build\t-compiler=gc\nbuild\tGOOS=linux\nbuild\tGOARCH=amd64\n"
)
POINTER_MOD = (
    "path\texample.com/legacy\n"
    "mod\texample.com/legacy\t(devel)\t\n"
    "dep\tgithub.com/pkg/errors\tv0.9.1\th1:FEBLx1zS214owpjy7qsBeixbURkuhQAwrK5UwLGTwt4=\n"
)


def c_bytes(data: bytes) -> str:
    return "{" + ",".join(str(b) for b in data) + "}"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def inline_source() -> str:
    version = b"go1.22.1"
    mod = START + INLINE_MOD.encode() + END
    blob = MAGIC + bytes([8, 2]) + bytes(16) + varint(len(version)) + version + varint(len(mod)) + mod
    return (
        "/* a Go >= 1.18 build-info blob in .go.buildinfo (see make_go_binaries.py) */\n"
        f'__attribute__((section(".go.buildinfo"), aligned(16), used))\n'
        f"const unsigned char buildinfo[{len(blob)}] = {c_bytes(blob)};\n"
        "int main(void) { return buildinfo[0] == 0; }\n"
    )


def pointer_source() -> str:
    mod = START + POINTER_MOD.encode() + END
    return (
        "/* a Go < 1.18 build-info blob: pointers to Go string headers (see make_go_binaries.py) */\n"
        "struct gostring { const unsigned char *data; long len; };\n"
        f'static const unsigned char version[] = "go1.16.15";\n'
        f"static const unsigned char modinfo[{len(mod)}] = {c_bytes(mod)};\n"
        "static const struct gostring version_hdr = { version, sizeof(version) - 1 };\n"
        "static const struct gostring modinfo_hdr = { modinfo, sizeof(modinfo) };\n"
        "struct buildinfo { unsigned char magic[14]; unsigned char ptrsize; unsigned char flags;\n"
        "                   const struct gostring *version; const struct gostring *modinfo; };\n"
        '__attribute__((section(".go.buildinfo"), aligned(16), used))\n'
        f"const struct buildinfo buildinfo = {{ {c_bytes(MAGIC)}, 8, 0, &version_hdr, &modinfo_hdr }};\n"
        "int main(void) { return buildinfo.ptrsize == 0; }\n"
    )


def build(name: str, source: str) -> None:
    c = os.path.join(HERE, name + ".c")
    with open(c, "w") as fh:
        fh.write(source)
    subprocess.run(["gcc", "-O1", "-no-pie", "-s", "-o", os.path.join(HERE, name + ".elf"), c], check=True)


if __name__ == "__main__":
    build("go-inline", inline_source())
    build("go-pointer", pointer_source())
