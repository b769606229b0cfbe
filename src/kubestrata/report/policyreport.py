"""PolicyReport and ClusterPolicyReport (wgpolicyk8s.io/v1alpha2), the format Kyverno, Policy Reporter
and Trivy Operator read.

One ``PolicyReport`` per namespace that has an evaluated object or a finding, and one
``ClusterPolicyReport`` for cluster-scoped objects, cluster-wide checks and coverage gaps. Each result
names the check as ``policy`` (its id) and ``rule`` (its title):

- ``fail``: an active finding, one result per finding, with the object as its resource and the
  evidence, container, source and fingerprint in ``properties`` (string values, as the CRD requires);
- ``skip``: a suppressed finding (the reason in ``properties.suppressed``), and coverage gaps that
  are missing input (forbidden, not found, unknown kind, missing input);
- ``error``: coverage gaps where the input could not be judged (invalid, internal error, timeout);
- ``pass``: per check and namespace, one result listing every evaluated object of the check's kinds
  that has no finding for it (grouped so a large cluster does not get a result per object and check).

The output is a ``v1 List`` written as JSON: valid YAML as well, and ``kubectl apply -f`` takes it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import IO, Any

import orjson

from kubestrata import __version__
from kubestrata.checks import load_builtin_checks
from kubestrata.findings import Finding, GapReason, Severity
from kubestrata.kube.objects import MANAGED_BY, MANAGED_BY_LABEL, ObjectRef
from kubestrata.scan import ScanResult

API_VERSION = "wgpolicyk8s.io/v1alpha2"
SOURCE = "kubestrata"
REPORT_NAME = "kubestrata"
CLUSTER_REPORT_NAME = "kubestrata-cluster"
COVERAGE_POLICY = "kubestrata/coverage"

# the v1alpha2 CRD's severity enum: critical, high, medium, low, info
SEVERITY = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.MEDIUM: "medium",
    Severity.LOW: "low",
    Severity.INFO: "info",
}
# missing input reads as "skip" (nothing could be judged), broken input or a failure as "error"
GAP_RESULT = {
    GapReason.INVALID: "error",
    GapReason.ERROR: "error",
    GapReason.TIMEOUT: "error",
    GapReason.FORBIDDEN: "skip",
    GapReason.NOT_FOUND: "skip",
    GapReason.MISSING_INPUT: "skip",
    GapReason.UNKNOWN_KIND: "skip",
}
STATUSES = ("pass", "fail", "warn", "error", "skip")


def _json(v: Any) -> str:
    return orjson.dumps(v, default=str).decode()


def _value(v: Any) -> str:
    """An observed/expected value as a property string: text as it is, anything else as JSON."""
    if type(v) is str:
        return v
    if v is None:
        return "null"
    return _json(v)


def _resource(ref: ObjectRef) -> dict[str, str]:
    r = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name}
    if ref.namespace:
        r["namespace"] = ref.namespace
    return r


def _properties(f: Finding, fingerprint: str) -> dict[str, str]:
    props = {"layer": f.layer.value, "fingerprint": fingerprint}
    if f.container:
        props["container"] = f.container
    if f.source is not None:
        props["source"] = f"{f.source.file}:{f.source.line}" if f.source.line else f.source.file
    for i, e in enumerate(f.evidence):
        props[f"evidence.{i}.path"] = e.path
        props[f"evidence.{i}.observed"] = _value(e.observed)
        props[f"evidence.{i}.expected"] = _value(e.expected)
    if f.remediation:
        props["remediation"] = f.remediation
    if f.fix:
        props["fix"] = _json(f.fix)
    if f.fix_note:
        props["fixNote"] = f.fix_note
    if f.suppressed is not None:
        props["suppressed"] = f.suppressed
    return props


def _report(namespace: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    summary = dict.fromkeys(STATUSES, 0)
    for r in results:
        summary[r["result"]] += 1
    meta: dict[str, Any] = {
        "name": REPORT_NAME if namespace else CLUSTER_REPORT_NAME,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        "annotations": {"kubestrata.io/version": __version__},
    }
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": API_VERSION,
        "kind": "PolicyReport" if namespace else "ClusterPolicyReport",
        "metadata": meta,
        "summary": summary,
        "results": results,
    }


def to_reports(result: ScanResult, target: str = "", now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The PolicyReports (sorted by namespace) followed by the ClusterPolicyReport, if it has results."""
    registry = load_builtin_checks()
    stamp: dict[str, Any] = {}
    if now is not None:  # files stay byte-for-byte reproducible; reports written to a cluster carry it
        stamp["timestamp"] = {"seconds": int(now.timestamp()), "nanos": now.microsecond * 1000}
    titles: dict[str, str] = {}

    def title(rule_id: str, fallback: str) -> str:
        if rule_id not in titles:
            chk = registry.get(rule_id)
            titles[rule_id] = chk.meta.title if chk is not None else fallback
        return titles[rule_id]

    by_ns: dict[str, list[dict[str, Any]]] = defaultdict(list)
    # keyed by plain tuples: ObjectRef's dataclass hash is a Python call, and a large cluster has
    # hundreds of thousands of (check, object) pairs
    failed: dict[tuple[str, str, str, str], set[str]] = {}
    resources: dict[tuple[str, str, str, str], list[dict[str, str]]] = {}  # shared by an object's results
    templates: dict[tuple[str, str, Severity, str], dict[str, Any]] = {}
    for f in result.findings:
        ref = f.object
        tkey = (f.rule_id, f.title, f.severity, f.layer)
        template = templates.get(tkey)
        if template is None:
            template = templates[tkey] = {
                "source": SOURCE,
                "policy": f.rule_id,
                "rule": title(f.rule_id, f.title),
                "category": f.layer.value,
                "severity": SEVERITY[f.severity],
                **stamp,
            }
        res = template.copy()
        res["message"] = f.message
        if f.suppressed is None:
            res["result"], res["scored"] = "fail", True
        else:
            res["result"], res["scored"] = "skip", False
        res["properties"] = _properties(f, f.fingerprint)
        if ref is not None:
            key = (ref.kind, ref.namespace, ref.name, ref.api_version)
            r = resources.get(key)
            if r is None:
                r = resources[key] = [_resource(ref)]
            res["resources"] = r
            seen = failed.get(key)
            if seen is None:
                failed[key] = {f.rule_id}
            else:
                seen.add(f.rule_id)
            by_ns[ref.namespace].append(res)
        else:
            by_ns[""].append(res)

    # passes: every evaluated object of a check's kinds without a finding of that check
    per_kind: dict[str, list[str]] = defaultdict(list)
    checks = {}
    for chk in registry:
        if chk.meta.id in result.coverage.checks_run and not chk.cluster_wide:
            checks[chk.meta.id] = chk
            for kind in chk.meta.kinds:
                per_kind[kind].append(chk.meta.id)
    passing: dict[str, dict[str, list[dict[str, str]]]] = {cid: {} for cid in checks}
    no_failures: set[str] = set()
    for ref in result.evaluated:
        ids = per_kind.get(ref.kind)
        if not ids:
            continue
        key = (ref.kind, ref.namespace, ref.name, ref.api_version)
        bad = failed.get(key, no_failures)
        r = resources.get(key)
        if r is None:
            r = resources[key] = [_resource(ref)]
        entry = r[0]
        for cid in ids:
            if cid not in bad:
                by = passing[cid]
                objs = by.get(ref.namespace)
                if objs is None:
                    by[ref.namespace] = [entry]
                else:
                    objs.append(entry)
    for cid, chk in checks.items():
        for ns, objs in passing[cid].items():
            by_ns[ns].append(
                {
                    "source": SOURCE,
                    "policy": cid,
                    "rule": chk.meta.title,
                    "category": chk.meta.layer.value,
                    "message": f"{len(objs)} object{'s' if len(objs) != 1 else ''} passed",
                    "result": "pass",
                    "severity": SEVERITY[chk.meta.severity],
                    "scored": True,
                    **stamp,
                    "resources": objs,
                }
            )

    for g in result.coverage.gaps:
        by_ns[""].append(
            {
                "source": SOURCE,
                "policy": COVERAGE_POLICY,
                "rule": "not evaluated",
                "category": "coverage",
                "message": f"{g.subject} was not evaluated: {g.detail}",
                "result": GAP_RESULT.get(g.reason, "error"),
                "scored": False,
                **stamp,
                "properties": {"subject": g.subject, "reason": g.reason.value, "detail": g.detail},
            }
        )
    reports = [_report(ns, by_ns[ns]) for ns in sorted(n for n in by_ns if n)]
    if by_ns.get(""):
        reports.append(_report("", by_ns[""]))
    if target:
        for report in reports:
            report["metadata"]["annotations"]["kubestrata.io/target"] = target
    return reports


def render(result: ScanResult, target: str = "", now: dt.datetime | None = None) -> str:
    doc = {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": to_reports(result, target, now)}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


def write(result: ScanResult, out: IO[bytes], target: str = "", now: dt.datetime | None = None) -> None:
    out.write(render(result, target, now).encode())
