"""Text for terminals: the one way data enters rich markup, and the plain table layout the command
reports share.

Data is escaped where it enters the output, never after rendering: ``markup`` makes a value safe for
rich markup (control, format and bidi code points made visible by kubestrata.textsafe.printable, then
``[`` escaped so a name cannot inject rich styles); plain-text reports use ``printable`` on each datum.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from kubestrata.textsafe import printable


def markup(value: Any) -> str:
    """``value`` as literal text inside rich markup."""
    from rich.markup import escape

    return escape(printable(value))


def plain_table(title: str, headers: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """A titled table without wrapping (ARNs and usernames must stay copyable and greppable)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(record=True, width=100_000, highlight=False, file=io.StringIO())
    t = Table(title=markup(title), title_justify="left", box=box.SIMPLE_HEAD, expand=False)
    for h in headers:
        t.add_column(h, no_wrap=True)
    for r in rows:
        t.add_row(*(markup(c) for c in r))
    console.print(t)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"
