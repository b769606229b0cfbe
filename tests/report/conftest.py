"""A fixed scan result for the renderer tests: the demo cluster plus hostile input, suppressions (one
expired), an annotation suppression, a coverage gap and a notice. Paths are relative to the
repository root and only the workload and image checks run, so the goldens do not move when other
domains add checks."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from kubestrata.findings import Coverage, GapReason
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_paths
from kubestrata.scan import ScanResult, run_scan, select_checks
from kubestrata.suppressions import Suppressions
from tests.conftest import REPO_ROOT

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"
TARGET = "examples/demo-cluster tests/report/data/hostile.yaml"


def build_result() -> ScanResult:
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        loaded = load_paths(["examples/demo-cluster", "tests/report/data/hostile.yaml"])
        pre = Coverage()
        for e in loaded.errors:
            pre.gap(e.file or "input", GapReason.INVALID, str(e))
        sup = Suppressions.load("tests/report/data/suppressions.yaml", today=dt.date(2026, 1, 1))
        result = run_scan(
            Cluster(loaded.objects), checks=select_checks(["workload", "images"]), suppressions=sup
        )
        result.coverage.merge(pre)
        return result
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="session")
def result() -> ScanResult:
    return build_result()


def check_golden(name: str, text: str) -> None:
    """Compare with tests/report/golden/<name>; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; run with UPDATE_GOLDEN=1 and review the diff"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file; rerun with UPDATE_GOLDEN=1 if intended"
