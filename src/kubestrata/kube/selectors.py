"""Label selectors with the API server's semantics; the one implementation every engine uses.

Semantics (k8s.io/apimachinery/pkg/apis/meta/v1 LabelSelectorAsSelector):
- a nil selector matches nothing; an empty selector ({}) matches everything;
- matchLabels and matchExpressions are ANDed;
- In / NotIn / Exists / DoesNotExist; NotIn and DoesNotExist match objects without the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubestrata.errors import InputError

_OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist"}


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in ("In", "NotIn"):
            v = labels.get(self.key) if self.key in labels else None
            # a list or mapping label value (invalid, from a hostile manifest) equals no selector value
            hit = self.key in labels and isinstance(v, str | int | float | bool) and v in self.values
            return hit if op == "In" else not hit
        if op == "Exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed selector. ``requirements is None`` means a nil selector (matches nothing)."""

    requirements: tuple[Requirement, ...] | None

    @classmethod
    def parse(cls, sel: Any, *, field: str = "selector") -> LabelSelector:
        """Parse a metav1.LabelSelector dict; raise InputError naming the field on bad shapes."""
        if sel is None:
            return cls(None)
        if not isinstance(sel, dict):
            raise InputError(f"expected a label selector mapping, got {type(sel).__name__}", field=field)
        reqs: list[Requirement] = []
        ml = sel.get("matchLabels") or {}
        if not isinstance(ml, dict):
            raise InputError("matchLabels must be a mapping", field=f"{field}.matchLabels")
        for k, v in ml.items():
            reqs.append(Requirement(str(k), "In", frozenset({str(v)})))
        me = sel.get("matchExpressions") or []
        if not isinstance(me, list):
            raise InputError("matchExpressions must be a list", field=f"{field}.matchExpressions")
        for i, expr in enumerate(me):
            path = f"{field}.matchExpressions[{i}]"
            if not isinstance(expr, dict):
                raise InputError("expression must be a mapping", field=path)
            op = expr.get("operator")
            key = expr.get("key")
            if not isinstance(op, str) or op not in _OPERATORS:
                raise InputError(f"unknown operator {op!r}", field=f"{path}.operator")
            if not isinstance(key, str) or not key:
                raise InputError("key is required", field=f"{path}.key")
            values = expr.get("values") or []
            if not isinstance(values, list):
                raise InputError("values must be a list", field=f"{path}.values")
            if op in ("In", "NotIn") and not values:
                raise InputError(f"values must be non-empty for {op}", field=f"{path}.values")
            if op in ("Exists", "DoesNotExist") and values:
                raise InputError(f"values must be empty for {op}", field=f"{path}.values")
            reqs.append(Requirement(key, op, frozenset(str(v) for v in values)))
        return cls(tuple(reqs))

    @property
    def is_nil(self) -> bool:
        return self.requirements is None

    @property
    def is_empty(self) -> bool:
        """True for {} (matches everything)."""
        return self.requirements == ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.requirements is None:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        if self.requirements is None:
            return "<none>"
        if not self.requirements:
            return "<all>"
        parts = []
        for r in self.requirements:
            if r.operator == "In" and len(r.values) == 1:
                parts.append(f"{r.key}={next(iter(r.values))}")
            elif r.operator in ("In", "NotIn"):
                parts.append(f"{r.key} {r.operator.lower()} ({','.join(sorted(r.values))})")
            elif r.operator == "Exists":
                parts.append(r.key)
            else:
                parts.append(f"!{r.key}")
        return ",".join(parts)


def selector_matches(selector: Any, labels: Mapping[str, str] | None) -> bool:
    """Convenience: parse a selector dict and match labels (nil matches nothing, {} everything)."""
    return LabelSelector.parse(selector).matches(labels)


def parse_selector_string(text: str) -> LabelSelector:
    """Parse the string form used on the wire (``a=b,c!=d,e in (x,y),!f``) into a LabelSelector."""
    import re

    reqs: list[Requirement] = []
    # split on commas that are not inside parentheses
    for part in re.split(r",(?![^()]*\))", text.strip()):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)", part)
        if m:
            vals = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), "In" if m.group(2) == "in" else "NotIn", vals))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(Requirement(k.strip(), "NotIn", frozenset({v.strip()})))
        elif "==" in part or "=" in part:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            reqs.append(Requirement(k.strip(), "In", frozenset({v.strip()})))
        elif part.startswith("!"):
            reqs.append(Requirement(part[1:].strip(), "DoesNotExist"))
        else:
            reqs.append(Requirement(part, "Exists"))
    return LabelSelector(tuple(reqs))
