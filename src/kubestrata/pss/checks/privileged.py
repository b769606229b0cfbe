"""Privileged Containers (baseline, check ``privileged``, upstream check_privileged.go).

Privileged Pods disable most security mechanisms and must be disallowed.

Restricted Fields: spec.containers[*].securityContext.privileged,
spec.initContainers[*].securityContext.privileged, spec.ephemeralContainers[*].securityContext.privileged
Allowed Values: Undefined/nil, false
"""

from __future__ import annotations

from kubestrata.pss.checks.base import Rule, Violation, containers_phrase, replace_patch
from kubestrata.pss.view import PodView

Found = list[tuple[str, str]]  # (container name, container path)


class Privileged(Rule[Found]):
    check = "privileged"

    def find(self, p: PodView) -> Found | None:
        bad = [(name, cpath) for name, sc, _c, cpath in p.containers if sc.get("privileged") is True]
        return bad or None

    def word(self, found: Found) -> tuple[str, str]:
        names = [n for n, _ in found]
        return "privileged", f"{containers_phrase(names)} must not set securityContext.privileged=true"

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        return [
            Violation(
                self.check,
                "privileged",
                f'container "{name}" must not set securityContext.privileged=true',
                f"{cpath}.securityContext.privileged",
                name,
                replace_patch(f"{cpath}.securityContext.privileged", False),
                "the workload may need specific capabilities instead",
            )
            for name, cpath in found
        ]


privileged_1_0 = Privileged()
