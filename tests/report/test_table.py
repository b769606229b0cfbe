"""The terminal table: grouped by layer and severity, capped for very large scans."""

from __future__ import annotations

import io

from rich.console import Console

from kubestrata.report import table


def _render(result, **kw) -> str:
    buf = io.StringIO()
    table.render(result, Console(file=buf, width=200, force_terminal=False), **kw)
    return buf.getvalue()


def test_cap_keeps_the_most_severe_and_counts_the_rest(result):
    active = result.active()
    out = _render(result, max_rows=5)
    assert f"and {len(active) - 5} more application-layer findings not shown" in out
    # the five rows shown are the most severe
    worst = sorted(active, key=lambda f: -f.severity.rank)[:5]
    for f in worst:
        assert f.rule_id in out
    assert out.count("critical") >= sum(1 for f in worst if f.severity.value == "critical")
    assert f"{len(active)} findings" in out


def test_no_cap_note_below_the_limit(result):
    assert "not shown" not in _render(result)
