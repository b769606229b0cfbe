"""np-guard/netpol-analyzer goldens (../shared/conformance/netpol): exact connlist lines and
per-pair explain verdicts, in --compat np-guard mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubestrata.netpol.connlist import connections, external_label
from kubestrata.netpol.engine import Options
from kubestrata.netpol.sets import ALL
from kubestrata.report.netpol import render_connections as render
from tests.conftest import shared_dir
from tests.netpol.helpers import network_from_dir, parse_explain


def _cases() -> list[Path]:
    try:
        base = shared_dir() / "conformance" / "netpol" / "cases"
    except BaseException:  # pytest.skip outside CI without ../shared
        return []
    return sorted(p for p in base.iterdir() if p.is_dir())


CASES = _cases()
EXPLAIN_CASES = [c for c in CASES if (c / "expected_explain.txt").exists()]


def test_cases_present() -> None:
    shared_dir()
    assert len(CASES) >= 71


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_connlist_golden(case: Path) -> None:
    net = network_from_dir(case / "input", Options.np_guard())
    out = render(connections(net), "txt")
    assert out == (case / "expected_connlist.txt").read_text()


@pytest.mark.parametrize("case", EXPLAIN_CASES, ids=lambda p: p.name)
def test_explain_verdicts(case: Path) -> None:
    net = network_from_dir(case / "input", Options.np_guard())
    expected = parse_explain((case / "expected_explain.txt").read_text())
    assert expected
    cols = {e.label: net.endpoint_col(e) for e in net.endpoints}
    for block in net.src_blocks:
        cols[external_label(block)] = net.ip_col(block[0][0])
    dst_cols = dict(cols)
    for block in net.dst_blocks:
        dst_cols[external_label(block)] = net.ip_col(block[0][0])
    for (src, dst), (allowed, has_denied) in expected.items():
        got = net.connection(cols[src] if src in cols else dst_cols[src], dst_cols[dst])
        assert got == allowed, (src, dst, str(got), str(allowed))
        assert (not got.is_all) == has_denied, (src, dst)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_explain_path_agrees_with_matrix(case: Path) -> None:
    """The step-by-step explain evaluator and the mask-splitting engine are separate code paths;
    they must agree on every class pair and address block of every case."""
    net = network_from_dir(case / "input", Options.np_guard())
    for c in range(net.nclasses):
        for col in range(net.ncols):
            for d in ("ingress", "egress"):
                assert net.verdict(c, d, col).allowed == net.lookup(c, d, col), (c, col, d)
    assert ALL.is_all
