"""One entry point for every report format."""

from __future__ import annotations

import datetime as dt
import io
from enum import StrEnum
from typing import IO, TYPE_CHECKING

from kubestrata.scan import ScanResult

if TYPE_CHECKING:
    from kubestrata.report.asff import AwsTarget
    from kubestrata.report.html import RunInfo


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"
    HTML = "html"
    POLICYREPORT = "policyreport"
    ASFF = "asff"


def render(
    result: ScanResult,
    fmt: Format,
    *,
    target: str = "",
    color: bool = False,
    show_suppressed: bool = False,
    html_run: RunInfo | None = None,
    aws_target: AwsTarget | None = None,
    now: dt.datetime | None = None,
) -> str:
    """``now`` stamps formats that need a time (ASFF); others are reproducible byte for byte."""
    if fmt is Format.TABLE:
        from rich.console import Console

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
    if fmt is Format.ASFF:
        from kubestrata.report import asff

        return asff.render(result, aws_target, now)
    from kubestrata.report import html

    return html.render(result, target, html_run)


def write_report(
    result: ScanResult,
    fmt: Format,
    out: IO[bytes],
    *,
    target: str = "",
    html_run: RunInfo | None = None,
    aws_target: AwsTarget | None = None,
    now: dt.datetime | None = None,
) -> None:
    """``render``'s text to ``out`` as UTF-8, byte for byte, written as it is made: the formats that
    grow with the input (every one but the table and HTML) never exist whole in memory, as dicts or as
    text."""
    if fmt is Format.JSON:
        from kubestrata.report import json_report

        json_report.write(result, out, target)
    elif fmt is Format.SARIF:
        from kubestrata.report import sarif

        sarif.write(result, out, target)
    elif fmt is Format.JUNIT:
        from kubestrata.report import junit

        junit.write(result, out, target)
    elif fmt is Format.POLICYREPORT:
        from kubestrata.report import policyreport

        policyreport.write(result, out, target)
    elif fmt is Format.ASFF:
        from kubestrata.report import asff

        asff.write(result, out, aws_target, now)
    else:
        out.write(
            render(result, fmt, target=target, html_run=html_run, aws_target=aws_target, now=now).encode()
        )
