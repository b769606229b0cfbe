"""Capabilities (restricted, check ``capabilities_restricted``, upstream
check_capabilities_restricted.go; overrides ``capabilities_baseline``).

Containers must drop ALL capabilities, and are only permitted to add back the NET_BIND_SERVICE
capability. From v1.25, pods with spec.os.name=windows are exempt.

Restricted Fields: spec.containers[*].securityContext.capabilities.drop,
spec.initContainers[*].securityContext.capabilities.drop,
spec.ephemeralContainers[*].securityContext.capabilities.drop
Allowed Values: Any list of capabilities that includes ALL

Restricted Fields: spec.containers[*].securityContext.capabilities.add,
spec.initContainers[*].securityContext.capabilities.add,
spec.ephemeralContainers[*].securityContext.capabilities.add
Allowed Values: Undefined/nil, NET_BIND_SERVICE
"""

from __future__ import annotations

from typing import Any

from kubestrata.findings import json_pointer
from kubestrata.pss.checks.base import Rule, Violation, containers_phrase, set_patch, windows_exempt
from kubestrata.pss.checks.capabilities_baseline import AddedCaps, add_violation, adds_detail, forbidden_adds
from kubestrata.pss.view import PodView

_ALLOWED_ADD = frozenset({"NET_BIND_SERVICE"})

# in container order: ("drop", (name, path, container)) when drop lacks "ALL", ("add", AddedCaps)
Found = list[tuple[str, Any]]


class CapabilitiesRestricted(Rule[Found]):
    check = "capabilities_restricted"

    def find(self, p: PodView) -> Found | None:
        found: Found = []
        for name, sc, c, cpath in p.containers:
            caps = sc.get("capabilities")
            if caps is None:
                found.append(("drop", (name, cpath, c)))
                continue
            drop = caps.get("drop")
            if not drop or "ALL" not in drop:
                found.append(("drop", (name, cpath, c)))
            add = caps.get("add")
            if add:
                entry = forbidden_adds(name, cpath, add, _ALLOWED_ADD)
                if entry is not None:
                    found.append(("add", entry))
        return found or None

    def word(self, found: Found) -> tuple[str, str]:
        missing_drop = [e[0] for kind, e in found if kind == "drop"]
        adding: list[AddedCaps] = [e for kind, e in found if kind == "add"]
        details = []
        if missing_drop:
            details.append(
                f'{containers_phrase(missing_drop)} must set securityContext.capabilities.drop=["ALL"]'
            )
        if adding:
            details.append(adds_detail(adding))
        return "unrestricted capabilities", "; ".join(details)

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        return [
            _drop_all_violation(*e)
            if kind == "drop"
            else add_violation(self.check, "unrestricted capabilities", e, _ALLOWED_ADD)
            for kind, e in found
        ]


def _drop_all_violation(name: str, cpath: str, c: dict[str, Any]) -> Violation:
    sc = c.get("securityContext")
    caps = sc.get("capabilities") if isinstance(sc, dict) else None
    drop = caps.get("drop") if isinstance(caps, dict) else None
    if isinstance(drop, list):
        fix = [
            {
                "op": "add",
                "path": json_pointer(f"{cpath}.securityContext.capabilities.drop") + "/-",
                "value": "ALL",
            }
        ]
    else:
        fix = set_patch(cpath, c, ["securityContext", "capabilities", "drop"], ["ALL"])
    return Violation(
        "capabilities_restricted",
        "unrestricted capabilities",
        f'container "{name}" must set securityContext.capabilities.drop=["ALL"]',
        f"{cpath}.securityContext.capabilities.drop",
        name,
        fix,
    )


capabilities_restricted_1_22 = CapabilitiesRestricted()
capabilities_restricted_1_25 = windows_exempt(capabilities_restricted_1_22)
