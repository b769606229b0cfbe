"""Content-addressed blobs: digest syntax, a reader that hashes the bytes as they stream past and
fails at the end when they do not match, and the errors every image source raises.

A digest is checked on the exact bytes received (OCI image-spec descriptor.md: never re-serialised),
so a tampered or truncated blob is caught however it arrived: registry, OCI layout or docker save.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from typing import IO

from kubestrata.errors import KubestrataError

_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")

# manifests, indexes and configs are small JSON documents; distribution caps manifests at 4 MiB
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 8 * 1024 * 1024


class ImageReadError(KubestrataError):
    """The image itself cannot be read (not found, unauthorised, corrupt manifest, unknown type)."""


class DigestMismatch(ImageReadError):
    """Bytes received do not hash to the digest that named them."""


def valid_digest(digest: str) -> bool:
    return bool(_DIGEST.match(digest))


def check_digest(digest: str) -> str:
    if not valid_digest(digest):
        raise ImageReadError(
            f"malformed digest {digest[:80]!r} (expected sha256:<64 hex> or sha512:<128 hex>)"
        )
    return digest


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify_bytes(data: bytes, digest: str, what: str) -> bytes:
    """The data, if it hashes to the digest; DigestMismatch otherwise."""
    algorithm = check_digest(digest).split(":", 1)[0]
    got = digest_of(data, algorithm)
    if got != digest:
        raise DigestMismatch(f"{what}: content hashes to {got}, not {digest}")
    return data


class VerifyingReader(io.RawIOBase):
    """A read-only stream over chunks that hashes every byte and, at end of stream, raises
    DigestMismatch when the hash or the expected size is wrong. `drain()` reads the rest, so a consumer
    that stops early (tar end-of-archive, gzip trailer) still gets the check."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        digest: str,
        what: str,
        size: int | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__()
        algorithm = check_digest(digest).split(":", 1)[0]
        self._chunks = chunks
        self._hash = hashlib.new(algorithm)
        self._digest = digest
        self._what = what
        self._size = size
        self._limit = limit
        self._buf = b""
        self._pos = 0  # an offset into _buf (slicing the rest off on each read would copy it)
        self._eof = False
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._hash.update(chunk)
                self.bytes_read += len(chunk)
                if self._limit is not None and self.bytes_read > self._limit:
                    raise ImageReadError(f"{self._what}: larger than {self._limit} bytes")
                self._buf, self._pos = chunk, 0
                return True
        self._finish()
        return False

    def _finish(self) -> None:
        if self._eof:
            return
        self._eof = True
        if self._size is not None and self.bytes_read != self._size:
            raise DigestMismatch(
                f"{self._what}: received {self.bytes_read} bytes, the descriptor says {self._size}"
            )
        got = f"{self._digest.split(':', 1)[0]}:{self._hash.hexdigest()}"
        if got != self._digest:
            raise DigestMismatch(f"{self._what}: content hashes to {got}, not {self._digest}")

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._pos >= len(self._buf) and (self._eof or not self._fill()):
            return 0
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = memoryview(self._buf)[self._pos : self._pos + n]  # one copy, not two
        self._pos += n
        return n

    def drain(self) -> None:
        """Read to the end, which verifies the digest."""
        while not self._eof:
            self._fill()
        self._buf, self._pos = b"", 0


def file_chunks(fh: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := fh.read(size):
        yield chunk
