"""JUnit XML: one test suite per check, one test case per object it evaluated, a failure per finding.

CI systems (GitLab, Jenkins, Azure DevOps) show these as test results. A test case whose findings are
all suppressed is reported as skipped with the reason; so is a case of a check that a coverage gap
names (it could not judge: missing input), with "not evaluated: ..." as the reason. Inputs that could not be evaluated form a
``kubestrata.coverage`` suite of errors, so a gap never reads as a pass.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

import orjson

from kubestrata.checks import load_builtin_checks
from kubestrata.findings import Finding
from kubestrata.kube.objects import ObjectRef
from kubestrata.scan import ScanResult

CLUSTER_CASE = "(cluster)"

# characters XML 1.0 cannot carry even escaped; object names and messages come from the input
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(s: str) -> str:
    return _INVALID_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def _json(v: Any) -> str:
    return orjson.dumps(v, default=str).decode()


def _failure_text(f: Finding) -> str:
    lines = [f"severity: {f.severity.value} ({f.layer.value} layer)"]
    if f.object is not None:
        lines.append(f"object: {f.object}")
    if f.container:
        lines.append(f"container: {f.container}")
    if f.source is not None:
        lines.append(f"source: {f.source}")
    for e in f.evidence:
        lines.append(f"evidence: {e.path}: observed {_json(e.observed)}, expected {_json(e.expected)}")
    if f.remediation:
        lines.append(f"remediation: {f.remediation}")
    if f.fix:
        lines.append(f"fix (JSON patch): {_json(f.fix)}")
    if f.fix_note:
        lines.append(f"fix note: {f.fix_note}")
    lines.append(f"fingerprint: {f.fingerprint}")
    return "\n".join(lines)


def _case_name(ref: ObjectRef | None) -> str:
    return str(ref) if ref is not None else CLUSTER_CASE


# check ids a coverage gap names: KS-ACC-005, a shorthand "-007" continuing a list, or KS-EKS-*
_GAP_IDS = re.compile(r"KS-([A-Z]+)-(\d{3}|\*)|(?<=, )-(\d{3})\b")


def checks_named(text: str, known: set[str]) -> set[str]:
    """The check ids a gap's text names (so their cases read "not evaluated", never "passed")."""
    out: set[str] = set()
    family = ""
    for m in _GAP_IDS.finditer(text):
        if m.group(1):
            family = m.group(1)
            if m.group(2) == "*":
                out.update(i for i in known if i.startswith(f"KS-{family}-"))
                continue
            out.add(f"KS-{family}-{m.group(2)}")
        elif family:
            out.add(f"KS-{family}-{m.group(3)}")
    return out & known


def _suite(name: str, cases: list[tuple[str, list[Finding]]], not_evaluated: str | None = None) -> ET.Element:
    suite = ET.Element("testsuite", name=name)
    failures = skipped = 0
    for case_name, findings in cases:
        case = ET.SubElement(suite, "testcase", classname=f"kubestrata.{name}", name=_x(case_name))
        active = [f for f in findings if f.suppressed is None]
        for f in active:
            fail = ET.SubElement(case, "failure", message=_x(f.message), type=f.severity.value)
            fail.text = _x(_failure_text(f))
        if active:
            failures += 1
        elif findings:
            skipped += 1
            reasons = sorted({str(f.suppressed) for f in findings})
            ET.SubElement(case, "skipped", message=_x("suppressed: " + "; ".join(reasons)))
        elif not_evaluated is not None:
            # the check could not judge (missing input): a pass here would be a lie
            skipped += 1
            ET.SubElement(case, "skipped", message=_x(f"not evaluated: {not_evaluated}"))
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    return suite


def to_element(result: ScanResult, target: str = "") -> ET.Element:
    registry = load_builtin_checks()
    by_rule_obj: dict[str, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for f in result.findings:
        by_rule_obj[f.rule_id][_case_name(f.object)].append(f)
    evaluated_by_kind: dict[str, list[str]] = defaultdict(list)
    for ref in result.evaluated:
        evaluated_by_kind[ref.kind].append(str(ref))

    root = ET.Element("testsuites", name=_x("kubestrata" + (f" {target}" if target else "")))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    known = {c.meta.id for c in registry}
    not_evaluated: dict[str, str] = {}
    for g in result.coverage.gaps:
        for rule_id in checks_named(f"{g.subject} {g.detail}", known):
            not_evaluated.setdefault(rule_id, f"{g.subject}: {g.detail}")
    for rule_id in sorted(result.coverage.checks_run | set(by_rule_obj) | set(not_evaluated)):
        chk = registry.get(rule_id)
        found = by_rule_obj.get(rule_id, {})
        names: set[str] = set(found)
        if chk is not None and chk.cluster_wide:
            names.add(CLUSTER_CASE)
        elif chk is not None:
            for kind in chk.meta.kinds:
                names.update(evaluated_by_kind.get(kind, ()))
        if not names and rule_id in not_evaluated:
            names.add(CLUSTER_CASE)
        suite = _suite(rule_id, [(n, found.get(n, [])) for n in sorted(names)], not_evaluated.get(rule_id))
        if chk is not None:
            suite.set("title", _x(chk.meta.title))
        root.append(suite)

    gaps = result.coverage.gaps
    if gaps:
        cov = ET.Element(
            "testsuite",
            name="coverage",
            tests=str(len(gaps)),
            failures="0",
            errors=str(len(gaps)),
            skipped="0",
        )
        for g in gaps:
            case = ET.SubElement(cov, "testcase", classname="kubestrata.coverage", name=_x(g.subject))
            err = ET.SubElement(case, "error", message=_x(f"not evaluated: {g.detail}"), type=g.reason.value)
            err.text = _x(f"{g.subject} was not evaluated ({g.reason.value}): {g.detail}")
        root.append(cov)

    for suite in root:
        for k in totals:
            totals[k] += int(suite.get(k, "0"))
    for k, v in totals.items():
        root.set(k, str(v))
    return root


def render(result: ScanResult, target: str = "") -> str:
    root = to_element(result, target)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
