"""PolicyReport / ClusterPolicyReport output: valid against the wgpolicyk8s.io v1alpha2 CRD schema
(tests/report/data/policyreport-v1alpha2.schema.json, copied from kubernetes-sigs/wg-policy-prototypes)
and carrying every finding, suppression, pass and gap."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import jsonschema
import pytest

from kubestrata.findings import Severity
from kubestrata.report import policyreport
from tests.report.conftest import DATA, TARGET

SCHEMAS = json.loads((DATA / "policyreport-v1alpha2.schema.json").read_text(encoding="utf-8"))
NOW = dt.datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)


def strict(schema: Any) -> Any:
    """The CRD schema as kubectl's strict field validation applies it: fields it does not declare are
    errors (the API server would prune them and the data would be lost silently)."""
    s = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and node is not s["properties"].get("metadata")
            ):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(s)
    return s


VALIDATORS = {kind: jsonschema.Draft7Validator(strict(sch)) for kind, sch in SCHEMAS["schemas"].items()}


def _errors(doc: dict[str, Any]) -> list[str]:
    v = VALIDATORS[doc["kind"]]
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]


def test_schema_data_is_the_crd_and_rejects_broken_reports():
    assert "wg-policy-prototypes" in SCHEMAS["$comment"] and "Apache License 2.0" in SCHEMAS["$comment"]
    bad = {
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": {"name": "x"},
        "results": [{"policy": "p", "result": "failed", "severity": "urgent", "properties": {"a": 1}}],
    }
    errs = _errors(bad)
    assert any("results/0/result" in e for e in errs)
    assert any("results/0/severity" in e for e in errs)
    assert any("results/0/properties/a" in e for e in errs)
    assert _errors({**bad, "results": [{"rule": "no policy"}]})  # policy is required
    assert _errors({**bad, "results": [{"policy": "p", "unknown": "field"}]})


@pytest.fixture(scope="module")
def reports(result):
    doc = json.loads(policyreport.render(result, TARGET, now=NOW))
    assert doc["apiVersion"] == "v1" and doc["kind"] == "List"
    return doc["items"]


def test_every_report_validates_against_the_crd(reports):
    assert reports
    for r in reports:
        assert _errors(r) == [], r["metadata"]


def test_one_report_per_namespace_and_a_cluster_report(reports, result):
    kinds = [r["kind"] for r in reports]
    assert kinds[-1] == "ClusterPolicyReport" and set(kinds[:-1]) == {"PolicyReport"}
    namespaces = [r["metadata"]["namespace"] for r in reports[:-1]]
    assert namespaces == sorted(set(namespaces))
    expected = {f.object.namespace for f in result.findings if f.object and f.object.namespace}
    assert expected <= set(namespaces)
    for r in reports:
        assert r["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "kubestrata"}
        for res in r["results"]:
            for obj in res.get("resources", []):
                assert obj.get("namespace", "") == r["metadata"].get("namespace", "")
        counts = {s: sum(1 for x in r["results"] if x["result"] == s) for s in policyreport.STATUSES}
        assert r["summary"] == counts


def test_findings_suppressions_gaps_and_passes(reports, result):
    results = [x for r in reports for x in r["results"]]
    fails = [x for x in results if x["result"] == "fail"]
    skips = [x for x in results if x["result"] == "skip" and x["policy"] != policyreport.COVERAGE_POLICY]
    assert len(fails) == len(result.active())
    assert len(skips) == len(result.findings) - len(result.active()) > 0
    assert all(x["properties"]["suppressed"] for x in skips) and not any(x["scored"] for x in skips)
    assert all(x["scored"] is True for x in fails)
    by_fp = {x["properties"]["fingerprint"]: x for x in fails}
    for f in result.active():
        x = by_fp[f.fingerprint]
        assert x["policy"] == f.rule_id and x["message"] == f.message
        assert x["severity"] == policyreport.SEVERITY[f.severity]
        assert x["resources"][0]["name"] == f.object.name and x["resources"][0]["kind"] == f.object.kind
        for i, e in enumerate(f.evidence):
            assert x["properties"][f"evidence.{i}.path"] == e.path
            got = x["properties"][f"evidence.{i}.observed"]
            # text as it is, anything else as JSON
            assert (
                got == e.observed
                if isinstance(e.observed, str)
                else json.loads(got) == json.loads(json.dumps(e.observed, default=str))
            )
        assert x["timestamp"] == {"seconds": int(NOW.timestamp()), "nanos": 250000000}
    gaps = [x for x in results if x["policy"] == policyreport.COVERAGE_POLICY]
    assert len(gaps) == len(result.coverage.gaps) > 0
    assert {x["result"] for x in gaps} <= {"error", "skip"}
    passes = [x for x in results if x["result"] == "pass"]
    assert passes
    failed = {
        (f.rule_id, f.object.kind, f.object.namespace, f.object.name) for f in result.findings if f.object
    }
    for x in passes:
        for obj in x["resources"]:
            assert (x["policy"], obj["kind"], obj.get("namespace", ""), obj["name"]) not in failed


def test_severity_mapping_covers_every_severity():
    enum = SCHEMAS["schemas"]["PolicyReport"]["properties"]["results"]["items"]["properties"]["severity"][
        "enum"
    ]
    assert {policyreport.SEVERITY[s] for s in Severity} <= set(enum)
