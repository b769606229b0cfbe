"""The report writers that write in pieces (JSON, SARIF, JUnit, PolicyReport, ASFF) against straightforward
writers: the whole document built as dicts (or elements) and serialised in one call. Byte for byte,
on the report fixture and on random results full of hostile text (quotes, markup, controls, XML's
forbidden characters, non-ASCII), with batches small enough that every batch boundary is crossed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.checks import load_builtin_checks
from kubestrata.findings import Coverage, CoverageGap, Evidence, Finding, GapReason, Layer, Severity
from kubestrata.kube.objects import ObjectRef, Source
from kubestrata.report import asff, json_report, junit, pieces, policyreport, sarif
from kubestrata.report.render import Format, render, write_report
from kubestrata.scan import ScanResult
from tests.report.conftest import TARGET

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
AWS = asff.AwsTarget.from_arn("arn:aws:eks:eu-west-1:123456789012:cluster/prod")
INDENT = orjson.OPT_INDENT_2


def plain_properties(f: Finding, fingerprint: str) -> dict[str, str]:
    """A PolicyReport result's properties, written out plainly."""
    props = {"layer": f.layer.value, "fingerprint": fingerprint}
    if f.container:
        props["container"] = f.container
    if f.source is not None:
        props["source"] = f"{f.source.file}:{f.source.line}" if f.source.line else f.source.file
    for i, e in enumerate(f.evidence):
        props[f"evidence.{i}.path"] = e.path
        for k, v in (("observed", e.observed), ("expected", e.expected)):
            props[f"evidence.{i}.{k}"] = v if type(v) is str else orjson.dumps(v, default=str).decode()
    if f.remediation:
        props["remediation"] = f.remediation
    if f.fix:
        props["fix"] = orjson.dumps(f.fix, default=str).decode()
    if f.fix_note:
        props["fixNote"] = f.fix_note
    if f.suppressed is not None:
        props["suppressed"] = f.suppressed
    return props


def plain_policy_reports(result: ScanResult, target: str) -> list[dict[str, Any]]:
    """PolicyReports the plain way: every result a dict, grouped by namespace, counted at the end."""
    registry = load_builtin_checks()
    by_ns: dict[str, list[dict[str, Any]]] = defaultdict(list)
    failed: dict[tuple[str, ...], set[str]] = defaultdict(set)
    titles: dict[str, str] = {}  # an unregistered rule is named by the title of its first finding
    for f in result.findings:
        chk = registry.get(f.rule_id)
        res: dict[str, Any] = {
            "source": "kubestrata",
            "policy": f.rule_id,
            "rule": chk.meta.title if chk is not None else titles.setdefault(f.rule_id, f.title),
            "category": f.layer.value,
            "severity": policyreport.SEVERITY[f.severity],
            "message": f.message,
            "result": "fail" if f.suppressed is None else "skip",
            "scored": f.suppressed is None,
            "properties": plain_properties(f, f.fingerprint),
        }
        ns = ""
        if f.object is not None:
            ref = f.object
            ns = ref.namespace
            res["resources"] = [policyreport._resource(ref)]
            failed[(ref.kind, ref.namespace, ref.name, ref.api_version)].add(f.rule_id)
        by_ns[ns].append(res)
    for chk in registry:
        if chk.meta.id not in result.coverage.checks_run or chk.cluster_wide:
            continue
        groups: dict[str, list[dict[str, str]]] = {}
        for ref in result.evaluated:
            key = (ref.kind, ref.namespace, ref.name, ref.api_version)
            if ref.kind in chk.meta.kinds and chk.meta.id not in failed.get(key, ()):
                groups.setdefault(ref.namespace, []).append(policyreport._resource(ref))
        for ns, objs in groups.items():
            by_ns[ns].append(
                {
                    "source": "kubestrata",
                    "policy": chk.meta.id,
                    "rule": chk.meta.title,
                    "category": chk.meta.layer.value,
                    "message": f"{len(objs)} object{'s' if len(objs) != 1 else ''} passed",
                    "result": "pass",
                    "severity": policyreport.SEVERITY[chk.meta.severity],
                    "scored": True,
                    "resources": objs,
                }
            )
    for g in result.coverage.gaps:
        by_ns[""].append(
            {
                "source": "kubestrata",
                "policy": "kubestrata/coverage",
                "rule": "not evaluated",
                "category": "coverage",
                "message": f"{g.subject} was not evaluated: {g.detail}",
                "result": policyreport.GAP_RESULT[g.reason],
                "scored": False,
                "properties": {"subject": g.subject, "reason": g.reason.value, "detail": g.detail},
            }
        )
    reports = []
    for ns in [*sorted(n for n in by_ns if n), *([""] if by_ns.get("") else [])]:
        results = by_ns[ns]
        meta: dict[str, Any] = {
            "name": "kubestrata" if ns else "kubestrata-cluster",
            "labels": {"app.kubernetes.io/managed-by": "kubestrata"},
            "annotations": {"kubestrata.io/version": policyreport.__version__},
        }
        if ns:
            meta["namespace"] = ns
        if target:
            meta["annotations"]["kubestrata.io/target"] = target
        reports.append(
            {
                "apiVersion": "wgpolicyk8s.io/v1alpha2",
                "kind": "PolicyReport" if ns else "ClusterPolicyReport",
                "metadata": meta,
                "summary": {s: sum(r["result"] == s for r in results) for s in policyreport.STATUSES},
                "results": results,
            }
        )
    return reports


def plain(fmt: Format, result: ScanResult, target: str) -> bytes:
    """The document built whole and serialised in one call (ElementTree for JUnit)."""
    if fmt is Format.JSON:
        return orjson.dumps(json_report.to_document(result, target), option=INDENT) + b"\n"
    if fmt is Format.SARIF:
        return orjson.dumps(sarif.to_document(result, target), option=INDENT) + b"\n"
    if fmt is Format.JUNIT:
        root = junit.to_element(result, target)
        ET.indent(root)
        return (
            b'<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(root, encoding="unicode").encode()
            + b"\n"
        )
    if fmt is Format.POLICYREPORT:
        doc = {
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {},
            "items": plain_policy_reports(result, target),
        }
        return orjson.dumps(doc, option=INDENT) + b"\n"
    assert fmt is Format.ASFF
    return orjson.dumps({"Findings": asff.to_findings(result, AWS, NOW)}) + b"\n"


PIECEWISE = [Format.JSON, Format.SARIF, Format.JUNIT, Format.POLICYREPORT, Format.ASFF]


def written(fmt: Format, result: ScanResult, target: str) -> bytes:
    out = io.BytesIO()
    write_report(result, fmt, out, target=target, aws_target=AWS, now=NOW)
    text = out.getvalue()
    assert text.decode() == render(result, fmt, target=target, aws_target=AWS, now=NOW)
    return text


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(pieces, "BATCH", 2)


@pytest.mark.parametrize("fmt", PIECEWISE)
def test_the_fixture_as_the_whole_document_serialised(fmt, result, small_batches):
    assert written(fmt, result, TARGET) == plain(fmt, result, TARGET)
    assert written(fmt, ScanResult(), "") == plain(fmt, ScanResult(), "")
    one = ScanResult(findings=result.findings[:1], evaluated=result.evaluated[:3], coverage=result.coverage)
    assert written(fmt, one, TARGET) == plain(fmt, one, TARGET)


def test_sarif_results_carry_what_the_json_report_does(result):
    """SARIF's properties come from the finding's own dataclasses: the same values as its to_dict."""
    doc = json.loads(sarif.render(result, TARGET))
    for f, r in zip(result.findings, doc["runs"][0]["results"], strict=True):
        d = f.to_dict()
        props = r["properties"]
        assert (props["evidence"], props["object"], props["severity"], props["layer"]) == (
            d["evidence"], d["object"], d["severity"], d["layer"],
        )  # fmt: skip


# --- random results ------------------------------------------------------------------------------

REGISTRY = load_builtin_checks()
KINDED = sorted(c.meta.id for c in REGISTRY if not c.cluster_wide and c.meta.kinds)[:6]
CLUSTER_WIDE = sorted(c.meta.id for c in REGISTRY if c.cluster_wide)[:2]
KINDS = sorted({k for rid in KINDED for k in REGISTRY.get(rid).meta.kinds})

# hostile text: markup and quotes, controls (XML forbids most of them), U+FFFE, non-ASCII, tabs and
# returns (attributes escape them); no lone surrogates, which no JSON writer accepts
odd = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("<>&\"'\\/ \t\r\n\x00\x01\x1b\x7f\x85\u2028\ufffe\uffff\U0001f600é-:.")),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=12,
)
values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), odd, st.lists(odd, max_size=2))
refs = st.builds(
    ObjectRef, st.sampled_from(KINDS + ["Pod", "Secret"]), st.sampled_from(["", "a", "b<&>"]), odd, odd
)


@st.composite
def findings(draw: st.DrawFn) -> Finding:
    rule = draw(st.sampled_from(KINDED + CLUSTER_WIDE + ["KS-NOT-REGISTERED"]))
    ref = draw(st.one_of(st.none(), refs))
    return Finding(
        rule,
        draw(odd),
        draw(st.sampled_from(list(Severity))),
        draw(st.sampled_from(list(Layer))),
        draw(odd),
        object=ref,
        source=draw(
            st.one_of(
                st.none(), st.builds(Source, odd, st.integers(0, 3), st.one_of(st.none(), st.integers(1, 9)))
            )
        ),
        container=draw(st.one_of(st.none(), odd)),
        evidence=draw(st.lists(st.builds(Evidence, odd, values, values), max_size=2)),
        remediation=draw(odd),
        fix=draw(st.one_of(st.none(), st.just([{"op": "add", "path": "/x", "value": "\x1b<&>"}]))),
        fix_note=draw(st.one_of(st.none(), odd)),
        references=draw(st.sampled_from([{}, {"cis": ["5.2.1", "<&>"]}, {"nsa": ["x"], "cis": ["1"]}])),
        suppressed=draw(st.one_of(st.none(), odd, st.just("annotation: kubestrata.io/ignore"))),
    )


@st.composite
def results(draw: st.DrawFn) -> ScanResult:
    fs = draw(st.lists(findings(), max_size=8))
    evaluated = draw(st.lists(refs, max_size=6)) + [f.object for f in fs if f.object and draw(st.booleans())]
    gaps = draw(st.lists(st.builds(CoverageGap, odd, st.sampled_from(list(GapReason)), odd), max_size=2))
    if draw(st.booleans()):  # a gap that names checks: their cases read "not evaluated"
        gaps.append(CoverageGap("input", GapReason.MISSING_INPUT, f"{KINDED[0]}, {CLUSTER_WIDE[0]}: <none>"))
    run = set(draw(st.lists(st.sampled_from(KINDED + CLUSTER_WIDE), max_size=5)))
    return ScanResult(
        findings=fs,
        coverage=Coverage(checks_run=run, gaps=gaps),
        evaluated=evaluated,
        notices=draw(st.lists(odd, max_size=1)),
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(results(), odd)
def test_random_results_as_the_whole_document_serialised(r, target):
    pieces.BATCH, saved = 3, pieces.BATCH
    try:
        for fmt in PIECEWISE:
            assert written(fmt, r, target) == plain(fmt, r, target), fmt
    finally:
        pieces.BATCH = saved


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20))
def test_junit_escaping_is_elementtrees(s):
    """Any text, lone surrogates included: XML's forbidden characters written as \\uXXXX, then escaped
    as ElementTree escapes attributes and text."""
    el = ET.Element("e", a=junit._x(s))
    el.text = "text: " + junit._x(s)  # never empty: an element without text is written <e />
    expected = f'<e a="{junit._attr(junit._x(s))}">{junit._text("text: " + junit._x(s))}</e>'
    assert ET.tostring(el, encoding="unicode") == expected
    assert junit._x(s) == junit._INVALID_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def test_a_report_that_fails_half_way_leaves_no_new_file(tmp_path, result, monkeypatch):
    from kubestrata.cli.common import write_streamed

    target = tmp_path / "out.json"

    def broken(out):
        out.write(b"{")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_streamed(broken, str(target))
    assert not target.exists()
    target.write_text("before")  # a path that existed is never removed (it may be /dev/stdout)
    with pytest.raises(RuntimeError):
        write_streamed(broken, str(target))
    assert target.exists()
    write_streamed(lambda out: json_report.write(result, out, TARGET), str(target))
    assert target.read_bytes() == plain(Format.JSON, result, TARGET)


def test_unregistered_rule_ids_and_cluster_findings_in_every_format(small_batches):
    f = Finding("KS-NOT-REGISTERED", "t", Severity.HIGH, Layer.CLUSTER, "m\x00<")
    g = dataclasses.replace(f, object=ObjectRef("Pod", "ns", "p"), suppressed="why")
    r = ScanResult(findings=[f, g, f], evaluated=[ObjectRef("Pod", "ns", "p")])
    for fmt in PIECEWISE:
        assert written(fmt, r, "t") == plain(fmt, r, "t")
