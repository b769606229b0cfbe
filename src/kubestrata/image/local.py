"""Images on disk: an OCI image-layout directory (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``)
and a ``docker save`` archive (``manifest.json``: ``[{"Config", "RepoTags", "Layers"}]``; both the
legacy ``<id>/layer.tar`` + ``<id>.json`` layout and current moby's ``blobs/sha256/<hex>`` paths).

Every blob is hashed as it is read: layout blobs against their digest, docker-save configs against
their name, docker-save layers (after decompression, if any) against the config's ``rootfs.diff_ids``.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import orjson

from kubestrata.image.blobs import (
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    ImageReadError,
    VerifyingReader,
    check_digest,
    digest_of,
    file_chunks,
    valid_digest,
    verify_bytes,
)
from kubestrata.image.manifests import Descriptor, descriptor, load_json

REF_NAME = "org.opencontainers.image.ref.name"


class OciLayout:
    """An OCI image-layout directory (``oci:``); OciArchive is the same layout inside a tar."""

    prefix = "oci"

    def __init__(self, path: str) -> None:
        self.path = path
        self.what = f"{self.prefix}:{path}"
        self._check_exists()
        try:
            with self._open("oci-layout") as fh:
                marker = orjson.loads(fh.read(65536))
        except (OSError, KeyError, orjson.JSONDecodeError) as e:
            raise ImageReadError(f"{self.what}: not an OCI image layout (oci-layout: {e})") from None
        if not isinstance(marker, dict) or "imageLayoutVersion" not in marker:
            raise ImageReadError(f"{self.what}: oci-layout has no imageLayoutVersion")
        try:
            with self._open("index.json") as fh:
                self.index_bytes = fh.read(MAX_MANIFEST_BYTES + 1)
        except (OSError, KeyError) as e:
            raise ImageReadError(f"{self.what}: index.json unreadable: {e}") from None
        if len(self.index_bytes) > MAX_MANIFEST_BYTES:
            raise ImageReadError(f"{self.what}: index.json larger than {MAX_MANIFEST_BYTES} bytes")
        self.index = load_json(self.index_bytes, f"{self.what}/index.json")

    def _check_exists(self) -> None:
        if not os.path.isdir(self.path):
            raise ImageReadError(f"{self.what}: no such directory")

    def _open(self, rel: str) -> IO[bytes]:
        """A file of the layout by its relative path; OSError or KeyError when it is absent."""
        return open(os.path.join(self.path, rel), "rb")  # noqa: SIM115 - the caller closes it

    def close(self) -> None:
        pass

    def top(self, tag: str | None) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of the manifest or index the tag names."""
        entries = [e for e in self.index.get("manifests") or [] if isinstance(e, dict)]
        what = self.what
        if tag is not None:
            chosen = [e for e in entries if (e.get("annotations") or {}).get(REF_NAME) == tag]
            if not chosen:
                tags = sorted({str((e.get("annotations") or {}).get(REF_NAME)) for e in entries} - {"None"})
                raise ImageReadError(f"{what}: no image tagged {tag!r} (tags: {', '.join(tags) or 'none'})")
        elif len(entries) == 1:
            chosen = entries
        elif entries and all(isinstance(e.get("platform"), dict) for e in entries):
            # index.json itself lists one image's platforms
            return self.index_bytes, "application/vnd.oci.image.index.v1+json", digest_of(self.index_bytes)
        else:
            tags = sorted({str((e.get("annotations") or {}).get(REF_NAME)) for e in entries} - {"None"})
            raise ImageReadError(
                f"{what}: {len(entries)} images in index.json; name one as {self.prefix}:PATH:TAG "
                f"(tags: {', '.join(tags) or 'none'})"
            )
        d = descriptor(chosen[0], f"{what}/index.json")
        body, media_type = self.fetch(d)
        return body, media_type, d.digest

    def fetch(self, d: Descriptor) -> tuple[bytes, str]:
        body = self.read_blob(d.digest, MAX_MANIFEST_BYTES)
        return body, d.media_type

    def blob_path(self, digest: str) -> str:
        alg, _, hexpart = check_digest(digest).partition(":")
        return f"blobs/{alg}/{hexpart}"

    def read_blob(self, digest: str, cap: int) -> bytes:
        what = f"{self.what} blob {digest}"
        try:
            with self._open(self.blob_path(digest)) as fh:
                data = fh.read(cap + 1)
        except (OSError, KeyError) as e:
            raise ImageReadError(f"{what}: missing ({getattr(e, 'strerror', None) or e})") from None
        if len(data) > cap:
            raise ImageReadError(f"{what}: larger than {cap} bytes")
        return verify_bytes(data, digest, what)

    @contextmanager
    def open_blob(self, digest: str, size: int | None) -> Iterator[VerifyingReader]:
        what = f"{self.what} blob {digest}"
        try:
            fh = self._open(self.blob_path(digest))
        except (OSError, KeyError) as e:
            raise ImageReadError(f"{what}: missing ({getattr(e, 'strerror', None) or e})") from None
        with fh:
            yield VerifyingReader(file_chunks(fh), digest, what, size=size)


class OciArchive(OciLayout):
    """An OCI image layout in a tar file (``oci-archive:``, what ``docker buildx --output type=oci``
    and ``buildah push oci-archive:`` write), read in place."""

    prefix = "oci-archive"

    def _check_exists(self) -> None:
        try:
            self.tar = tarfile.open(self.path, "r:*")
            self.members = {m.name.removeprefix("./"): m for m in self.tar.getmembers() if m.isreg()}
        except (OSError, tarfile.TarError, EOFError) as e:
            raise ImageReadError(f"{self.what}: not a readable tar archive: {e}") from None

    def _open(self, rel: str) -> IO[bytes]:
        fh = self.tar.extractfile(self.members[rel])
        if fh is None:
            raise KeyError(rel)
        return fh

    def close(self) -> None:
        self.tar.close()


@dataclass(frozen=True, slots=True)
class ArchiveImage:
    config: bytes
    config_digest: str
    layer_members: tuple[str, ...]
    tags: tuple[str, ...]


class DockerArchive:
    """A ``docker save`` tar (optionally gzip-compressed: then every layer read decompresses from
    the start of the file, so uncompressed is much faster)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.tar = tarfile.open(path, "r:*")
            self.members = {m.name.removeprefix("./"): m for m in self.tar.getmembers()}
        except (OSError, tarfile.TarError, EOFError) as e:
            raise ImageReadError(f"docker-archive:{path}: not a readable tar archive: {e}") from None

    def close(self) -> None:
        self.tar.close()

    def _read(self, name: str, cap: int) -> bytes:
        m = self.members.get(name)
        if m is None or not m.isreg():
            raise ImageReadError(f"docker-archive:{self.path}: {name!r} is missing from the archive")
        if m.size > cap:
            raise ImageReadError(f"docker-archive:{self.path}: {name!r} is larger than {cap} bytes")
        fh = self.tar.extractfile(m)
        try:
            return fh.read() if fh else b""
        except (OSError, tarfile.TarError, EOFError) as e:
            raise ImageReadError(f"docker-archive:{self.path}: {name!r} unreadable: {e}") from None

    def image(self, tag: str | None) -> ArchiveImage:
        what = f"docker-archive:{self.path}"
        items = orjson_list(self._read("manifest.json", MAX_MANIFEST_BYTES), f"{what} manifest.json")
        if tag is not None:
            wanted = {tag, f"docker.io/{tag}", f"docker.io/library/{tag}"}
            chosen = [i for i in items if wanted & set(i.get("RepoTags") or [])]
            if not chosen:
                raise ImageReadError(f"{what}: no image tagged {tag!r}")
        elif len(items) != 1:
            tags = sorted(t for i in items for t in i.get("RepoTags") or [])
            raise ImageReadError(
                f"{what}: {len(items)} images; name one as docker-archive:FILE:REPO:TAG (tags: {', '.join(tags) or 'none'})"
            )
        else:
            chosen = items
        item = chosen[0]
        config_name, layers = item.get("Config"), item.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layers, list):
            raise ImageReadError(f"{what} manifest.json: an item without Config and Layers")
        config = self._read(config_name, MAX_CONFIG_BYTES)
        # the config's name is its digest: blobs/sha256/<hex> (moby >= 25) or <hex>.json (older)
        stem = config_name.rsplit("/", 1)[-1].removesuffix(".json")
        named = f"sha256:{stem}"
        if valid_digest(named):
            verify_bytes(config, named, f"{what} {config_name}")
        return ArchiveImage(
            config=config,
            config_digest=digest_of(config),
            layer_members=tuple(str(x) for x in layers),
            tags=tuple(str(t) for t in item.get("RepoTags") or []),
        )

    @contextmanager
    def open_layer(self, name: str) -> Iterator[Any]:
        """A layer member's bytes (verified against its diff_id after decompression by the caller)."""
        m = self.members.get(name.removeprefix("./"))
        what = f"docker-archive:{self.path} layer {name}"
        if m is None or not m.isreg():
            raise ImageReadError(f"{what}: missing from the archive")
        fh = self.tar.extractfile(m)
        if fh is None:
            raise ImageReadError(f"{what}: unreadable")
        yield fh


def orjson_list(body: bytes, what: str) -> list[dict[str, Any]]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ImageReadError(f"{what}: not JSON ({e})") from None
    if not isinstance(doc, list) or not all(isinstance(i, dict) for i in doc):
        raise ImageReadError(f"{what}: expected a JSON array of objects")
    return doc
