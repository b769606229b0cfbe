"""The scan engine: run the registered checks over a Cluster snapshot; apply suppressions and baseline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from kubestrata.baseline import BaselineComparison
from kubestrata.checks import Check, CheckContext, load_builtin_checks
from kubestrata.config import ScanConfig
from kubestrata.errors import InputError, KubestrataError
from kubestrata.findings import Coverage, Finding, GapReason, Severity
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import ObjectRef
from kubestrata.kube.podspec import WORKLOAD_KINDS, pod_template, validate_pod_spec
from kubestrata.pss.evaluate import pod_view

if TYPE_CHECKING:
    from kubestrata.suppressions import Suppressions

SUPPRESS_ANNOTATION = "kubestrata.io/suppress"
SUPPRESS_REASON_ANNOTATION = "kubestrata.io/suppress-reason"


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)
    notices: list[str] = field(default_factory=list)
    # objects handed to per-object checks (not owned by a controller in the input, valid pod spec):
    # the JUnit report lists one test case per object and check from these
    evaluated: list[ObjectRef] = field(default_factory=list)
    # with a baseline: the findings it already had (left out of ``findings``), and the comparison
    # the CLI builds from them (new / fixed / unchanged, shown by the HTML report)
    unchanged: list[Finding] = field(default_factory=list)
    baseline: BaselineComparison | None = None
    # the indexes the checks built and shared (CheckContext.memo), for renderers that need the same
    # one (the HTML report's network view reuses the network policy analysis of KS-NET-*)
    indexes: dict[str, Any] = field(default_factory=dict, repr=False)

    def active(self) -> list[Finding]:
        return [f for f in self.findings if f.suppressed is None]

    def at_or_above(self, threshold: Severity) -> list[Finding]:
        return [f for f in self.active() if f.severity.rank >= threshold.rank]


# a domain split into several modules keeps its old name as a group, so `--include access` and a
# serve config's `include: [access]` written before the split still select the same checks
DOMAIN_GROUPS: dict[str, frozenset[str]] = {
    "access": frozenset({"awsauth", "accessentries", "identity", "rbac"}),
}


def select_checks(include: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[Check]:
    """Checks after include/exclude globs (ids or domains); a pattern that matches nothing is an error."""
    registry = load_builtin_checks()
    checks = list(registry)
    include, exclude = list(include), list(exclude)

    def hits(pattern: str) -> list[Check]:
        group = DOMAIN_GROUPS.get(pattern, frozenset())
        return [
            c
            for c in checks
            if fnmatchcase(c.meta.id, pattern) or c.meta.domain == pattern or c.meta.domain in group
        ]

    for pat in [*include, *exclude]:
        if not hits(pat):
            raise KubestrataError(f"check filter {pat!r} matches no check (see `kubestrata checks list`)")
    if include:
        chosen = {c.meta.id for p in include for c in hits(p)}
        checks = [c for c in checks if c.meta.id in chosen]
    if exclude:
        dropped = {c.meta.id for p in exclude for c in hits(p)}
        checks = [c for c in checks if c.meta.id not in dropped]
    return checks


def run_scan(
    cluster: Cluster,
    *,
    config: ScanConfig | None = None,
    checks: list[Check] | None = None,
    suppressions: Suppressions | None = None,
    baseline: set[str] | None = None,
    now: dt.datetime | None = None,
) -> ScanResult:
    """Run the checks over the snapshot. ``now`` is the clock time-dependent checks judge by (node
    age, version support); it defaults to the current time."""
    config = config or ScanConfig()
    checks = checks if checks is not None else select_checks()
    ctx = CheckContext(cluster, config, now=now)
    result = ScanResult()
    cov = result.coverage
    views = ctx.memo("pss.views", dict)
    by_kind: dict[str, list[Check]] = {}
    for chk in checks:
        for k in chk.meta.kinds:
            by_kind.setdefault(k, []).append(chk)
    for obj in cluster.real_objects():
        kind = obj.kind
        kind_checks = by_kind.get(kind)
        cov.evaluated[kind] += 1
        if not kind_checks:
            continue
        tpl, containers = None, []
        if kind in WORKLOAD_KINDS:
            if cluster.controller_in_input(obj):
                continue
            try:
                tpl = pod_template(obj)
                if tpl is not None:
                    containers = validate_pod_spec(tpl.spec, tpl.spec_path)
                    # every field Pod Security reads, typed as the API server types it: an object the
                    # API server would reject (privileged: "true") is invalid input for every check,
                    # never judged by some checks and silently passed by others
                    views[id(obj)] = pod_view(obj)  # decoded once, reused by the KS-PSS checks
            except InputError as e:
                cov.gap(
                    f"{obj} ({obj.source})",
                    GapReason.INVALID,
                    f"invalid pod spec: field {e.field}: {e.detail}",
                )
                continue
        result.evaluated.append(obj.ref)
        ctx.focus(obj, tpl, containers)
        for chk in kind_checks:
            try:
                result.findings.extend(chk.fn(obj, ctx))
            except InputError as e:
                cov.gap(
                    f"{obj} ({obj.source})",
                    GapReason.INVALID,
                    f"{chk.meta.id}: " + (f"field {e.field}: " if e.field else "") + e.detail,
                )
            except Exception as e:  # a check bug must not lose the rest of the scan
                cov.gap(f"{obj} ({obj.source})", GapReason.ERROR, f"{chk.meta.id}: internal error: {e!r}")
    ctx.focus(None, None, [])
    for chk in checks:
        cov.checks_run.add(chk.meta.id)
        if chk.cluster_wide:
            try:
                result.findings.extend(chk.fn(ctx))
            except Exception as e:
                cov.gap(chk.meta.id, GapReason.ERROR, f"internal error: {e!r}")
    cov.merge(ctx.coverage)
    result.indexes = ctx._cache
    _name_every_source(result, cluster)
    _apply_suppressions(result, cluster, config, suppressions)
    if baseline is not None:
        new: list[Finding] = []
        for f in result.findings:
            (result.unchanged if f.fingerprint in baseline else new).append(f)
        result.findings = new
    result.findings.sort(
        key=lambda f: (
            -f.severity.rank,
            f.layer.value,
            f.rule_id,
            str(f.object) if f.object else "",
            f.container or "",
        )
    )
    return result


def _name_every_source(result: ScanResult, cluster: Cluster) -> None:
    """A finding on an object defined identically in several files is one finding naming them all."""
    if not cluster.duplicates:
        return
    for f in result.findings:
        if f.object is None:
            continue
        srcs = cluster.sources_of(f.object.kind, f.object.namespace, f.object.name)
        if len(srcs) > 1:
            f.message += f" (defined identically in {len(srcs)} places: {', '.join(str(s) for s in srcs)})"


def _apply_suppressions(
    result: ScanResult, cluster: Cluster, config: ScanConfig, suppressions: Suppressions | None
) -> None:
    if suppressions is not None:
        result.notices.extend(suppressions.expired_notices())
    # most inputs carry no suppress annotation at all: then no finding needs its object looked up
    annotations = config.allow_annotation_suppressions and any(
        SUPPRESS_ANNOTATION in o.annotations for o in cluster.objects
    )
    if suppressions is None and not annotations:
        return
    for f in result.findings:
        if suppressions is not None:
            reason = suppressions.match(f)
            if reason is not None:
                f.suppressed = reason
                continue
        if annotations and f.object is not None:
            obj = cluster.get_ref(f.object)
            if obj is None:
                continue
            ann = obj.annotations.get(SUPPRESS_ANNOTATION)
            if isinstance(ann, str) and any(
                fnmatchcase(f.rule_id, p.strip()) for p in ann.split(",") if p.strip()
            ):
                f.suppressed = "annotation: " + str(
                    obj.annotations.get(SUPPRESS_REASON_ANNOTATION) or "no reason given"
                )
