"""The JSON report matches the JSON Schema published in docs/json-schema.md."""

from __future__ import annotations

import json
import re

import jsonschema

from kubestrata.report import json_report
from tests.conftest import REPO_ROOT
from tests.report.conftest import TARGET

DOC = (REPO_ROOT / "docs" / "json-schema.md").read_text(encoding="utf-8")


def _schema() -> dict:
    block = DOC.split("## JSON Schema", 1)[1]
    return json.loads(re.search(r"```json\n(.*?)\n```", block, re.DOTALL).group(1))


def test_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(_schema())


def test_report_matches_the_documented_schema(result):
    doc = json.loads(json_report.render(result, TARGET))
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft202012Validator(_schema()).iter_errors(doc)
    ]
    assert errors == []
    assert doc["findings"] and doc["coverage"]["notEvaluated"]  # both parts exercised


def test_documented_example_finding_is_current(result):
    # the example in the doc is the demo's privileged container, as the scan reports it today
    example = json.loads(
        re.search(r"Example \(from the demo cluster\):\n\n```json\n(.*?)\n```", DOC, re.DOTALL).group(1)
    )
    got = [
        f.to_dict()
        for f in result.findings
        if f.rule_id == "KS-WL-001" and f.object and f.object.name == "payments-api"
    ]
    assert got == [example]


def test_schema_rejects_a_broken_report(result):
    doc = json.loads(json_report.render(result, TARGET))
    doc["findings"][0]["severity"] = "urgent"
    assert list(jsonschema.Draft202012Validator(_schema()).iter_errors(doc))
