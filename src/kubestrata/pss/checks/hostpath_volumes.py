"""HostPath Volumes (baseline, check ``hostPathVolumes``, upstream check_hostPathVolumes.go).

HostPath volumes must be forbidden.

Restricted Fields: spec.volumes[*].hostPath
Allowed Values: Undefined/nil
"""

from __future__ import annotations

from kubestrata.pss.checks.base import Rule, Violation, join_quote, pluralize
from kubestrata.pss.view import PodView

Found = list[tuple[int, str]]  # (volume index, volume name)


class HostPathVolumes(Rule[Found]):
    check = "hostPathVolumes"

    def find(self, p: PodView) -> Found | None:
        vols = p.spec.get("volumes")
        if not vols:
            return None
        found = [
            (i, v.get("name") or "")
            for i, v in enumerate(vols)
            if v is not None and v.get("hostPath") is not None
        ]
        return found or None

    def word(self, found: Found) -> tuple[str, str]:
        names = [n for _, n in found]
        return "hostPath volumes", f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)}"

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        return [
            Violation(
                self.check,
                "hostPath volumes",
                f'volume "{name}"',
                f"{p.spec_path}.volumes[{i}].hostPath",
                None,
                None,
                "replace the hostPath volume with emptyDir, a persistentVolumeClaim, a configMap or a secret",
            )
            for i, name in found
        ]


host_path_volumes_1_0 = HostPathVolumes()
