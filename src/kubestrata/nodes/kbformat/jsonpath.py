"""Go-compatible text of values (client-go jsonpath prints with fmt's %v) and the subset of client-go
JSONPath templates kube-bench's ``path`` test items use."""

from __future__ import annotations

import decimal
import json
import re
from typing import Any

import yaml


def go_float(f: float) -> str:
    """``fmt.Sprint(float64)`` (strconv 'g', shortest): exponent form when the exponent is < -4 or >= 6."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign, digits, exp = decimal.Decimal(repr(f)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    nd = len(ds)
    dp = len(digits) + int(exp)  # digits before the decimal point
    x = dp - 1
    neg = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = ds[0] + ("." + ds[1:] if nd > 1 else "")
        return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{ds}"
    if dp >= nd:
        return f"{neg}{ds}{'0' * (dp - nd)}"
    return f"{neg}{ds[:dp]}.{ds[dp:]}"


def go_text(value: Any, floats: bool) -> str:
    """A decoded JSON/YAML value as Go prints it (``floats``: numbers came from encoding/json)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return go_float(float(value)) if floats else str(value)
    if isinstance(value, float):
        return go_float(value)
    if value is None:
        return "<nil>"
    if isinstance(value, list):
        return "[" + " ".join(go_text(v, floats) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_text(value[k], floats)}" for k in sorted(value, key=str)) + "]"
    return str(value)


_SEGMENT = re.compile(
    r"\.\.?([A-Za-z0-9_\-$@/\\]+(?:\\\.[A-Za-z0-9_\-]+)*)|\[(\*|-?\d+|'[^']*'|\"[^\"]*\")\]|\."
)


def _eval_path(expr: str, doc: Any) -> list[Any]:
    """The values a JSONPath expression (inside braces) selects; missing keys select nothing."""
    expr = expr.strip()
    if expr in ("", "."):
        return [doc]
    if expr.startswith("$"):
        expr = expr[1:]
    current = [doc]
    pos = 0
    while pos < len(expr):
        m = _SEGMENT.match(expr, pos)
        if not m or m.end() == pos:
            raise ValueError(f"unrecognized character in path expression at {expr[pos:]!r}")
        pos = m.end()
        name, index = m.group(1), m.group(2)
        nxt: list[Any] = []
        if name is not None:
            key = name.replace("\\.", ".")
            for c in current:
                if isinstance(c, dict) and key in c:
                    nxt.append(c[key])
        elif index is not None:
            for c in current:
                if index == "*":
                    if isinstance(c, list):
                        nxt.extend(c)
                    elif isinstance(c, dict):
                        nxt.extend(c[k] for k in sorted(c, key=str))
                elif index[0] in "'\"":
                    if isinstance(c, dict) and index[1:-1] in c:
                        nxt.append(c[index[1:-1]])
                elif isinstance(c, list):
                    i = int(index)
                    if -len(c) <= i < len(c):
                        nxt.append(c[i])
        else:  # a lone "." between segments
            nxt = current
        current = nxt
    return current


def jsonpath_text(template: str, doc: Any, floats: bool) -> str:
    """kube-bench's executeJSONPath: a client-go JSONPath template (``{.a.b}``, text outside braces
    printed as is) over a decoded document, missing keys allowed (they print nothing)."""
    out: list[str] = []
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            out.append(template[pos:])
            break
        out.append(template[pos:start])
        end = template.find("}", start)
        if end < 0:
            raise ValueError(f"unclosed action in {template!r}")
        values = _eval_path(template[start + 1 : end], doc)
        out.append(" ".join(go_text(v, floats) for v in values))
        pos = end + 1
    return "".join(out)


def decode_config(text: str) -> tuple[Any, bool]:
    """kube-bench's unmarshal: JSON first, YAML if that fails. Returns (document, numbers are floats)."""
    try:
        return json.loads(text), True
    except ValueError:
        pass
    try:
        return yaml.safe_load(text), False
    except yaml.YAMLError as e:
        raise ValueError(" ".join(str(e).split())) from None
