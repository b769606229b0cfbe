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

# Engines the handlers call: small protocols, so tests inject doubles; the real engines are adapted in
# kubestrata.server.engines.


class CedarAdmissionDecision(Protocol):
    allowed: bool
    denials: list[tuple[str, str]]  # (policy id with its @id, message)
    errors: list[str]


class CedarAdmissionEngine(Protocol):
    def evaluate(self, request: dict[str, Any]) -> CedarAdmissionDecision: ...


class PSSObjectResult(Protocol):
    allowed: bool
    warnings: list[str]
    audit_annotations: dict[str, str]

    @property
    def message(self) -> str: ...


class PSSEngine(Protocol):
    def evaluate(
        self, obj: dict[str, Any], namespace_labels: dict[str, str], username: str
    ) -> PSSObjectResult | None: ...


def add_cedar(registry: AdmissionRegistry, engine: CedarAdmissionEngine, *, on_error: str = "deny") -> None:
    """Cedar admission is allow-by-default: only satisfied forbids deny. A forbid that errors denies
    as well (the engine reports it as a denial naming the policy), unlike the reference webhook, which
    skips erroring policies and so fails open. An exception in the engine follows ``on_error``."""

    @registry.validating("cedar", engine="cedar", on_error=on_error)  # type: ignore[arg-type]
    def cedar_forbids(ctx: AdmissionContext, out: Outcome) -> None:
        d = engine.evaluate(ctx.request.raw)
        if d.errors:
            out.engine_error("cedar")
            out.annotate("cedar-evaluation-errors", str(len(d.errors)))
        if not d.allowed:
            policies = [pid for pid, _ in d.denials]
            # each denial names its policy (file#index and @id); the engine's message already does
            # when the policy has no @message annotation
            reasons = "; ".join(msg if pid in msg else f"{pid}: {msg}" for pid, msg in d.denials)
            out.deny("cedar", reasons, policies)
            out.annotate("cedar-forbidden-by", ", ".join(policies))


def add_pss(registry: AdmissionRegistry, engine: PSSEngine, *, on_error: str = "deny") -> None:
    """Pod Security Admission semantics (kubestrata.pss.evaluate_object): a Pod is denied at its
    namespace's enforce level; the eight workload controllers get warnings and audit annotations,
    never a denial. As PSA does, pod updates that leave the spec unchanged are not re-evaluated, and
    the ``ephemeralcontainers`` subresource is (it adds containers)."""

    @registry.validating(
        "pss",
        engine="pss",
        on_error=on_error,  # type: ignore[arg-type]
        operations=("CREATE", "UPDATE"),
        kinds=sorted(WORKLOAD_KINDS),
        needs_namespace=True,
    )
    def pod_security(ctx: AdmissionContext, out: Outcome) -> None:
        req = ctx.request
        if req.sub_resource not in ("", "ephemeralcontainers"):
            return
        if ctx.namespace_labels is None:
            raise NamespaceUnknown(ctx.state.get("namespace_error", "no namespace"))
        if req.operation == "UPDATE" and req.sub_resource == "":
            if (req.object or {}).get("spec") == (req.old_object or {}).get("spec"):
                return
        obj = _admitted_object(ctx)
        if obj is None:
            return
        res = engine.evaluate(obj.raw, ctx.namespace_labels, req.user.name)
        if res is None:
            return
        if not res.allowed:
            out.deny("pss", res.message, [f"PodSecurity {_policy_of(res)}"])
        for w in res.warnings:
            out.warn(w)
        for k, v in res.audit_annotations.items():
            # the API server prefixes our webhook's name and a "/": keys must not carry their own prefix
            out.annotate("pss-" + k.rsplit("/", 1)[-1], v)


def _policy_of(res: Any) -> str:
    pol = getattr(res, "policy", None)
    return str(getattr(pol, "enforce", "")) or "enforce"


class NamespaceUnknown(RuntimeError):
    """The namespace's labels could not be read: the handler's on_error decides (PSA denies too)."""


def _admitted_object(ctx: AdmissionContext) -> KubeObject | None:
    """The admitted object as the scan sees it (namespace and name filled in from the request); one
    copy per review, shared by the handlers, none of which modifies it."""
    if "admitted" not in ctx.state:
        ctx.state["admitted"] = _build_admitted(ctx)
    return ctx.state["admitted"]


def _build_admitted(ctx: AdmissionContext) -> KubeObject | None:
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
        if ctx.request.sub_resource:
            return  # pods/status, deployments/scale...: the spec a person wrote is not what changes
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
        if ctx.request.sub_resource:
            return
        findings, _ = _scan_one(ctx, chosen, config)
        for f in findings:
            if f.rule_id in wanted and f.fix:
                out.patch(f.rule_id, f.fix)
                out.warn(f"kubestrata applies the {f.rule_id} fix: {f.message}")


def add_pss_fixes(registry: AdmissionRegistry, level: str, *, include_flagged: bool = False) -> None:
    """The PSS engine's minimal fix per violation at ``level`` (pods and the pod templates of the
    workload kinds), as a mutation. Fixes the engine flags (``fix_note``: runAsNonRoot may need an
    image change, privileged may need capabilities) are left out unless ``include_flagged``."""
    from kubestrata.pss import LevelVersion, evaluate_pod

    lv = LevelVersion.parse(level)

    @registry.mutating("pss-fixes", operations=("CREATE",), kinds=sorted(WORKLOAD_KINDS))
    def pss_fixes(ctx: AdmissionContext, out: Outcome) -> None:
        if ctx.request.sub_resource:
            return
        obj = _admitted_object(ctx)
        if obj is None:
            return
        res = evaluate_pod(obj.raw, lv.level, lv.version)
        if res.error is not None:
            return  # an invalid pod spec is the validating webhook's to report
        for v in res.violations:
            if not v.fix or (v.fix_note and not include_flagged):
                continue
            out.patch(f"pss:{v.check}", v.fix)
            who = f"container {v.container!r}" if v.container else "the pod"
            out.warn(f"kubestrata applies the PodSecurity {lv} fix for {v.check} to {who}")
