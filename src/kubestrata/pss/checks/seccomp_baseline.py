"""Seccomp (baseline, check ``seccompProfile_baseline``, upstream check_seccompProfile_baseline.go).

Seccomp profile must not be explicitly set to Unconfined. Before v1.19 only the alpha annotations
are read; from v1.19 only the fields.

Restricted Fields (v1.0-v1.18): metadata.annotations["seccomp.security.alpha.kubernetes.io/pod"],
metadata.annotations["container.seccomp.security.alpha.kubernetes.io/<container name>"]
Allowed Values: Undefined/nil, runtime/default, docker/default, localhost/*

Restricted Fields (v1.19+): spec.securityContext.seccompProfile.type,
spec.containers[*].securityContext.seccompProfile.type,
spec.initContainers[*].securityContext.seccompProfile.type,
spec.ephemeralContainers[*].securityContext.seccompProfile.type
Allowed Values: Undefined/nil, RuntimeDefault, Localhost
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubestrata.pss.checks.base import (
    Patch,
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

SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
_TYPES = frozenset({"Localhost", "RuntimeDefault"})


def _annotation_ok(v: str) -> bool:
    return v == "runtime/default" or v == "docker/default" or v.startswith("localhost/")


Annotations = list[tuple[str, str]]  # (annotation key, "key=%q"), first occurrence of each entry


class SeccompAnnotations(Rule[Annotations]):
    check = "seccompProfile_baseline"

    def find(self, p: PodView) -> Annotations | None:
        ann = p.annotations
        if not ann:
            return None
        found: Annotations = []
        seen = set()
        keys = [SECCOMP_POD_ANNOTATION] + [SECCOMP_CONTAINER_ANNOTATION_PREFIX + c[0] for c in p.containers]
        for key in keys:
            val = ann.get(key)
            if val is not None and not _annotation_ok(val):
                entry = f"{key}={go_quote(val)}"
                if entry not in seen:
                    seen.add(entry)
                    found.append((key, entry))
        return found or None

    def word(self, found: Annotations) -> tuple[str, str]:
        entries = sorted(e for _, e in found)
        return (
            "seccompProfile",
            f"forbidden {pluralize('annotation', 'annotations', len(entries))} {', '.join(entries)}",
        )

    def explain(self, p: PodView, found: Annotations) -> list[Violation]:
        return [
            Violation(
                self.check,
                "seccompProfile",
                f"forbidden annotation {entry}",
                f"{p.meta_path}.annotations[{key}]",
                None if key == SECCOMP_POD_ANNOTATION else key[len(SECCOMP_CONTAINER_ANNOTATION_PREFIX) :],
                annotation_patch(p.meta_path, key, "runtime/default"),
            )
            for key, entry in found
        ]


@dataclass(slots=True)
class Profiles:
    pod: str | None = None  # the pod-level type, when forbidden
    containers: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)  # forbidden types
    unset: list[str] = field(default_factory=list)  # containers without one (when required)


def _fix(base: str, obj: dict[str, Any]) -> Patch:
    return set_patch(base, obj, ["securityContext", "seccompProfile"], {"type": "RuntimeDefault"})


class SeccompProfiles(Rule[Profiles]):
    """The v1.19 fields check; ``required`` is the restricted check (a valid type must be set)."""

    def __init__(self, check: str, required: bool) -> None:
        self.check, self.required = check, required

    def find(self, p: PodView) -> Profiles | None:
        pod: str | None = None
        pod_set = False
        prof = p.psc.get("seccompProfile")
        if prof is not None:
            t = prof.get("type")
            if t not in _TYPES:
                pod = t or ""
            else:
                pod_set = True
        need = self.required and not pod_set
        bad: list[tuple[str, str, dict[str, Any], str]] = []
        unset: list[str] = []
        for name, sc, c, cpath in p.containers:
            prof = sc.get("seccompProfile")
            if prof is not None:
                t = prof.get("type")
                if t not in _TYPES:
                    bad.append((name, cpath, c, t or ""))
            elif need:
                unset.append(name)
        if pod is None and not bad and not unset:
            return None
        return Profiles(pod, bad, unset)

    def word(self, found: Profiles) -> tuple[str, str]:
        setters = []
        values = {t for _, _, _, t in found.containers}
        if found.pod is not None:
            setters.append("pod")
            values.add(found.pod)
        if found.containers:
            setters.append(containers_phrase([n for n, _, _, _ in found.containers]))
        if setters:
            return (
                "seccompProfile",
                f"{setters_phrase(setters)} must not set securityContext.seccompProfile.type to "
                f"{join_quote(sorted(values))}",
            )
        return "seccompProfile", _unset_detail(found.unset)

    def explain(self, p: PodView, found: Profiles) -> list[Violation]:
        out = []
        if found.pod is not None:
            out.append(
                Violation(
                    self.check,
                    "seccompProfile",
                    f'pod must not set securityContext.seccompProfile.type to "{found.pod}"',
                    f"{p.spec_path}.securityContext.seccompProfile.type",
                    None,
                    _fix(p.spec_path, p.spec),
                )
            )
        for name, cpath, c, t in found.containers:
            out.append(
                Violation(
                    self.check,
                    "seccompProfile",
                    f'container "{name}" must not set securityContext.seccompProfile.type to "{t}"',
                    f"{cpath}.securityContext.seccompProfile.type",
                    name,
                    _fix(cpath, c),
                )
            )
        if not out and found.unset:  # upstream reports the unset ones only when nothing is set wrong
            out.append(
                Violation(
                    self.check,
                    "seccompProfile",
                    _unset_detail(found.unset),
                    f"{p.spec_path}.securityContext.seccompProfile",
                    None,
                    _fix(p.spec_path, p.spec),
                )
            )
        return out


def _unset_detail(names: list[str]) -> str:
    return (
        f'pod or {containers_phrase(names)} must set securityContext.seccompProfile.type to "RuntimeDefault" '
        'or "Localhost"'
    )


seccomp_profile_baseline_1_0 = SeccompAnnotations()
seccomp_profile_baseline_1_19 = SeccompProfiles("seccompProfile_baseline", required=False)
