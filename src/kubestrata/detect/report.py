"""Human output: the summary table and the end-of-run statistics. Every value shown is already
escaped by the pipeline (control characters); rich markup is escaped here as well, so an
attacker-chosen ``[bold red]`` in a user agent prints literally."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kubestrata.detect.catalogue import CATALOGUE
from kubestrata.detect.pipeline import Stats

_SEV_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
_SEV_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def summary_table(findings: list[dict[str, Any]]) -> Table:
    counts: Counter[str] = Counter(f["ruleId"] for f in findings)
    first: dict[str, dict[str, Any]] = {}
    for f in findings:
        first.setdefault(f["ruleId"], f)
    table = Table(title="kubestrata detect: findings by rule", show_lines=False)
    for col in ("Rule", "Severity", "Title", "Count", "First example"):
        table.add_column(col, overflow="fold")
    for rid in sorted(counts, key=lambda r: (_SEV_ORDER.get(first[r]["severity"], 9), r)):
        f = first[rid]
        sev = f["severity"]
        target = "/".join(x for x in (f.get("namespace"), f.get("name")) if x) or f.get("requestURI") or ""
        example = f"{f.get('user') or '?'} {f.get('verb')} {f.get('resource') or ''} {target}".strip()
        table.add_row(
            escape(rid),
            f"[{_SEV_STYLE.get(sev, '')}]{escape(sev)}[/]",
            escape(CATALOGUE[rid].title if rid in CATALOGUE else f["title"]),
            str(counts[rid]),
            escape(example),
        )
    return table


def stats_line(stats: Stats, sinks: list[Any] | None = None) -> str:
    parts = [
        f"{stats.lines} lines",
        f"{stats.events} events",
        f"{stats.duplicates} duplicates",
        f"{stats.bad_total} bad",
        f"{stats.ignored} ignored",
        f"{stats.findings} findings",
        f"{stats.suppressed} suppressed by the dedup window",
    ]
    dropped = sum(getattr(s, "dropped", 0) for s in sinks or [])
    if dropped:
        parts.append(f"{dropped} alerts dropped (sink queue full)")
    return ", ".join(parts)


def print_summary(
    console: Console, findings: list[dict[str, Any]], stats: Stats, sinks: list[Any] | None = None
):
    if findings:
        console.print(summary_table(findings))
    else:
        console.print("no findings")
    console.print(escape(stats_line(stats, sinks)))
    if stats.bad:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(stats.bad.items()))
        console.print(
            f"[yellow]skipped bad input[/] ({escape(reasons)}); first: {escape(str(stats.samples[0]))}"
        )
