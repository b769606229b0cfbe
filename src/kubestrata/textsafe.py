"""Attacker-controlled text on a terminal: one escaper for every text output."""

from __future__ import annotations

import re
from typing import Any

# C0/C1 controls, Unicode line separators and bidi overrides ("Trojan Source" reordering)
_UNICODE_CONTROL = "\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_UNICODE_CONTROL}]")
_CONTROL_BUT_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_UNICODE_CONTROL}]")


def printable(text: Any, keep_lines: bool = False) -> str:
    """Attacker-controlled text (object names, usernames, messages quoting them) made safe for a
    terminal: control characters, escape sequences and, unless keep_lines, newlines become \\xNN."""
    pattern = _CONTROL_BUT_LINES if keep_lines else _CONTROL
    return pattern.sub(_escape_char, str(text))


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
