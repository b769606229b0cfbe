"""Running as Non-root (restricted, check ``runAsNonRoot``, upstream check_runAsNonRoot.go).

Containers must be required to run as non-root users. From v1.35 user-namespaced pods
(spec.hostUsers: false) are exempt. There is no Windows exemption.

Restricted Fields: spec.securityContext.runAsNonRoot, spec.containers[*].securityContext.runAsNonRoot,
spec.initContainers[*].securityContext.runAsNonRoot,
spec.ephemeralContainers[*].securityContext.runAsNonRoot
Allowed Values: true
The container fields may be undefined/nil if the pod-level spec.securityContext.runAsNonRoot is set
to true (a container's explicit false still fails).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubestrata.pss.checks.base import (
    IMAGE_NOTE,
    Rule,
    Violation,
    containers_phrase,
    host_users_exempt,
    replace_patch,
    set_patch,
    setters_phrase,
    who,
)
from kubestrata.pss.view import PodView

_FIELD = "securityContext.runAsNonRoot"


@dataclass(slots=True)
class Found:
    pod_false: bool = False
    explicit: list[tuple[str, str]] = field(default_factory=list)  # containers setting false: name, path
    unset: list[str] = field(default_factory=list)  # containers leaving it unset without pod-level true


class RunAsNonRoot(Rule[Found]):
    check = "runAsNonRoot"

    def find(self, p: PodView) -> Found | None:
        v = p.psc.get("runAsNonRoot")
        pod_false = v is False
        pod_true = v is not None and not pod_false
        explicit: list[tuple[str, str]] = []
        unset: list[str] = []
        for name, sc, _c, cpath in p.containers:
            v = sc.get("runAsNonRoot")
            if v is not None:
                if v is False:
                    explicit.append((name, cpath))
            elif not pod_true:
                unset.append(name)
        if pod_false or explicit or unset:
            return Found(pod_false, explicit, unset)
        return None

    def word(self, found: Found) -> tuple[str, str]:
        setters = ["pod"] if found.pod_false else []
        if found.explicit:
            setters.append(containers_phrase([n for n, _ in found.explicit]))
        if setters:
            return "runAsNonRoot != true", f"{setters_phrase(setters)} must not set {_FIELD}=false"
        return "runAsNonRoot != true", f"pod or {containers_phrase(found.unset)} must set {_FIELD}=true"

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        bad = [(None, p.spec_path)] if found.pod_false else []
        out = [
            Violation(
                self.check,
                "runAsNonRoot != true",
                f"{who(name)} must not set {_FIELD}=false",
                f"{base}.{_FIELD}",
                name,
                replace_patch(f"{base}.{_FIELD}", True),
                IMAGE_NOTE,
            )
            for name, base in [*bad, *found.explicit]
        ]
        if not out:  # upstream reports the unset ones only when nothing is set to false
            out.append(
                Violation(
                    self.check,
                    "runAsNonRoot != true",
                    f"pod or {containers_phrase(found.unset)} must set {_FIELD}=true",
                    f"{p.spec_path}.{_FIELD}",
                    None,
                    set_patch(p.spec_path, p.spec, ["securityContext", "runAsNonRoot"], True),
                    IMAGE_NOTE,
                )
            )
        return out


run_as_non_root_1_0 = RunAsNonRoot()
run_as_non_root_1_35 = host_users_exempt(run_as_non_root_1_0)
