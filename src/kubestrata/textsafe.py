"""Attacker-controlled text (object names, usernames, user agents, exec commands, messages quoting
them) made safe for terminals, logs and JSON consumers: one escaper for every output.

JSON encoding escapes C0 controls, but a terminal, ``jq -r``, ``less`` or a SIEM viewer would act on
DEL, C1 controls (0x9b is a one-byte CSI), bidi overrides ("Trojan Source" reordering), invisible
format characters and line separators. Each such code point becomes a visible ``\\xNN`` /
``\\uNNNN`` text escape.
"""

from __future__ import annotations

import re
from typing import Any

# format and bidi code points: soft hyphen, Arabic letter mark, Mongolian vowel separator, zero-width
# and directional marks, line/paragraph separators, bidi embeddings/overrides/isolates, BOM, and the
# interlinear annotation characters
_UNICODE = "\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb"
_PATTERNS = {
    # (keep_lines, keep_tabs) -> the code points to escape
    (False, True): re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_UNICODE}]"),
    (True, True): re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_UNICODE}]"),
    (False, False): re.compile(f"[\x00-\x1f\x7f-\x9f{_UNICODE}]"),
    (True, False): re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_UNICODE}]"),
}


def printable(text: Any, keep_lines: bool = False, keep_tabs: bool = True) -> str:
    """The text with control, format and bidi code points made visible; newlines too unless
    keep_lines, tabs too unless keep_tabs."""
    return _PATTERNS[(keep_lines, keep_tabs)].sub(_escape_char, str(text))


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


MAX_VALUE_CHARS = 512
# a tuple of types: ``list | tuple`` in isinstance builds a union object on every call
_SEQUENCES = (list, tuple)


def clean(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    """A one-line value (tabs and newlines escaped too) with every control / format / bidi code
    point made visible, capped at limit characters."""
    if len(value) > limit:
        value = value[:limit] + "…[truncated]"
    elif value.isascii() and value.isprintable():  # the usual case: nothing to escape (C speed)
        return value
    return printable(value, keep_tabs=False)


def clean_any(value: Any, limit: int = MAX_VALUE_CHARS) -> Any:
    """clean() applied through lists and dicts (keys too; at most 64 items each); other scalars
    pass unchanged."""
    if isinstance(value, str):
        return clean(value, limit)
    if isinstance(value, _SEQUENCES):
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
