"""Test items over audit output (kube-bench check/test.go) and a check's items combined by its
``bin_op`` (check/check.go execute)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kubestrata.nodes.kbformat.jsonpath import decode_config, jsonpath_text
from kubestrata.nodes.kbformat.model import BenchCheck, TestItem


@dataclass(slots=True)
class ItemResult:
    passed: bool
    found: bool
    actual: str
    expected: str


def _find_flag(flag: str, s: str) -> tuple[bool, str]:
    if not s or not flag or flag not in s:
        return False, ""
    try:
        m = re.search("(" + flag + r")(=|: *)*([^\s]*) *", s)
    except re.error as e:
        raise ValueError(f"invalid flag in testItem definition: {flag} ({e})") from None
    if not m:
        raise ValueError(f"invalid flag in testItem definition: {s}")
    if m.group(3):
        return True, m.group(3)
    return True, "true" if flag.startswith("--") else m.group(1)


def _find_env(env: str, s: str) -> tuple[bool, str]:
    if not s or not env:
        return False, ""
    m = re.search(re.escape(env) + r"=.*(?:$|\n)", s)
    out = m.group(0) if m else ""
    out = out.replace("\n", "", 1).replace(f"{env}=", "", 1)
    return (True, out) if out else (False, "")


def _find_path(path: str, s: str) -> tuple[bool, str]:
    try:
        doc, floats = decode_config(s)
    except ValueError as e:
        raise ValueError(f'failed to load YAML or JSON from input "{s[:200]}": {e}') from None
    try:
        value = jsonpath_text(path, doc, floats)
    except ValueError as e:
        raise ValueError(f'unable to parse path expression "{path}": {e}') from None
    return value != "", value


def _split(s: str) -> list[str]:
    clean = s.strip().rstrip(",")
    return [p.strip() for p in clean.split(",")] if clean else []


def compare(op: str, actual: str, want: str, name: str) -> tuple[str, bool]:
    """kube-bench's compareOp: (expected-result text, passed)."""
    ok = False
    pattern = ""
    if op in ("eq", "noteq"):
        low = actual.lower()
        same = (low == want) if low in ("true", "false") else (actual == want)
        ok = same if op == "eq" else not same
        pattern = "'%s' is equal to '%s'" if op == "eq" else "'%s' is not equal to '%s'"
    elif op in ("gt", "gte", "lt", "lte"):
        try:
            a, b = int(actual.strip()), int(want.strip())
        except ValueError:
            return f"Invalid Number(s) used for comparison: '{actual}' '{want}'", False
        ok = {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
        pattern = {
            "gt": "'%s' is greater than %s",
            "gte": "'%s' is greater or equal to %s",
            "lt": "'%s' is lower than %s",
            "lte": "'%s' is lower or equal to %s",
        }[op]
    elif op == "has":
        ok, pattern = want in actual, "'%s' has '%s'"
    elif op == "nothave":
        ok, pattern = want not in actual, "'%s' does not have '%s'"
    elif op == "regex":
        try:
            ok = re.search(want, actual) is not None
        except re.error as e:
            return f"invalid regular expression '{want}': {e}", False
        pattern = "'%s' matched by regex expression '%s'"
    elif op == "valid_elements":
        have, allowed = _split(actual), _split(want)
        if not have and not allowed:
            ok = True
        elif not have or not allowed:
            ok = False
        else:
            ok = all(h in allowed for h in have)
        pattern = "'%s' contains valid elements from '%s'"
    elif op == "bitmask":
        try:
            requested = int(actual, 8)
        except ValueError:
            return f"Not numeric value - flag: {actual}", False
        try:
            maximum = int(want, 8)
        except ValueError:
            return f"Not numeric value - flag: {want}", False
        ok = (maximum & requested) == requested
        pattern = "%s has permissions " + actual.replace("%", "%%") + ", expected %s or more restrictive"
    else:
        return "", False
    return pattern % (name, want), ok


def evaluate_item(item: TestItem, source: str, s: str, multiple: bool = False) -> ItemResult:
    """One test item against one audit output; ``source`` is "flag", "path" or "env"."""
    s = s.rstrip(" \n")
    lines = s.split("\n") if multiple else [s]
    result = ItemResult(False, False, s, "")
    for line in lines:
        result = _evaluate_line(item, source, line)
        if not result.passed:
            break
    result.actual = s
    return result


def _evaluate_line(item: TestItem, source: str, s: str) -> ItemResult:
    name = {"flag": item.flag, "path": item.path, "env": item.env}[source]
    try:
        if source == "flag":
            found, value = _find_flag(item.flag, s)
        elif source == "path":
            found, value = _find_path(item.path, s)
        else:
            found, value = _find_env(item.env, s)
    except ValueError as e:
        return ItemResult(False, False, str(e), "")
    if item.set:
        if found and item.op:
            expected, ok = compare(item.op, value, item.value, name)
        else:
            expected, ok = f"'{name}' is present", found
    else:
        expected, ok = f"'{name}' is not present", not found
    return ItemResult(ok, found, s, expected)


@dataclass(slots=True)
class Executed:
    passed: bool
    expected: str = ""
    actual: str = ""
    used: list[str] = field(default_factory=list)
    error: str = ""


def execute(check: BenchCheck, audit_out: str, config_out: str, env_out: str) -> Executed:
    """kube-bench's Check.execute: every test item over the three outputs, combined by bin_op."""
    assert check.tests is not None
    has_config = bool(check.audit_config or check.native.get("audit_config"))
    results: list[ItemResult] = []
    used_list: list[str] = []
    for item in check.tests.items:
        r = evaluate_item(item, "flag", audit_out, check.use_multiple_values)
        used = "flag"
        if not r.found and has_config and config_out:
            r = evaluate_item(item, "path", config_out, check.use_multiple_values)
            used = "path"
            if not r.found and item.env:
                r = evaluate_item(item, "env", env_out, check.use_multiple_values)
                used = "env"
        if not r.found and item.env:
            r = evaluate_item(item, "env", env_out, check.use_multiple_values)
            used = "env"
        results.append(r)
        used_list.append(used)
    op = check.tests.bin_op
    if op in ("", "and"):
        ok = all(r.passed for r in results)
        expected = " AND ".join(r.expected for r in results)
    elif op == "or":
        ok = any(r.passed for r in results)
        expected = " OR ".join(r.expected for r in results)
    else:
        return Executed(
            False,
            actual=f"unknown binary operator for tests {op}\n",
            used=used_list,
            error=f"unknown binary operator for tests {op}",
        )
    return Executed(ok, expected, results[0].actual if results else "", used_list)
