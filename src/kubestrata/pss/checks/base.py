"""What every check module is made of: the Rule interface, the Violation it explains with, and
upstream's wording helpers (policy/helpers.go).

A Rule looks at a pod once. ``find`` returns what is wrong (None when the pod passes): the offending
fields, in the order the check visits them, as plain tuples. ``word`` turns that into upstream's
(ForbiddenReason, ForbiddenDetail) and ``explain`` into one Violation per field with its path and a
minimal JSON patch. Both read the same findings, so the plain decision and the explanation cannot
disagree, and explaining costs nothing until someone asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kubestrata.findings import json_pointer, pointer_token
from kubestrata.pss.api import Level
from kubestrata.pss.view import PodView

F = TypeVar("F")
Patch = list[dict[str, Any]]


@dataclass(slots=True)
class Violation:
    """One offending field: the check, the container (None for pod-level fields), the field path,
    upstream's reason, a detail for this field alone, and a minimal RFC 6902 fix when one is safe."""

    check: str
    reason: str
    detail: str
    path: str
    container: str | None = None
    fix: Patch | None = None
    fix_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "container": self.container,
            "path": self.path,
            "reason": self.reason,
            "detail": self.detail,
            "fix": self.fix,
            "fixNote": self.fix_note,
        }


class Rule(Generic[F]):
    """One version of one check. Subclasses set ``check`` (the id their violations carry)."""

    check: str = ""

    def find(self, p: PodView) -> F | None:
        raise NotImplementedError

    def word(self, found: F) -> tuple[str, str]:
        raise NotImplementedError

    def explain(self, p: PodView, found: F) -> list[Violation]:
        raise NotImplementedError


class Exempt(Rule[Any]):
    """A later variant that is another rule, except for the pods it exempts (``why``)."""

    def __init__(self, rule: Rule[Any], find: Any, why: str) -> None:
        self.rule, self.why = rule, why
        self.check = rule.check
        # plain attributes, not delegating methods: find runs for every pod
        self.find = find  # type: ignore[method-assign]
        self.word = rule.word  # type: ignore[method-assign]
        self.explain = rule.explain  # type: ignore[method-assign]


def host_users_exempt(rule: Rule[Any]) -> Rule[Any]:
    """The v1.35 relaxation (helpers.go relaxPolicyForUserNamespacePod): spec.hostUsers is false."""
    inner = rule.find

    def find(p: PodView) -> Any:
        return None if p.spec.get("hostUsers") is False else inner(p)

    return Exempt(rule, find, "hostUsers: false")


def windows_exempt(rule: Rule[Any]) -> Rule[Any]:
    """The v1.25 exemption of Linux-only restricted fields: spec.os.name is windows."""
    inner = rule.find

    def find(p: PodView) -> Any:
        return None if p.windows else inner(p)

    return Exempt(rule, find, "spec.os.name: windows")


@dataclass(frozen=True, slots=True)
class Variant:
    """A check's behaviour from ``minimum_minor`` on, and the baseline checks it then replaces."""

    minimum_minor: int
    rule: Rule[Any]
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckDef:
    id: str
    level: Level
    variants: tuple[Variant, ...] = ()


# --- wording (policy/helpers.go) -----------------------------------------------------------------


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def join_quote(items: list[str]) -> str:
    if not items:
        return ""
    return '"' + '", "'.join(items) + '"'


def containers_phrase(names: list[str]) -> str:
    """`container "a"` or `containers "a", "b"`."""
    return f"{pluralize('container', 'containers', len(names))} {join_quote(names)}"


def setters_phrase(setters: list[str]) -> str:
    """`pod and containers "a", "b"`: who set a forbidden value."""
    return " and ".join(setters)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str) -> str:
    """Go's %q (strconv.Quote) for the annotation values upstream formats with it."""
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            cp = ord(ch)
            if cp < 0x80:
                out.append(f"\\x{cp:02x}")
            elif cp <= 0xFFFF:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


# --- fixes ---------------------------------------------------------------------------------------


def set_patch(base: str, obj: Any, keys: list[str], value: Any) -> Patch:
    """The smallest JSON patch that sets obj[keys...] = value under the dotted path base, creating
    only the missing parents (RFC 6902 "add" replaces an existing member)."""
    node = obj
    walked = base
    for i, k in enumerate(keys):
        nxt = node.get(k) if isinstance(node, dict) else None
        if i == len(keys) - 1 or not isinstance(nxt, dict):
            val: Any = value
            for rk in reversed(keys[i + 1 :]):
                val = {rk: val}
            return [{"op": "add", "path": json_pointer(f"{walked}.{k}"), "value": val}]
        node = nxt
        walked = f"{walked}.{k}"
    raise AssertionError("no keys")  # pragma: no cover


def remove_patch(path: str) -> Patch:
    return [{"op": "remove", "path": json_pointer(path)}]


def replace_patch(path: str, value: Any) -> Patch:
    return [{"op": "replace", "path": json_pointer(path), "value": value}]


def annotation_patch(meta_path: str, key: str, value: str) -> Patch:
    pointer = json_pointer(f"{meta_path}.annotations") + "/" + pointer_token(key)
    return [{"op": "replace", "path": pointer, "value": value}]


def who(container: str | None) -> str:
    """`pod` or `container "x"`, as the per-field details start."""
    return "pod" if container is None else f'container "{container}"'


IMAGE_NOTE = "may require an image change: the image must run as a non-root user"
