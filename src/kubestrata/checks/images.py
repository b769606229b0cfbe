"""Image security: mutable tags, digests, registries outside the allow-list."""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

from kubestrata.checks.base import CheckContext, check
from kubestrata.findings import Evidence, Finding, Layer, Severity
from kubestrata.kube.images import parse_image
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import WORKLOAD_KINDS, ContainerRef

APP = Layer.APPLICATION


def _images(obj: KubeObject, ctx: CheckContext) -> Iterator[tuple[ContainerRef, str]]:
    for c in ctx.containers(obj):
        image = c.container.get("image")
        if isinstance(image, str) and image:
            yield c, image


@check(
    "KS-IMG-001",
    "Image uses the latest tag or no tag",
    severity=Severity.MEDIUM,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="latest (or no tag, which means latest) changes under you: what runs is not what was "
    "reviewed or scanned, and rollbacks are not reproducible.",
    remediation="Reference a specific version tag, or better a digest (image@sha256:...).",
    references={"nsa-cisa": ["Image scanning and immutable tags"], "mitre": ["T1525 Implant Internal Image"]},
)
def latest_tag(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    meta = latest_tag.meta
    for c, image in _images(obj, ctx):
        ref = parse_image(image)
        if ref.digest is None and (ref.tag is None or ref.tag == "latest"):
            yield meta.finding(
                obj,
                f"container {c.name!r} image {image!r} "
                + ("has no tag" if ref.tag is None else "uses :latest")
                + (
                    f" and {ref.bad_digest!r} after '@' is not a digest" if ref.bad_digest is not None else ""
                ),
                container=c.name,
                evidence=[Evidence(f"{c.path}.image", image, "a version tag or digest")],
            )


@check(
    "KS-IMG-002",
    "Image not pinned by digest",
    severity=Severity.LOW,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="Tags are mutable: a registry compromise or a re-push changes what runs. A digest names "
    "exactly one image.",
    remediation="Pin the image by digest (image: repo:tag@sha256:...), updated by your release tooling.",
    references={"nsa-cisa": ["Image scanning and immutable tags"], "mitre": ["T1525 Implant Internal Image"]},
)
def not_pinned(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    meta = not_pinned.meta
    for c, image in _images(obj, ctx):
        ref = parse_image(image)
        if ref.digest is None:
            why = (
                f": {ref.bad_digest!r} after '@' is not a valid digest (sha256:<64 hex>); "
                "the runtime refuses the reference"
                if ref.bad_digest is not None
                else ""
            )
            yield meta.finding(
                obj,
                f"container {c.name!r} image {image!r} is not pinned by digest{why}",
                container=c.name,
                evidence=[Evidence(f"{c.path}.image", image, "@sha256:<digest>")],
            )


@check(
    "KS-IMG-003",
    "Image registry not allowed",
    severity=Severity.MEDIUM,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="Images from registries you do not control bypass your scanning and signing pipeline. By "
    "default only private Amazon ECR registries are allowed; add yours in the config "
    "(scan.extra_allowed_registries).",
    remediation="Mirror the image into an allowed registry (for example with ECR pull-through cache) and "
    "reference it there, or add the registry to the allow-list.",
    references={
        "cis-eks": ["5.1.1", "5.1.3"],
        "nsa-cisa": ["Supply chain: trusted registries"],
        "mitre": ["T1525 Implant Internal Image"],
    },
)
def registry_not_allowed(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    meta = registry_not_allowed.meta
    allowed = ctx.config.registries
    for c, image in _images(obj, ctx):
        reg = parse_image(image).registry
        if not any(fnmatchcase(reg, pat.lower()) for pat in allowed):
            yield meta.finding(
                obj,
                f"container {c.name!r} image {image!r} comes from registry {reg!r}, not in the allow-list",
                container=c.name,
                evidence=[Evidence(f"{c.path}.image", reg, allowed)],
            )
