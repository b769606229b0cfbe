"""Pod Security Standards in `kubestrata scan`: what Pod Security Admission would deny under each
namespace's labels, what would fail restricted:latest, and namespace labels PSA cannot parse."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kubestrata.checks.base import CheckContext, check
from kubestrata.findings import Evidence, Finding, Layer, Severity
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import WORKLOAD_KINDS
from kubestrata.pss.api import LATEST, Level, LevelVersion, NamespacePolicy
from kubestrata.pss.config import PodSecurityConfig, load_pod_security_configuration
from kubestrata.pss.evaluate import ObjectResult, evaluate_object
from kubestrata.pss.registry import PSSResult

APP = Layer.APPLICATION
RESTRICTED_LATEST = LevelVersion(Level.RESTRICTED, LATEST)


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
        r = evaluate_object(obj, _policy(ctx, obj.namespace), exemptions=cfg.exemptions if cfg else None)
        if r is not None and r.error is not None:
            raise r.error
        cache[key] = r
    return cache[key]


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def field_value(doc: Any, path: str) -> Any:
    """The value at a dotted path with [i] indexes (``spec.containers[0].image``); None when absent."""
    cur = doc
    for name, index in _PATH_PART.findall(path):
        if index:
            i = int(index)
            cur = cur[i] if isinstance(cur, list) and i < len(cur) else None
        else:
            cur = cur.get(name) if isinstance(cur, dict) else None
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
    meta = denied_by_enforce.meta  # type: ignore[attr-defined]
    rem = r.remediation()
    text = (
        r.summary()
        if r.is_controller
        else f"pod {obj.name} is denied in namespace {obj.namespace}: {r.enforce.message}"
    )
    yield meta.finding(
        obj,
        text,
        evidence=_evidence(obj, r.enforce),
        fix=rem.patch or None,
        fix_note="; ".join(rem.notes) or None,
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
    from kubestrata.pss.evaluate import evaluate_pod
    from kubestrata.pss.fixes import remediate

    res = evaluate_pod(obj, Level.RESTRICTED, LATEST)
    if res.allowed:
        return
    meta = fails_restricted.meta  # type: ignore[attr-defined]
    rem = remediate(obj.raw, RESTRICTED_LATEST)
    yield meta.finding(
        obj,
        f"{obj.kind} {obj.name} in namespace {obj.namespace} {res.warning}",
        evidence=_evidence(obj, res),
        fix=rem.patch or None,
        fix_note="; ".join(rem.notes) or None,
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
    meta = invalid_labels.meta  # type: ignore[attr-defined]
    yield meta.finding(
        obj,
        f"namespace {obj.name} has invalid pod-security labels ({'; '.join(str(e) for e in pol.errors)}); "
        f"PSA evaluates {pol.policy}",
        evidence=[Evidence(f"metadata.labels[{e.label}]", e.value, e.message) for e in pol.errors],
    )
