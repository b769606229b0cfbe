"""The pre-commit hooks (.pre-commit-hooks.yaml) run through `pre-commit try-repo` on a throwaway git
repository: a manifest with a high finding fails the commit, a clean one passes.

kubestrata-scan-system (the kubestrata on PATH) runs offline and always; kubestrata-scan (language
python: pre-commit builds a virtualenv and pip-installs kubestrata and its dependencies, about five
minutes on the 2-core CI machine) runs when KUBESTRATA_PRE_COMMIT_FULL=1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PRE_COMMIT = shutil.which("pre-commit")
BAD = """apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: default}
spec:
  containers:
    - name: c
      image: nginx:latest
      securityContext: {privileged: true}
"""
GOOD = """apiVersion: v1
kind: Pod
metadata: {name: good, namespace: default}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: c
      image: registry.example.com/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
      resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
"""


def _hook_repo(tmp_path):
    """pre-commit try-repo reads the hooks from a git repository: the project's files, committed."""
    src = tmp_path / "hooks"
    shutil.copytree(
        REPO_ROOT,
        src,
        ignore=shutil.ignore_patterns(".git", "bench", "tests", "docs", "*.pyc", "__pycache__", "out"),
    )
    for cmd in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", *cmd], cwd=src, check=True)
    return src


def _run(tmp_path, hook: str, timeout: int = 300):
    hooks = _hook_repo(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "bad.yaml").write_text(BAD)
    (work / "good.yaml").write_text(GOOD)
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(["git", "add", "."], cwd=work, check=True)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "kubestrata"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom kubestrata.cli.entry import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO_ROOT / "src"),
    }
    out = {}
    for name in ("bad.yaml", "good.yaml"):
        out[name] = subprocess.run(
            [PRE_COMMIT, "try-repo", str(hooks), hook, "--files", name],
            cwd=work, env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    return out


@pytest.mark.skipif(PRE_COMMIT is None, reason="pre-commit is not installed (pip install pre-commit)")
def test_system_hook_fails_on_a_high_finding_and_passes_clean_manifests(tmp_path):
    out = _run(tmp_path, "kubestrata-scan-system")
    bad, good = out["bad.yaml"], out["good.yaml"]
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout and "KS-WL-001" in bad.stdout and "--fail-on high" in bad.stdout
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout


@pytest.mark.skipif(
    PRE_COMMIT is None or os.environ.get("KUBESTRATA_PRE_COMMIT_FULL") != "1",
    reason="installs kubestrata and its dependencies into a fresh virtualenv (~5 min); "
    "set KUBESTRATA_PRE_COMMIT_FULL=1",
)
def test_python_hook_installs_and_runs(tmp_path):
    out = _run(tmp_path, "kubestrata-scan", timeout=1200)
    assert out["bad.yaml"].returncode == 1 and "KS-WL-001" in out["bad.yaml"].stdout
    assert out["good.yaml"].returncode == 0
