"""JUnit XML: a suite per check, a case per evaluated object, failures per finding, gaps as errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

from kubestrata.checks import load_builtin_checks
from kubestrata.report import junit
from tests.report.conftest import TARGET


def test_structure_and_counts(result):
    root = ET.fromstring(junit.render(result, TARGET).encode())
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == result.coverage.checks_run | {"coverage"}
    registry = load_builtin_checks()
    kinds = Counter(r.kind for r in result.evaluated)
    for rule_id in result.coverage.checks_run:
        suite = suites[rule_id]
        cases = suite.findall("testcase")
        # one case per object the check evaluated: every object of its kinds that reached the checks
        assert len(cases) == sum(kinds[k] for k in registry.get(rule_id).meta.kinds)
        assert int(suite.get("tests")) == len(cases)
        failing = [c for c in cases if c.find("failure") is not None]
        assert int(suite.get("failures")) == len(failing)
        active = [f for f in result.findings if f.rule_id == rule_id and not f.suppressed]
        assert sum(len(c.findall("failure")) for c in cases) == len(active)
    total = sum(int(s.get("tests")) for s in suites.values())
    assert int(root.get("tests")) == total


def test_suppressed_only_case_is_skipped_with_reason(result):
    root = ET.fromstring(junit.render(result, TARGET).encode())
    suite = next(s for s in root.findall("testsuite") if s.get("name") == "KS-WL-006")
    skipped = [c for c in suite.findall("testcase") if c.find("skipped") is not None]
    assert skipped and all("monitoring" in c.get("name") for c in skipped)
    assert all("vendor chart" in c.find("skipped").get("message") for c in skipped)


def test_gaps_are_errors_not_passes(result):
    root = ET.fromstring(junit.render(result, TARGET).encode())
    cov = next(s for s in root.findall("testsuite") if s.get("name") == "coverage")
    errs = cov.findall("testcase/error")
    assert len(errs) == len(result.coverage.gaps) == int(cov.get("errors")) > 0
    assert any("hostile.yaml" in c.get("name") for c in cov.findall("testcase"))


def test_failure_explains_the_finding(result):
    root = ET.fromstring(junit.render(result, TARGET).encode())
    case = root.find(
        ".//testcase[@name='Deployment/payments/payments-api'][@classname='kubestrata.KS-WL-001']"
    )
    fail = case.find("failure")
    assert fail.get("type") == "high" and "debug" in fail.get("message")
    assert "evidence: spec.template.spec.containers[1].securityContext.privileged" in fail.text
    assert "fix (JSON patch)" in fail.text and "remediation:" in fail.text


def test_control_characters_cannot_break_the_xml():
    assert junit._x("a\x00b\x1bc") == "a\\u0000b\\u001bc"
