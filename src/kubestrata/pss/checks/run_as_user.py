"""Running as Non-root user (restricted from v1.23, check ``runAsUser``, upstream check_runAsUser.go).

Containers must not set runAsUser to 0. From v1.35 user-namespaced pods (spec.hostUsers: false) are
exempt.

Restricted Fields: spec.securityContext.runAsUser, spec.containers[*].securityContext.runAsUser,
spec.initContainers[*].securityContext.runAsUser, spec.ephemeralContainers[*].securityContext.runAsUser
Allowed Values: any non-zero value, undefined/null
"""

from __future__ import annotations

from kubestrata.pss.checks.base import (
    IMAGE_NOTE,
    Rule,
    Violation,
    containers_phrase,
    host_users_exempt,
    remove_patch,
    setters_phrase,
    who,
)
from kubestrata.pss.view import PodView

Found = list[tuple[str | None, str]]  # (container, or None for the pod; its path)


class RunAsUser(Rule[Found]):
    check = "runAsUser"

    def find(self, p: PodView) -> Found | None:
        found: Found = [(None, p.spec_path)] if p.psc.get("runAsUser") == 0 else []
        found += [(name, cpath) for name, sc, _c, cpath in p.containers if sc.get("runAsUser") == 0]
        return found or None

    def word(self, found: Found) -> tuple[str, str]:
        setters = ["pod"] if found[0][0] is None else []
        names = [n for n, _ in found if n is not None]
        if names:
            setters.append(containers_phrase(names))
        return "runAsUser=0", f"{setters_phrase(setters)} must not set runAsUser=0"

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        return [
            Violation(
                self.check,
                "runAsUser=0",
                f"{who(name)} must not set runAsUser=0",
                f"{base}.securityContext.runAsUser",
                name,
                remove_patch(f"{base}.securityContext.runAsUser"),
                IMAGE_NOTE,
            )
            for name, base in found
        ]


run_as_user_1_23 = RunAsUser()
run_as_user_1_35 = host_users_exempt(run_as_user_1_23)
