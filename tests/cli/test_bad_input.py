"""Bad input: each broken file or field is named (file, document, field), recorded as a coverage gap,
and the scan goes on. Exit 2 only when nothing could be scanned, or with --strict. No tracebacks."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.kube.loader import MAX_FILE_BYTES

runner = CliRunner()

GOOD = "apiVersion: v1\nkind: Pod\nmetadata: {name: ok, namespace: app}\nspec: {containers: [{name: c, image: a:1}]}\n"

CASES = {
    "containers-mapping": (
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: m}\nspec:\n  containers: {name: c, image: a}\n",
        ["Pod/default/m", "document 0", "spec.containers", "expected a list"],
    ),
    "string-security-context": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: apps/v1\nkind: Deployment\n"
        b"metadata: {name: s}\nspec:\n  template:\n    spec:\n"
        b"      containers: [{name: c, image: a, securityContext: privileged}]\n",
        ["Deployment/default/s", "document 1", "spec.template.spec.containers[0].securityContext", "got str"],
    ),
    "string-pod-security-context": (
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {securityContext: root, containers: []}\n",
        ["Pod/default/p", "spec.securityContext", "expected object"],
    ),
    "labels-list": (
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: [a]}\n",
        ["document 0", "metadata.labels", "must be a mapping"],
    ),
    "invalid-utf8": (
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: \xff\xfe}\n",
        ["invalid-utf8.yaml:3", "not UTF-8"],
    ),
    "binary": (b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 4, ["binary file"]),
    "malformed-yaml": (b"apiVersion: v1\nkind: Pod\nmetadata: {name: [\n", ["document 0", "invalid YAML"]),
    "malformed-json": (b'{"apiVersion": "v1", "kind": "Pod", "metadata": {', ["invalid YAML"]),
    "not-an-object": (b"- just\n- a list\n", ["expected a Kubernetes object"]),
    "missing-kind": (b"apiVersion: v1\nmetadata: {name: x}\n", ["field kind", "missing kind"]),
}


def _scan(*args):
    # --fail-on low: the good pod's findings are medium/low, and exit 1 is how these tests see them
    r = runner.invoke(app, ["scan", "--fail-on", "low", *map(str, args)])
    assert "Traceback" not in r.output, r.output
    return r


@pytest.mark.parametrize("name", list(CASES))
def test_bad_file_is_a_named_gap_and_the_scan_goes_on(tmp_path, name):
    data, expected = CASES[name]
    bad = tmp_path / f"{name}.yaml"
    bad.write_bytes(data)
    (tmp_path / "good.yaml").write_text(GOOD)
    r = _scan(tmp_path, "-o", "json", "-q")
    assert r.exit_code == 1, r.output  # findings on the good file; the bad one did not stop the scan
    doc = json.loads(r.stdout)
    assert any(f["object"]["name"] == "ok" for f in doc["findings"])
    gaps = [g for g in doc["coverage"]["notEvaluated"] if f"{name}.yaml" in g["subject"] + g["detail"]]
    assert len(gaps) == 1, doc["coverage"]["notEvaluated"]
    text = gaps[0]["subject"] + " " + gaps[0]["detail"]
    for part in expected:
        assert part in text, (part, text)
    assert gaps[0]["reason"] == "invalid-input"
    # --strict turns any gap into exit 2
    assert _scan(tmp_path, "--strict", "-q").exit_code == 2


@pytest.mark.parametrize("name", ["binary", "invalid-utf8", "malformed-yaml"])
def test_nothing_scannable_exits_2_naming_the_file(tmp_path, name):
    bad = tmp_path / f"{name}.yaml"
    bad.write_bytes(CASES[name][0])
    r = _scan(bad)
    assert r.exit_code == 2
    assert f"{name}.yaml" in r.output and "error" in r.output


def test_huge_file_is_refused_without_reading_it(tmp_path):
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as fh:  # sparse: no disk used, nothing to read
        fh.truncate(MAX_FILE_BYTES + 1)
    (tmp_path / "good.yaml").write_text(GOOD)
    r = _scan(tmp_path, "-o", "json", "-q")
    assert r.exit_code == 1
    gaps = json.loads(r.stdout)["coverage"]["notEvaluated"]
    assert any("huge.yaml" in g["subject"] and "byte limit" in g["detail"] for g in gaps)
    assert _scan(huge).exit_code == 2


def test_table_output_lists_gaps_with_file_document_and_field(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_bytes(CASES["string-security-context"][0])
    r = _scan(tmp_path)
    assert r.exit_code == 1
    out = " ".join(r.output.split())
    assert "not evaluated" in out and "bad.yaml" in out and "document 1" in out
    assert "securityContext" in out


def test_missing_path_is_named(tmp_path):
    r = _scan(tmp_path / "nope.yaml")
    assert r.exit_code == 2 and "nope.yaml" in r.output


def test_empty_documents_are_skipped_not_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("---\n---\n# only a comment\n---\n" + GOOD + "---\n")
    r = _scan(tmp_path, "-o", "json", "-q", "--strict")
    assert r.exit_code == 1  # findings, but no gap: --strict does not trip
    assert json.loads(r.stdout)["coverage"]["notEvaluated"] == []
