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
    return Remediation(jsonpatch.make_patch(raw, work).patch, work, unfixed, notes)
