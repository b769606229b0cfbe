"""Host Ports (baseline, check ``hostPorts``, upstream check_hostPorts.go).

HostPorts should be disallowed entirely (recommended) or restricted to a known list.

Restricted Fields: spec.containers[*].ports[*].hostPort, spec.initContainers[*].ports[*].hostPort,
spec.ephemeralContainers[*].ports[*].hostPort
Allowed Values: Undefined/nil, a known list (not supported by the built-in Pod Security Admission
controller), 0
"""

from __future__ import annotations

from kubestrata.pss.checks.base import Rule, Violation, containers_phrase, pluralize, remove_patch
from kubestrata.pss.view import PodView

# per offending container: (name, [(port path, host port, set explicitly)])
Found = list[tuple[str, list[tuple[str, int, bool]]]]


class HostPorts(Rule[Found]):
    check = "hostPorts"

    def find(self, p: PodView) -> Found | None:
        found: Found = []
        host_network = p.spec.get("hostNetwork") is True
        for name, _sc, c, cpath in p.containers:
            ports = c.get("ports")
            if not ports:
                continue
            # the API server defaults hostPort to containerPort for host-network pods (init and
            # regular containers: defaultHostNetworkPorts), so PSA sees those ports as host ports;
            # pod templates are no longer defaulted that way (DefaultHostNetworkHostPortsInPodTemplates)
            defaulted = host_network and not p.template and ".ephemeralContainers[" not in cpath
            bad = []
            for j, port in enumerate(ports):
                if port is None:
                    continue
                hp = port.get("hostPort")
                explicit = bool(hp)
                if not hp and defaulted:
                    hp = port.get("containerPort")
                if hp:
                    bad.append((f"{cpath}.ports[{j}].hostPort", hp, explicit))
            if bad:
                found.append((name, bad))
        return found or None

    def word(self, found: Found) -> tuple[str, str]:
        names = [n for n, _ in found]
        ports = {str(hp) for _, bad in found for _, hp, _ in bad}
        return (
            "hostPort",
            f"{containers_phrase(names)} {pluralize('uses', 'use', len(names))} "
            f"{pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}",
        )

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        return [
            Violation(
                self.check,
                "hostPort",
                f'container "{name}" uses hostPort {hp}',
                path,
                name,
                remove_patch(path) if explicit else None,
                "clients reaching the node port must use a Service instead"
                if explicit
                else "defaulted from containerPort because the pod sets hostNetwork=true",
            )
            for name, bad in found
            for path, hp, explicit in bad
        ]


host_ports_1_0 = HostPorts()
