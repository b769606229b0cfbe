"""Typed reading of AWS CLI JSON: every error names the file and the field."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubestrata.eks.arn import ArnError, parse_arn
from kubestrata.errors import InputError


class Reader:
    """Typed access to a JSON document with errors naming file and field."""

    def __init__(self, file: str) -> None:
        self.file = file

    def err(self, field_: str, msg: str) -> InputError:
        return InputError(msg, file=self.file, field=field_)

    def obj(self, v: Any, where: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.err(where, f"expected an object, got {tname(v)}")
        return v

    def lst(self, v: Any, where: str, optional: bool = True) -> list[Any]:
        if v is None and optional:
            return []
        if not isinstance(v, list):
            raise self.err(where, f"expected a list, got {tname(v)}")
        return v

    def s(self, d: dict[str, Any], key: str, where: str, required: bool = False) -> str:
        v = d.get(key)
        if v is None:
            if required:
                raise self.err(f"{where}.{key}", "required field is missing")
            return ""
        if not isinstance(v, str):
            raise self.err(f"{where}.{key}", f"expected a string, got {tname(v)}")
        return v

    def strs(self, d: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        out = []
        for i, x in enumerate(self.lst(d.get(key), f"{where}.{key}")):
            if not isinstance(x, str):
                raise self.err(f"{where}.{key}[{i}]", f"expected a string, got {tname(x)}")
            out.append(x)
        return tuple(out)

    def b(self, d: dict[str, Any], key: str, where: str) -> bool | None:
        v = d.get(key)
        if v is not None and not isinstance(v, bool):
            raise self.err(f"{where}.{key}", f"expected a boolean, got {tname(v)}")
        return v

    def status(self, d: dict[str, Any], key: str, where: str, required: bool = True) -> str:
        v = self.s(d, key, where, required)
        if v and v not in ("ENABLED", "DISABLED"):
            raise self.err(f"{where}.{key}", f"expected ENABLED or DISABLED, got {v!r}")
        return v

    def arn(self, d: dict[str, Any], key: str, where: str, required: bool = True) -> str:
        v = self.s(d, key, where, required)
        if v:
            try:
                parse_arn(v)
            except ArnError as e:
                raise self.err(f"{where}.{key}", str(e)) from None
        return v


def tname(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number"
    )


def read_date(r: Reader, d: dict[str, Any], key: str, where: str, required: bool = True) -> dt.date | None:
    """An AWS timestamp ("2025-11-25T16:00:00-08:00") or date as the UTC calendar day."""
    v = d.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str):
        raise r.err(f"{where}.{key}", f"expected a date, got {tname(v)}")
    try:
        t = dt.datetime.fromisoformat(v)
    except ValueError:
        raise r.err(f"{where}.{key}", f"not an ISO 8601 date: {v!r}") from None
    return (t.astimezone(dt.UTC) if t.tzinfo else t).date()
