"""The built-in admission handlers: Cedar admission forbids, Pod Security Standards per namespace
labels, best-practice checks as warnings, and the configured safe fixes as a mutation."""

from __future__ import annotations

import copy
from typing import Any, Protocol

from kubestrata.admission.registry import AdmissionContext, AdmissionRegistry, Outcome
from kubestrata.checks import Check
from kubestrata.config import ScanConfig
from kubestrata.findings import Finding
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject, Source
from kubestrata.kube.podspec import WORKLOAD_KINDS
from kubestrata.scan import run_scan

# ---------------------------------------------------------------------------------------------------
# Engines the handlers call. Small protocols, so tests inject fakes and the real engines plug in
# through kubestrata.admission.engines.


class CedarAdmissionEngine(Protocol):
    def evaluate(self, request: dict[str, Any]) -> CedarVerdict: ...


class CedarVerdict(Protocol):
    @property
    def denied(self) -> bool: ...
    @property
    def policies(self) -> list[str]: ...  # determining forbids: stable id plus @id where present
    @property
    def errors(self) -> list[str]: ...


class PSSEngine(Protocol):
    def evaluate(
        self, obj: dict[str, Any], namespace: str, namespace_labels: dict[str, str], username: str
    ) -> PSSVerdict: ...


class PSSVerdict(Protocol):
    @property
    def enforce_denied(self) -> str | None: ...  # the PSA message, when the enforce level forbids
    @property
    def warnings(self) -> list[str]: ...
    @property
    def audit(self) -> dict[str, str]: ...
    @property
    def enforce_policy(self) -> str: ...


# ---------------------------------------------------------------------------------------------------


def add_cedar(registry: AdmissionRegistry, engine: CedarAdmissionEngine, *, on_error: str = "deny") -> None:
    """Cedar admission is allow-by-default: only a satisfied forbid denies. An evaluation error in a
    forbid denies too (``on_error``), unlike the reference webhook, which skips erroring policies and
    so fails open."""

    @registry.validating("cedar", engine="cedar", on_error=on_error)  # type: ignore[arg-type]
    def cedar_forbids(ctx: AdmissionContext, out: Outcome) -> None:
        verdict = engine.evaluate(ctx.request.raw)
        if verdict.errors:
            raise CedarEvaluationError(len(verdict.errors))
        if verdict.denied:
            names = ", ".join(verdict.policies) or "a forbid policy"
            out.deny("cedar", f"denied by Cedar policy {names}", verdict.policies)
            out.annotate("cedar-forbidden-by", ", ".join(verdict.policies))


class CedarEvaluationError(RuntimeError):
    def __init__(self, n: int) -> None:
        super().__init__(f"{n} Cedar policy evaluation error(s)")


def add_pss(
    registry: AdmissionRegistry,
    engine: PSSEngine,
    *,
    exempt_namespaces: list[str] = (),  # type: ignore[assignment]
    exempt_usernames: list[str] = (),  # type: ignore[assignment]
    on_error: str = "deny",
) -> None:
    """Pod Security Admission semantics: a Pod (and its ephemeral-containers/exec updates as PSA
    does: CREATE and UPDATE of pods) is denied at the namespace's enforce level; workload controllers
    get warnings and audit annotations only, never a denial."""
    exempt_ns, exempt_users = set(exempt_namespaces), set(exempt_usernames)

    @registry.validating(
        "pss",
        engine="pss",
        on_error=on_error,  # type: ignore[arg-type]
        operations=("CREATE", "UPDATE"),
        kinds=("Pod", *WORKLOAD_KINDS),
        needs_namespace=True,
    )
    def pod_security(ctx: AdmissionContext, out: Outcome) -> None:
        req = ctx.request
        if (
            req.namespace in exempt_ns
            or req.user.username in exempt_users
            or req.sub_resource
            not in (
                "",
                "ephemeralcontainers",
            )
        ):
            return
        if req.operation == "UPDATE" and req.kind.get("kind") == "Pod" and req.sub_resource == "":
            # PSA skips pod updates that leave the pod spec unchanged (metadata-only updates)
            if (req.object or {}).get("spec") == (req.old_object or {}).get("spec"):
                return
        verdict = engine.evaluate(
            req.object or {}, req.namespace, ctx.namespace_labels or {}, req.user.username
        )
        is_pod = req.kind.get("kind") == "Pod"
        if verdict.enforce_denied and is_pod:
            out.deny("pss", verdict.enforce_denied, [verdict.enforce_policy])
        elif verdict.enforce_denied:
            out.warn(verdict.enforce_denied)
        for w in verdict.warnings:
            out.warn(w)
        for k, v in verdict.audit.items():
            out.annotate(k, v)


def _admitted_object(ctx: AdmissionContext) -> KubeObject | None:
    req = ctx.request
    if req.object is None:
        return None
    raw = copy.deepcopy(req.object)
    meta = raw.setdefault("metadata", {}) if isinstance(raw.get("metadata", {}), dict) else None
    if meta is None:
        return None
    # a Pod created through a namespaced URL often has no metadata.namespace; the request knows it
    if req.namespace and not meta.get("namespace"):
        meta["namespace"] = req.namespace
    if not meta.get("name") and req.name:
        meta["name"] = req.name
    return KubeObject(raw, Source(f"admission:{req.uid}"))


def _scan_one(
    ctx: AdmissionContext, checks: list[Check], config: ScanConfig
) -> tuple[list[Finding], list[str]]:
    """The scan engine on a one-object cluster: the same checks, messages and suppressions as
    `kubestrata scan`. Memoised per review so the validating and mutating paths share it."""
    key = "checks.findings:" + ",".join(c.meta.id for c in checks)
    if key not in ctx.state:
        obj = _admitted_object(ctx)
        if obj is None:
            ctx.state[key] = ([], [])
        else:
            res = run_scan(Cluster([obj]), config=config, checks=checks)
            ctx.state[key] = (res.active(), [g.detail for g in res.coverage.gaps])
    return ctx.state[key]


def add_checks(registry: AdmissionRegistry, checks: list[Check], config: ScanConfig) -> None:
    kinds = sorted({k for c in checks for k in c.meta.kinds})

    @registry.validating(
        "checks", engine="checks", on_error="allow", operations=("CREATE", "UPDATE"), kinds=kinds
    )
    def best_practice(ctx: AdmissionContext, out: Outcome) -> None:
        findings, gaps = _scan_one(ctx, checks, config)
        for f in findings:
            out.warn(f"{f.rule_id} ({f.severity.value}): {f.message}")
        for g in gaps:
            out.warn(f"kubestrata: not evaluated: {g}")
        if findings:
            out.annotate("checks-findings", ",".join(sorted({f.rule_id for f in findings})))


def add_mutations(
    registry: AdmissionRegistry,
    checks: list[Check],
    config: ScanConfig,
    fixes: list[str],
    operations: list[str],
) -> None:
    """Apply the fix patches of the configured checks (their ``fix`` JSON patches, the same ones
    `kubestrata scan` shows), one finding at a time; combined by the registry into one patch."""
    wanted = set(fixes)
    chosen = [c for c in checks if c.meta.id in wanted]
    if not chosen:
        return
    kinds = sorted({k for c in chosen for k in c.meta.kinds})

    @registry.mutating("fixes", operations=operations, kinds=kinds)
    def safe_fixes(ctx: AdmissionContext, out: Outcome) -> None:
        findings, _ = _scan_one(ctx, chosen, config)
        for f in findings:
            if f.rule_id in wanted and f.fix:
                out.patch(f.rule_id, f.fix)
                out.warn(f"kubestrata applies the {f.rule_id} fix: {f.message}")
