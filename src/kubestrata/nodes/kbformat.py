"""An interpreter of kube-bench's check-file format (controls / groups / checks / tests).

Semantics follow kube-bench's documentation (docs/controls.md) and behaviour (check/check.go,
check/test.go, aquasecurity/kube-bench, 2026-06), re-implemented here:

* a check runs ``audit_env``, ``audit`` and ``audit_config``; each test item looks for its ``flag`` in
  the audit output first, then for its ``path`` (a Kubernetes JSONPath) in the ``audit_config``
  output (JSON, else YAML), then for its ``env`` in the ``audit_env`` output: the first source that
  has the keyword decides (so command-line flags take precedence over the config file);
* ``set`` (default true): the keyword must be present, and then ``compare`` applies; ``set: false``:
  the keyword must be absent (compare ignored);
* compare ops eq, noteq (booleans case-insensitive), gt/gte/lt/lte (integers), has, nothave, regex,
  valid_elements (comma-separated subset), bitmask (octal permissions no wider than the value);
* ``bin_op`` and (default) / or across test items; ``use_multiple_values``: every output line must pass;
* ``type: skip`` -> INFO, ``type: manual`` -> WARN; a failing unscored check is WARN, not FAIL.

The engine is pure: audit commands are run by an *auditor* given by the caller (a shell for user
check files, native readers of /proc and the file system for kubestrata's built-in benchmark).
"""

from __future__ import annotations

import decimal
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubestrata.errors import InputError

PASS, FAIL, WARN, INFO = "PASS", "FAIL", "WARN", "INFO"
COMPARE_OPS = (
    "eq",
    "noteq",
    "gt",
    "gte",
    "lt",
    "lte",
    "has",
    "nothave",
    "regex",
    "valid_elements",
    "bitmask",
)


# --- the model --------------------------------------------------------------------------------------
@dataclass(slots=True)
class TestItem:
    flag: str = ""
    path: str = ""
    env: str = ""
    set: bool = True
    op: str = ""
    value: str = ""


@dataclass(slots=True)
class Tests:
    items: list[TestItem]
    bin_op: str = ""


@dataclass(slots=True)
class Check:
    id: str
    text: str = ""
    audit: str = ""
    audit_config: str = ""
    audit_env: str = ""
    type: str = ""
    tests: Tests | None = None
    remediation: str = ""
    scored: bool = False
    use_multiple_values: bool = False
    disable_env_testing: bool = False
    # kubestrata's built-in checks: what the native auditor reads instead of running a command
    native: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Group:
    id: str
    text: str = ""
    type: str = ""
    checks: list[Check] = field(default_factory=list)


@dataclass(slots=True)
class Controls:
    id: str
    version: str = ""
    text: str = ""
    type: str = ""
    groups: list[Group] = field(default_factory=list)
    detected_version: str = ""


# --- parsing a check file ---------------------------------------------------------------------------
def go_string(value: Any) -> str:
    """A YAML scalar as Go's yaml.v2 decodes it into a string field (``false`` -> "false")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bool(value: Any, where: str, file: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InputError(f"expected true or false, got {value!r}", file=file, field=where)


def _str(value: Any, where: str, file: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise InputError(f"expected a string, got a {type(value).__name__}", file=file, field=where)
    return go_string(value)


def _mapping(value: Any, where: str, file: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"expected a mapping, got {type(value).__name__}", file=file, field=where)
    return value


def _list(value: Any, where: str, file: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"expected a list, got {type(value).__name__}", file=file, field=where)
    return value


def parse_check(doc: Any, where: str, file: str) -> Check:
    d = _mapping(doc, where, file)
    if "id" not in d:
        raise InputError("a check has no id", file=file, field=where)
    tests = None
    if d.get("tests") is not None:
        t = _mapping(d["tests"], f"{where}.tests", file)
        items = []
        for i, raw in enumerate(_list(t.get("test_items"), f"{where}.tests.test_items", file)):
            w = f"{where}.tests.test_items[{i}]"
            it = _mapping(raw, w, file)
            cmp = _mapping(it.get("compare"), f"{w}.compare", file)
            items.append(
                TestItem(
                    flag=_str(it.get("flag"), f"{w}.flag", file),
                    path=_str(it.get("path"), f"{w}.path", file),
                    env=_str(it.get("env"), f"{w}.env", file),
                    set=_bool(it.get("set", True), f"{w}.set", file),
                    op=_str(cmp.get("op"), f"{w}.compare.op", file),
                    value=_str(cmp.get("value"), f"{w}.compare.value", file),
                )
            )
        tests = Tests(items, _str(t.get("bin_op"), f"{where}.tests.bin_op", file))
    return Check(
        id=_str(d["id"], f"{where}.id", file),
        text=_str(d.get("text"), f"{where}.text", file),
        audit=_str(d.get("audit"), f"{where}.audit", file),
        audit_config=_str(d.get("audit_config"), f"{where}.audit_config", file),
        audit_env=_str(d.get("audit_env"), f"{where}.audit_env", file),
        type=_str(d.get("type"), f"{where}.type", file),
        tests=tests,
        remediation=_str(d.get("remediation"), f"{where}.remediation", file),
        scored=_bool(d.get("scored", False), f"{where}.scored", file),
        use_multiple_values=_bool(d.get("use_multiple_values", False), f"{where}.use_multiple_values", file),
        disable_env_testing=_bool(
            d.get("disableEnvTesting", d.get("disableenvtesting", False)), f"{where}.disableEnvTesting", file
        ),
    )


def parse_controls(doc: Any, file: str = "<controls>") -> Controls:
    """A kube-bench controls document (one YAML file) as Controls; InputError names file and field."""
    d = _mapping(doc, "(document)", file)
    groups = []
    for gi, graw in enumerate(_list(d.get("groups"), "groups", file)):
        g = _mapping(graw, f"groups[{gi}]", file)
        checks = [
            parse_check(c, f"groups[{gi}].checks[{ci}]", file)
            for ci, c in enumerate(_list(g.get("checks"), f"groups[{gi}].checks", file))
        ]
        groups.append(
            Group(
                id=_str(g.get("id"), f"groups[{gi}].id", file),
                text=_str(g.get("text"), f"groups[{gi}].text", file),
                type=_str(g.get("type"), f"groups[{gi}].type", file),
                checks=checks,
            )
        )
    return Controls(
        id=_str(d.get("id"), "id", file),
        version=_str(d.get("version"), "version", file),
        text=_str(d.get("text"), "text", file),
        type=_str(d.get("type"), "type", file),
        groups=groups,
    )


def generate_default_env_audit(controls: Controls, binary: str) -> None:
    """kube-bench cmd/common.go generateDefaultEnvAudit: a check with an ``env`` test item and no
    ``audit_env`` reads the environment of the process named ``binary``."""
    for g in controls.groups:
        for c in g.checks:
            if c.tests is None or c.disable_env_testing or c.audit_env:
                continue
            if any(t.env for t in c.tests.items):
                c.audit_env = (
                    f"cat \"/proc/$(/bin/ps -C {binary} -o pid= | tr -d ' ')/environ\" | tr '\\0' '\\n'"
                )


def load_controls_file(path: Path) -> Controls:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", file=str(path)) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InputError(f"not YAML: {' '.join(str(e).split())}", file=str(path)) from None
    return parse_controls(doc, str(path))


# --- Go-compatible text of values (client-go jsonpath prints with fmt's %v) ---------------------------
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


# --- evaluating test items ------------------------------------------------------------------------
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


# --- running checks ---------------------------------------------------------------------------------
@dataclass(slots=True)
class AuditRun:
    """What one audit command produced: its output, and an error (the command failed) if any.
    ``not_found``: the command or file did not exist (kube-bench tolerates that for audit_config)."""

    output: str = ""
    error: str | None = None
    not_found: bool = False


# An auditor runs one of a check's audit commands: (check, "audit" | "audit_config" | "audit_env").
Auditor = Callable[[Check, str], AuditRun]


@dataclass(slots=True)
class CheckResult:
    check: Check
    state: str
    actual_value: str = ""
    expected_result: str = ""
    reason: str = ""
    used: list[str] = field(default_factory=list)  # per test item: flag, path or env
    audit: str = ""  # the command as shown (variables substituted)
    audit_config: str = ""
    audit_env: str = ""
    remediation: str = ""

    def to_kube_bench(self) -> dict[str, Any]:
        c = self.check
        d: dict[str, Any] = {
            "test_number": c.id,
            "test_desc": c.text,
            "audit": self.audit or c.audit,
            "AuditEnv": self.audit_env or c.audit_env,
            "AuditConfig": self.audit_config or c.audit_config,
            "type": c.type,
            "remediation": self.remediation or c.remediation,
            "test_info": [self.remediation or c.remediation],
            "status": self.state,
            "actual_value": self.actual_value,
            "scored": c.scored,
            "IsMultiple": c.use_multiple_values,
            "expected_result": self.expected_result,
        }
        if self.reason:
            d["reason"] = self.reason
        return d


def run_check(check: Check, auditor: Auditor, skip: bool = False) -> CheckResult:
    """kube-bench's Check.run over outputs the auditor supplies."""
    fail_state = FAIL if check.scored else WARN
    if skip or check.type == "skip":
        return CheckResult(check, INFO, reason="Test marked as skip")
    if check.scored and not check.type.strip() and check.tests is None:
        return CheckResult(check, WARN, reason="There are no tests")
    if check.type == "manual":
        return CheckResult(check, WARN, reason="Test marked as a manual test")
    if check.tests is None or not check.tests.items:
        return CheckResult(check, fail_state, reason="No tests defined")

    res = CheckResult(check, fail_state)
    env = AuditRun()
    if check.audit_env.strip():
        env = auditor(check, "audit_env")
        if env.error:
            res.reason = env.error
            return res
    cmd = auditor(check, "audit") if check.audit.strip() or check.native.get("audit") else AuditRun()
    if cmd.error:
        res.reason = cmd.error
        return res
    cfg = AuditRun()
    if check.audit_config.strip() or check.native.get("audit_config"):
        cfg = auditor(check, "audit_config")
        if cfg.error:
            if cfg.not_found and (env.output or cmd.output):
                cfg = AuditRun()
            else:
                res.reason = cfg.error
                return res

    out = execute(check, cmd.output, cfg.output, env.output)
    res.used = out.used
    res.expected_result = out.expected
    res.actual_value = out.actual
    if out.error:
        res.reason = out.error
        return res
    res.state = PASS if out.passed else fail_state
    return res


@dataclass(slots=True)
class Executed:
    passed: bool
    expected: str = ""
    actual: str = ""
    used: list[str] = field(default_factory=list)
    error: str = ""


def execute(check: Check, audit_out: str, config_out: str, env_out: str) -> Executed:
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


@dataclass(slots=True)
class GroupResult:
    group: Group
    results: list[CheckResult]

    def count(self, state: str) -> int:
        return sum(1 for r in self.results if r.state == state)


@dataclass(slots=True)
class ControlsResult:
    controls: Controls
    groups: list[GroupResult]

    def count(self, state: str) -> int:
        return sum(g.count(state) for g in self.groups)

    def to_kube_bench(self) -> dict[str, Any]:
        c = self.controls
        d: dict[str, Any] = {"id": c.id, "version": c.version}
        if c.detected_version:
            d["detected_version"] = c.detected_version
        d.update(
            {
                "text": c.text,
                "node_type": c.type,
                "tests": [
                    {
                        "section": g.group.id,
                        "type": g.group.type,
                        "pass": g.count(PASS),
                        "fail": g.count(FAIL),
                        "warn": g.count(WARN),
                        "info": g.count(INFO),
                        "desc": g.group.text,
                        "results": [r.to_kube_bench() for r in g.results],
                    }
                    for g in self.groups
                ],
                "total_pass": self.count(PASS),
                "total_fail": self.count(FAIL),
                "total_warn": self.count(WARN),
                "total_info": self.count(INFO),
            }
        )
        return d


def run_controls(
    controls: Controls,
    auditor: Auditor,
    skip: frozenset[str] = frozenset(),
    only: frozenset[str] = frozenset(),
) -> ControlsResult:
    groups = []
    for g in controls.groups:
        results = [
            run_check(c, auditor, skip=g.type == "skip" or g.id in skip or c.id in skip)
            for c in g.checks
            if not only or c.id in only or g.id in only
        ]
        if results:
            groups.append(GroupResult(g, results))
    return ControlsResult(controls, groups)


def kube_bench_json(results: list[ControlsResult]) -> dict[str, Any]:
    """kube-bench's ``--json`` document (OverallControls: Controls and Totals)."""
    return {
        "Controls": [r.to_kube_bench() for r in results],
        "Totals": {
            "total_pass": sum(r.count(PASS) for r in results),
            "total_fail": sum(r.count(FAIL) for r in results),
            "total_warn": sum(r.count(WARN) for r in results),
            "total_info": sum(r.count(INFO) for r in results),
        },
    }
