"""/proc Mount Type (baseline check ``procMount``; restricted check ``procMount_restricted`` from
v1.35, which overrides it; upstream check_procMount.go).

The default /proc masks are set up to reduce attack surface, and should be required. From v1.35 the
baseline check allows any value in user-namespaced pods (spec.hostUsers: false); the restricted one
does not.

Restricted Fields: spec.containers[*].securityContext.procMount,
spec.initContainers[*].securityContext.procMount, spec.ephemeralContainers[*].securityContext.procMount
Allowed Values: Undefined/nil, Default
"""

from __future__ import annotations

from kubestrata.pss.checks.base import (
    Rule,
    Violation,
    containers_phrase,
    host_users_exempt,
    join_quote,
    replace_patch,
)
from kubestrata.pss.view import PodView

Found = list[tuple[str, str, str]]  # (container name, container path, procMount)


class ProcMount(Rule[Found]):
    def __init__(self, check: str) -> None:
        self.check = check

    def find(self, p: PodView) -> Found | None:
        found = []
        for name, sc, _c, cpath in p.containers:
            pm = sc.get("procMount")
            if pm is not None and pm != "Default":
                found.append((name, cpath, pm))
        return found or None

    def word(self, found: Found) -> tuple[str, str]:
        names = [n for n, _, _ in found]
        types = sorted({pm for _, _, pm in found})
        return (
            "procMount",
            f"{containers_phrase(names)} must not set securityContext.procMount to {join_quote(types)}",
        )

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        return [
            Violation(
                self.check,
                "procMount",
                f'container "{name}" must not set securityContext.procMount to "{pm}"',
                f"{cpath}.securityContext.procMount",
                name,
                replace_patch(f"{cpath}.securityContext.procMount", "Default"),
            )
            for name, cpath, pm in found
        ]


proc_mount_1_0 = ProcMount("procMount")
# user-namespaced pods (hostUsers: false) may unmask /proc: KEP-127, GA relaxation in policy v1.35
proc_mount_1_35 = host_users_exempt(proc_mount_1_0)
proc_mount_restricted_1_35 = ProcMount("procMount_restricted")
