"""The GitHub Action (action.yml) and the CI examples: inputs that exist, and the scan step's own
shell script run here with GitHub's step environment (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import yaml

from tests.conftest import EXAMPLES, REPO_ROOT

ACTION = yaml.safe_load((REPO_ROOT / "action.yml").read_text())


def test_action_is_a_composite_action_whose_expressions_name_real_inputs():
    assert ACTION["runs"]["using"] == "composite"
    text = (REPO_ROOT / "action.yml").read_text()
    used = set(re.findall(r"inputs\.([a-z-]+)", text))
    assert used <= set(ACTION["inputs"]), used - set(ACTION["inputs"])
    steps = {s.get("id") or s.get("name"): s for s in ACTION["runs"]["steps"]}
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif@") for s in steps.values())
    assert all(s.get("shell") == "bash" for s in steps.values() if "run" in s)


def test_workflow_example_uses_the_action_inputs():
    wf = yaml.safe_load((EXAMPLES / "ci" / "github-workflow.yml").read_text())
    assert wf["permissions"]["security-events"] == "write"
    step = next(s for s in wf["jobs"]["scan"]["steps"] if "kubestrata/kubestrata@" in s.get("uses", ""))
    assert set(step["with"]) <= set(ACTION["inputs"])
    gl = yaml.safe_load((EXAMPLES / "ci" / "gitlab-ci.yml").read_text())["kubestrata"]
    assert gl["artifacts"]["reports"]["junit"] in gl["artifacts"]["paths"]


def _scan_step(tmp_path, path: str, fail_on: str):
    step = next(s for s in ACTION["runs"]["steps"] if s.get("id") == "scan")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubestrata").write_text(
        f"#!{sys.executable}\nimport sys\nfrom kubestrata.cli.entry import main\nsys.exit(main())\n"
    )
    (bindir / "kubestrata").chmod(0o755)
    out, summary = tmp_path / "output", tmp_path / "summary"
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO_ROOT / "src"),
        "GITHUB_OUTPUT": str(out),
        "GITHUB_STEP_SUMMARY": str(summary),
        "SCAN_PATH": path,
        "FAIL_ON": fail_on,
        "SCAN_ARGS": "--exclude KS-IMG-*",
        "SARIF_FILE": str(tmp_path / "k.sarif"),
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=300
    )
    return proc, out.read_text(), summary.read_text(), tmp_path / "k.sarif"


def test_scan_step_writes_sarif_and_reports_the_exit_code(tmp_path):
    proc, output, summary, sarif = _scan_step(tmp_path, str(EXAMPLES / "demo-cluster"), "high")
    assert proc.returncode == 0, proc.stderr  # the step itself succeeds; "Fail on findings" fails the job
    assert output.strip() == "exit-code=1"
    doc = json.loads(sarif.read_text())
    assert doc["version"] == "2.1.0" and doc["runs"][0]["results"]
    assert not any(r["ruleId"].startswith("KS-IMG-") for r in doc["runs"][0]["results"])  # args passed
    assert "findings" in summary


def test_scan_step_never_fails_with_fail_on_never(tmp_path):
    _proc, output, _summary, sarif = _scan_step(tmp_path, str(EXAMPLES / "demo-cluster"), "never")
    assert output.strip() == "exit-code=0" and sarif.exists()
