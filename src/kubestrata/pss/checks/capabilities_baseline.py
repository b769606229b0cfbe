"""Capabilities (baseline, check ``capabilities_baseline``, upstream check_capabilities_baseline.go).

Adding additional capabilities beyond those listed below must be disallowed.

Restricted Fields: spec.containers[*].securityContext.capabilities.add,
spec.initContainers[*].securityContext.capabilities.add,
spec.ephemeralContainers[*].securityContext.capabilities.add
Allowed Values: Undefined/nil, AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD,
NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT (exact, case-sensitive names)
"""

from __future__ import annotations

from typing import Any

from kubestrata.findings import json_pointer
from kubestrata.pss.checks.base import Rule, Violation, containers_phrase, join_quote, remove_patch
from kubestrata.pss.view import PodView

CAPABILITIES_ALLOWED_1_0 = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)

# (container name, container path, its capabilities.add list, the forbidden entries)
AddedCaps = tuple[str, str, list[Any], list[str]]


def forbidden_adds(name: str, cpath: str, add: Any, allowed: frozenset[str]) -> AddedCaps | None:
    bad = [str(x or "") for x in add if x not in allowed]
    return (name, cpath, add, bad) if bad else None


def add_violation(check: str, reason: str, entry: AddedCaps, allowed: frozenset[str]) -> Violation:
    """A container adds capabilities the level forbids: keep only the allowed ones (or drop add)."""
    name, cpath, add, bad = entry
    path = f"{cpath}.securityContext.capabilities.add"
    keep = [x for x in add if x in allowed]
    return Violation(
        check,
        reason,
        f'container "{name}" must not include {join_quote(sorted(set(bad)))} in securityContext.capabilities.add',
        path,
        name,
        [{"op": "replace", "path": json_pointer(path), "value": keep}] if keep else remove_patch(path),
        "the process may need one of these capabilities; confirm before removing",
    )


def adds_detail(entries: list[AddedCaps]) -> str:
    caps = sorted({b for e in entries for b in e[3]})
    return (
        f"{containers_phrase([e[0] for e in entries])} must not include {join_quote(caps)} "
        "in securityContext.capabilities.add"
    )


class CapabilitiesBaseline(Rule[list[AddedCaps]]):
    check = "capabilities_baseline"

    def find(self, p: PodView) -> list[AddedCaps] | None:
        found = []
        for name, sc, _c, cpath in p.containers:
            caps = sc.get("capabilities")
            if caps is None:
                continue
            add = caps.get("add")
            if add:
                entry = forbidden_adds(name, cpath, add, CAPABILITIES_ALLOWED_1_0)
                if entry is not None:
                    found.append(entry)
        return found or None

    def word(self, found: list[AddedCaps]) -> tuple[str, str]:
        return "non-default capabilities", adds_detail(found)

    def explain(self, p: PodView, found: list[AddedCaps]) -> list[Violation]:
        return [
            add_violation(self.check, "non-default capabilities", e, CAPABILITIES_ALLOWED_1_0) for e in found
        ]


capabilities_baseline_1_0 = CapabilitiesBaseline()
