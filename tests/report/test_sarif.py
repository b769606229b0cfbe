"""SARIF 2.1.0: valid against the official OASIS schema and carrying what code scanning needs."""

from __future__ import annotations

import json

import jsonschema
import pytest

from kubestrata.findings import Finding, Layer, Severity
from kubestrata.kube.objects import ObjectRef, Source
from kubestrata.report import sarif
from kubestrata.scan import ScanResult
from tests.report.conftest import DATA, TARGET

SCHEMA = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def _errors(doc):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


def test_the_shipped_schema_is_the_official_one():
    assert SCHEMA["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    assert (DATA / "SARIF-SCHEMA-LICENSE.md").is_file()


def test_schema_rejects_a_broken_log():
    # the validator really validates: a result without a message is invalid SARIF
    assert _errors({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{}]}]})


def test_report_validates(result):
    doc = json.loads(sarif.render(result, TARGET))
    assert _errors(doc) == []


def test_rules_results_locations_fingerprints(result):
    doc = json.loads(sarif.render(result, TARGET))
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert ids == sorted(result.coverage.checks_run)
    for r in rules:
        assert r["shortDescription"]["text"] and r["help"]["text"] and r["fullDescription"]["text"]
        assert 0.0 <= float(r["properties"]["security-severity"]) <= 10.0
    assert len(run["results"]) == len(result.findings)
    for res, f in zip(run["results"], result.findings, strict=True):
        assert ids[res["ruleIndex"]] == res["ruleId"] == f.rule_id
        assert res["partialFingerprints"] == {"kubestrata/v1": f.fingerprint}
        loc = res["locations"][0]
        phys = loc["physicalLocation"]
        assert phys["artifactLocation"]["uri"] == f.source.file  # relative, repository-mapped
        assert phys["region"]["startLine"] == f.source.line
        assert loc["logicalLocations"][0]["fullyQualifiedName"].startswith(str(f.object))
        assert ("suppressions" in res) == (f.suppressed is not None)
    web = next(r for r in run["results"] if r["ruleId"] == "KS-IMG-001" and "web" in r["message"]["text"])
    assert web["level"] == "warning" and web["properties"]["container"] == "nginx"
    kinds = {r["suppressions"][0]["kind"] for r in run["results"] if "suppressions" in r}
    assert kinds == {"inSource", "external"}  # annotation vs suppressions file
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("not evaluated" in n["message"]["text"] for n in notes)


def test_baseline_reads_sarif_fingerprints(result, tmp_path):
    from kubestrata.baseline import load_baseline

    p = tmp_path / "b.sarif"
    p.write_text(sarif.render(result, TARGET))
    base = load_baseline(str(p))
    assert base.fingerprints == {f.fingerprint for f in result.findings}
    assert {e.rule_id for e in base.entries.values()} == {f.rule_id for f in result.findings}


@pytest.mark.parametrize(
    "file,expected",
    [
        ("examples/a b.yaml", "examples/a%20b.yaml"),
        ("./x/../y.yaml", "y.yaml"),
        ("-", None),
        ("https://10.0.0.1:443", None),
        ("<synthesized>", None),
    ],
)
def test_artifact_uri(file, expected):
    assert sarif.artifact_uri(file) == expected


def test_absolute_paths_become_relative_to_base(tmp_path):
    f = tmp_path / "m" / "p.yaml"
    assert sarif.artifact_uri(str(f), base=tmp_path) == "m/p.yaml"
    assert sarif.artifact_uri(str(f), base=tmp_path / "elsewhere") == f.as_uri()


def test_live_cluster_finding_has_only_a_logical_location():
    f = Finding(
        "KS-WL-001",
        "Privileged container",
        Severity.HIGH,
        Layer.APPLICATION,
        "container 'c' runs privileged",
        object=ObjectRef("Pod", "ns", "p", "v1"),
        source=Source("https://127.0.0.1:6443", 0, None),
        container="c",
    )
    doc = json.loads(sarif.render(ScanResult(findings=[f]), "cluster"))
    assert _errors(doc) == []
    loc = doc["runs"][0]["results"][0]["locations"][0]
    assert "physicalLocation" not in loc and loc["logicalLocations"][0]["name"] == "p"


def test_rule_from_another_engine_gets_metadata_from_the_finding():
    f = Finding(
        "KS-PSS-999", "Some PSS control", Severity.MEDIUM, Layer.APPLICATION, "m", remediation="fix it"
    )
    doc = json.loads(sarif.render(ScanResult(findings=[f])))
    rule = doc["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["id"] == "KS-PSS-999" and rule["shortDescription"]["text"] == "Some PSS control"
    assert _errors(doc) == []


def test_a_path_no_system_call_accepts_is_written_as_given(tmp_path):
    """An embedded NUL (from a document's source name, not the file system) cannot be resolved: the
    SARIF writer gave a traceback; the path is written as given."""
    assert sarif.artifact_uri("/m/../x\x00y.yaml", base=tmp_path) == "file:///x%00y.yaml"
    assert sarif.artifact_uri("m/x\x00y.yaml", base=tmp_path) == "m/x%00y.yaml"
