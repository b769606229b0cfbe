"""`kubectl strata ...`: the kubectl-strata console script declared in pyproject.toml, found by the real
kubectl on PATH (`kubectl plugin list`, `kubectl strata --version`), and the krew manifest whose
archive sha256 matches a rebuild."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from io import BytesIO

import pytest
import yaml

from kubestrata import __version__
from tests.conftest import REPO_ROOT

KUBECTL = shutil.which("kubectl")


def _script(tmp_path) -> str:
    """kubectl-strata as pip writes a console script: the interpreter, then the declared entry point."""
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["kubectl-strata"].split(":")
    assert scripts["kubectl-strata"] == scripts["kubestrata"]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    path = bindir / "kubectl-strata"
    path.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n")
    path.chmod(0o755)
    return str(bindir)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_real_kubectl_finds_and_runs_the_plugin(tmp_path):
    bindir = _script(tmp_path)
    env = {
        **os.environ,
        # only our script and kubectl's own directory: an installed kubectl-strata elsewhere on PATH (a
        # pip install of this package) would shadow the one under test and make kubectl warn
        "PATH": os.pathsep.join([str(bindir), os.path.dirname(KUBECTL)]),
        "KUBECONFIG": str(tmp_path / "none"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT / "src"),
    }
    listed = subprocess.run([KUBECTL, "plugin", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert f"{bindir}/kubectl-strata" in listed.stdout, listed.stdout + listed.stderr
    assert "warning" not in listed.stderr.lower() or "kubectl-strata" not in listed.stderr
    ver = subprocess.run(
        [KUBECTL, "strata", "--version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert ver.returncode == 0, ver.stderr
    assert ver.stdout.strip() == f"kubestrata {__version__}"
    checks = subprocess.run(
        [KUBECTL, "strata", "checks", "list", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checks.returncode == 0, checks.stderr
    assert '"KS-WL-001"' in checks.stdout


def test_krew_manifest_matches_the_archive():
    sys.path.insert(0, str(REPO_ROOT / "krew"))
    try:
        import build_archive
    finally:
        sys.path.pop(0)
    manifest = yaml.safe_load((REPO_ROOT / "krew" / "strata.yaml").read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "strata"
    spec = manifest["spec"]
    assert spec["version"] == f"v{__version__}"
    assert (
        spec["shortDescription"]
        and len(spec["shortDescription"]) <= 60
        and spec["homepage"].startswith("https://")
    )
    data = build_archive.build(__version__)
    assert data == build_archive.build(__version__)  # reproducible
    for p in spec["platforms"]:
        assert p["sha256"] == hashlib.sha256(data).hexdigest()
        assert p["uri"].endswith(f"/v{__version__}/kubectl-strata-v{__version__}.tar.gz")
        with tarfile.open(fileobj=BytesIO(data)) as tar:
            names = tar.getnames()
            assert p["bin"] in names and all(f["from"] in names for f in p["files"])
            assert tar.getmember(p["bin"]).mode & 0o111
