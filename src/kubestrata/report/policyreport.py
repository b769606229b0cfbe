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
import io
from collections import defaultdict
from collections.abc import Iterator
from typing import IO, Any

import orjson

from kubestrata import __version__
from kubestrata.checks import load_builtin_checks
from kubestrata.findings import Finding, GapReason, Layer, Severity
from kubestrata.kube.objects import MANAGED_BY, MANAGED_BY_LABEL, ObjectRef
from kubestrata.report.pieces import HOLE, INDENT, between_holes, write_items
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


def _evidence_keys(n: int) -> list[tuple[str, str, str]]:
    """The property names of the first ``n`` evidence entries, made once: most findings have one."""
    while len(_EVIDENCE_KEYS) < n:
        i = len(_EVIDENCE_KEYS)
        _EVIDENCE_KEYS.append((f"evidence.{i}.path", f"evidence.{i}.observed", f"evidence.{i}.expected"))
    return _EVIDENCE_KEYS


_EVIDENCE_KEYS: list[tuple[str, str, str]] = []
_LAYER = {layer: layer.value for layer in Layer}  # an enum's .value is a Python-level descriptor


def _properties(f: Finding, fingerprint: str) -> dict[str, str]:
    props = {"layer": _LAYER[f.layer], "fingerprint": fingerprint}
    if f.container:
        props["container"] = f.container
    src = f.source
    if src is not None:
        props["source"] = f"{src.file}:{src.line}" if src.line else src.file
    if f.evidence:
        keys = _evidence_keys(len(f.evidence))
        for (path, observed, expected), e in zip(keys, f.evidence, strict=False):
            props[path] = e.path
            v = e.observed
            props[observed] = v if type(v) is str else _value(v)
            v = e.expected
            props[expected] = v if type(v) is str else _value(v)
    if f.remediation:
        props["remediation"] = f.remediation
    if f.fix:
        props["fix"] = orjson.dumps(f.fix, default=str).decode()
    if f.fix_note:
        props["fixNote"] = f.fix_note
    if f.suppressed is not None:
        props["suppressed"] = f.suppressed
    return props


class _Results:
    """The results of one scan, namespace by namespace: the findings grouped (in their order) with
    their counts, and the passes and gaps; a finding's result dict is made only when it is written."""

    def __init__(self, result: ScanResult, now: dt.datetime | None) -> None:
        self.registry = load_builtin_checks()
        self.stamp: dict[str, Any] = {}
        if now is not None:  # files stay byte-for-byte reproducible; reports written to a cluster carry it
            self.stamp["timestamp"] = {"seconds": int(now.timestamp()), "nanos": now.microsecond * 1000}
        self.titles: dict[str, str] = {}
        self.templates: dict[tuple[str, str, Severity, str], dict[str, Any]] = {}
        self.findings: dict[str, list[Finding]] = defaultdict(list)
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUSES, 0))
        # keyed by plain tuples: ObjectRef's dataclass hash is a Python call, and a large cluster has
        # hundreds of thousands of (check, object) pairs
        failed: dict[tuple[str, str, str, str], set[str]] = {}
        # an object's resource list, shared by its results
        self.resources: dict[tuple[str, str, str, str], list[dict[str, str]]] = {}
        titles = self.titles
        for f in result.findings:
            if f.rule_id not in titles:  # an unregistered rule is named by its first finding's title
                self._title(f.rule_id, f.title)
            ref = f.object
            ns = "" if ref is None else ref.namespace
            self.findings[ns].append(f)
            self.counts[ns]["fail" if f.suppressed is None else "skip"] += 1
            if ref is not None:
                key = (ref.kind, ref.namespace, ref.name, ref.api_version)
                seen = failed.get(key)
                if seen is None:
                    failed[key] = {f.rule_id}
                else:
                    seen.add(f.rule_id)
        self.other: dict[str, list[dict[str, Any]]] = defaultdict(list)  # passes and gaps
        self._passes(result, failed)
        for g in result.coverage.gaps:
            status = GAP_RESULT.get(g.reason, "error")
            self.counts[""][status] += 1
            self.other[""].append(
                {
                    "source": SOURCE,
                    "policy": COVERAGE_POLICY,
                    "rule": "not evaluated",
                    "category": "coverage",
                    "message": f"{g.subject} was not evaluated: {g.detail}",
                    "result": status,
                    "scored": False,
                    **self.stamp,
                    "properties": {"subject": g.subject, "reason": g.reason.value, "detail": g.detail},
                }
            )

    def _passes(self, result: ScanResult, failed: dict[tuple[str, str, str, str], set[str]]) -> None:
        """Every evaluated object of a check's kinds without a finding of that check, one result per
        check and namespace."""
        per_kind: dict[str, list[str]] = defaultdict(list)
        checks = {}
        for chk in self.registry:
            if chk.meta.id in result.coverage.checks_run and not chk.cluster_wide:
                checks[chk.meta.id] = chk
                for kind in chk.meta.kinds:
                    per_kind[kind].append(chk.meta.id)
        passing: dict[str, dict[str, list[dict[str, str]]]] = {cid: {} for cid in checks}
        no_failures: set[str] = set()
        resources = self.resources
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
                self.counts[ns]["pass"] += 1
                self.other[ns].append(
                    {
                        "source": SOURCE,
                        "policy": cid,
                        "rule": chk.meta.title,
                        "category": chk.meta.layer.value,
                        "message": f"{len(objs)} object{'s' if len(objs) != 1 else ''} passed",
                        "result": "pass",
                        "severity": SEVERITY[chk.meta.severity],
                        "scored": True,
                        **self.stamp,
                        "resources": objs,
                    }
                )

    def namespaces(self) -> list[str]:
        """The namespaces with a report: sorted, the cluster's ("") last, if it has results."""
        names = sorted(n for n in {*self.findings, *self.other} if n)
        if self.findings.get("") or self.other.get(""):
            names.append("")
        return names

    def _title(self, rule_id: str, fallback: str) -> str:
        got = self.titles.get(rule_id)
        if got is None:
            chk = self.registry.get(rule_id)
            got = self.titles[rule_id] = chk.meta.title if chk is not None else fallback
        return got

    def finding(self, f: Finding) -> dict[str, Any]:
        tkey = (f.rule_id, f.title, f.severity, f.layer)
        template = self.templates.get(tkey)
        if template is None:
            template = self.templates[tkey] = {
                "source": SOURCE,
                "policy": f.rule_id,
                "rule": self._title(f.rule_id, f.title),
                "category": f.layer.value,
                "severity": SEVERITY[f.severity],
                **self.stamp,
            }
        res = template.copy()
        res["message"] = f.message
        if f.suppressed is None:
            res["result"], res["scored"] = "fail", True
        else:
            res["result"], res["scored"] = "skip", False
        res["properties"] = _properties(f, f.fingerprint)
        ref = f.object
        if ref is not None:
            key = (ref.kind, ref.namespace, ref.name, ref.api_version)
            r = self.resources.get(key)
            if r is None:
                r = self.resources[key] = [_resource(ref)]
            res["resources"] = r
        return res

    def of(self, namespace: str) -> Iterator[dict[str, Any]]:
        """A namespace's results in order: its findings', then its passes (and the cluster's gaps)."""
        yield from map(self.finding, self.findings.get(namespace, ()))
        yield from self.other.get(namespace, ())

    def report(self, namespace: str, target: str) -> dict[str, Any]:
        """The report of a namespace without its results."""
        meta: dict[str, Any] = {
            "name": REPORT_NAME if namespace else CLUSTER_REPORT_NAME,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {"kubestrata.io/version": __version__},
        }
        if namespace:
            meta["namespace"] = namespace
        if target:
            meta["annotations"]["kubestrata.io/target"] = target
        return {
            "apiVersion": API_VERSION,
            "kind": "PolicyReport" if namespace else "ClusterPolicyReport",
            "metadata": meta,
            "summary": self.counts[namespace],
            "results": [],
        }


def to_reports(result: ScanResult, target: str = "", now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The PolicyReports (sorted by namespace) followed by the ClusterPolicyReport, if it has results."""
    results = _Results(result, now)
    reports = []
    for ns in results.namespaces():
        report = results.report(ns, target)
        report["results"] = list(results.of(ns))
        reports.append(report)
    return reports


def _document(items: list[Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}


def render(result: ScanResult, target: str = "", now: dt.datetime | None = None) -> str:
    """``orjson.dumps`` of the ``v1 List`` of ``to_reports``, indented, and a newline."""
    buf = io.BytesIO()
    write(result, buf, target, now)
    return buf.getvalue().decode()


def write(result: ScanResult, out: IO[bytes], target: str = "", now: dt.datetime | None = None) -> None:
    """``render``'s text to ``out``: every report written around its results, which are made and
    written a batch at a time."""
    results = _Results(result, now)
    reports = []
    for ns in results.namespaces():
        report = results.report(ns, target)
        report["results"] = [HOLE]
        reports.append(report)
    if not reports:
        out.write(orjson.dumps(_document([]), option=INDENT) + b"\n")
        return
    pieces = between_holes(_document(reports))
    out.write(pieces[0])
    for ns, piece in zip(results.namespaces(), pieces[1:], strict=True):
        write_items(out, results.of(ns), 4)
        out.write(piece)
    out.write(b"\n")
