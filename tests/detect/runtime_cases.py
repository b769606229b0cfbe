"""Loading the runtime rule cases (tests/detect/data/runtime/cases.yaml) into events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data" / "runtime"


def base_event(ref: str) -> dict[str, Any]:
    name, _, line = ref.partition(":")
    lines = [x for x in (DATA / name).read_text(encoding="utf-8").splitlines() if x.strip()]
    return json.loads(lines[int(line or 1) - 1])


def _set(obj: Any, path: str, value: Any) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        obj = obj[int(k)] if isinstance(obj, list) else obj.setdefault(k, {})
    last = keys[-1]
    if isinstance(obj, list):
        obj[int(last)] = value
    elif value is None:
        obj.pop(last, None)
    else:
        obj[last] = value


def build(step: dict[str, Any]) -> dict[str, Any]:
    ev = copy.deepcopy(base_event(step["base"]))
    for path, value in (step.get("set") or {}).items():
        _set(ev, path, value)
    for k, v in (step.get("alert") or {}).items():
        ev[k] = v
    for k, v in (step.get("fields") or {}).items():
        ev.setdefault("output_fields", {})[k] = v
    return ev


def cases() -> list[dict[str, Any]]:
    return yaml.safe_load((DATA / "cases.yaml").read_text(encoding="utf-8"))
