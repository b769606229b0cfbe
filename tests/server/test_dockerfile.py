"""deploy/Dockerfile: a base pinned by digest, a numeric non-root user matching the Deployment, exec-form
entry point (no shell at run time), nothing written at run time; and the Deployment that runs it has no
finding about its runtime settings in kubestrata's own scan."""

from __future__ import annotations

import json
import re

import yaml
from typer.testing import CliRunner

from kubestrata.cli.main import app
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
TEXT = (DEPLOY / "Dockerfile").read_text()
LINES = [
    ln.strip()
    for ln in re.sub(r"\\\n", " ", TEXT).splitlines()
    if ln.strip() and not ln.lstrip().startswith("#")
]
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _deployment() -> dict:
    docs = yaml.safe_load_all((DEPLOY / "deployment.yaml").read_text())
    return next(d for d in docs if d and d.get("kind") == "Deployment")


def test_every_stage_starts_from_a_digest_pinned_base():
    args = dict(ln.split(None, 1)[1].split("=", 1) for ln in LINES if ln.startswith("ARG ") and "=" in ln)
    froms = [ln.split()[1] for ln in LINES if ln.startswith("FROM ")]
    assert len(froms) == 2
    for ref in froms:
        ref = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], ref)
        assert DIGEST.search(ref), ref
        assert "python:3.11" in ref


def test_runtime_stage_is_non_root_shell_free_and_read_only_friendly():
    final = LINES[max(i for i, ln in enumerate(LINES) if ln.startswith("FROM ")) :]
    assert not any(ln.startswith("RUN ") for ln in final)  # nothing executed (no shell) in the runtime stage
    user = next(ln for ln in final if ln.startswith("USER ")).split()[1]
    uid, gid = (int(x) for x in user.split(":"))
    assert uid > 0 and gid > 0
    for instr in ("ENTRYPOINT", "CMD"):
        line = next(ln for ln in final if ln.startswith(instr + " "))
        assert isinstance(json.loads(line.split(None, 1)[1]), list), f"{instr} must use the exec form"
    assert "PYTHONDONTWRITEBYTECODE=1" in TEXT and "compileall" in TEXT
    pod = _deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == uid and pod["securityContext"]["runAsNonRoot"] is True
    assert all(c["securityContext"]["readOnlyRootFilesystem"] is True for c in pod["containers"])


def test_scan_of_deploy_has_no_runtime_setting_findings():
    res = CliRunner().invoke(app, ["scan", str(DEPLOY), "-o", "json", "--fail-on", "never", "-q"])
    findings = json.loads(res.stdout)["findings"]
    assert not [f for f in findings if f["severity"] in ("high", "critical")]
    # workload checks judge what the image runs as (user, root filesystem, privileges, capabilities);
    # KS-WL-002 (API token mounted) is the server's need: it watches policies through the API
    runtime = [
        f["ruleId"]
        for f in findings
        if f["ruleId"].startswith(("KS-WL-", "KS-PSS-")) and f["ruleId"] != "KS-WL-002"
    ]
    assert runtime == []
