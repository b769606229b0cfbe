"""Lints over a parsed policy set (PolicyInfo with its EST), beyond what schema validation catches.

``principal-type-gap``: a forbid limited to some principal types (``principal is k8s::User in
k8s::Group::"devs"``) while a permit it overlaps with (same kind of action, overlapping actions and
resource types) admits more types: a ServiceAccount or Node in the same group is permitted and never
meets the forbid. At admission every request is permitted by default, so an admission forbid is
checked against all three principal types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRINCIPAL_TYPES = frozenset({"k8s::User", "k8s::ServiceAccount", "k8s::Node"})
ADMISSION_ACTION = "k8s::admission::Action"


@dataclass(frozen=True)
class Lint:
    code: str
    policy: str
    message: str

    def __str__(self) -> str:
        return f"warning {self.code}: {self.policy}: {self.message}"


def principal_types(est: dict[str, Any]) -> frozenset[str]:
    p = est.get("principal") or {}
    op = p.get("op")
    if op == "is":
        return frozenset({p["entity_type"]}) & PRINCIPAL_TYPES
    if op == "==":
        return frozenset({p["entity"]["type"]}) & PRINCIPAL_TYPES
    if op == "in":
        t = (p.get("entity") or {}).get("type")
        return PRINCIPAL_TYPES if t == "k8s::Group" else PRINCIPAL_TYPES & {t}
    return PRINCIPAL_TYPES  # All (or a slot)


def _actions(est: dict[str, Any]) -> tuple[bool, frozenset[str] | None]:
    """(is admission, action ids or None for all)."""
    a = est.get("action") or {}
    if a.get("op") == "All":
        return False, None
    ents = [a["entity"]] if "entity" in a else list(a.get("entities", []))
    adm = any(e.get("type") == ADMISSION_ACTION for e in ents)
    ids = frozenset(e.get("id", "") for e in ents)
    return adm, (None if adm and "all" in ids else ids)


def _resource_type(est: dict[str, Any]) -> str | None:
    r = est.get("resource") or {}
    return r.get("entity_type") or (r.get("entity") or {}).get("type")


def _overlap(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    return a is None or b is None or bool(a & b)


def lint_policies(policies: list[Any]) -> list[Lint]:
    """``policies``: PolicyInfo objects (id, effect, est)."""
    out: list[Lint] = []
    permits = [p for p in policies if p.effect == "permit"]
    for f in policies:
        if f.effect != "forbid":
            continue
        ftypes = principal_types(f.est)
        if ftypes == PRINCIPAL_TYPES:
            continue
        f_adm, f_acts = _actions(f.est)
        f_res = _resource_type(f.est)
        if f_adm:
            wider = {"admission (allow by default)": PRINCIPAL_TYPES}
        else:
            wider = {}
            for p in permits:
                p_adm, p_acts = _actions(p.est)
                p_res = _resource_type(p.est)
                if p_adm or not _overlap(f_acts, p_acts):
                    continue
                if f_res and p_res and f_res != p_res:
                    continue
                if principal_types(p.est) - ftypes:
                    wider[p.id] = principal_types(p.est)
        for pid, ptypes in wider.items():
            gap = ", ".join(sorted(ptypes - ftypes))
            out.append(
                Lint(
                    "principal-type-gap",
                    f.id,
                    f"forbids only {', '.join(sorted(ftypes)) or 'no principal type'}, but {pid} "
                    f"also permits {gap}: those principals bypass this forbid (drop the `is` "
                    "constraint, or forbid them too)",
                )
            )
    return out
