"""Host Probes / Lifecycle Hooks (baseline from v1.34, check ``hostProbesAndHostLifecycle``, upstream
check_hostProbesAndHostLifecycle.go).

The Host field in probes and lifecycle hooks must be disallowed.

Restricted Fields: spec.containers[*].livenessProbe.httpGet.host, .readinessProbe.httpGet.host,
.startupProbe.httpGet.host, .livenessProbe.tcpSocket.host, .readinessProbe.tcpSocket.host,
.startupProbe.tcpSocket.host, .lifecycle.postStart.tcpSocket.host, .lifecycle.preStop.tcpSocket.host,
.lifecycle.postStart.httpGet.host, .lifecycle.preStop.httpGet.host (and the same for
spec.initContainers[*] and spec.ephemeralContainers[*])
Allowed Values: Undefined/nil, ""
"""

from __future__ import annotations

from typing import Any

from kubestrata.pss.checks.base import Rule, Violation, containers_phrase, join_quote, pluralize, remove_patch
from kubestrata.pss.view import PodView

_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_KINDS = ("httpGet", "tcpSocket")

Found = list[tuple[str, list[tuple[str, str]]]]  # per container: (name, [(host, field path)])


def _hosts(handler: Any, base: str, found: list[tuple[str, str]]) -> None:
    if handler is None:
        return
    for kind in _KINDS:
        h = handler.get(kind)
        if h is not None and h.get("host"):
            found.append((h["host"], f"{base}.{kind}.host"))


def _any_host(c: dict[str, Any]) -> bool:
    """Fast test: does any probe or lifecycle handler of the container set a host?"""
    for key in _PROBES:
        pr = c.get(key)
        if pr is not None:
            h = pr.get("httpGet")
            if h is not None and h.get("host"):
                return True
            h = pr.get("tcpSocket")
            if h is not None and h.get("host"):
                return True
    lc = c.get("lifecycle")
    if lc is not None:
        for key in ("postStart", "preStop"):
            pr = lc.get(key)
            if pr is not None:
                h = pr.get("httpGet")
                if h is not None and h.get("host"):
                    return True
                h = pr.get("tcpSocket")
                if h is not None and h.get("host"):
                    return True
    return False


class HostProbesAndHostLifecycle(Rule[Found]):
    check = "hostProbesAndHostLifecycle"

    def find(self, p: PodView) -> Found | None:
        found: Found = []
        for name, _sc, c, cpath in p.containers:
            if not _any_host(c):
                continue
            hosts: list[tuple[str, str]] = []
            for probe in _PROBES:
                _hosts(c.get(probe), f"{cpath}.{probe}", hosts)
            lc = c.get("lifecycle")
            if lc is not None:
                _hosts(lc.get("postStart"), f"{cpath}.lifecycle.postStart", hosts)
                _hosts(lc.get("preStop"), f"{cpath}.lifecycle.preStop", hosts)
            if hosts:
                found.append((name, hosts))
        return found or None

    def word(self, found: Found) -> tuple[str, str]:
        names = sorted({n for n, _ in found})
        hosts = sorted({h for _, hs in found for h, _ in hs})
        return (
            "probe or lifecycle host",
            f"{containers_phrase(names)} {pluralize('uses', 'use', len(names))} "
            f"{pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} {join_quote(hosts)}",
        )

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        return [
            Violation(
                self.check,
                "probe or lifecycle host",
                f'container "{name}" uses probe or lifecycle host "{host}"',
                path,
                name,
                remove_patch(path),
                "without host the kubelet targets the pod IP; make the process listen there",
            )
            for name, hosts in found
            for host, path in hosts
        ]


host_probes_and_host_lifecycle_1_34 = HostProbesAndHostLifecycle()
