"""Errors that the CLI turns into clear messages (never tracebacks)."""

from __future__ import annotations


class KubestrataError(Exception):
    """A user-facing error: bad input, bad configuration, bad usage."""


class InputError(KubestrataError):
    """Input that cannot be read or understood; names the file, document and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        document: int | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.document = document
        self.field = field
        self.line = line
        self.detail = message
        super().__init__(self.render())

    def render(self) -> str:
        where = []
        if self.file:
            where.append(self.file + (f":{self.line}" if self.line else ""))
        if self.document is not None:
            where.append(f"document {self.document}")
        if self.field:
            where.append(f"field {self.field}")
        return (", ".join(where) + ": " if where else "") + self.detail
