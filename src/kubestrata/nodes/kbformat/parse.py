"""A kube-bench check file (YAML) as the model; errors name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubestrata.errors import InputError
from kubestrata.nodes.kbformat.model import BenchCheck, Controls, Group, TestItem, Tests


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


def parse_check(doc: Any, where: str, file: str) -> BenchCheck:
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
    return BenchCheck(
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
