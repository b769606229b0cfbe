"""Human output of `kubestrata detect`: the summary table and the end-of-run statistics. Every
event value in a finding is already escaped by the engine (control characters); rich markup is
escaped here as well, so an attacker-chosen ``[bold red]`` in a user agent prints literally."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from kubestrata.detect.catalogue import CATALOGUE
from kubestrata.detect.pipeline import Stats
from kubestrata.findings import Finding

if TYPE_CHECKING:  # rich is imported when something is printed: detect replay -o jsonl prints one line
    from rich.console import Console
    from rich.table import Table

_SEV_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def summary_table(findings: list[Finding]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    counts: Counter[str] = Counter(f.rule_id for f in findings)
    first: dict[str, Finding] = {}
    for f in findings:
        first.setdefault(f.rule_id, f)
    table = Table(title="kubestrata detect: findings by rule", show_lines=False)
    for col in ("Rule", "Severity", "Title", "Count", "First example"):
        table.add_column(col, overflow="fold")
    for rid in sorted(counts, key=lambda r: (-first[r].severity.rank, r)):
        f = first[rid]
        sev = f.severity.value
        e = f.event
        if e is None:
            example = ""
        else:
            target = "/".join(x for x in (e.namespace, e.name) if x) or e.request_uri
            example = f"{e.user or '?'} {e.verb} {e.resource} {target}".strip()
        table.add_row(
            escape(rid),
            f"[{_SEV_STYLE.get(sev, '')}]{escape(sev)}[/]",
            escape(CATALOGUE[rid].title if rid in CATALOGUE else f.title),
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
    console: Console, findings: list[Finding], stats: Stats, sinks: list[Any] | None = None
) -> None:
    from rich.markup import escape

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
