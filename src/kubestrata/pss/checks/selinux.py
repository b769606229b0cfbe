"""SELinux (baseline, check ``seLinuxOptions``, upstream check_seLinuxOptions.go).

Setting the SELinux type is restricted, and setting a custom SELinux user or role option is forbidden.

Restricted Fields: spec.securityContext.seLinuxOptions.type,
spec.containers[*].securityContext.seLinuxOptions.type,
spec.initContainers[*].securityContext.seLinuxOptions.type,
spec.ephemeralContainers[*].securityContext.seLinuxOptions.type
Allowed Values: Undefined/"", container_t, container_init_t, container_kvm_t,
container_engine_t (since v1.31)

Restricted Fields: spec.securityContext.seLinuxOptions.user, spec.containers[*].securityContext.seLinuxOptions.user,
spec.initContainers[*]..., spec.ephemeralContainers[*]..., and the same for .role
Allowed Values: Undefined/""
"""

from __future__ import annotations

from kubestrata.pss.checks.base import (
    Rule,
    Violation,
    containers_phrase,
    join_quote,
    pluralize,
    remove_patch,
    setters_phrase,
    who,
)
from kubestrata.pss.view import PodView

SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}

# per offending setter (pod first, then containers): (container or None, path base,
# [(field, field detail)]) where field is type, user or role; the type's detail holds its value
Found = list[tuple[str | None, str, list[tuple[str, str]]]]


class SeLinuxOptions(Rule[Found]):
    check = "seLinuxOptions"

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed

    def _bad(self, opts: dict[str, str]) -> list[tuple[str, str]]:
        bad = []
        t = opts.get("type") or ""
        if t not in self.allowed:
            bad.append(("type", t))
        for k in ("user", "role"):
            if opts.get(k):
                bad.append((k, ""))
        return bad

    def find(self, p: PodView) -> Found | None:
        found: Found = []
        opts = p.psc.get("seLinuxOptions")
        if opts is not None:
            bad = self._bad(opts)
            if bad:
                found.append((None, p.spec_path, bad))
        for name, sc, _c, cpath in p.containers:
            opts = sc.get("seLinuxOptions")
            if opts is not None:
                bad = self._bad(opts)
                if bad:
                    found.append((name, cpath, bad))
        return found or None

    def word(self, found: Found) -> tuple[str, str]:
        setters = []
        if found[0][0] is None:
            setters.append("pod")
        names = [c for c, _, _ in found if c is not None]
        if names:
            setters.append(containers_phrase(names))
        types = sorted({v for _, _, bad in found for k, v in bad if k == "type"})
        fields = {k for _, _, bad in found for k, _ in bad}
        data = []
        if types:
            data.append(f"{pluralize('type', 'types', len(types))} {join_quote(types)}")
        for k in ("user", "role"):
            if k in fields:
                data.append(f"{k} may not be set")
        return (
            "seLinuxOptions",
            f"{setters_phrase(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}",
        )

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        out = []
        for container, base, bad in found:
            for k, v in bad:
                msg = f'type "{v}"' if k == "type" else f"{k} may not be set"
                path = f"{base}.securityContext.seLinuxOptions.{k}"
                out.append(
                    Violation(
                        self.check,
                        "seLinuxOptions",
                        f"{who(container)} set forbidden securityContext.seLinuxOptions: {msg}",
                        path,
                        container,
                        remove_patch(path),
                    )
                )
        return out


se_linux_options_1_0 = SeLinuxOptions(SELINUX_TYPES_1_0)
se_linux_options_1_31 = SeLinuxOptions(SELINUX_TYPES_1_31)
