"""Sysctls (baseline, check ``sysctls``, upstream check_sysctls.go).

Sysctls can disable security mechanisms or affect all containers on a host, and should be disallowed
except for an allowed "safe" subset. A sysctl is considered safe if it is namespaced in the container
or the Pod, and it is isolated from other Pods or processes on the same Node.

Restricted Fields: spec.securityContext.sysctls[*].name
Allowed Values: Undefined/nil, and by version:
v1.0: kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.ip_unprivileged_port_start,
net.ipv4.tcp_syncookies, net.ipv4.ping_group_range; v1.27 adds net.ipv4.ip_local_reserved_ports;
v1.29 adds net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl,
net.ipv4.tcp_keepalive_probes; v1.32 adds net.ipv4.tcp_rmem, net.ipv4.tcp_wmem; v1.37 adds
net.ipv4.tcp_slow_start_after_idle, net.ipv4.tcp_notsent_lowat
"""

from __future__ import annotations

from kubestrata.pss.checks.base import Rule, Violation, remove_patch
from kubestrata.pss.view import PodView

SYSCTLS_ALLOWED_1_0 = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    }
)
SYSCTLS_ALLOWED_1_27 = SYSCTLS_ALLOWED_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_ALLOWED_1_29 = SYSCTLS_ALLOWED_1_27 | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SYSCTLS_ALLOWED_1_32 = SYSCTLS_ALLOWED_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
SYSCTLS_ALLOWED_1_37 = SYSCTLS_ALLOWED_1_32 | {
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
}

Found = list[tuple[int, str]]  # (index in spec.securityContext.sysctls, name)


class Sysctls(Rule[Found]):
    check = "sysctls"

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed

    def find(self, p: PodView) -> Found | None:
        items = p.psc.get("sysctls")
        if not items:
            return None
        allowed = self.allowed
        found = []
        for i, s in enumerate(items):
            name = (s.get("name") if s is not None else None) or ""
            if name not in allowed:
                found.append((i, name))
        return found or None

    def word(self, found: Found) -> tuple[str, str]:
        return "forbidden sysctls", ", ".join(name for _, name in found)

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        base = f"{p.spec_path}.securityContext.sysctls"
        return [
            Violation(
                self.check,
                "forbidden sysctls",
                name,
                f"{base}[{i}].name",
                None,
                remove_patch(f"{base}[{i}]"),
                "remove forbidden sysctls from the highest index down",
            )
            for i, name in found
        ]


sysctls_1_0 = Sysctls(SYSCTLS_ALLOWED_1_0)
sysctls_1_27 = Sysctls(SYSCTLS_ALLOWED_1_27)
sysctls_1_29 = Sysctls(SYSCTLS_ALLOWED_1_29)
sysctls_1_32 = Sysctls(SYSCTLS_ALLOWED_1_32)
sysctls_1_37 = Sysctls(SYSCTLS_ALLOWED_1_37)
