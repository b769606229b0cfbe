"""Golden-file tests: every renderer's output for a fixed scan is byte-for-byte stable."""

from __future__ import annotations

import datetime as dt

import pytest

from kubestrata.report.render import Format, render
from tests.report.conftest import TARGET, build_result, check_golden

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)  # formats that carry a time (ASFF) take this one
GOLDEN_NAMES = {
    Format.TABLE: "demo.table.txt",
    Format.JSON: "demo.json",
    Format.SARIF: "demo.sarif",
    Format.JUNIT: "demo.junit.xml",
    Format.HTML: "demo.html",
    Format.POLICYREPORT: "demo.policyreport.json",
    Format.ASFF: "demo.asff.json",
}


@pytest.mark.parametrize("fmt", list(Format), ids=[f.value for f in Format])
def test_renderer_matches_golden(result, fmt):
    check_golden(GOLDEN_NAMES[fmt], render(result, fmt, target=TARGET, now=NOW))


@pytest.mark.parametrize("fmt", list(Format), ids=[f.value for f in Format])
def test_renderer_is_deterministic(result, fmt):
    # a fresh scan (new objects, new dict orders) renders the same bytes: no timestamps, no ids
    assert render(build_result(), fmt, target=TARGET, now=NOW) == render(result, fmt, target=TARGET, now=NOW)


def test_fixture_covers_every_branch(result):
    # the goldens are only worth something if the input exercises suppression, expiry and gaps
    assert any(f.suppressed and f.suppressed.startswith("annotation:") for f in result.findings)
    assert any(f.suppressed and not f.suppressed.startswith("annotation:") for f in result.findings)
    assert any("expired" in n for n in result.notices)
    assert result.coverage.gaps and any(f.fix for f in result.findings)
