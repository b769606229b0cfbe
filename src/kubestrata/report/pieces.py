"""Writing a large indented JSON document in pieces, byte for byte what one ``orjson.dumps(doc,
option=OPT_INDENT_2)`` writes, without the whole document ever existing as dicts or as one text.

A report's long list (findings, results) is the only part that grows with the input: the rest of the
document is written once with a hole where the list goes (``around_hole``), and the list's items are
written a batch at a time (``write_items``), each batch indented for the depth the list sits at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO, Any

import orjson

# where the long list goes: orjson writes a Fragment verbatim, and a NUL byte never appears in its
# output otherwise (control characters inside strings are escaped)
HOLE = orjson.Fragment(b"\0")
INDENT = orjson.OPT_INDENT_2
BATCH = 1000  # items per orjson call: big enough to amortise the call, small enough to stay in cache


def around_hole(doc: Any, option: int = INDENT) -> tuple[bytes, bytes]:
    """The text before and after the one ``HOLE`` in ``doc``."""
    pieces = between_holes(doc, option)
    if len(pieces) != 2:  # pragma: no cover - a caller's mistake, not input
        raise ValueError("the document must hold exactly one HOLE")
    return pieces[0], pieces[1]


def between_holes(doc: Any, option: int = INDENT) -> list[bytes]:
    """The text around each ``HOLE`` in ``doc``, in order (one more piece than holes)."""
    return orjson.dumps(doc, option=option).split(b"\0")


def _wrapping(depth: int) -> tuple[int, int, Callable[[list[Any]], Any]]:
    """How to make orjson indent a list's items as at ``depth`` (their indent is 2 * depth spaces):
    nest the list in depth - 1 single-key objects; the lengths of the text before the first item and
    after the last one, and the wrapper."""
    levels = depth - 1
    head = (
        b"".join(b"{\n" + b" " * (2 * (i + 1)) + b'"": ' for i in range(levels)) + b"[\n" + b" " * (2 * depth)
    )
    tail = (
        b"\n"
        + b" " * (2 * levels)
        + b"]"
        + b"".join(b"\n" + b" " * (2 * i) + b"}" for i in reversed(range(levels)))
    )

    def wrap(items: list[Any]) -> Any:
        doc: Any = items
        for _ in range(levels):
            doc = {"": doc}
        return doc

    return len(head), len(tail), wrap


def write_items(
    out: IO[bytes],
    items: Iterable[Any],
    depth: int,
    *,
    option: int = INDENT,
    batch: int | None = None,
) -> bool:
    """Write ``items`` (already in their JSON shape: dicts, lists, Fragments...) as the members of an
    indented list whose items sit at ``depth``, separated as orjson separates them; the text starts at
    the first item's first character and ends at the last one's last. False if there was none."""
    if option & INDENT:
        head, tail, wrap = _wrapping(depth)
        sep = b",\n" + b" " * (2 * depth)
    else:  # compact: the list itself
        head, tail, wrap = 1, 1, lambda items: items
        sep = b","
    batch = batch or BATCH
    pending: list[Any] = []
    wrote = False
    for item in items:
        pending.append(item)
        if len(pending) >= batch:
            if wrote:
                out.write(sep)
            text = orjson.dumps(wrap(pending), option=option)
            out.write(memoryview(text)[head:-tail])
            wrote = True
            pending = []
    if pending:
        if wrote:
            out.write(sep)
        text = orjson.dumps(wrap(pending), option=option)
        out.write(memoryview(text)[head:-tail])
        wrote = True
    return wrote
