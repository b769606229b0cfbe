"""Audit fields (userAgent, sourceIPs, exec commands, object names, URIs) come from the client:
every value is escaped with kubestrata.textsafe (tabs and newlines included) and capped in length
before it leaves the engine. The escaper lives in textsafe (findings.py uses it too)."""

from kubestrata.textsafe import MAX_VALUE_CHARS, clean, clean_any

__all__ = ["MAX_VALUE_CHARS", "clean", "clean_any"]
