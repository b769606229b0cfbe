"""The control plane's own identities, exempt from the actor rules BY NAME (data:
detect/data/control_plane_identities.yaml, with a source per entry; a user file adds to it or
replaces it). Nothing here matches a user name by prefix alone: ``system:serviceaccount:*`` is an
ordinary actor unless listed, and kubelets are recognised the way the Node authorizer does it
(group ``system:nodes`` and user ``system:node:<name>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from kubestrata.errors import KubestrataError
from kubestrata.packagedata import load_yaml

BUILTIN = "control_plane_identities.yaml"
_ENTRY_KEYS = {"user", "group", "user_prefix", "rules", "source", "why"}


@dataclass(frozen=True, slots=True)
class ExemptIdentity:
    """One control-plane identity exempt from the actor rules (by user, or by group and user prefix);
    access.model.Identity is an IAM or Kubernetes principal."""

    user: str = ""
    group: str = ""
    user_prefix: str = ""  # only with a group: both must hold
    rules: frozenset[str] | None = None  # None: every rule that consults the list
    source: str = ""
    why: str = ""

    def matches(self, user: str, groups: tuple[str, ...]) -> bool:
        if self.user:
            return user == self.user
        return self.group in groups and user.startswith(self.user_prefix)


@dataclass
class ControlPlane:
    """Exemption list: ``exempt(user, groups, rule_id)``."""

    identities: list[ExemptIdentity] = field(default_factory=list)
    origin: str = ""

    def __post_init__(self) -> None:
        self._by_user: dict[str, list[ExemptIdentity]] = {}
        self._by_group: list[ExemptIdentity] = []
        for i in self.identities:
            if i.user:
                self._by_user.setdefault(i.user, []).append(i)
            else:
                self._by_group.append(i)

    def exempt(self, user: str, groups: tuple[str, ...], rule_id: str) -> bool:
        for i in self._by_user.get(user, ()):
            if i.rules is None or rule_id in i.rules:
                return True
        for i in self._by_group:
            if (i.rules is None or rule_id in i.rules) and i.matches(user, groups):
                return True
        return False

    def users(self) -> list[str]:
        return [i.user for i in self.identities if i.user]

    def extended(self, other: ControlPlane, replace: bool = False) -> ControlPlane:
        ids = list(other.identities) if replace else [*self.identities, *other.identities]
        return ControlPlane(ids, f"{other.origin}" if replace else f"{self.origin} + {other.origin}")


def parse(doc: Any, where: str) -> tuple[ControlPlane, bool]:
    """A document of the data file's shape -> (list, replace?). Errors name file and entry."""
    if not isinstance(doc, dict) or not isinstance(doc.get("identities"), list):
        raise KubestrataError(f"{where}: expected a mapping with an 'identities' list")
    out = []
    for n, e in enumerate(doc["identities"]):
        at = f"{where}: identities[{n}]"
        if not isinstance(e, dict):
            raise KubestrataError(f"{at}: expected a mapping")
        unknown = set(e) - _ENTRY_KEYS
        if unknown:
            raise KubestrataError(f"{at}: unknown field {sorted(unknown)[0]!r}")
        for k in _ENTRY_KEYS - {"rules"}:
            if k in e and not isinstance(e[k], str):
                raise KubestrataError(f"{at}.{k}: expected a string")
        user, group = e.get("user", ""), e.get("group", "")
        if bool(user) == bool(group):
            raise KubestrataError(f"{at}: give exactly one of 'user' or 'group'")
        if e.get("user_prefix") and not group:
            raise KubestrataError(f"{at}.user_prefix: only allowed with a group (no prefix-only match)")
        rules = e.get("rules")
        if rules is not None and (not isinstance(rules, list) or not all(isinstance(r, str) for r in rules)):
            raise KubestrataError(f"{at}.rules: expected a list of rule ids")
        out.append(
            ExemptIdentity(
                user,
                group,
                e.get("user_prefix", ""),
                frozenset(rules) if rules is not None else None,
                e.get("source", ""),
                e.get("why", ""),
            )  # fmt: skip
        )
    replace = doc.get("replace", False)
    if not isinstance(replace, bool):
        raise KubestrataError(f"{where}: replace: expected true or false")
    return ControlPlane(out, where), replace


_builtin: ControlPlane | None = None


def builtin() -> ControlPlane:
    global _builtin
    if _builtin is None:
        _builtin = parse(load_yaml("kubestrata.detect", f"data/{BUILTIN}"), BUILTIN)[0]
    return _builtin


def load(path: str, known_rules: set[str] | None = None) -> ControlPlane:
    """The built-in list extended (or replaced) by the file at ``path``."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as e:
        raise KubestrataError(f"cannot read {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise KubestrataError(f"{path}: not valid YAML: {str(e).splitlines()[0][:200]}") from None
    cp, replace = parse(doc, path)
    if known_rules is not None:
        for n, i in enumerate(cp.identities):
            bad = sorted((i.rules or frozenset()) - known_rules)
            if bad:
                raise KubestrataError(f"{path}: identities[{n}].rules: unknown rule id {bad[0]!r}")
    return builtin().extended(cp, replace)
