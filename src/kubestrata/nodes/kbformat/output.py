"""kube-bench's ``--json`` document (OverallControls: Controls and Totals) of controls results."""

from __future__ import annotations

from typing import Any

from kubestrata.nodes.kbformat.model import FAIL, INFO, PASS, WARN, CheckResult, ControlsResult


def check_json(r: CheckResult) -> dict[str, Any]:
    """One check's result as kube-bench reports it."""
    c = r.check
    d: dict[str, Any] = {
        "test_number": c.id,
        "test_desc": c.text,
        "audit": r.audit or c.audit,
        "AuditEnv": r.audit_env or c.audit_env,
        "AuditConfig": r.audit_config or c.audit_config,
        "type": c.type,
        "remediation": r.remediation or c.remediation,
        "test_info": [r.remediation or c.remediation],
        "status": r.state,
        "actual_value": r.actual_value,
        "scored": c.scored,
        "IsMultiple": c.use_multiple_values,
        "expected_result": r.expected_result,
    }
    if r.reason:
        d["reason"] = r.reason
    return d


def controls_json(r: ControlsResult) -> dict[str, Any]:
    """One controls file's results as kube-bench reports them (its groups as ``tests``)."""
    c = r.controls
    d: dict[str, Any] = {"id": c.id, "version": c.version}
    if c.detected_version:
        d["detected_version"] = c.detected_version
    d.update(
        {
            "text": c.text,
            "node_type": c.type,
            "tests": [
                {
                    "section": g.group.id,
                    "type": g.group.type,
                    "pass": g.count(PASS),
                    "fail": g.count(FAIL),
                    "warn": g.count(WARN),
                    "info": g.count(INFO),
                    "desc": g.group.text,
                    "results": [check_json(x) for x in g.results],
                }
                for g in r.groups
            ],
            "total_pass": r.count(PASS),
            "total_fail": r.count(FAIL),
            "total_warn": r.count(WARN),
            "total_info": r.count(INFO),
        }
    )
    return d


def kube_bench_json(results: list[ControlsResult]) -> dict[str, Any]:
    """kube-bench's ``--json`` document (OverallControls: Controls and Totals)."""
    return {
        "Controls": [controls_json(r) for r in results],
        "Totals": {
            "total_pass": sum(r.count(PASS) for r in results),
            "total_fail": sum(r.count(FAIL) for r in results),
            "total_warn": sum(r.count(WARN) for r in results),
            "total_info": sum(r.count(INFO) for r in results),
        },
    }
