"""JUnit XML: one test suite per check, one test case per object it evaluated, a failure per finding.

CI systems (GitLab, Jenkins, Azure DevOps) show these as test results. A test case whose findings are
all suppressed is reported as skipped with the reason; so is a case of a check that a coverage gap
names (it could not judge: missing input), with "not evaluated: ..." as the reason. Inputs that could not be evaluated form a
``kubestrata.coverage`` suite of errors, so a gap never reads as a pass.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from typing import IO, Any

import orjson

from kubestrata.checks import load_builtin_checks
from kubestrata.findings import Finding
from kubestrata.kube.objects import ObjectRef
from kubestrata.scan import ScanResult

CLUSTER_CASE = "(cluster)"

# characters XML 1.0 cannot carry even escaped; object names and messages come from the input
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# the ASCII characters XML can carry: deleting them from an ASCII text leaves what it cannot
_ASCII_OK = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x80)])


def _x(s: str) -> str:
    # most text is ASCII with nothing to replace, which isascii and a bytes translate tell in C many
    # times faster than the regex's scan
    if s.isascii() and not s.encode().translate(None, _ASCII_OK):
        return s
    return _INVALID_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def _json(v: Any) -> str:
    return orjson.dumps(v, default=str).decode()


def _failure_lines(f: Finding, case: str | None = None) -> list[str]:
    """The failure's text a line each; ``case`` is ``str(f.object)`` when the caller has it."""
    # StrEnums format as their value
    lines = [f"severity: {f.severity} ({f.layer} layer)"]
    if f.object is not None:
        lines.append(f"object: {case or f.object}")
    if f.container:
        lines.append(f"container: {f.container}")
    if f.source is not None:
        lines.append(f"source: {f.source}")
    dumps = orjson.dumps
    for e in f.evidence:
        lines.append(
            f"evidence: {e.path}: observed {dumps(e.observed, default=str).decode()}, "
            f"expected {dumps(e.expected, default=str).decode()}"
        )
    if f.remediation:
        lines.append(f"remediation: {f.remediation}")
    if f.fix:
        lines.append(f"fix (JSON patch): {_json(f.fix)}")
    if f.fix_note:
        lines.append(f"fix note: {f.fix_note}")
    lines.append(f"fingerprint: {f.fingerprint}")
    return lines


def _failure_text(f: Finding) -> str:
    return "\n".join(_failure_lines(f))


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


class _Plan:
    """What both writers need: the findings by check and test case, the evaluated objects' names by
    kind, and which checks a coverage gap names."""

    def __init__(self, result: ScanResult) -> None:
        self.registry = registry = load_builtin_checks()
        by_rule_obj: dict[str, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
        for f in result.findings:
            by_rule_obj[f.rule_id][_case_name(f.object)].append(f)
        self.by_rule_obj = by_rule_obj
        self.evaluated_by_kind: dict[str, list[str]] = defaultdict(list)
        for ref in result.evaluated:
            self.evaluated_by_kind[ref.kind].append(str(ref))
        known = {c.meta.id for c in registry}
        self.not_evaluated: dict[str, str] = {}
        for g in result.coverage.gaps:
            for rule_id in checks_named(f"{g.subject} {g.detail}", known):
                self.not_evaluated.setdefault(rule_id, f"{g.subject}: {g.detail}")
        self.rule_ids = sorted(result.coverage.checks_run | set(by_rule_obj) | set(self.not_evaluated))
        self._by_kinds: dict[frozenset[str], tuple[list[str], set[str]]] = {}
        self._escaped: dict[int, list[str]] = {}  # id of a shared case list -> its names as attributes

    def escaped(self, cases: list[str]) -> list[str]:
        """The case names as attribute text; worked out once for a list checks of the same kinds share."""
        got = self._escaped.get(id(cases))
        if got is None:
            got = [_attr(_x(n)) for n in cases]
            if any(cases is c for c, _ in self._by_kinds.values()):
                self._escaped[id(cases)] = got
        return got

    def case_names(self, rule_id: str) -> list[str]:
        """The sorted test case names of a check: the objects it evaluated and those it found on."""
        chk = self.registry.get(rule_id)
        found = self.by_rule_obj.get(rule_id, {})
        if chk is not None and not chk.cluster_wide:
            kinds = frozenset(chk.meta.kinds)
            got = self._by_kinds.get(kinds)
            if got is None:  # checks of the same kinds share one sorted list
                names: set[str] = set()
                for kind in kinds:
                    names.update(self.evaluated_by_kind.get(kind, ()))
                got = self._by_kinds[kinds] = (sorted(names), names)
            ordered, evaluated = got
            if not found or evaluated.issuperset(found):
                if ordered or rule_id not in self.not_evaluated:
                    return ordered
            return sorted({*evaluated, *found} or {CLUSTER_CASE})
        names = set(found)
        if chk is not None or (not names and rule_id in self.not_evaluated):
            names.add(CLUSTER_CASE)
        return sorted(names)


def to_element(result: ScanResult, target: str = "") -> ET.Element:
    """The report as an ElementTree (what ``write`` writes as text directly)."""
    plan = _Plan(result)
    registry = plan.registry
    by_rule_obj, evaluated_by_kind, not_evaluated = (
        plan.by_rule_obj,
        plan.evaluated_by_kind,
        plan.not_evaluated,
    )

    root = ET.Element("testsuites", name=_x("kubestrata" + (f" {target}" if target else "")))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for rule_id in plan.rule_ids:
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
    """The report as text: ``to_element``, indented by ``ET.indent``, written by ``ET.tostring``."""
    buf = io.BytesIO()
    write(result, buf, target)
    return buf.getvalue().decode()


# ElementTree's own escaping (xml.etree.ElementTree._escape_cdata and _escape_attrib), so the text is
# byte for byte what ET.tostring writes; tests/report/test_written_in_pieces.py compares the two


def _text(s: str) -> str:
    if "&" in s:
        s = s.replace("&", "&amp;")
    if "<" in s:
        s = s.replace("<", "&lt;")
    if ">" in s:
        s = s.replace(">", "&gt;")
    return s


def _attr(s: str) -> str:
    s = _text(s)
    if '"' in s:
        s = s.replace('"', "&quot;")
    if "\r" in s:
        s = s.replace("\r", "&#13;")
    if "\n" in s:
        s = s.replace("\n", "&#10;")
    if "\t" in s:
        s = s.replace("\t", "&#09;")
    return s


def _counts(cases: list[str], found: dict[str, list[Finding]], not_evaluated: str | None) -> tuple[int, int]:
    """A suite's failures and skipped cases, as ``_suite`` counts them."""
    failures = skipped = 0
    for findings in found.values():
        if any(f.suppressed is None for f in findings):
            failures += 1
        else:
            skipped += 1
    if not_evaluated is not None:
        skipped += len(cases) - len(found)
    return failures, skipped


def write(result: ScanResult, out: IO[bytes], target: str = "") -> None:
    """``render``'s text to ``out``, written as text rather than built as elements: a large cluster has
    hundreds of thousands of test cases, nearly all of them passes that differ only in their name."""
    plan = _Plan(result)
    suites = []
    totals = [0, 0, 0, 0]  # tests, failures, errors, skipped
    for rule_id in plan.rule_ids:
        cases = plan.case_names(rule_id)
        found = plan.by_rule_obj.get(rule_id, {})
        reason = plan.not_evaluated.get(rule_id)
        failures, skipped = _counts(cases, found, reason)
        suites.append((rule_id, cases, found, reason, failures, skipped))
        totals[0] += len(cases)
        totals[1] += failures
        totals[3] += skipped
    gaps = result.coverage.gaps
    totals[0] += len(gaps)
    totals[2] += len(gaps)

    name = _attr(_x("kubestrata" + (f" {target}" if target else "")))
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="{name}" tests="{totals[0]}" '
        f'failures="{totals[1]}" errors="{totals[2]}" skipped="{totals[3]}"'
    )
    if not suites and not gaps:
        out.write(f"{head} />\n".encode())
        return
    out.write(f"{head}>\n".encode())
    for rule_id, cases, found, reason, failures, skipped in suites:
        chk = plan.registry.get(rule_id)
        suite = (
            f'  <testsuite name="{_attr(rule_id)}" tests="{len(cases)}" failures="{failures}" errors="0" '
            f'skipped="{skipped}"' + (f' title="{_attr(_x(chk.meta.title))}"' if chk is not None else "")
        )
        if not cases:
            out.write(f"{suite} />\n".encode())
            continue
        parts = [suite, ">\n"]
        start = f'    <testcase classname="{_attr(f"kubestrata.{rule_id}")}" name="'
        end = '" />\n'
        between = end + start  # a run of passing cases is one join
        names = plan.escaped(cases)
        if reason is None:  # a case without findings passed: write the runs between the others
            at: Iterable[int] = sorted(bisect_left(cases, n) for n in found)
        else:  # every case is written on its own (one without findings was not evaluated)
            at = range(len(cases))
        done = 0
        for i in at:
            if i > done:
                parts += (start, between.join(names[done:i]), end)
            done = i + 1
            parts += (start, names[i])
            case = cases[i]
            findings = found.get(case)
            if findings is None:
                # the check could not judge (missing input): a pass here would be a lie
                parts.append(
                    f'">\n      <skipped message="{_attr(_x(f"not evaluated: {reason}"))}" />\n    </testcase>\n'
                )
                continue
            parts.append('">\n')
            active = [f for f in findings if f.suppressed is None]
            if active:
                for f in active:
                    text = _text(_x("\n".join(_failure_lines(f, case))))
                    parts.append(
                        f'      <failure message="{_attr(_x(f.message))}" type="{f.severity}">{text}</failure>\n'
                    )
            else:
                reasons = sorted({str(f.suppressed) for f in findings})
                parts.append(
                    f'      <skipped message="{_attr(_x("suppressed: " + "; ".join(reasons)))}" />\n'
                )
            parts.append("    </testcase>\n")
        if done < len(cases):
            parts += (start, between.join(names[done:]), end)
        parts.append("  </testsuite>\n")
        out.write("".join(parts).encode())

    if gaps:
        parts = [
            f'  <testsuite name="coverage" tests="{len(gaps)}" failures="0" errors="{len(gaps)}" skipped="0">\n'
        ]
        for g in gaps:
            parts.append(
                f'    <testcase classname="kubestrata.coverage" name="{_attr(_x(g.subject))}">\n'
                f'      <error message="{_attr(_x(f"not evaluated: {g.detail}"))}" type="{_attr(g.reason.value)}">'
                f"{_text(_x(f'{g.subject} was not evaluated ({g.reason.value}): {g.detail}'))}</error>\n"
                "    </testcase>\n"
            )
        parts.append("  </testsuite>\n")
        out.write("".join(parts).encode())
    out.write(b"</testsuites>\n")
