"""The image libraries (univers, cyclonedx-python-lib, packageurl, cvss) are paid for only by commands
that need them: not by --help, not by a scan without --images."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

HEAVY = ("univers", "cyclonedx", "packageurl", "cvss")


def _imports(*args: str) -> set[str]:
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kubestrata", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return {
        line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")
    }


def test_help_and_plain_scan_import_no_image_library() -> None:
    for args in (["--help"], ["scan", "examples/images/manifests.yaml", "--fail-on", "never", "-q"]):
        mods = _imports(*args)
        assert not {m for m in mods if m.split(".")[0] in HEAVY}, args
        assert not any(m.startswith("kubestrata.image") for m in mods), args


def test_scan_with_image_results_imports_no_sbom_library() -> None:
    mods = _imports(
        "scan",
        "examples/images/manifests.yaml",
        "--image-results",
        "examples/images/trivy-web.json",
        "--fail-on",
        "never",
        "-q",
    )
    assert "kubestrata.image.workloads" in mods
    assert not {m for m in mods if m.split(".")[0] in ("cyclonedx", "univers")}
