"""Privilege Escalation (restricted from v1.8, check ``allowPrivilegeEscalation``, upstream
check_allowPrivilegeEscalation.go).

Privilege escalation (such as via set-user-ID or set-group-ID file mode) should not be allowed. From
v1.25 pods with spec.os.name=windows are exempt.

Restricted Fields: spec.containers[*].securityContext.allowPrivilegeEscalation,
spec.initContainers[*].securityContext.allowPrivilegeEscalation,
spec.ephemeralContainers[*].securityContext.allowPrivilegeEscalation
Allowed Values: false
"""

from __future__ import annotations

from typing import Any

from kubestrata.pss.checks.base import Rule, Violation, containers_phrase, set_patch, windows_exempt
from kubestrata.pss.view import PodView

Found = list[tuple[str, str, dict[str, Any]]]  # (container name, path, container)


class AllowPrivilegeEscalation(Rule[Found]):
    check = "allowPrivilegeEscalation"

    def find(self, p: PodView) -> Found | None:
        found = [
            (name, cpath, c)
            for name, sc, c, cpath in p.containers
            if sc.get("allowPrivilegeEscalation") is not False
        ]
        return found or None

    def word(self, found: Found) -> tuple[str, str]:
        names = [n for n, _, _ in found]
        return (
            "allowPrivilegeEscalation != false",
            f"{containers_phrase(names)} must set securityContext.allowPrivilegeEscalation=false",
        )

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        return [
            Violation(
                self.check,
                "allowPrivilegeEscalation != false",
                f'container "{name}" must set securityContext.allowPrivilegeEscalation=false',
                f"{cpath}.securityContext.allowPrivilegeEscalation",
                name,
                set_patch(cpath, c, ["securityContext", "allowPrivilegeEscalation"], False),
            )
            for name, cpath, c in found
        ]


allow_privilege_escalation_1_8 = AllowPrivilegeEscalation()
allow_privilege_escalation_1_25 = windows_exempt(allow_privilege_escalation_1_8)
