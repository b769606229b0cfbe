"""The one entry point: an image source string in, its ``ImageInventory`` out.

    inventory_of(source, *, platform="linux/amd64", credentials=None, insecure=False, reader=None)

``source`` uses skopeo's transports: ``registry/repo:tag``, ``registry/repo@sha256:...`` (or with
``docker://``), ``oci:DIR[:tag]``, ``oci-archive:FILE.tar[:tag]``,
``docker-archive:FILE.tar[:repo:tag]``. ``credentials`` is a
``Credentials(username, password)``, an ``EcrAuth(...)``, or a mapping of registry host to either;
ECR hosts (``<account>.dkr.ecr.<region>.amazonaws.com``) get ECR credentials from boto3 when none
are given. ``insecure`` allows plain http to loopback registries.

It raises ``ImageReadError`` (a KubestrataError) when the image itself cannot be read: not found,
unauthorised, a manifest or config whose digest does not match, an unknown media type. Anything
less (a corrupt layer, a malformed package database, an unsupported rpm format) is a
``CoverageGap`` on the inventory, and an inventory with no packages always carries a gap saying so.

Scanning many images: make one ``ImageReader`` and call ``reader.inventory(source)`` (or
``reader.inventory_or_gap(source)``, which turns ImageReadError into an inventory holding only a
gap), or ``reader.inventories(sources, workers=4)`` to read several images at once (thread-safe).
It resolves each reference once, reads each manifest digest once, and each layer digest once
(layers shared between images are read once, up to ``layer_cache_bytes`` of kept metadata).

The inventory's ``digest`` is the manifest digest (the platform's manifest for a multi-arch
index; for docker-save archives, which have no manifest, the config digest, i.e. the image ID).
Config findings (root user, secret-looking ENV, curl|sh, copied keys, ports) come from
``kubestrata.image.config.config_issues(inventory.config)``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from kubestrata.findings import CoverageGap, GapReason
from kubestrata.image import layers as layers_mod
from kubestrata.image import ospkgs
from kubestrata.image.blobs import MAX_CONFIG_BYTES, ImageReadError, VerifyingReader, file_chunks
from kubestrata.image.config import parse_config
from kubestrata.image.layers import LayerContents, flatten, read_layer
from kubestrata.image.local import DockerArchive, OciArchive, OciLayout
from kubestrata.image.manifests import LAYER_TYPES, Descriptor, ImageManifest, load_json, resolve
from kubestrata.image.model import ImageInventory, Package
from kubestrata.image.reference import ArchiveRef, LayoutRef, RegistryRef, parse_source
from kubestrata.image.registry import CredentialSource, RegistryClient, RetryPolicy

DEFAULT_PLATFORM = "linux/amd64"


@dataclass(slots=True)
class LayerSource:
    digest: str  # the cache key: blob digest, or diff_id for docker-save layers
    media_type: str
    what: str
    open: Callable[[], AbstractContextManager[BinaryIO]]
    verify_uncompressed: str | None = None  # a diff_id to check on the decompressed bytes


@dataclass(slots=True)
class ReaderStats:
    images_read: int = 0
    inventory_cache_hits: int = 0
    layers_read: int = 0
    layer_cache_hits: int = 0


@dataclass(slots=True)
class _LayerCache:
    max_bytes: int
    entries: OrderedDict[str, LayerContents] = field(default_factory=OrderedDict)
    held: int = 0

    def get(self, digest: str) -> LayerContents | None:
        hit = self.entries.get(digest)
        if hit is not None:
            self.entries.move_to_end(digest)
        return hit

    def put(self, contents: LayerContents) -> None:
        if contents.gaps and not contents.files:
            return  # an unreadable layer is tried again by the next image that has it
        size = contents.held_bytes
        if size > self.max_bytes:
            return
        self.entries[contents.digest] = contents
        self.held += size
        while self.held > self.max_bytes and self.entries:
            _, old = self.entries.popitem(last=False)
            self.held -= old.held_bytes


class ImageReader:
    """Reads images and inventories them, once per digest for the life of the reader."""

    def __init__(
        self,
        *,
        platform: str = DEFAULT_PLATFORM,
        credentials: CredentialSource = None,
        insecure: bool = False,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        layer_cache_bytes: int = 256 * 1024 * 1024,
        transport: Any = None,
    ) -> None:
        self.platform = platform
        self.registry = RegistryClient(
            credentials, insecure=insecure, retry=retry, timeout=timeout, transport=transport
        )
        self.stats = ReaderStats()
        self._by_reference: dict[str, str] = {}
        self._by_digest: dict[str, ImageInventory] = {}
        self._layers = _LayerCache(layer_cache_bytes)
        self._lock = threading.Lock()  # guards the caches and counters, never held while reading
        self._key_locks: dict[str, threading.Lock] = {}

    def close(self) -> None:
        self.registry.close()

    def __enter__(self) -> ImageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def inventory_or_gap(self, source: str) -> ImageInventory:
        """The inventory, or, when the image cannot be read, an inventory with an empty digest and
        one gap saying why."""
        try:
            return self.inventory(source)
        except ImageReadError as e:
            return ImageInventory(
                reference=source,
                digest="",
                platform=self.platform,
                gaps=[CoverageGap(source, GapReason.ERROR, str(e))],
            )

    def inventories(self, sources: list[str], workers: int = 4) -> list[ImageInventory]:
        """Each source's inventory (or gap-only inventory), in order, ``workers`` images at a time;
        two references to one digest, or two images sharing a layer, still read it once."""
        from concurrent.futures import ThreadPoolExecutor

        if workers <= 1 or len(sources) <= 1:
            return [self.inventory_or_gap(s) for s in sources]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image") as pool:
            return list(pool.map(self.inventory_or_gap, sources))

    @contextmanager
    def _exclusive(self, key: str) -> Iterator[None]:
        """One thread at a time per key (a reference, an image digest, a layer digest)."""
        with self._lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def inventory(self, source: str) -> ImageInventory:
        with self._exclusive(f"ref:{source}"):
            with self._lock:
                known = self._by_reference.get(source)
                hit = self._by_digest.get(known) if known else None
                if hit is not None:
                    self.stats.inventory_cache_hits += 1
                    return _as(hit, source)
            ref = parse_source(source)
            if isinstance(ref, RegistryRef):
                inv = self._from_registry(ref, source)
            elif isinstance(ref, LayoutRef):
                inv = self._from_layout(ref, source)
            else:
                inv = self._from_archive(ref, source)
            key = f"{inv.digest}|{self.platform}"
            with self._lock:
                self._by_digest.setdefault(key, inv)
                self._by_reference[source] = key
            return inv

    # --- sources -------------------------------------------------------------------------------

    def _cached(self, digest: str, source: str) -> ImageInventory | None:
        with self._lock:
            hit = self._by_digest.get(digest)
            if hit is None:
                return None
            self.stats.inventory_cache_hits += 1
        return _as(hit, source)

    def _store(self, inv: ImageInventory, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._by_digest[key] = inv

    def _from_registry(self, ref: RegistryRef, source: str) -> ImageInventory:
        client = self.registry
        if ref.digest:
            # by digest: the cache key is known before any request
            key = f"{ref.digest}|{self.platform}"
            with self._exclusive(f"img:{key}"):
                if hit := self._cached(key, source):
                    return hit
                body, media_type, digest = client.get_manifest(ref)
                return self._read_registry_image(ref, source, body, media_type, digest, key)
        body, media_type, digest = client.get_manifest(ref)
        top_key = f"{digest}|{self.platform}"
        with self._exclusive(f"img:{top_key}"):
            if hit := self._cached(top_key, source):
                return hit
            return self._read_registry_image(ref, source, body, media_type, digest, top_key)

    def _read_registry_image(
        self, ref: RegistryRef, source: str, body: bytes, media_type: str, digest: str, top_key: str
    ) -> ImageInventory:
        client = self.registry

        def fetch(d: Descriptor) -> tuple[bytes, str]:
            b, mt, _ = client.get_manifest(ref, d.digest)
            return b, mt or d.media_type

        manifest = resolve(body, media_type, digest, self.platform, fetch, str(ref))
        with client.open_blob(ref, manifest.config.digest, manifest.config.size, limit=MAX_CONFIG_BYTES) as r:
            config = r.read()
        layers = [
            LayerSource(
                d.digest,
                d.media_type,
                f"{ref.registry}/{ref.repository} layer {d.digest}",
                _opener(client, ref, d),
            )
            for d in manifest.layers
        ]
        inv = self._build(source, manifest, config, layers)
        self._store(inv, top_key, f"{manifest.digest}|{self.platform}")
        return inv

    def _from_layout(self, ref: LayoutRef, source: str) -> ImageInventory:
        layout = OciArchive(ref.path) if ref.archive else OciLayout(ref.path)
        try:
            body, media_type, digest = layout.top(ref.tag)
            manifest = resolve(body, media_type, digest, self.platform, layout.fetch, layout.what)
            key = f"{manifest.digest}|{self.platform}"
            with self._exclusive(f"img:{key}"):
                if hit := self._cached(key, source):
                    return hit
                return self._read_layout_image(layout, ref, source, manifest)
        finally:
            layout.close()

    def _read_layout_image(
        self, layout: OciLayout, ref: LayoutRef, source: str, manifest: ImageManifest
    ) -> ImageInventory:
        config = layout.read_blob(manifest.config.digest, MAX_CONFIG_BYTES)
        layers = [
            LayerSource(
                d.digest,
                d.media_type,
                f"{layout.what} layer {d.digest}",
                _bind(layout.open_blob, d.digest, d.size),
            )
            for d in manifest.layers
        ]
        inv = self._build(source, manifest, config, layers)
        self._store(inv, f"{manifest.digest}|{self.platform}")
        return inv

    def _from_archive(self, ref: ArchiveRef, source: str) -> ImageInventory:
        archive = DockerArchive(ref.path)
        try:
            image = archive.image(ref.tag)
            doc = load_json(image.config, f"docker-archive:{ref.path} config")
            raw_rootfs = doc.get("rootfs")
            rootfs: dict[str, Any] = raw_rootfs if isinstance(raw_rootfs, dict) else {}
            diff_ids = [str(x) for x in rootfs.get("diff_ids") or []]
            if len(diff_ids) != len(image.layer_members):
                raise ImageReadError(
                    f"docker-archive:{ref.path}: {len(image.layer_members)} layers but "
                    f"{len(diff_ids)} diff_ids in the config"
                )
            layers = [
                LayerSource(
                    diff_id,
                    "application/vnd.oci.image.layer.v1.tar",
                    f"docker-archive:{ref.path} layer {name}",
                    _bind(archive.open_layer, name),
                    verify_uncompressed=diff_id,
                )
                for name, diff_id in zip(image.layer_members, diff_ids, strict=True)
            ]
            # no registry manifest exists: the image ID (config digest) is the identity
            manifest = ImageManifest(image.config_digest, Descriptor("", image.config_digest, None), ())
            return self._build(source, manifest, image.config, layers)
        finally:
            archive.close()

    # --- inventory -----------------------------------------------------------------------------

    def _build(
        self, source: str, manifest: ImageManifest, config_bytes: bytes, layers: list[LayerSource]
    ) -> ImageInventory:
        doc = load_json(config_bytes, f"{source} config")
        config = parse_config(doc)
        gaps: list[CoverageGap] = []
        contents: list[LayerContents] = []
        for layer in layers:
            if layer.media_type and layer.media_type not in LAYER_TYPES:
                gaps.append(
                    CoverageGap(
                        layer.what,
                        GapReason.UNKNOWN_KIND,
                        f"unknown layer media type {layer.media_type!r}; not read",
                    )
                )
                continue
            contents.append(self._layer(layer))
        for c in contents:
            gaps.extend(c.gaps)
        merged = flatten(contents)
        packages, os_release, more = _packages(merged)
        gaps.extend(more)
        if not packages:
            gaps.append(
                CoverageGap(
                    source,
                    GapReason.MISSING_INPUT,
                    "no package database or package metadata found (a scratch or stripped image, or its "
                    "layers were unreadable): nothing in it can be matched to vulnerabilities",
                )
            )
        platform = "/".join(x for x in (config.os, config.architecture, str(doc.get("variant") or "")) if x)
        self._count("images_read")
        return ImageInventory(
            reference=source,
            digest=manifest.digest,
            platform=platform or self.platform,
            os_release=os_release,
            packages=packages,
            config=config,
            gaps=gaps,
        )

    def _layer(self, layer: LayerSource) -> LayerContents:
        with self._exclusive(f"layer:{layer.digest}"):
            with self._lock:
                hit = self._layers.get(layer.digest)
                if hit is not None:
                    self.stats.layer_cache_hits += 1
                    return hit
                self.stats.layers_read += 1
            contents = self._read_layer(layer)
            with self._lock:
                self._layers.put(contents)
            return contents

    def _read_layer(self, layer: LayerSource) -> LayerContents:
        try:
            with layer.open() as raw:
                stream: BinaryIO = raw
                if layer.verify_uncompressed:
                    stream = _verify_after_decompression(raw, layer)
                contents = read_layer(stream, layer.digest, layer.what)
        except ImageReadError as e:
            contents = LayerContents(layer.digest, gaps=[CoverageGap(layer.what, GapReason.ERROR, str(e))])
        return contents


def _verify_after_decompression(raw: BinaryIO, layer: LayerSource) -> BinaryIO:
    decompressed = layers_mod.open_decompressed(raw, layer.what)
    assert layer.verify_uncompressed is not None
    return VerifyingReader(file_chunks(decompressed), layer.verify_uncompressed, layer.what)  # type: ignore[return-value]


def _opener(
    client: RegistryClient, ref: RegistryRef, d: Descriptor
) -> Callable[[], AbstractContextManager[BinaryIO]]:
    return lambda: client.open_blob(ref, d.digest, d.size)  # type: ignore[return-value]


def _bind(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: fn(*args)


def _as(inv: ImageInventory, source: str) -> ImageInventory:
    """A cached inventory under the reference this caller used (the lists are copies)."""
    return dataclasses.replace(inv, reference=source, packages=list(inv.packages), gaps=list(inv.gaps))


def _packages(
    merged: dict[str, tuple[layers_mod.LayerFile, str]],
) -> tuple[list[Package], dict[str, str], list[CoverageGap]]:
    os_file = merged.get("etc/os-release") or merged.get("usr/lib/os-release")
    os_release = ospkgs.parse_os_release(os_file[0].data or b"") if os_file else {}
    out: list[Package] = []
    gaps: list[CoverageGap] = []
    for path, (f, layer) in sorted(merged.items()):
        if f.kind == "packages":
            out.extend(f.packages)
            continue
        parser = {
            "dpkg": ospkgs.dpkg_packages,
            "apk": ospkgs.apk_packages,
            "rpm-sqlite": ospkgs.rpm_packages,
            "rpm-bdb": ospkgs.rpm_packages,
        }.get(f.kind)
        if f.kind == "rpm-ndb":
            gaps.append(ospkgs.unsupported_rpm(path))
        if parser is None:
            continue
        manager = "rpm" if f.kind.startswith("rpm") else f.kind
        distro = ospkgs.distro_of(os_release, manager)
        if not os_release:
            gaps.append(
                CoverageGap(
                    path,
                    GapReason.MISSING_INPUT,
                    f"no etc/os-release: the distribution is taken to be {distro.ecosystem} from the package "
                    "manager, and its release is unknown",
                )
            )
        pkgs, more = parser(f.data or b"", path, distro)
        out.extend(dataclasses.replace(p, layer=layer) for p in pkgs)
        gaps.extend(more)
    unique = {(p.ecosystem, p.name, p.version, p.path): p for p in out}
    return sorted(unique.values(), key=lambda p: (p.ecosystem, p.name, p.version, p.path)), os_release, gaps


def inventory_of(
    source: str,
    *,
    platform: str = DEFAULT_PLATFORM,
    credentials: CredentialSource = None,
    insecure: bool = False,
    reader: ImageReader | None = None,
) -> ImageInventory:
    """The inventory of one image (see the module docstring); pass ``reader`` to share its caches."""
    if reader is not None:
        return reader.inventory(source)
    with ImageReader(platform=platform, credentials=credentials, insecure=insecure) as r:
        return r.inventory(source)
