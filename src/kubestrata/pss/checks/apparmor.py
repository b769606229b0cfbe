"""AppArmor (baseline, check ``appArmorProfile``, upstream check_appArmorProfile.go).

On supported hosts, the RuntimeDefault AppArmor profile is applied by default. The baseline policy
should prevent overriding or disabling the default AppArmor profile, or restrict overrides to an
allowed set of profiles.

Restricted Fields: spec.securityContext.appArmorProfile.type,
spec.containers[*].securityContext.appArmorProfile.type,
spec.initContainers[*].securityContext.appArmorProfile.type,
spec.ephemeralContainers[*].securityContext.appArmorProfile.type
Allowed Values: Undefined/nil, RuntimeDefault, Localhost

Restricted Fields: metadata.annotations["container.apparmor.security.beta.kubernetes.io/*"]
Allowed Values: Undefined/nil, runtime/default, localhost/*
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubestrata.pss.checks.base import (
    Rule,
    Violation,
    annotation_patch,
    containers_phrase,
    go_quote,
    join_quote,
    pluralize,
    set_patch,
    setters_phrase,
)
from kubestrata.pss.view import PodView

APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _annotation_ok(v: str) -> bool:
    return not v or v == "runtime/default" or v.startswith("localhost/")


@dataclass(slots=True)
class Found:
    pod: str | None = None  # the pod-level type, when forbidden
    containers: list[tuple[str, str, dict[str, Any], str]] = field(
        default_factory=list
    )  # name, path, c, type
    annotations: list[tuple[str, str]] = field(default_factory=list)  # key, "key=%q" (in metadata order)


class AppArmorProfile(Rule[Found]):
    check = "appArmorProfile"

    def find(self, p: PodView) -> Found | None:
        found = None
        prof = p.psc.get("appArmorProfile")
        if prof is not None and prof.get("type") not in _TYPES:
            found = Found(prof.get("type") or "")
        for name, sc, c, cpath in p.containers:
            prof = sc.get("appArmorProfile")
            if prof is not None and prof.get("type") not in _TYPES:
                found = found or Found()
                found.containers.append((name, cpath, c, prof.get("type") or ""))
        for k, v in p.annotations.items():
            if k.startswith(APPARMOR_ANNOTATION_PREFIX) and not _annotation_ok(v):
                found = found or Found()
                found.annotations.append((k, f"{k}={go_quote(v)}"))
        return found

    def word(self, found: Found) -> tuple[str, str]:
        setters = []
        values = {t for _, _, _, t in found.containers}
        if found.pod is not None:
            setters.append("pod")
            values.add(found.pod)
        if found.containers:
            setters.append(containers_phrase([n for n, _, _, _ in found.containers]))
        bad = sorted(values)
        if found.annotations:
            bad.extend(sorted(e for _, e in found.annotations))
            setters.append(pluralize("annotation", "annotations", len(found.annotations)))
        return (
            pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(bad)),
            f"{setters_phrase(setters)} must not set AppArmor profile type to {join_quote(bad)}",
        )

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        out = []
        reason = "forbidden AppArmor profile"
        default = {"type": "RuntimeDefault"}
        if found.pod is not None:
            out.append(
                Violation(
                    self.check,
                    reason,
                    f'pod must not set AppArmor profile type to "{found.pod}"',
                    f"{p.spec_path}.securityContext.appArmorProfile.type",
                    None,
                    set_patch(p.spec_path, p.spec, ["securityContext", "appArmorProfile"], default),
                )
            )
        for name, cpath, c, t in found.containers:
            out.append(
                Violation(
                    self.check,
                    reason,
                    f'container "{name}" must not set AppArmor profile type to "{t}"',
                    f"{cpath}.securityContext.appArmorProfile.type",
                    name,
                    set_patch(cpath, c, ["securityContext", "appArmorProfile"], default),
                )
            )
        for k, entry in found.annotations:
            out.append(
                Violation(
                    self.check,
                    reason,
                    f'annotation must not set AppArmor profile type to "{entry}"',
                    f"{p.meta_path}.annotations[{k}]",
                    k[len(APPARMOR_ANNOTATION_PREFIX) :] or None,
                    annotation_patch(p.meta_path, k, "runtime/default"),
                )
            )
        return out


app_armor_profile_1_0 = AppArmorProfile()
