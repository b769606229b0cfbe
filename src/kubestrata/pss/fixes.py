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

from kubestrata.errors import InputError
from kubestrata.findings import pointer_token
from kubestrata.pss.api import LevelVersion
from kubestrata.pss.checks import Violation
from kubestrata.pss.evaluate import pod_view
from kubestrata.pss.registry import Compiled, PSSResult, checks_for, run_checks
from kubestrata.pss.view import PodView

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


class _PatchError(Exception):
    pass


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _list_index(node: list[Any], token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(node)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise _PatchError(token)
    i = int(token)
    if i > len(node) or (i == len(node) and not allow_end):
        raise _PatchError(token)
    return i


def _apply(root: dict[str, Any], patch: list[dict[str, Any]], owned: set[int]) -> None:
    """RFC 6902 add / replace / remove, in place, copying on write: a container is copied the first
    time a patch goes through it (``owned`` holds the ids of the copies), so the input object is
    never touched and the parts no fix reaches stay shared with it."""
    for op in patch:
        kind, path = op.get("op"), op.get("path")
        if kind not in ("add", "replace", "remove") or not isinstance(path, str) or not path.startswith("/"):
            raise _PatchError(str(op))
        tokens = path[1:].split("/")
        if "~" in path:
            tokens = [_unescape(t) for t in tokens]
        node: Any = root
        for t in tokens[:-1]:
            if isinstance(node, dict):
                if t not in node:
                    raise _PatchError(path)
                key: Any = t
            elif isinstance(node, list):
                key = _list_index(node, t, False)
            else:
                raise _PatchError(path)
            child = node[key]
            if id(child) not in owned:
                if isinstance(child, dict):
                    child = dict(child)
                elif isinstance(child, list):
                    child = list(child)
                else:
                    raise _PatchError(path)
                node[key] = child
                owned.add(id(child))
            node = child
        last = tokens[-1]
        value = _copy(op.get("value"))
        if isinstance(node, dict):
            if kind == "add":
                node[last] = value
            elif last not in node:
                raise _PatchError(path)
            elif kind == "replace":
                node[last] = value
            else:
                del node[last]
        elif isinstance(node, list):
            i = _list_index(node, last, kind == "add")
            if kind == "add":
                node.insert(i, value)
            elif kind == "replace":
                node[i] = value
            else:
                del node[i]
        else:
            raise _PatchError(path)


_SCALARS = (str, bool, int, float, type(None))


def _copy(value: Any) -> Any:
    """A deep copy of JSON data (a fix's value), without copy.deepcopy's memo and dispatch."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is dict:
        return {k: _copy(v) for k, v in value.items()}
    if t is list:
        return [_copy(v) for v in value]
    return copy.deepcopy(value)


# Checks whose fixes write only their own field (creating the securityContext that holds it when
# missing), which no check before them in any level-version's table reads: the others read other keys
# of that securityContext, absent before and after. So once a round applies one of their fixes, the
# checks before it answer as they did that round (nothing fixable) and the next round starts at it.
# (Before them: the baseline checks, which read host fields, ports, probes, privileged, SELinux,
# AppArmor, sysctls and hostProcess; and the restricted checks listed earlier in this set.) The last
# round always runs every check; tests/pss/test_fixes.py compares with remediate(resume=False).
RESUMABLE = frozenset(
    {
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "procMount_restricted",
        "runAsNonRoot",
        "runAsUser",
        "seccompProfile_restricted",
    }
)


def remediate(
    raw: dict[str, Any], lv: LevelVersion, first: PSSResult | None = None, *, resume: bool = True
) -> Remediation:
    """Fix ``raw`` one violation at a time: each round applies the first violation with a fix (in
    PSSResult.violations order) and evaluates again, until the pod passes or nothing fixable is
    left. ``first``: an evaluation of ``raw`` at ``lv`` the caller already has (the first round
    starts from it instead of evaluating again). ``resume``: after a fix of a RESUMABLE check, the
    next round starts at that check (False: every round runs every check; the same result)."""
    work = dict(raw)  # copied on write by _apply: the input is never modified
    owned = {id(work)}
    notes: list[str] = []
    unfixed: list[Violation] = []
    rules = checks_for(lv.level, lv.version)
    last: PSSResult | None = None  # the whole evaluation at the start of the round, when made
    start = 0  # the rule the round starts at (see RESUMABLE)
    for n in range(MAX_ROUNDS):
        if n == 0 and first is not None:
            if first.allowed or first.error is not None:
                break
            v = _first_fixable(first)
            if v is None:
                unfixed = [u for u in first.violations if not u.fix]
                break
            last = first
            at = next((i for i, (cid, _rule) in enumerate(rules) if cid == v.check), 0)
        else:
            try:
                # from the second round on, the object differs from one already decoded only by fix
                # values, which have the types the checks read: no need to check every field again
                view = pod_view(work, typed=n > 0)
            except InputError:
                break
            # a round applies only the first fixable violation: the checks after it are neither run
            # nor worded (the next round evaluates again); the round that finds none has run them all
            v, explained, at = _find_fixable(view, rules, start)
            if v is None and start:
                # the last round runs the checks it skipped too: their violations are the unfixed ones
                v, explained, at = _find_fixable(view, rules)
                if v is not None:  # pragma: no cover - a skipped check has a fix: not RESUMABLE after all
                    return remediate(raw, lv, first, resume=False)
            if v is None:
                unfixed = [u for vs in explained for u in vs if not u.fix]
                break
            last = None
            if n == MAX_ROUNDS - 1:
                last = run_checks(view, lv)
                last.violations  # noqa: B018 - explained before this round's fix changes the view
        try:
            _apply(work, v.fix or [], owned)
        except _PatchError:  # pragma: no cover - the checks' fixes are valid on the object they saw
            unfixed = [u for u in (last or run_checks(view, lv)).violations if not u.fix] + [v]
            break
        if v.fix_note:
            note = f"{v.check}: {v.fix_note}"
            if note not in notes:
                notes.append(note)
        start = at if resume and v.check in RESUMABLE else 0
    else:  # MAX_ROUNDS without converging: what the last round left without a fix
        unfixed = [u for u in last.violations if not u.fix] if last is not None else []
    return Remediation(diff(raw, work), work, unfixed, notes)


def _find_fixable(
    view: PodView, rules: Compiled, start: int = 0
) -> tuple[Violation | None, list[list[Violation]], int]:
    """The first violation with a fix and the index of its rule, finding and explaining the checks
    in order (from rules[start]) only up to it; with none, every failing check's violations ([]
    when the pod passes)."""
    explained: list[list[Violation]] = []
    for i in range(start, len(rules)):
        rule = rules[i][1]
        found = rule.find(view)
        if found is None:
            continue
        vs = rule.explain(view, found)
        explained.append(vs)
        for v in vs:
            if v.fix:
                return v, explained, i
    return None, explained, 0


def _first_fixable(r: PSSResult) -> Violation | None:
    """The first violation with a fix, in PSSResult.violations order, without explaining the checks
    after it: a round applies only that one."""
    if "violations" in r.__dict__:  # already computed
        return next((v for v in r.violations if v.fix), None)
    for vs in r.explained():
        for v in vs:
            if v.fix:
                return v
    return None


def diff(old: Any, new: Any, pointer: str = "") -> list[dict[str, Any]]:
    """A JSON patch from old to new, in document order (jsonpatch.make_patch's order depends on
    hash seeds, and a reviewed patch should read the same on every run). Lists whose length
    changed are replaced whole."""
    if old is new:  # a part no fix reached (shared with the input)
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[dict[str, Any]] = []
        for k, v in old.items():
            if k not in new:
                ops.append({"op": "remove", "path": f"{pointer}/{pointer_token(str(k))}"})
            elif new[k] is not v:  # the same object: nothing changed below (no pointer to build)
                ops.extend(diff(v, new[k], f"{pointer}/{pointer_token(str(k))}"))
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
