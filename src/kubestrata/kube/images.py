"""Container image references, parsed the way the container runtime (distribution/reference) does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# distribution/reference: digest = algorithm ":" encoded, algorithm components [a-z0-9]+ joined by [+._-];
# the OCI image spec fixes the registered algorithms' encodings: sha256 is 64 lowercase hex characters,
# sha512 128. Anything else after "@" is not a digest: the runtime refuses the reference (InvalidImageName).
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_REGISTERED = {"sha256": re.compile(r"^[a-f0-9]{64}$"), "sha512": re.compile(r"^[a-f0-9]{128}$")}
DEFAULT_REGISTRY = "docker.io"


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None
    digest: str | None  # a valid digest only
    bad_digest: str | None = None  # what followed "@" when it is not a valid digest

    @property
    def pinned(self) -> bool:
        return self.digest is not None


def valid_digest(digest: str) -> bool:
    """Whether ``digest`` is a well-formed content digest (sha256:<64 hex>, sha512:<128 hex>, or
    another algorithm in distribution/reference's grammar)."""
    if not _DIGEST.match(digest):
        return False
    algo, _, encoded = digest.partition(":")
    rule = _REGISTERED.get(algo)
    return rule is None or bool(rule.match(encoded))


# the image checks parse each container's image in turn, and workloads share images: the answer (a
# frozen ImageRef) depends on the text alone
@lru_cache(maxsize=4096)
def parse_image(image: str) -> ImageRef:
    """Split ``[registry/]repo[:tag][@digest]``; the first component is a registry when it contains
    a dot or a colon or is ``localhost``, else the image is on Docker Hub."""
    rest = image.strip()
    digest = bad = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not valid_digest(digest):
            digest, bad = None, digest
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = DEFAULT_REGISTRY, rest
    tag = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = "library/" + path
    return ImageRef(registry.lower(), path, tag or None, digest, bad)
