"""Image vulnerability reports as a terminal table or JSON (the CLI's `image` commands)."""

from __future__ import annotations

from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kubestrata.image.vulns import ImageReport, sorted_vulns
from kubestrata.report.table import SEVERITY_STYLE
from kubestrata.textsafe import printable

MAX_ROWS = 500


def _cell(text: Any) -> str:
    return escape(printable(str(text)))


def render_table(reports: list[ImageReport], console: Console, *, max_rows: int = MAX_ROWS) -> None:
    for rep in reports:
        counts = ", ".join(f"{n} {s}" for s, n in rep.counts().items() if n) or (
            "no vulnerabilities found in what was evaluated (see below)"
            if rep.gaps
            else "no vulnerabilities found"
        )
        head = f"[bold]{_cell(rep.reference)}[/]" + (f" [dim]{_cell(rep.digest)}[/]" if rep.digest else "")
        pk = f"{rep.packages} packages, " if rep.packages is not None else ""
        console.print(f"{head}\n  {pk}{counts} [dim](source: {_cell(rep.source)})[/]")
        rows = sorted_vulns(rep.vulns)
        if rows:
            t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
            for col in ("SEVERITY", "ID", "PACKAGE", "VERSION", "FIXED IN", "SCORE"):
                t.add_column(col, overflow="fold")
            for v in rows[:max_rows]:
                t.add_row(
                    f"[{SEVERITY_STYLE[v.severity]}]{v.severity.value}[/]",
                    _cell(v.id),
                    _cell(v.package),
                    _cell(v.version),
                    _cell(", ".join(v.fixed) or "-"),
                    "-" if v.score is None else f"{v.score:.1f}",
                )
            console.print(t)
            if len(rows) > max_rows:
                console.print(f"  ... {len(rows) - max_rows} more (use -o json for all)")
        for g in rep.gaps:
            console.print(f"  [yellow]not evaluated:[/] {_cell(g.subject)}: {_cell(g.detail)}")
        console.print()


def render_json(reports: list[ImageReport], extra: dict[str, Any] | None = None) -> str:
    doc = {"images": [r.to_dict() for r in reports], **(extra or {})}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
