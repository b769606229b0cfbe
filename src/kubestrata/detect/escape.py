"""Audit fields (userAgent, sourceIPs, exec commands, object names, URIs) come from the client:
every value is escaped with kubestrata.textsafe (tabs and newlines included) and capped in length
before it leaves the engine."""

from __future__ import annotations

from typing import Any

from kubestrata.textsafe import printable

MAX_VALUE_CHARS = 512


def clean(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    """The string with every control / format / bidi code point made visible, capped at limit."""
    if len(value) > limit:
        value = value[:limit] + "…[truncated]"
    elif value.isascii() and value.isprintable():  # the usual case: nothing to escape (C speed)
        return value
    return printable(value, keep_tabs=False)


def clean_any(value: Any, limit: int = MAX_VALUE_CHARS) -> Any:
    """clean() applied through lists and dicts (keys too); other scalars pass unchanged."""
    if isinstance(value, str):
        return clean(value, limit)
    if isinstance(value, list | tuple):
        head = value[:64]
        try:  # a list of short plain strings (an exec command, a list of names): one check for all
            joined = "".join(head)
        except TypeError:
            joined = None
        if joined is not None and joined.isascii() and joined.isprintable():
            if all(len(v) <= limit for v in head):
                return list(head)
        return [clean_any(v, limit) for v in head]
    if isinstance(value, dict):
        return {clean(str(k), 128): clean_any(v, limit) for k, v in list(value.items())[:64]}
    return value
