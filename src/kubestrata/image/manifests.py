"""Manifests and indexes (OCI and Docker v2): validation, and choosing one platform's manifest from
a multi-arch index. Shared by the registry and OCI-layout sources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kubestrata.image.blobs import ImageReadError, check_digest

INDEX_TYPES = frozenset(
    {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}
)
MANIFEST_TYPES = frozenset(
    {"application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"}
)
CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
LAYER_TYPES = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)
SCHEMA1_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
    }
)


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int | None
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImageManifest:
    digest: str  # of the manifest itself (the image's identity)
    config: Descriptor
    layers: tuple[Descriptor, ...]


def parse_platform(platform: str) -> tuple[str, str, str | None]:
    parts = platform.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageReadError(f"platform {platform!r}: expected os/architecture[/variant], e.g. linux/amd64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def load_json(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ImageReadError(f"{what}: not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ImageReadError(f"{what}: not a JSON object")
    return doc


def media_type_of(doc: dict[str, Any], content_type: str, what: str) -> str:
    """The document's type: its ``mediaType`` (which must agree with Content-Type when both are
    given), else Content-Type, else inferred from its shape."""
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ImageReadError(f"{what}: mediaType is not a string")
    known = INDEX_TYPES | MANIFEST_TYPES
    if declared and content_type in known and declared != content_type:
        raise ImageReadError(f"{what}: body says mediaType {declared}, the response says {content_type}")
    mt = declared or (content_type if content_type in known | SCHEMA1_TYPES else "")
    if not mt:
        if isinstance(doc.get("manifests"), list):
            mt = "application/vnd.oci.image.index.v1+json"
        elif isinstance(doc.get("layers"), list) and isinstance(doc.get("config"), dict):
            mt = "application/vnd.oci.image.manifest.v1+json"
    if mt in SCHEMA1_TYPES or doc.get("schemaVersion") == 1:
        raise ImageReadError(
            f"{what}: Docker schema 1 manifests are not supported (deprecated; re-push the image)"
        )
    if mt not in known:
        raise ImageReadError(f"{what}: unsupported manifest media type {mt or content_type or '(none)'!r}")
    return mt


def descriptor(d: Any, what: str) -> Descriptor:
    if not isinstance(d, dict) or not isinstance(d.get("digest"), str):
        raise ImageReadError(f"{what}: descriptor without a digest")
    size = d.get("size")
    raw_urls = d.get("urls")
    urls: list[Any] = raw_urls if isinstance(raw_urls, list) else []
    return Descriptor(
        media_type=str(d.get("mediaType") or ""),
        digest=check_digest(d["digest"]),
        size=size if isinstance(size, int) and size >= 0 else None,
        urls=tuple(str(u) for u in urls),
    )


def choose_platform(doc: dict[str, Any], platform: str, what: str) -> Descriptor:
    want_os, want_arch, want_variant = parse_platform(platform)
    candidates: list[tuple[int, Descriptor]] = []
    seen: list[str] = []
    for entry in doc.get("manifests") or []:
        if not isinstance(entry, dict):
            continue
        raw = entry.get("platform")
        p: dict[str, Any] = raw if isinstance(raw, dict) else {}
        os_, arch, variant = str(p.get("os", "")), str(p.get("architecture", "")), p.get("variant")
        if os_ and arch and os_ != "unknown":
            seen.append("/".join(x for x in (os_, arch, variant) if x))
        if os_ != want_os or arch != want_arch:
            continue
        if want_variant and variant and variant != want_variant:
            continue
        if want_variant and not variant and not (want_arch == "arm64" and want_variant == "v8"):
            continue
        # an exact variant match first, then no variant
        rank = 0 if variant == want_variant else 1
        candidates.append((rank, descriptor(entry, what)))
    if not candidates:
        available = ", ".join(sorted(set(seen))) or "none"
        raise ImageReadError(f"{what}: no manifest for platform {platform} (available: {available})")
    candidates.sort(key=lambda c: c[0])
    return candidates[0][1]


def resolve(
    body: bytes,
    content_type: str,
    digest: str,
    platform: str,
    fetch: Callable[[Descriptor], tuple[bytes, str]],
    what: str,
) -> ImageManifest:
    """The image manifest of one platform, following an index (nested at most twice); ``fetch``
    returns the verified bytes and content type of a descriptor's manifest."""
    for _depth in range(3):
        doc = load_json(body, what)
        mt = media_type_of(doc, content_type, what)
        if mt in INDEX_TYPES:
            d = choose_platform(doc, platform, what)
            body, content_type = fetch(d)
            digest = d.digest
            what = f"{what} -> {d.digest}"
            continue
        config = descriptor(doc.get("config"), f"{what} config")
        if config.media_type and config.media_type not in CONFIG_TYPES:
            raise ImageReadError(
                f"{what}: not a container image (config media type {config.media_type!r}, an OCI artifact?)"
            )
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ImageReadError(f"{what}: manifest without a layers list")
        return ImageManifest(digest, config, tuple(descriptor(layer, f"{what} layer") for layer in layers))
    raise ImageReadError(f"{what}: indexes nested more than twice")
