"""Host Namespaces (baseline, check ``hostNamespaces``, upstream check_hostNamespaces.go).

Sharing the host namespaces must be disallowed.

Restricted Fields: spec.hostNetwork, spec.hostPID, spec.hostIPC
Allowed Values: Undefined/nil, false
"""

from __future__ import annotations

from kubestrata.pss.checks.base import Rule, Violation, remove_patch
from kubestrata.pss.view import PodView

_FIELDS = ("hostNetwork", "hostPID", "hostIPC")


class HostNamespaces(Rule[list[str]]):
    """Found: the fields set to true, in upstream's order."""

    check = "hostNamespaces"

    def find(self, p: PodView) -> list[str] | None:
        spec = p.spec
        found = [k for k in _FIELDS if spec.get(k) is True]
        return found or None

    def word(self, found: list[str]) -> tuple[str, str]:
        return "host namespaces", ", ".join(f"{k}=true" for k in found)

    def explain(self, p: PodView, found: list[str]) -> list[Violation]:
        out = []
        for k in found:
            path = f"{p.spec_path}.{k}"
            out.append(
                Violation(
                    self.check,
                    "host namespaces",
                    f"{k}=true",
                    path,
                    None,
                    remove_patch(path),
                    "the workload may rely on the host namespace",
                )
            )
        return out


host_namespaces_1_0 = HostNamespaces()
