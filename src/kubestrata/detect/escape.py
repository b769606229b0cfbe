"""Make attacker-controlled strings safe for terminals, logs and JSON consumers.

userAgent, sourceIPs, exec commands, object names and URIs come from the client. JSON encoding
escapes C0 controls, but ``jq -r``, ``less`` or a SIEM viewer would print DEL, C1 controls
(0x9b is a one-byte CSI), bidi overrides and line separators raw. We replace each such code point
with a visible ``\\xNN`` / ``\\uNNNN`` text escape before a value leaves the engine, and cap length.
"""

from __future__ import annotations

import re
from typing import Any

MAX_VALUE_CHARS = 512

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)


def _repl(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def clean(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    """The string with every control / format / bidi code point made visible, capped at limit."""
    if len(value) > limit:
        value = value[:limit] + "…[truncated]"
    return _UNSAFE.sub(_repl, value)


def clean_any(value: Any, limit: int = MAX_VALUE_CHARS) -> Any:
    """clean() applied through lists and dicts (keys too); other scalars pass unchanged."""
    if isinstance(value, str):
        return clean(value, limit)
    if isinstance(value, list | tuple):
        return [clean_any(v, limit) for v in value[:64]]
    if isinstance(value, dict):
        return {clean(str(k), 128): clean_any(v, limit) for k, v in list(value.items())[:64]}
    return value
