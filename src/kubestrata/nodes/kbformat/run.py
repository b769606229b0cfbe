"""Running checks and controls over the audit outputs an auditor supplies (kube-bench's Check.run)."""

from __future__ import annotations

from kubestrata.nodes.kbformat.evaluate import execute
from kubestrata.nodes.kbformat.model import (
    FAIL,
    INFO,
    PASS,
    WARN,
    Auditor,
    AuditRun,
    BenchCheck,
    CheckResult,
    Controls,
    ControlsResult,
    GroupResult,
)


def run_check(check: BenchCheck, auditor: Auditor, skip: bool = False) -> CheckResult:
    """kube-bench's Check.run over outputs the auditor supplies."""
    fail_state = FAIL if check.scored else WARN
    if skip or check.type == "skip":
        return CheckResult(check, INFO, reason="Test marked as skip")
    if check.scored and not check.type.strip() and check.tests is None:
        return CheckResult(check, WARN, reason="There are no tests")
    if check.type == "manual":
        return CheckResult(check, WARN, reason="Test marked as a manual test")
    if check.tests is None or not check.tests.items:
        return CheckResult(check, fail_state, reason="No tests defined")

    res = CheckResult(check, fail_state)
    env = AuditRun()
    if check.audit_env.strip():
        env = auditor(check, "audit_env")
        if env.error:
            res.reason = env.error
            return res
    cmd = auditor(check, "audit") if check.audit.strip() or check.native.get("audit") else AuditRun()
    if cmd.error:
        res.reason = cmd.error
        return res
    cfg = AuditRun()
    if check.audit_config.strip() or check.native.get("audit_config"):
        cfg = auditor(check, "audit_config")
        if cfg.error:
            if not (cfg.not_found and (env.output or cmd.output)):
                res.reason = cfg.error
                return res
            cfg = AuditRun()

    out = execute(check, cmd.output, cfg.output, env.output)
    res.used = out.used
    res.expected_result = out.expected
    res.actual_value = out.actual
    if out.error:
        res.reason = out.error
        return res
    res.state = PASS if out.passed else fail_state
    return res


def run_controls(
    controls: Controls,
    auditor: Auditor,
    skip: frozenset[str] = frozenset(),
    only: frozenset[str] = frozenset(),
) -> ControlsResult:
    groups = []
    for g in controls.groups:
        results = [
            run_check(c, auditor, skip=g.type == "skip" or g.id in skip or c.id in skip)
            for c in g.checks
            if not only or c.id in only or g.id in only
        ]
        if results:
            groups.append(GroupResult(g, results))
    return ControlsResult(controls, groups)
