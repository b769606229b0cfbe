"""HostProcess (baseline, check ``windowsHostProcess``, upstream check_windowsHostProcess.go).

Windows Pods offer the ability to run HostProcess containers which enables privileged access to the
Windows host machine. Privileged access to the host is disallowed in the Baseline policy.

Restricted Fields: spec.securityContext.windowsOptions.hostProcess,
spec.containers[*].securityContext.windowsOptions.hostProcess,
spec.initContainers[*].securityContext.windowsOptions.hostProcess,
spec.ephemeralContainers[*].securityContext.windowsOptions.hostProcess
Allowed Values: Undefined/nil, false
"""

from __future__ import annotations

from kubestrata.pss.checks.base import Rule, Violation, containers_phrase, replace_patch, setters_phrase, who
from kubestrata.pss.view import PodView

Found = list[tuple[str | None, str]]  # (container, or None for the pod; its path)

_FIELD = "securityContext.windowsOptions.hostProcess"


def _host_process(sc: dict[str, dict[str, object]]) -> bool:
    wo = sc.get("windowsOptions")
    return wo is not None and wo.get("hostProcess") is True


class WindowsHostProcess(Rule[Found]):
    check = "windowsHostProcess"

    def find(self, p: PodView) -> Found | None:
        found: Found = [(None, p.spec_path)] if _host_process(p.psc) else []
        found += [(name, cpath) for name, sc, _c, cpath in p.containers if _host_process(sc)]
        return found or None

    def word(self, found: Found) -> tuple[str, str]:
        setters = ["pod"] if found[0][0] is None else []
        names = [n for n, _ in found if n is not None]
        if names:
            setters.append(containers_phrase(names))
        return "hostProcess", f"{setters_phrase(setters)} must not set {_FIELD}=true"

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        return [
            Violation(
                self.check,
                "hostProcess",
                f"{who(name)} must not set {_FIELD}=true",
                f"{base}.{_FIELD}",
                name,
                replace_patch(f"{base}.{_FIELD}", False),
            )
            for name, base in found
        ]


windows_host_process_1_0 = WindowsHostProcess()
