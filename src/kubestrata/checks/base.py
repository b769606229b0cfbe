"""The check registry: pure functions with metadata, run over objects or the whole cluster."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from kubestrata.config import ScanConfig
from kubestrata.findings import Coverage, Evidence, Finding, GapReason, Layer, Severity
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import ContainerRef, PodTemplate, iter_containers, pod_template

EXAMPLES_DIR = Path(__file__).parent / "examples"

FRAMEWORKS = ("cis-eks", "nsa-cisa", "mitre", "pss")


@dataclass(frozen=True)
class CheckMeta:
    id: str
    title: str
    severity: Severity
    layer: Layer
    kinds: frozenset[str]  # empty for cluster-wide checks
    rationale: str
    remediation: str
    references: dict[str, list[str]] = field(default_factory=dict)
    domain: str = ""

    def finding(
        self,
        obj: KubeObject | None,
        message: str,
        *,
        severity: Severity | None = None,
        container: str | None = None,
        evidence: Iterable[Evidence] = (),
        fix: list[dict[str, Any]] | None = None,
        fix_note: str | None = None,
    ) -> Finding:
        return Finding(
            rule_id=self.id,
            title=self.title,
            severity=severity or self.severity,
            layer=self.layer,
            message=message,
            object=obj.ref if obj else None,
            source=obj.source if obj else None,
            container=container,
            evidence=list(evidence),
            remediation=self.remediation,
            fix=fix,
            fix_note=fix_note,
            references=self.references,
        )

    @property
    def examples_dir(self) -> Path:
        return EXAMPLES_DIR / self.id


ObjectCheckFn = Callable[[KubeObject, "CheckContext"], Iterable[Finding]]
ClusterCheckFn = Callable[["CheckContext"], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    """A registered check: its metadata and its function. The registration decorators return it in
    place of the function, so a check body reads its own metadata as ``<name>.meta``."""

    meta: CheckMeta
    fn: Callable[..., Iterable[Finding]]
    cluster_wide: bool = False

    def __call__(self, *args: Any) -> Iterable[Finding]:
        return self.fn(*args)


class CheckContext:
    """What a check may read besides its object: the snapshot, the config, shared lazy indexes."""

    def __init__(
        self, cluster: Cluster, config: ScanConfig | None = None, now: dt.datetime | None = None
    ) -> None:
        self.cluster = cluster
        self.config = config or ScanConfig()
        self.now = now or dt.datetime.now(dt.UTC)
        self.coverage = Coverage()
        self._cache: dict[str, Any] = {}
        # the object the scan is judging now, with its pod template and containers as the scan's
        # validation read them (see focus): the workload checks share them instead of each walking
        # the object again
        self._focus: KubeObject | None = None
        self._template: PodTemplate | None = None
        self._containers: list[ContainerRef] = []

    def focus(
        self, obj: KubeObject | None, template: PodTemplate | None, containers: list[ContainerRef]
    ) -> None:
        """Set the object the next checks judge, with its pod template and containers (read from it
        and validated by the caller, which does not modify the object while it is in focus)."""
        self._focus, self._template, self._containers = obj, template, containers

    def template(self, obj: KubeObject) -> PodTemplate | None:
        """kube.podspec.pod_template(obj), read once for the object in focus."""
        if obj is self._focus:
            return self._template
        return pod_template(obj)

    def containers(self, obj: KubeObject) -> list[ContainerRef]:
        """Every container of the object's pod template (kube.podspec.iter_containers; [] for a kind
        without one), read once for the object in focus."""
        if obj is self._focus:
            return self._containers
        tpl = pod_template(obj)
        return list(iter_containers(tpl.spec, tpl.spec_path)) if tpl is not None else []

    def gap(self, subject: str, reason: GapReason, detail: str) -> None:
        """Record that something could not be evaluated (missing input, unreadable data), so that a
        check with nothing to judge is reported as "not evaluated", never as a silent pass."""
        self.coverage.gap(subject, reason, detail)

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        """An index built once per scan and shared by every check that asks for it."""
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = build()
            return value

    def built(self, key: str) -> Any:
        """The index under ``key`` if a check has built it already, else None: for a check that can
        read a larger index when it exists but should not build it on its own."""
        return self._cache.get(key)

    @cached_property
    def rbac_present(self) -> bool:
        return bool(self.cluster.of_kind("RoleBinding", "ClusterRoleBinding"))


class CheckRegistry:
    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def register(self, chk: Check) -> None:
        if chk.meta.id in self._checks:
            raise ValueError(f"duplicate check id {chk.meta.id}")
        self._checks[chk.meta.id] = chk

    def __iter__(self):
        return iter(sorted(self._checks.values(), key=lambda c: c.meta.id))

    def __len__(self) -> int:
        return len(self._checks)

    def get(self, check_id: str) -> Check | None:
        return self._checks.get(check_id)

    def ids(self) -> list[str]:
        return sorted(self._checks)


REGISTRY = CheckRegistry()


def check(
    id: str,
    title: str,
    *,
    severity: Severity,
    layer: Layer,
    kinds: Iterable[str],
    rationale: str,
    remediation: str,
    references: dict[str, list[str]] | None = None,
    registry: CheckRegistry = REGISTRY,
) -> Callable[[ObjectCheckFn], Check]:
    """Register a per-object check for the given kinds; the decorated name becomes the Check."""

    def deco(fn: ObjectCheckFn) -> Check:
        meta = CheckMeta(
            id,
            title,
            severity,
            layer,
            frozenset(kinds),
            rationale,
            remediation,
            references or {},
            fn.__module__.rsplit(".", 1)[-1],
        )
        chk = Check(meta, fn)
        registry.register(chk)
        return chk

    return deco


def cluster_check(
    id: str,
    title: str,
    *,
    severity: Severity,
    layer: Layer,
    rationale: str,
    remediation: str,
    references: dict[str, list[str]] | None = None,
    registry: CheckRegistry = REGISTRY,
) -> Callable[[ClusterCheckFn], Check]:
    """Register a check that looks at the whole snapshot (cross-object rules); the decorated name
    becomes the Check."""

    def deco(fn: ClusterCheckFn) -> Check:
        meta = CheckMeta(
            id,
            title,
            severity,
            layer,
            frozenset(),
            rationale,
            remediation,
            references or {},
            fn.__module__.rsplit(".", 1)[-1],
        )
        chk = Check(meta, fn, cluster_wide=True)
        registry.register(chk)
        return chk

    return deco
