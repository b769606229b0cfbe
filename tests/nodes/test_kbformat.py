"""The kube-bench check-file interpreter against kube-bench's own unit-test vectors (tests/nodes/vectors,
extracted from aquasecurity/kube-bench check/test_test.go and check/data), and end to end with
`--kube-bench-cfg` running real shell audit commands on a real node tree."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.errors import InputError
from kubestrata.nodes.kbformat.evaluate import compare, execute
from kubestrata.nodes.kbformat.jsonpath import go_float, jsonpath_text
from kubestrata.nodes.kbformat.parse import parse_controls
from tests.nodes.hostfixture import CONFIG, FakeNode

VECTORS = Path(__file__).parent / "vectors"
COMPARE = yaml.safe_load((VECTORS / "kube_bench_compare_op.yaml").read_text())
EXECUTE = yaml.safe_load((VECTORS / "kube_bench_test_execute.yaml").read_text())
runner = CliRunner()


def _data_controls():
    text = (
        (VECTORS / "kube_bench_check_data.yaml").read_text().replace("$user", os.environ.get("USER", "root"))
    )
    return parse_controls(yaml.safe_load(text), "check/data")


DATA = _data_controls()


def test_vectors_cover_every_op():
    ops = {c["op"] for c in COMPARE}
    assert ops >= {
        "eq",
        "noteq",
        "gt",
        "gte",
        "lt",
        "lte",
        "has",
        "nothave",
        "regex",
        "valid_elements",
        "bitmask",
    }


@pytest.mark.parametrize("case", COMPARE, ids=[c["label"] for c in COMPARE])
def test_compare_op(case):
    got = compare(case["op"], case["flagVal"], case["compareValue"], case["flagName"])
    assert got == (case["expectedResultPattern"], case["testResult"])


@pytest.mark.parametrize("case", EXECUTE, ids=[f"check{c['check']}-{i}" for i, c in enumerate(EXECUTE)])
def test_test_execute(case):
    check = DATA.groups[0].checks[case["check"]]
    out = execute(check, case["str"], case["strConfig"], case["strEnv"])
    assert out.passed is case["pass"], out
    if case["pass"]:
        assert out.expected == case["expectedTestResult"]


@pytest.mark.parametrize(
    "template,doc,want",
    [
        # TestExecuteJSONPath (check/test_test.go): a path into a decoded document; missing keys print nothing
        ("{.resourcesToEncrypt}", {"resourcesToEncrypt": ["secrets"]}, "[secrets]"),
        ("{.kind}", {"kind": "EncryptionConfig"}, "EncryptionConfig"),
        ("{.missing.key}", {"kind": "x"}, ""),
        ("{.a.b.c}", {"a": {"b": {"c": False}}}, "false"),
        ("{.xs[1]}", {"xs": ["p", "q"]}, "q"),
        ("{.xs[*].name}", {"xs": [{"name": "p"}, {"name": "q"}]}, "p q"),
        ("{.m}", {"m": {"b": 1, "a": "x"}}, "map[a:x b:1]"),
    ],
)
def test_jsonpath(template, doc, want):
    assert jsonpath_text(template, doc, floats=False) == want


def test_json_numbers_print_as_go_floats():
    # encoding/json decodes numbers to float64; client-go jsonpath prints them with %v
    assert [go_float(x) for x in (0.0, 10255.0, 1e6, 123456.0, 0.5)] == [
        "0",
        "10255",
        "1e+06",
        "123456",
        "0.5",
    ]
    assert jsonpath_text("{.n}", json.loads('{"n": 1000000}'), floats=True) == "1e+06"


@pytest.mark.parametrize(
    "doc,field",
    [
        ({"groups": "x"}, "groups"),
        ({"groups": [{"checks": [{"text": "no id"}]}]}, "groups[0].checks[0]"),
        (
            {"groups": [{"checks": [{"id": 1, "tests": {"test_items": {"flag": "x"}}}]}]},
            "groups[0].checks[0].tests.test_items",
        ),
        (
            {"groups": [{"checks": [{"id": 1, "tests": {"test_items": [{"set": "maybe"}]}}]}]},
            "test_items[0].set",
        ),
    ],
)
def test_malformed_check_files_name_the_field(doc, field):
    with pytest.raises(InputError) as e:
        parse_controls(doc, "node.yaml")
    assert "node.yaml" in str(e.value) and field in str(e.value)


NODE_YAML = """
controls:
version: "custom-1"
id: 3
text: "Worker Nodes"
type: "node"
groups:
  - id: 3.1
    text: "Files"
    checks:
      - id: 3.1.3
        text: "config file permissions"
        audit: '/bin/sh -c ''if test -e $kubeletconf; then stat -c permissions=%a $kubeletconf; fi'' '
        tests:
          test_items:
            - flag: "permissions"
              compare: {op: bitmask, value: "644"}
        scored: true
  - id: 3.2
    text: "Kubelet"
    checks:
      - id: 3.2.1
        text: "anonymous auth"
        audit: "/bin/ps -fC $kubeletbin"
        audit_config: "/bin/cat $kubeletconf"
        tests:
          test_items:
            - flag: "--anonymous-auth"
              path: '{.authentication.anonymous.enabled}'
              set: true
              compare: {op: eq, value: false}
        scored: true
      - id: 3.2.4
        text: "read-only port"
        audit: "/bin/ps -fC $kubeletbin"
        audit_config: "/bin/cat $kubeletconf"
        tests:
          test_items:
            - flag: "--read-only-port"
              path: '{.readOnlyPort}'
              compare: {op: eq, value: 0}
        scored: true
      - id: 3.2.99
        text: "kubelet environment"
        audit: "/bin/ps -fC $kubeletbin"
        tests:
          test_items:
            - env: "KUBELET_MODE"
              compare: {op: eq, value: "hardened"}
        scored: false
      - id: 3.2.100
        text: "manual"
        type: manual
        scored: false
"""


def res_env(ctl):
    return next(x for g in ctl["tests"] for x in g["results"] if x["test_number"] == "3.2.99")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_kube_bench_cfg_runs_user_check_files_with_a_shell(tmp_path):
    node = FakeNode(tmp_path / "host")
    try:
        # the shell commands see host paths: run against a root of "/" with paths made absolute by the
        # kubelet's flags pointing into the tree
        cfg_dir = tmp_path / "cfg"
        (cfg_dir / "eks-1.8.0").mkdir(parents=True)
        (cfg_dir / "eks-1.8.0" / "node.yaml").write_text(NODE_YAML)
        os.chmod(node.path(CONFIG), 0o664)
        node.start("--read-only-port=10255", env={"KUBELET_MODE": "hardened"})
        # kube-bench runs `ps`: make the fake kubelet's absolute config path what $kubeletconf names
        r = runner.invoke(
            app,
            [
                "nodes",
                "audit",
                "--root",
                str(node.root),
                "--kube-bench-cfg",
                str(cfg_dir),
                "-o",
                "kube-bench-json",
                "--fail-on",
                "never",
            ],
        )
        assert r.exit_code == 0, r.output
        doc = json.loads(r.output)
        (ctl,) = doc["Controls"]
        assert ctl["version"] == "custom-1"
        got = {res["test_number"]: res["status"] for g in ctl["tests"] for res in g["results"]}
        assert got["3.2.4"] == "FAIL"  # from the real `ps -fC kubelet` output
        assert got["3.2.100"] == "WARN"
        # the env item reads the kubelet's /proc/PID/environ through kube-bench's generated audit_env
        assert got["3.2.99"] == "PASS"
        assert "environ" in res_env(ctl)["AuditEnv"]
        res = {x["test_number"]: x for g in ctl["tests"] for x in g["results"]}
        assert "--read-only-port=10255" in res["3.2.4"]["actual_value"]
        assert res["3.2.4"]["audit"] == "/bin/ps -fC kubelet"
        assert got["3.1.3"] == "FAIL" and "permissions=664" in res["3.1.3"]["actual_value"]
        assert got["3.2.1"] == "PASS"  # from the config file the shell `cat`s
    finally:
        node.stop()


def test_kube_bench_cfg_bad_file_is_a_one_line_error(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "node.yaml").write_text(
        "type: node\ngroups:\n  - id: 3.1\n    checks:\n      - id: 3.1.1\n        scored: perhaps\n"
    )
    r = runner.invoke(app, ["nodes", "audit", "--root", str(tmp_path), "--kube-bench-cfg", str(cfg)])
    flat = " ".join(r.output.split())
    assert r.exit_code == 2 and "node.yaml" in flat and "groups[0].checks[0].scored" in flat
    assert "Traceback" not in r.output
    (cfg / "node.yaml").write_text("type: master\ngroups: []\n")
    r = runner.invoke(app, ["nodes", "audit", "--root", str(tmp_path), "--kube-bench-cfg", str(cfg)])
    assert r.exit_code == 2 and "no node controls" in " ".join(r.output.split())
