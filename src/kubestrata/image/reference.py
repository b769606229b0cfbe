"""Image sources as strings, with skopeo's transport prefixes:

- ``registry/repo:tag``, ``registry/repo@sha256:...``, ``docker://...`` (a registry; Docker Hub names
  such as ``alpine`` become ``registry-1.docker.io/library/alpine:latest``)
- ``oci:DIR[:tag]`` (an OCI image-layout directory), ``oci-archive:FILE.tar[:tag]`` (one in a tar)
- ``docker-archive:FILE.tar[:repo:tag]`` (a ``docker save`` archive)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubestrata.image.blobs import ImageReadError, valid_digest

DOCKER_HUB = "registry-1.docker.io"
_NAME = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class RegistryRef:
    registry: str  # host[:port]
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What the manifest endpoint is asked for: the digest when known, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        s = f"{self.registry}/{self.repository}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


@dataclass(frozen=True, slots=True)
class LayoutRef:
    path: str
    tag: str | None = None
    archive: bool = False  # oci-archive: the layout is inside a tar file


@dataclass(frozen=True, slots=True)
class ArchiveRef:
    path: str
    tag: str | None = None  # repo:tag among the archive's RepoTags


Source = RegistryRef | LayoutRef | ArchiveRef


def parse_source(source: str) -> Source:
    """The transport and location a source string names; ImageReadError when malformed."""
    if source.startswith("oci-archive:"):
        path, tag = _split_trailing_tag(source[len("oci-archive:") :])
        if not path:
            raise ImageReadError(f"{source!r}: oci-archive: needs a file (oci-archive:FILE.tar[:tag])")
        return LayoutRef(path, tag, archive=True)
    if source.startswith("oci:"):
        path, tag = _split_trailing_tag(source[4:])
        if not path:
            raise ImageReadError(f"{source!r}: oci: needs a directory (oci:DIR[:tag])")
        return LayoutRef(path, tag)
    if source.startswith("docker-archive:"):
        rest = source[len("docker-archive:") :]
        path, ref = rest, None
        # FILE.tar:repo:tag - the reference follows the first ':' after the archive name
        m = re.match(r"^(.*?\.tar(?:\.gz)?)(?::(.+))?$", rest)
        if m:
            path, ref = m.group(1), m.group(2)
        if not path:
            raise ImageReadError(f"{source!r}: docker-archive: needs a file (docker-archive:FILE.tar)")
        return ArchiveRef(path, ref)
    if source.startswith("docker://"):
        source = source[len("docker://") :]
    return parse_registry_ref(source)


def _split_trailing_tag(text: str) -> tuple[str, str | None]:
    head, sep, tail = text.rpartition(":")
    if sep and head and "/" not in tail and _TAG.match(tail):
        return head, tail
    return text, None


def parse_registry_ref(text: str) -> RegistryRef:
    original = text
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not valid_digest(digest):
            raise ImageReadError(f"{original!r}: malformed digest {digest[:80]!r}")
    tag = None
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
        if not _TAG.match(tag):
            raise ImageReadError(f"{original!r}: malformed tag {tag!r}")
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, text if rest else f"library/{text}"
    if registry in ("docker.io", "index.docker.io"):
        registry = DOCKER_HUB
    if not _NAME.match(repository):
        raise ImageReadError(f"{original!r}: malformed repository name {repository!r}")
    if tag is None and digest is None:
        tag = "latest"
    return RegistryRef(registry, repository, tag, digest)
