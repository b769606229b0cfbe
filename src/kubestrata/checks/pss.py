"""Pod Security Standards in `kubestrata scan`: what Pod Security Admission would deny under each
namespace's labels, every baseline violation whatever the namespace enforces (KS-PSS-004: a pod with
hostPID and SYS_ADMIN is a real risk in a namespace with no Pod Security labels, which is the EKS
default), what would fail restricted:latest, and namespace labels PSA cannot parse."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from kubestrata.checks.base import CheckContext, check
from kubestrata.checks.needs import known_needs_for
from kubestrata.findings import Evidence, Finding, Layer, Severity
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import WORKLOAD_KINDS, ContainerRef, iter_containers, pod_template
from kubestrata.pss.api import LATEST, Level, LevelVersion, NamespacePolicy
from kubestrata.pss.checks import CAPABILITIES_ALLOWED_1_0, Violation
from kubestrata.pss.config import PodSecurityConfig, load_pod_security_configuration
from kubestrata.pss.controls import check_ids, control_name
from kubestrata.pss.evaluate import Memo, ObjectResult, evaluate_object, evaluate_pod
from kubestrata.pss.fixes import remediate
from kubestrata.pss.registry import PSSResult, effective_minor, run_checks
from kubestrata.pss.view import PodView

APP = Layer.APPLICATION
RESTRICTED_LATEST = LevelVersion(Level.RESTRICTED, LATEST)
BASELINE_LATEST = LevelVersion(Level.BASELINE, LATEST)


def _admission_config(ctx: CheckContext) -> PodSecurityConfig | None:
    """The API server's PodSecurityConfiguration named by scan.pss_configuration, loaded once."""
    path = ctx.config.pss_configuration
    return ctx.memo("pss.configuration", lambda: load_pod_security_configuration(path) if path else None)


def _policy(ctx: CheckContext, namespace: str) -> NamespacePolicy:
    cache = ctx.memo("pss.namespace-policies", dict)
    pol = cache.get(namespace)
    if pol is None:
        cfg = _admission_config(ctx)
        pol = cache[namespace] = NamespacePolicy.from_labels(
            ctx.cluster.namespace_labels(namespace), cfg.defaults if cfg else None
        )
    return pol


def _evaluate(obj: KubeObject, ctx: CheckContext) -> ObjectResult | None:
    cache = ctx.memo("pss.object-results", dict)
    key = id(obj)
    if key not in cache:
        cfg = _admission_config(ctx)
        r = evaluate_object(
            obj,
            _policy(ctx, obj.namespace),
            exemptions=cfg.exemptions if cfg else None,
            view=_view(obj, ctx),
            memo=ctx.memo("pss.templates", Memo),  # objects with equal pod templates: one evaluation
        )
        if r is not None and r.error is not None:
            raise r.error
        cache[key] = r
    return cache[key]


def _view(obj: KubeObject, ctx: CheckContext) -> PodView | None:
    """The pod view the scan decoded while validating the object, if any."""
    return ctx.memo("pss.views", dict).get(id(obj))


def _at(r: ObjectResult, obj: KubeObject, ctx: CheckContext, lv: LevelVersion) -> PSSResult:
    """The object's pods evaluated at one level-version; the namespace policy's evaluation of the
    template when it made one at that level (the restricted one when audit or warn is restricted)."""
    sh = r.shared
    if sh is None:
        return evaluate_pod(_view(obj, ctx) or obj, lv.level, lv.version)
    res = sh["results"].get((lv.level, effective_minor(lv.version)))
    if res is None:
        res = run_checks(sh["view"], lv)
    return res if res.level_version == lv else res.relabelled(lv)


_T = TypeVar("_T")


def _per_template(r: ObjectResult, key: object, build: Callable[[], _T]) -> _T:
    """What a check derives from the object's pod template alone, built once per template (objects
    with equal templates share r.shared, see pss.evaluate.Memo). Only this is kept, not the
    evaluations it came from: a scan of distinct templates keeps no more than the findings hold."""
    sh = r.shared
    if sh is None:
        return build()
    if key not in sh:
        sh[key] = build()
    return sh[key]  # type: ignore[no-any-return]


# what a finding on a pod template says beyond its object's identity: (evidence, fix patch, fix note)
TemplateFinding = tuple[tuple[Evidence, ...], list[dict[str, Any]] | None, str | None]


def _failing(obj: KubeObject, res: PSSResult) -> TemplateFinding:
    """Evidence and the verified combined fix patch (with its notes) for a failing evaluation. The
    paths and values of both come from the pod template, so replicas share them."""
    evidence = tuple(_evidence(obj, res))  # explains every violation: the remediation reuses them
    rem = remediate(obj.raw, res.level_version, first=res)  # starts from res: no second evaluation
    return evidence, rem.patch or None, "; ".join(rem.notes) or None


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


_PARSED_PATHS: dict[str, list[str | int]] = {}


def field_value(doc: Any, path: str) -> Any:
    """The value at a dotted path with [i] indexes (``spec.containers[0].image``); None when absent."""
    steps = _PARSED_PATHS.get(path)
    if steps is None:  # violation paths repeat from object to object: parsed once each
        steps = [int(index) if index else name for name, index in _PATH_PART.findall(path)]
        if len(_PARSED_PATHS) < 10_000:
            _PARSED_PATHS[path] = steps
    cur = doc
    for step in steps:
        if type(step) is int:
            cur = cur[step] if isinstance(cur, list) and step < len(cur) else None
        else:
            cur = cur.get(step) if isinstance(cur, dict) else None
        if cur is None:
            return None
    return cur


def _evidence(obj: KubeObject, result: PSSResult) -> list[Evidence]:
    # observed: what the object has at the path (None: not set); expected: PSA's requirement
    return [Evidence(v.path, field_value(obj.raw, v.path), v.detail) for v in result.violations]


@check(
    "KS-PSS-001",
    "Denied by the namespace's Pod Security enforce policy",
    severity=Severity.HIGH,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="Pod Security Admission rejects pods that violate the namespace's enforce level. For a "
    "Deployment, Job or other controller the API server only warns, then the controller fails "
    "to create its pods: the rollout stalls with no error on the object you applied.",
    remediation="Apply the JSON patch (review the notes: runAsNonRoot may need an image that runs as a "
    "non-root user), or relax the namespace's enforce label if the workload truly needs it.",
    references={
        "pss": ["Pod Security Admission: enforce"],
        "cis-eks": ["4.2 Pod Security Standards"],
        "nsa-cisa": ["Pod security"],
        "mitre": ["T1610 Deploy Container"],
    },
)
def denied_by_enforce(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    r = _evaluate(obj, ctx)
    if r is None or r.pods_allowed or r.enforce is None:
        return
    meta = denied_by_enforce.meta
    enforce = r.enforce
    # keyed by the enforce level too: replicas in namespaces that enforce other levels differ
    evidence, fix, note = _per_template(
        r, ("KS-PSS-001", enforce.level_version), lambda: _failing(obj, enforce)
    )
    text = (
        r.summary()
        if r.is_controller
        else f"pod {obj.name} is denied in namespace {obj.namespace}: {r.enforce.message}"
    )
    yield meta.finding(
        obj,
        text,
        evidence=list(evidence),
        fix=fix,
        fix_note=note,
    )


@check(
    "KS-PSS-002",
    "Would fail the restricted Pod Security Standard",
    severity=Severity.LOW,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="restricted is the hardened profile (no privilege escalation, all capabilities dropped, "
    "non-root, seccomp). Workloads that meet it can move to a namespace labelled "
    "enforce=restricted without breaking; this advisory lists what stands in the way.",
    remediation="Apply the JSON patch and label the namespace pod-security.kubernetes.io/enforce=restricted; "
    "preview with `kubestrata pss what-if`.",
    references={
        "pss": ["restricted"],
        "cis-eks": ["4.2 Pod Security Standards"],
        "nsa-cisa": ["Pod security"],
        "mitre": ["T1611 Escape to Host"],
    },
)
def fails_restricted(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    r = _evaluate(obj, ctx)
    if r is None or not r.pods_allowed or r.exempt:
        return  # denied already (KS-PSS-001) or exempt

    def judge() -> tuple[str, TemplateFinding] | None:
        res = _at(r, obj, ctx, RESTRICTED_LATEST)
        return None if res.allowed else (res.warning, _failing(obj, res))

    found = _per_template(r, "KS-PSS-002", judge)
    if found is None:
        return
    warning, (evidence, fix, note) = found
    meta = fails_restricted.meta
    yield meta.finding(
        obj,
        f"{obj.kind} {obj.name} in namespace {obj.namespace} {warning}",
        evidence=list(evidence),
        fix=fix,
        fix_note=note,
    )


@check(
    "KS-PSS-003",
    "Invalid Pod Security namespace label",
    severity=Severity.MEDIUM,
    layer=APP,
    kinds=["Namespace"],
    rationale="Pod Security Admission cannot parse the label: an invalid enforce level fails closed "
    "(restricted), an invalid audit or warn level fails open (privileged) and an invalid "
    "version means latest, which is rarely what was meant. The API server rejects such labels on "
    "create, so they come from older clusters or manifests that were never applied.",
    remediation="Use privileged, baseline or restricted for levels and latest or v1.N for versions.",
    references={
        "pss": ["Pod Security Admission labels"],
        "cis-eks": ["4.2 Pod Security Standards"],
        "nsa-cisa": ["Pod security"],
        "mitre": ["T1562 Impair Defenses"],
    },
)
def invalid_labels(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    pol = NamespacePolicy.from_labels(obj.labels)
    if not pol.errors:
        return
    meta = invalid_labels.meta
    yield meta.finding(
        obj,
        f"namespace {obj.name} has invalid pod-security labels ({'; '.join(str(e) for e in pol.errors)}); "
        f"PSA evaluates {pol.policy}",
        evidence=[Evidence(f"metadata.labels[{e.label}]", e.value, e.message) for e in pol.errors],
    )


# Baseline controls with a dedicated workload check of their own: KS-PSS-004 leaves them to it, so one
# field gives one finding (privileged -> KS-WL-001, hostPath volumes -> KS-WL-003).
BASELINE_ELSEWHERE = {"privileged": "KS-WL-001", "hostPathVolumes": "KS-WL-003"}
# A baseline control that exposes rather than escapes ranks medium; every other one is high.
BASELINE_MEDIUM = frozenset({"hostPorts", "hostProbesAndHostLifecycle"})


@check(
    "KS-PSS-004",
    "Violates the baseline Pod Security Standard",
    severity=Severity.HIGH,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="baseline is the minimum Pod Security Standard: what it forbids (host namespaces, added "
    "capabilities such as SYS_ADMIN, Unmasked /proc, custom SELinux types, unsafe sysctls, unconfined "
    "AppArmor or seccomp, Windows HostProcess, host ports) breaks the isolation between the container "
    "and its node. It is a risk whatever the namespace enforces: a namespace without Pod Security labels "
    "(the EKS default) admits all of it. One finding per control; host ports and host probes rank medium "
    "(exposure, not escape); privileged and hostPath volumes are KS-WL-001 and KS-WL-003.",
    remediation="Remove the field named in the evidence (the JSON patch does it where that is safe), then "
    "label the namespace pod-security.kubernetes.io/enforce=baseline (preview with `kubestrata pss "
    "what-if`); a system component that truly needs it belongs in the known-needs data or the allow-list.",
    references={
        "pss": ["baseline"],
        "cis-eks": ["4.2 Pod Security Standards"],
        "nsa-cisa": ["Pod security"],
        "mitre": ["T1611 Escape to Host"],
    },
)
def violates_baseline(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    r = _evaluate(obj, ctx)
    if r is None or not r.pods_allowed or r.exempt:
        return  # denied already (KS-PSS-001, which names every violation) or exempted by the API server

    def judge() -> list[tuple[str, list[Violation]]]:
        res = _at(r, obj, ctx, BASELINE_LATEST)
        if res.allowed:
            return []
        return [
            (f.check, [v for v in res.violations if v.check == f.check])
            for f in res.failures
            if f.check not in BASELINE_ELSEWHERE
        ]

    failing = _per_template(r, "KS-PSS-004", judge)
    if not failing:
        return
    meta = violates_baseline.meta
    needs = known_needs_for(obj, ctx)
    for check_id, all_vs in failing:
        vs = [v for v in all_vs if not needs.covers_violation(v) and not _excluded(v, obj, ctx)]
        if not vs:
            continue  # every offending field is what this system component is known to need
        containers = sorted({v.container for v in vs if v.container})
        fixes = [op for v in vs for op in (v.fix or [])]
        yield meta.finding(
            obj,
            f"{obj.kind} {obj.name} in namespace {obj.namespace} violates baseline control "
            f"{control_name(check_id)!r} ({check_id}): " + "; ".join(v.detail for v in vs),
            severity=Severity.MEDIUM if check_id in BASELINE_MEDIUM else None,
            container=containers[0] if len(containers) == 1 else None,
            evidence=[Evidence(v.path, field_value(obj.raw, v.path), v.detail) for v in vs],
            fix=fixes or None,
            fix_note="; ".join(sorted({v.fix_note for v in vs if v.fix_note})) or None,
        )


def _offending_values(v: Violation, obj: KubeObject) -> set[str] | None:
    """The values a violation is about, for an exclusion's allowed list (None: not value-based)."""
    if v.check == "hostPorts":
        return {v.detail.rsplit(" ", 1)[-1]}
    if v.check == "sysctls":
        return {v.detail}
    if v.check in ("capabilities_baseline", "capabilities_restricted") and v.container:
        for c in _containers(obj):
            if c.name == v.container:
                add = (c.security_context.get("capabilities") or {}).get("add") or []
                return {str(x) for x in add} - CAPABILITIES_ALLOWED_1_0
    return None


def _containers(obj: KubeObject) -> list[ContainerRef]:
    tpl = pod_template(obj)
    return list(iter_containers(tpl.spec, tpl.spec_path)) if tpl is not None else []


def _excluded(v: Violation, obj: KubeObject, ctx: CheckContext) -> bool:
    """Whether a scan.pss_exclusions entry (Kyverno's podSecurity.exclude) covers this violation."""
    for e in ctx.config.pss_exclusions:
        if v.check not in check_ids(e.control):
            continue
        if e.namespaces and not any(fnmatchcase(obj.namespace, p) for p in e.namespaces):
            continue
        if e.images:
            if v.container is None:
                continue  # a pod-level field: only an entry without images excludes it
            image = next(
                (str(c.container.get("image") or "") for c in _containers(obj) if c.name == v.container), ""
            )
            if not any(fnmatchcase(image, p) for p in e.images):
                continue
        if e.values:
            offending = _offending_values(v, obj)
            if offending is None or not offending <= set(e.values):
                continue
        return True
    return False
