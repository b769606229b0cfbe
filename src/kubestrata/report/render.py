"""One entry point for every report format."""

from __future__ import annotations

import io
from collections.abc import Sequence
from enum import StrEnum

from rich.console import Console

from kubestrata.scan import ScanResult


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"
    HTML = "html"
    POLICYREPORT = "policyreport"


def render(
    result: ScanResult,
    fmt: Format,
    *,
    target: str = "",
    color: bool = False,
    show_suppressed: bool = False,
    html_sections: Sequence[str] = (),
) -> str:
    if fmt is Format.TABLE:
        from kubestrata.report import table

        buf = io.StringIO()
        console = Console(file=buf, force_terminal=color, width=160, highlight=False)
        table.render(result, console, show_suppressed=show_suppressed)
        return buf.getvalue()
    if fmt is Format.JSON:
        from kubestrata.report import json_report

        return json_report.render(result, target)
    if fmt is Format.SARIF:
        from kubestrata.report import sarif

        return sarif.render(result, target)
    if fmt is Format.JUNIT:
        from kubestrata.report import junit

        return junit.render(result, target)
    if fmt is Format.POLICYREPORT:
        from kubestrata.report import policyreport

        return policyreport.render(result, target)
    from kubestrata.report import html

    return html.render(result, target, html_sections)
