"""Terminal table (rich), grouped by layer then severity."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from kubestrata.findings import Layer, Severity
from kubestrata.report.terminal import markup
from kubestrata.scan import ScanResult

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


# A terminal table of tens of thousands of rows is unreadable and slow to lay out (rich measures
# every cell): past this many rows per layer the table keeps the most severe and counts the rest by
# rule; -o json / -o html carry everything.
MAX_ROWS_PER_LAYER = 500


def render(
    result: ScanResult, console: Console, *, show_suppressed: bool = False, max_rows: int = MAX_ROWS_PER_LAYER
) -> None:
    findings = result.findings if show_suppressed else result.active()
    for layer in Layer:
        rows = [f for f in findings if f.layer is layer]
        if not rows:
            continue
        rows.sort(key=lambda f: (-f.severity.rank, f.rule_id, str(f.object)))
        hidden = rows[max_rows:]
        rows = rows[:max_rows]
        table = Table(
            title=f"{layer.value.capitalize()} layer",
            title_justify="left",
            expand=False,
            show_lines=False,
            header_style="bold",
        )
        table.add_column("Severity", no_wrap=True)
        table.add_column("Rule", no_wrap=True)
        table.add_column("Object")
        table.add_column("Container")
        table.add_column("Finding")
        for f in rows:
            table.add_row(
                f"[{SEVERITY_STYLE[f.severity]}]{f.severity.value}[/]",
                f.rule_id,
                markup(f.object) if f.object else "-",
                markup(f.container or ""),
                markup(f.message)
                + (f" [dim](suppressed: {markup(f.suppressed)})[/]" if f.suppressed else ""),
            )
        console.print(table)
        if hidden:
            by_rule = Counter((f.rule_id, f.severity) for f in hidden)
            console.print(
                f"... and {len(hidden)} more {layer.value}-layer findings not shown "
                "(all are in -o json, -o html, -o sarif): "
                + ", ".join(
                    f"{rule} {sev.value} x{n}"
                    for (rule, sev), n in sorted(by_rule.items(), key=lambda kv: (-kv[0][1].rank, kv[0][0]))
                )
            )
    active = result.active()
    counts = ", ".join(f"{sum(1 for f in active if f.severity is s)} {s.value}" for s in reversed(Severity))
    objs = sum(result.coverage.evaluated.values())
    console.print(
        f"[bold]{len(active)} findings[/] ({counts}) in {objs} objects; "
        f"{len(result.findings) - len(active)} suppressed"
    )
    # notices and gaps name files and fields: never broken across lines (soft_wrap), so they stay
    # copyable and greppable at any terminal width
    for n in result.notices:
        console.print(f"[yellow]notice:[/] {markup(n)}", soft_wrap=True)
    if result.coverage.gaps:
        console.print(f"[yellow]{len(result.coverage.gaps)} not evaluated:[/]")
        for g in result.coverage.gaps[:20]:
            console.print(
                f"  [yellow]{g.reason.value}[/] {markup(g.subject)}: {markup(g.detail)}",
                soft_wrap=True,
            )
        if len(result.coverage.gaps) > 20:
            console.print(f"  ... and {len(result.coverage.gaps) - 20} more (see -o json)")
