"""Check selection per (level, version), as policy/registry.go builds it, and pod evaluation.

For every minor v1.0..v1.MAX each check contributes its newest variant whose minimum version is at
or below that minor, and nothing below its first variant. Baseline is the baseline checks;
restricted is the restricted checks plus each baseline check no restricted variant overrides at
that minor. Order: sorted baseline ids, then sorted restricted ids (the message order). A version
above MAX, ``latest`` included, evaluates as MAX. The tuples are built once and cached.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from kubestrata.errors import InputError
from kubestrata.pss.api import Level, LevelVersion, Version, parse_version_strict
from kubestrata.pss.checks import CHECKS, CheckDef, Rule, Variant, Violation
from kubestrata.pss.view import PodView

MAX_MINOR: int = max(v.minimum_minor for c in CHECKS for v in c.variants)
"""The newest policy version any check defines (v1.37): ``latest`` and newer versions clamp to it."""

Compiled = tuple[tuple[str, Rule[Any]], ...]
# what a failing check found, kept so that explaining reads the same findings the decision did
Hits = tuple[tuple[Rule[Any], Any], ...]


def _validate(checks: tuple[CheckDef, ...]) -> None:
    ids = {c.id: c.level for c in checks}
    if len(ids) != len(checks):
        raise ValueError("duplicate check id")
    for c in checks:
        mins = [v.minimum_minor for v in c.variants]
        if not mins or mins != sorted(set(mins)):
            raise ValueError(f"check {c.id}: versions must be strictly increasing")
        for v in c.variants:
            if v.overrides and c.level is not Level.RESTRICTED:
                raise ValueError(f"check {c.id}: only restricted checks may set overrides")
            for o in v.overrides:
                if ids.get(o) is not Level.BASELINE:
                    raise ValueError(f"check {c.id}: overrides non-baseline check {o}")


def _inflate(checks: tuple[CheckDef, ...]) -> dict[tuple[Level, int], Compiled]:
    _validate(checks)
    baseline_ids = sorted(c.id for c in checks if c.level is Level.BASELINE)
    restricted_ids = sorted(c.id for c in checks if c.level is Level.RESTRICTED)
    order = baseline_ids + restricted_ids
    by_id = {c.id: c for c in checks}
    table: dict[tuple[Level, int], Compiled] = {}
    for minor in range(MAX_MINOR + 1):
        active: dict[str, Variant] = {}
        for c in checks:
            chosen = None
            for v in c.variants:
                if v.minimum_minor <= minor:
                    chosen = v
            if chosen is not None:
                active[c.id] = chosen
        overridden = {
            o for cid, v in active.items() if by_id[cid].level is Level.RESTRICTED for o in v.overrides
        }
        table[(Level.BASELINE, minor)] = tuple(
            (cid, active[cid].rule) for cid in order if cid in active and by_id[cid].level is Level.BASELINE
        )
        table[(Level.RESTRICTED, minor)] = tuple(
            (cid, active[cid].rule)
            for cid in order
            if cid in active and (by_id[cid].level is Level.RESTRICTED or cid not in overridden)
        )
        table[(Level.PRIVILEGED, minor)] = ()
    return table


_TABLE = _inflate(CHECKS)


def effective_minor(version: Version) -> int:
    """The minor whose checks run: the version itself, clamped to MAX_MINOR (latest included)."""
    if version.minor is None or version.minor > MAX_MINOR:
        return MAX_MINOR
    return version.minor


def checks_for(level: Level, version: Version) -> Compiled:
    """(check id, rule) pairs that run for this level and version, in message order."""
    return _TABLE[(level, effective_minor(version))]


class CheckFailure(NamedTuple):
    check: str
    reason: str
    detail: str


@dataclass
class PSSResult:
    """The outcome of evaluating one pod at one level-version."""

    allowed: bool
    level_version: LevelVersion
    failures: list[CheckFailure]
    view: PodView | None = None
    error: InputError | None = None  # the pod spec could not be decoded: never allowed
    hits: Hits = field(default=(), repr=False)  # (rule, what it found) of each failing check

    def relabelled(self, lv: LevelVersion) -> PSSResult:
        """The same result named by another level-version (one that evaluates as this one)."""
        return PSSResult(self.allowed, lv, self.failures, self.view, self.error, self.hits)

    @cached_property
    def forbidden_reason(self) -> str:
        """AggregateCheckResult.ForbiddenReason: `reason1, reason2` (what namespace dry-runs print)."""
        return ", ".join(f.reason for f in self.failures)

    @cached_property
    def forbidden_detail(self) -> str:
        """AggregateCheckResult.ForbiddenDetail: `reason1 (detail1), reason2, ...`."""
        return ", ".join(f"{f.reason} ({f.detail})" if f.detail else f.reason for f in self.failures)

    @property
    def message(self) -> str:
        """The exact text PSA denies a pod with, '' when allowed."""
        if self.error is not None:
            return f"invalid pod spec: {self.error}"
        if self.allowed:
            return ""
        return f'violates PodSecurity "{self.level_version}": {self.forbidden_detail}'

    @property
    def warning(self) -> str:
        """The text of PSA's warning and audit annotation for the same result, '' when allowed."""
        if self.allowed or self.error is not None:
            return ""
        return f'would violate PodSecurity "{self.level_version}": {self.forbidden_detail}'

    def explained(self) -> Iterator[list[Violation]]:
        """Each failing check's violations, in message order, computed as they are asked for."""
        view = self.view
        if view is None:
            return
        for rule, found in self.hits:
            yield rule.explain(view, found)

    @cached_property
    def violations(self) -> list[Violation]:
        """Per-field violations with paths and fixes (computed on first use)."""
        return [v for vs in self.explained() for v in vs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "policy": str(self.level_version),
            "message": self.message,
            "violations": [v.to_dict() for v in self.violations],
        }


def run_checks(view: PodView, lv: LevelVersion) -> PSSResult:
    """EvaluatePod + AggregateCheckResults for a decoded pod."""
    failures = []
    hits = []
    minor = lv.version.minor
    for cid, rule in _TABLE[(lv.level, MAX_MINOR if minor is None or minor > MAX_MINOR else minor)]:
        found = rule.find(view)
        if found is not None:
            reason, detail = rule.word(found)
            failures.append(CheckFailure(cid, reason or "unknown forbidden reason", detail))
            hits.append((rule, found))
    if not failures:
        return PSSResult(True, lv, failures, view)
    return PSSResult(False, lv, failures, view, None, tuple(hits))


@contextmanager
def bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while evaluating many pods.

    Evaluation allocates only acyclic objects, but the allocations trigger full collections that
    walk the whole snapshot (every pod's dicts) again and again: half the time of a 100,000-pod
    what-if. Reference counting still frees everything; the collector resumes afterwards.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def as_level_version(level: Level | str, version: Version | str = "latest") -> LevelVersion:
    lvl = level if isinstance(level, Level) else LevelVersion.parse(str(level)).level
    ver = version if isinstance(version, Version) else parse_version_strict(str(version))
    return LevelVersion(lvl, ver)
