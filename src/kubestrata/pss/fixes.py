"""One coherent patch per object: apply the violations' minimal fixes one at a time, re-evaluating
after each (two fixes may create the same securityContext), then diff the result against the input.

Each Violation's own ``fix`` is valid applied alone; ``remediate`` gives the patch for all of them
together, the violations left without a safe automatic fix, and the notes to review (for example
that runAsNonRoot may need an image that runs as a non-root user).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import jsonpatch

from kubestrata.findings import pointer_token
from kubestrata.pss.api import LevelVersion
from kubestrata.pss.checks import Violation
from kubestrata.pss.evaluate import evaluate_pod

MAX_ROUNDS = 128


@dataclass
class Remediation:
    patch: list[dict[str, Any]]
    fixed: dict[str, Any]
    unfixed: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.unfixed

    def to_dict(self) -> dict[str, Any]:
        return {
            "patch": self.patch,
            "notes": self.notes,
            "unfixed": [v.to_dict() for v in self.unfixed],
        }


def remediate(raw: dict[str, Any], lv: LevelVersion) -> Remediation:
    work = copy.deepcopy(raw)
    notes: list[str] = []
    unfixed: list[Violation] = []
    for _ in range(MAX_ROUNDS):
        r = evaluate_pod(work, lv.level, lv.version)
        if r.allowed or r.error is not None:
            unfixed = []
            break
        fixable = [v for v in r.violations if v.fix]
        unfixed = [v for v in r.violations if not v.fix]
        if not fixable:
            break
        v = fixable[0]
        try:
            jsonpatch.apply_patch(work, v.fix, in_place=True)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):  # pragma: no cover
            unfixed.append(v)
            break
        if v.fix_note:
            note = f"{v.check}: {v.fix_note}"
            if note not in notes:
                notes.append(note)
    return Remediation(diff(raw, work), work, unfixed, notes)


def diff(old: Any, new: Any, pointer: str = "") -> list[dict[str, Any]]:
    """A JSON patch from old to new, in document order (jsonpatch.make_patch's order depends on
    hash seeds, and a reviewed patch should read the same on every run). Lists whose length
    changed are replaced whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[dict[str, Any]] = []
        for k, v in old.items():
            p = f"{pointer}/{pointer_token(str(k))}"
            if k not in new:
                ops.append({"op": "remove", "path": p})
            else:
                ops.extend(diff(v, new[k], p))
        for k, v in new.items():
            if k not in old:
                ops.append({"op": "add", "path": f"{pointer}/{pointer_token(str(k))}", "value": v})
        return ops
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            op for i, (a, b) in enumerate(zip(old, new, strict=True)) for op in diff(a, b, f"{pointer}/{i}")
        ]
    if type(old) is type(new) and old == new:
        return []
    return [{"op": "replace", "path": pointer, "value": new}]
