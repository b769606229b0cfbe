"""The Pod Security Standards checks, ported from kubernetes/pod-security-admission policy/check_*.go.

Each check function takes a PodView and an optional list. It returns None when the pod passes, or
(ForbiddenReason, ForbiddenDetail) with upstream's exact strings. When a list is given it also
appends one Violation per offending field, with the field path and a minimal JSON patch; the hot
path passes None, so explaining costs nothing unless asked for.

CHECKS is the versioned table (id, level, variants by minimum minor version, override ids) that
registry.py inflates per version exactly as upstream's registry.go does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubestrata.findings import json_pointer, pointer_token
from kubestrata.pss.api import Level
from kubestrata.pss.view import VOLUME_SOURCES, PodView

Result = tuple[str, str] | None


@dataclass(slots=True)
class Violation:
    """One offending field: the check, the container (None for pod-level fields), the field path,
    upstream's reason, a detail for this field alone, and a minimal RFC 6902 fix when one is safe."""

    check: str
    reason: str
    detail: str
    path: str
    container: str | None = None
    fix: list[dict[str, Any]] | None = None
    fix_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "container": self.container,
            "path": self.path,
            "reason": self.reason,
            "detail": self.detail,
            "fix": self.fix,
            "fixNote": self.fix_note,
        }


CheckFn = Callable[[PodView, "list[Violation] | None"], Result]


@dataclass(frozen=True, slots=True)
class Variant:
    minimum_minor: int
    fn: CheckFn
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckDef:
    id: str
    level: Level
    variants: tuple[Variant, ...] = field(default=())


# --- helpers (policy/helpers.go) ------------------------------------------------------------------


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def join_quote(items: list[str]) -> str:
    if not items:
        return ""
    return '"' + '", "'.join(items) + '"'


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str) -> str:
    """Go's %q (strconv.Quote) for the annotation values upstream formats with it."""
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            cp = ord(ch)
            if cp < 0x80:
                out.append(f"\\x{cp:02x}")
            elif cp <= 0xFFFF:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def _containers(names: list[str]) -> str:
    return f"{pluralize('container', 'containers', len(names))} {join_quote(names)}"


def _setter_path(p: PodView, container_path: str | None) -> str:
    return container_path if container_path is not None else p.spec_path


def set_patch(base: str, obj: Any, keys: list[str], value: Any) -> list[dict[str, Any]]:
    """The smallest JSON patch that sets obj[keys...] = value under the dotted path base, creating
    only the missing parents (RFC 6902 "add" replaces an existing member)."""
    node = obj
    walked = base
    for i, k in enumerate(keys):
        nxt = node.get(k) if isinstance(node, dict) else None
        if i == len(keys) - 1 or not isinstance(nxt, dict):
            val: Any = value
            for rk in reversed(keys[i + 1 :]):
                val = {rk: val}
            return [{"op": "add", "path": json_pointer(f"{walked}.{k}"), "value": val}]
        node = nxt
        walked = f"{walked}.{k}"
    raise AssertionError("no keys")  # pragma: no cover


def _remove(path: str) -> list[dict[str, Any]]:
    return [{"op": "remove", "path": json_pointer(path)}]


def _annotation_pointer(meta_path: str, key: str) -> str:
    return json_pointer(f"{meta_path}.annotations") + "/" + pointer_token(key)


def _host_users_exempt(fn: CheckFn) -> CheckFn:
    """The v1.35 variants: user-namespaced pods (spec.hostUsers: false) are exempt."""

    def variant(p: PodView, out: list[Violation] | None) -> Result:
        if p.spec.get("hostUsers") is False:
            return None
        return fn(p, out)

    variant.__name__ = fn.__name__.rsplit("_1_", 1)[0] + "_1_35"
    return variant


_IMAGE_NOTE = "may require an image change: the image must run as a non-root user"

# --- baseline ------------------------------------------------------------------------------------

APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _apparmor_annotation_ok(v: str) -> bool:
    return not v or v == "runtime/default" or v.startswith("localhost/")


def app_armor_profile_1_0(p: PodView, out: list[Violation] | None) -> Result:
    bad_setters: list[str] = []
    bad_values: set[str] = set()
    prof = p.psc.get("appArmorProfile")
    if prof is not None and prof.get("type") not in _APPARMOR_TYPES:
        t = prof.get("type") or ""
        bad_setters.append("pod")
        bad_values.add(t)
        if out is not None:
            path = f"{p.spec_path}.securityContext.appArmorProfile.type"
            out.append(
                Violation(
                    "appArmorProfile",
                    "forbidden AppArmor profile",
                    f'pod must not set AppArmor profile type to "{t}"',
                    path,
                    None,
                    set_patch(
                        p.spec_path,
                        p.spec,
                        ["securityContext", "appArmorProfile"],
                        {"type": "RuntimeDefault"},
                    ),
                )
            )
    bad_containers: list[str] = []
    for name, sc, c, cpath in p.containers:
        prof = sc.get("appArmorProfile")
        if prof is not None and prof.get("type") not in _APPARMOR_TYPES:
            t = prof.get("type") or ""
            bad_containers.append(name)
            bad_values.add(t)
            if out is not None:
                out.append(
                    Violation(
                        "appArmorProfile",
                        "forbidden AppArmor profile",
                        f'container "{name}" must not set AppArmor profile type to "{t}"',
                        f"{cpath}.securityContext.appArmorProfile.type",
                        name,
                        set_patch(
                            cpath, c, ["securityContext", "appArmorProfile"], {"type": "RuntimeDefault"}
                        ),
                    )
                )
    if bad_containers:
        bad_setters.append(_containers(bad_containers))
    forbidden_annotations: list[str] = []
    for k, v in p.annotations.items():
        if k.startswith(APPARMOR_ANNOTATION_PREFIX) and not _apparmor_annotation_ok(v):
            entry = f"{k}={go_quote(v)}"
            forbidden_annotations.append(entry)
            if out is not None:
                out.append(
                    Violation(
                        "appArmorProfile",
                        "forbidden AppArmor profile",
                        f'annotation must not set AppArmor profile type to "{entry}"',
                        f"{p.meta_path}.annotations[{k}]",
                        k[len(APPARMOR_ANNOTATION_PREFIX) :] or None,
                        [
                            {
                                "op": "replace",
                                "path": _annotation_pointer(p.meta_path, k),
                                "value": "runtime/default",
                            }
                        ],
                    )
                )
    bad_list = sorted(bad_values)
    if forbidden_annotations:
        forbidden_annotations.sort()
        bad_list.extend(forbidden_annotations)
        bad_setters.append(pluralize("annotation", "annotations", len(forbidden_annotations)))
    if bad_setters:
        return (
            pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(bad_list)),
            f"{' and '.join(bad_setters)} must not set AppArmor profile type to {join_quote(bad_list)}",
        )
    return None


CAPABILITIES_ALLOWED_1_0 = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def _caps_add_violation(
    check: str, title: str, name: str, cpath: str, bad: list[str], keep: list[Any]
) -> Violation:
    """A container adds capabilities the level forbids: keep only the allowed ones (or drop add)."""
    path = f"{cpath}.securityContext.capabilities.add"
    return Violation(
        check,
        title,
        f'container "{name}" must not include {join_quote(sorted(set(bad)))} in securityContext.capabilities.add',
        path,
        name,
        [{"op": "replace", "path": json_pointer(path), "value": keep}] if keep else _remove(path),
        "the process may need one of these capabilities; confirm before removing",
    )


def capabilities_baseline_1_0(p: PodView, out: list[Violation] | None) -> Result:
    bad_containers: list[str] = []
    non_default: set[str] = set()
    for name, sc, _c, cpath in p.containers:
        caps = sc.get("capabilities")
        if caps is None:
            continue
        add = caps.get("add")
        if not add:
            continue
        bad = [str(x or "") for x in add if x not in CAPABILITIES_ALLOWED_1_0]
        if bad:
            bad_containers.append(name)
            non_default.update(bad)
            if out is not None:
                keep = [x for x in add if x in CAPABILITIES_ALLOWED_1_0]
                out.append(
                    _caps_add_violation(
                        "capabilities_baseline", "non-default capabilities", name, cpath, bad, keep
                    )
                )
    if bad_containers:
        return (
            "non-default capabilities",
            f"{_containers(bad_containers)} must not include {join_quote(sorted(non_default))} "
            "in securityContext.capabilities.add",
        )
    return None


def host_namespaces_1_0(p: PodView, out: list[Violation] | None) -> Result:
    spec = p.spec
    found = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    if not found:
        return None
    if out is not None:
        for item in found:
            k = item.split("=", 1)[0]
            path = f"{p.spec_path}.{k}"
            out.append(
                Violation(
                    "hostNamespaces",
                    "host namespaces",
                    item,
                    path,
                    None,
                    _remove(path),
                    "the workload may rely on the host namespace",
                )
            )
    return "host namespaces", ", ".join(found)


def _volume_sources(p: PodView) -> list[dict[str, Any]]:
    vols = p.spec.get("volumes")
    return [v if v is not None else {} for v in vols] if vols else []


def host_path_volumes_1_0(p: PodView, out: list[Violation] | None) -> Result:
    names = []
    for i, v in enumerate(_volume_sources(p)):
        if v.get("hostPath") is not None:
            names.append(v.get("name") or "")
            if out is not None:
                out.append(
                    Violation(
                        "hostPathVolumes",
                        "hostPath volumes",
                        f'volume "{v.get("name") or ""}"',
                        f"{p.spec_path}.volumes[{i}].hostPath",
                        None,
                        None,
                        "replace the hostPath volume with emptyDir, a persistentVolumeClaim, a configMap "
                        "or a secret",
                    )
                )
    if names:
        return "hostPath volumes", f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)}"
    return None


def host_ports_1_0(p: PodView, out: list[Violation] | None) -> Result:
    bad_containers: list[str] = []
    ports_seen: set[str] = set()
    host_network = p.spec.get("hostNetwork") is True
    for name, _sc, c, cpath in p.containers:
        ports = c.get("ports")
        if not ports:
            continue
        valid = True
        # the API server defaults hostPort to containerPort for host-network pods (init and
        # regular containers: defaultHostNetworkPorts), so PSA sees those ports as host ports;
        # pod templates are no longer defaulted that way (DefaultHostNetworkHostPortsInPodTemplates)
        defaulted = host_network and not p.template and ".ephemeralContainers[" not in cpath
        for j, port in enumerate(ports):
            hp = port.get("hostPort") if port is not None else None
            if not hp and defaulted and port is not None:
                hp = port.get("containerPort")
            if hp:
                valid = False
                ports_seen.add(str(hp))
                if out is not None:
                    path = f"{cpath}.ports[{j}].hostPort"
                    explicit = bool(port.get("hostPort"))
                    out.append(
                        Violation(
                            "hostPorts",
                            "hostPort",
                            f'container "{name}" uses hostPort {hp}',
                            path,
                            name,
                            _remove(path) if explicit else None,
                            "clients reaching the node port must use a Service instead"
                            if explicit
                            else "defaulted from containerPort because the pod sets hostNetwork=true",
                        )
                    )
        if not valid:
            bad_containers.append(name)
    if bad_containers:
        n = len(bad_containers)
        return (
            "hostPort",
            f"{_containers(bad_containers)} {pluralize('uses', 'use', n)} "
            f"{pluralize('hostPort', 'hostPorts', len(ports_seen))} {', '.join(sorted(ports_seen))}",
        )
    return None


_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _handler_hosts(handler: Any, base: str) -> list[tuple[str, str]]:
    """(host, path) for each set host of a probe or lifecycle handler."""
    if handler is None:
        return []
    found = []
    for kind in ("httpGet", "tcpSocket"):
        h = handler.get(kind)
        if h is not None and h.get("host"):
            found.append((h["host"], f"{base}.{kind}.host"))
    return found


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


def host_probes_and_host_lifecycle_1_34(p: PodView, out: list[Violation] | None) -> Result:
    bad_containers: set[str] = set()
    hosts: set[str] = set()
    for name, _sc, c, cpath in p.containers:
        if not _any_host(c):
            continue
        found: list[tuple[str, str]] = []
        for probe in _PROBES:
            pr = c.get(probe)
            if pr is not None:
                found += _handler_hosts(pr, f"{cpath}.{probe}")
        lc = c.get("lifecycle")
        if lc is not None:
            found += _handler_hosts(lc.get("postStart"), f"{cpath}.lifecycle.postStart")
            found += _handler_hosts(lc.get("preStop"), f"{cpath}.lifecycle.preStop")
        if found:
            bad_containers.add(name)
            for host, path in found:
                hosts.add(host)
                if out is not None:
                    out.append(
                        Violation(
                            "hostProbesAndHostLifecycle",
                            "probe or lifecycle host",
                            f'container "{name}" uses probe or lifecycle host "{host}"',
                            path,
                            name,
                            _remove(path),
                            "without host the kubelet targets the pod IP; make the process listen there",
                        )
                    )
    if bad_containers:
        n = len(bad_containers)
        return (
            "probe or lifecycle host",
            f"{_containers(sorted(bad_containers))} {pluralize('uses', 'use', n)} "
            f"{pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} "
            f"{join_quote(sorted(hosts))}",
        )
    return None


def privileged_1_0(p: PodView, out: list[Violation] | None) -> Result:
    bad = []
    for name, sc, _c, cpath in p.containers:
        if sc.get("privileged") is True:
            bad.append(name)
            if out is not None:
                path = f"{cpath}.securityContext.privileged"
                out.append(
                    Violation(
                        "privileged",
                        "privileged",
                        f'container "{name}" must not set securityContext.privileged=true',
                        path,
                        name,
                        [{"op": "replace", "path": json_pointer(path), "value": False}],
                        "the workload may need specific capabilities instead",
                    )
                )
    if bad:
        return "privileged", f"{_containers(bad)} must not set securityContext.privileged=true"
    return None


def _proc_mount(p: PodView, out: list[Violation] | None, check_id: str) -> Result:
    bad: list[str] = []
    types: set[str] = set()
    for name, sc, _c, cpath in p.containers:
        pm = sc.get("procMount")
        if pm is not None and pm != "Default":
            bad.append(name)
            types.add(pm)
            if out is not None:
                path = f"{cpath}.securityContext.procMount"
                out.append(
                    Violation(
                        check_id,
                        "procMount",
                        f'container "{name}" must not set securityContext.procMount to "{pm}"',
                        path,
                        name,
                        [{"op": "replace", "path": json_pointer(path), "value": "Default"}],
                    )
                )
    if bad:
        return (
            "procMount",
            f"{_containers(bad)} must not set securityContext.procMount to {join_quote(sorted(types))}",
        )
    return None


def proc_mount_1_0(p: PodView, out: list[Violation] | None) -> Result:
    return _proc_mount(p, out, "procMount")


# user-namespaced pods (hostUsers: false) may unmask /proc: KEP-127, GA relaxation in policy v1.35
proc_mount_1_35 = _host_users_exempt(proc_mount_1_0)


SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux(allowed: frozenset[str]) -> CheckFn:
    def se_linux_options(p: PodView, out: list[Violation] | None) -> Result:
        bad_setters: list[str] = []
        bad_types: set[str] = set()
        flags = {"user": False, "role": False}

        def valid(opts: dict[str, Any], base: str, container: str | None) -> bool:
            ok = True
            t = opts.get("type") or ""
            bad_fields = []
            if t not in allowed:
                ok = False
                bad_types.add(t)
                bad_fields.append(("type", f'type "{t}"'))
            for k in ("user", "role"):
                if opts.get(k):
                    ok = False
                    flags[k] = True
                    bad_fields.append((k, f"{k} may not be set"))
            if out is not None:
                who = "pod" if container is None else f'container "{container}"'
                for k, msg in bad_fields:
                    path = f"{base}.securityContext.seLinuxOptions.{k}"
                    out.append(
                        Violation(
                            "seLinuxOptions",
                            "seLinuxOptions",
                            f"{who} set forbidden securityContext.seLinuxOptions: {msg}",
                            path,
                            container,
                            _remove(path),
                        )
                    )
            return ok

        opts = p.psc.get("seLinuxOptions")
        if opts is not None and not valid(opts, p.spec_path, None):
            bad_setters.append("pod")
        bad_containers = []
        for name, sc, _c, cpath in p.containers:
            opts = sc.get("seLinuxOptions")
            if opts is not None and not valid(opts, cpath, name):
                bad_containers.append(name)
        if bad_containers:
            bad_setters.append(_containers(bad_containers))
        if not bad_setters:
            return None
        bad_data = []
        if bad_types:
            bad_data.append(f"{pluralize('type', 'types', len(bad_types))} {join_quote(sorted(bad_types))}")
        if flags["user"]:
            bad_data.append("user may not be set")
        if flags["role"]:
            bad_data.append("role may not be set")
        return (
            "seLinuxOptions",
            f"{' and '.join(bad_setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(bad_data)}",
        )

    return se_linux_options


SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
_SECCOMP_TYPES = frozenset({"Localhost", "RuntimeDefault"})


def _seccomp_annotation_ok(v: str) -> bool:
    return v == "runtime/default" or v == "docker/default" or v.startswith("localhost/")


def seccomp_profile_baseline_1_0(p: PodView, out: list[Violation] | None) -> Result:
    ann = p.annotations
    if not ann:
        return None
    forbidden: set[str] = set()
    keys = [SECCOMP_POD_ANNOTATION] + [SECCOMP_CONTAINER_ANNOTATION_PREFIX + c[0] for c in p.containers]
    for key in keys:
        val = ann.get(key)
        if val is not None and not _seccomp_annotation_ok(val):
            entry = f"{key}={go_quote(val)}"
            if entry in forbidden:
                continue
            forbidden.add(entry)
            if out is not None:
                out.append(
                    Violation(
                        "seccompProfile_baseline",
                        "seccompProfile",
                        f"forbidden annotation {entry}",
                        f"{p.meta_path}.annotations[{key}]",
                        None
                        if key == SECCOMP_POD_ANNOTATION
                        else key[len(SECCOMP_CONTAINER_ANNOTATION_PREFIX) :],
                        [
                            {
                                "op": "replace",
                                "path": _annotation_pointer(p.meta_path, key),
                                "value": "runtime/default",
                            }
                        ],
                    )
                )
    if forbidden:
        return (
            "seccompProfile",
            f"forbidden {pluralize('annotation', 'annotations', len(forbidden))} {', '.join(sorted(forbidden))}",
        )
    return None


def _seccomp_fix(base: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    return set_patch(base, obj, ["securityContext", "seccompProfile"], {"type": "RuntimeDefault"})


def _seccomp(p: PodView, out: list[Violation] | None, check_id: str, required: bool) -> Result:
    bad_setters: list[str] = []
    bad_values: set[str] = set()
    pod_set = False
    prof = p.psc.get("seccompProfile")
    if prof is not None:
        t = prof.get("type")
        if t not in _SECCOMP_TYPES:
            bad_setters.append("pod")
            bad_values.add(t or "")
            if out is not None:
                out.append(
                    Violation(
                        check_id,
                        "seccompProfile",
                        f'pod must not set securityContext.seccompProfile.type to "{t or ""}"',
                        f"{p.spec_path}.securityContext.seccompProfile.type",
                        None,
                        _seccomp_fix(p.spec_path, p.spec),
                    )
                )
        else:
            pod_set = True
    explicit: list[str] = []
    implicit: list[str] = []
    for name, sc, c, cpath in p.containers:
        prof = sc.get("seccompProfile")
        if prof is not None:
            t = prof.get("type")
            if t not in _SECCOMP_TYPES:
                explicit.append(name)
                bad_values.add(t or "")
                if out is not None:
                    out.append(
                        Violation(
                            check_id,
                            "seccompProfile",
                            f'container "{name}" must not set securityContext.seccompProfile.type to "{t or ""}"',
                            f"{cpath}.securityContext.seccompProfile.type",
                            name,
                            _seccomp_fix(cpath, c),
                        )
                    )
        elif required and not pod_set:
            implicit.append(name)
    if explicit:
        bad_setters.append(_containers(explicit))
    if bad_setters:
        return (
            "seccompProfile",
            f"{' and '.join(bad_setters)} must not set securityContext.seccompProfile.type to "
            f"{join_quote(sorted(bad_values))}",
        )
    if implicit:
        if out is not None:
            out.append(
                Violation(
                    check_id,
                    "seccompProfile",
                    f"pod or {_containers(implicit)} must set securityContext.seccompProfile.type to "
                    '"RuntimeDefault" or "Localhost"',
                    f"{p.spec_path}.securityContext.seccompProfile",
                    None,
                    _seccomp_fix(p.spec_path, p.spec),
                )
            )
        return (
            "seccompProfile",
            f'pod or {_containers(implicit)} must set securityContext.seccompProfile.type to "RuntimeDefault" '
            'or "Localhost"',
        )
    return None


def seccomp_profile_baseline_1_19(p: PodView, out: list[Violation] | None) -> Result:
    return _seccomp(p, out, "seccompProfile_baseline", required=False)


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


def _sysctls(allowed: frozenset[str]) -> CheckFn:
    def sysctls(p: PodView, out: list[Violation] | None) -> Result:
        items = p.psc.get("sysctls")
        if not items:
            return None
        bad: list[str] = []
        bad_idx: list[int] = []
        for i, s in enumerate(items):
            name = (s.get("name") if s is not None else None) or ""
            if name not in allowed:
                bad.append(name)
                bad_idx.append(i)
        if not bad:
            return None
        if out is not None:
            base = f"{p.spec_path}.securityContext.sysctls"
            for i, name in zip(bad_idx, bad, strict=True):
                out.append(
                    Violation(
                        "sysctls",
                        "forbidden sysctls",
                        name,
                        f"{base}[{i}].name",
                        None,
                        _remove(f"{base}[{i}]"),
                        "remove forbidden sysctls from the highest index down",
                    )
                )
        return "forbidden sysctls", ", ".join(bad)

    return sysctls


def windows_host_process_1_0(p: PodView, out: list[Violation] | None) -> Result:
    setters = []
    wo = p.psc.get("windowsOptions")
    if wo is not None and wo.get("hostProcess") is True:
        setters.append("pod")
        if out is not None:
            path = f"{p.spec_path}.securityContext.windowsOptions.hostProcess"
            out.append(
                Violation(
                    "windowsHostProcess",
                    "hostProcess",
                    "pod must not set securityContext.windowsOptions.hostProcess=true",
                    path,
                    None,
                    [{"op": "replace", "path": json_pointer(path), "value": False}],
                )
            )
    bad = []
    for name, sc, _c, cpath in p.containers:
        wo = sc.get("windowsOptions")
        if wo is not None and wo.get("hostProcess") is True:
            bad.append(name)
            if out is not None:
                path = f"{cpath}.securityContext.windowsOptions.hostProcess"
                out.append(
                    Violation(
                        "windowsHostProcess",
                        "hostProcess",
                        f'container "{name}" must not set securityContext.windowsOptions.hostProcess=true',
                        path,
                        name,
                        [{"op": "replace", "path": json_pointer(path), "value": False}],
                    )
                )
    if bad:
        setters.append(_containers(bad))
    if setters:
        return (
            "hostProcess",
            f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true",
        )
    return None


# --- restricted ----------------------------------------------------------------------------------


def allow_privilege_escalation_1_8(p: PodView, out: list[Violation] | None) -> Result:
    bad = []
    for name, sc, c, cpath in p.containers:
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(name)
            if out is not None:
                out.append(
                    Violation(
                        "allowPrivilegeEscalation",
                        "allowPrivilegeEscalation != false",
                        f'container "{name}" must set securityContext.allowPrivilegeEscalation=false',
                        f"{cpath}.securityContext.allowPrivilegeEscalation",
                        name,
                        set_patch(cpath, c, ["securityContext", "allowPrivilegeEscalation"], False),
                    )
                )
    if bad:
        return (
            "allowPrivilegeEscalation != false",
            f"{_containers(bad)} must set securityContext.allowPrivilegeEscalation=false",
        )
    return None


def _windows_exempt(fn: CheckFn) -> CheckFn:
    """The v1.25 variants: pods with spec.os.name=windows are exempt (Linux-only fields)."""

    def variant(p: PodView, out: list[Violation] | None) -> Result:
        if p.windows:
            return None
        return fn(p, out)

    variant.__name__ = fn.__name__.rsplit("_1_", 1)[0] + "_1_25"
    return variant


def capabilities_restricted_1_22(p: PodView, out: list[Violation] | None) -> Result:
    missing_drop: list[str] = []
    adding: list[str] = []
    forbidden: set[str] = set()
    for name, sc, c, cpath in p.containers:
        caps = sc.get("capabilities")
        if caps is None:
            missing_drop.append(name)
            if out is not None:
                out.append(_drop_all_violation(name, cpath, c))
            continue
        drop = caps.get("drop")
        if not drop or "ALL" not in drop:
            missing_drop.append(name)
            if out is not None:
                out.append(_drop_all_violation(name, cpath, c))
        add = caps.get("add")
        if add:
            bad = [str(x or "") for x in add if x != "NET_BIND_SERVICE"]
            if bad:
                adding.append(name)
                forbidden.update(bad)
                if out is not None:
                    keep = [x for x in add if x == "NET_BIND_SERVICE"]
                    out.append(
                        _caps_add_violation(
                            "capabilities_restricted", "unrestricted capabilities", name, cpath, bad, keep
                        )
                    )
    details = []
    if missing_drop:
        details.append(f'{_containers(missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(
            f"{_containers(adding)} must not include {join_quote(sorted(forbidden))} in "
            "securityContext.capabilities.add"
        )
    if details:
        return "unrestricted capabilities", "; ".join(details)
    return None


def _drop_all_violation(name: str, cpath: str, c: dict[str, Any]) -> Violation:
    sc = c.get("securityContext")
    caps = sc.get("capabilities") if isinstance(sc, dict) else None
    drop = caps.get("drop") if isinstance(caps, dict) else None
    if isinstance(drop, list):
        fix = [
            {
                "op": "add",
                "path": json_pointer(f"{cpath}.securityContext.capabilities.drop") + "/-",
                "value": "ALL",
            }
        ]
    else:
        fix = set_patch(cpath, c, ["securityContext", "capabilities", "drop"], ["ALL"])
    return Violation(
        "capabilities_restricted",
        "unrestricted capabilities",
        f'container "{name}" must set securityContext.capabilities.drop=["ALL"]',
        f"{cpath}.securityContext.capabilities.drop",
        name,
        fix,
    )


def proc_mount_restricted_1_35(p: PodView, out: list[Violation] | None) -> Result:
    return _proc_mount(p, out, "procMount_restricted")


_ALLOWED_VOLUME_SOURCES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
_ALLOWED_VOLUME_SOURCE_SET = frozenset(_ALLOWED_VOLUME_SOURCES)
_RESTRICTED_VOLUME_SOURCES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


def restricted_volumes_1_0(p: PodView, out: list[Violation] | None) -> Result:
    vols = p.spec.get("volumes")
    if not vols:
        return None
    bad: list[str] = []
    types: set[str] = set()
    for i, v in enumerate(vols):
        if v is None:
            v = {}
        allowed = False
        for k, src in v.items():
            if src is not None and k in _ALLOWED_VOLUME_SOURCE_SET:
                allowed = True
                break
        if allowed:
            continue
        t = next((s for s in _RESTRICTED_VOLUME_SOURCES if v.get(s) is not None), None)
        if t is None:
            if not any(v.get(s) is not None for s in VOLUME_SOURCES):
                # the API server defaults a volume without a source to emptyDir (SetDefaults_Volume)
                # before admission sees it, so PSA judges an emptyDir
                continue
            t = "unknown"
        name = v.get("name") or ""
        bad.append(name)
        types.add(t)
        if out is not None:
            out.append(
                Violation(
                    "restrictedVolumes",
                    "restricted volume types",
                    f'volume "{name}" uses restricted volume type "{t}"',
                    f"{p.spec_path}.volumes[{i}]" + (f".{t}" if t != "unknown" else ""),
                    None,
                    None,
                    "use a configMap, csi, downwardAPI, emptyDir, ephemeral, image, "
                    "persistentVolumeClaim, projected or secret volume instead",
                )
            )
    if bad:
        n = len(bad)
        return (
            "restricted volume types",
            f"{pluralize('volume', 'volumes', n)} {join_quote(bad)} {pluralize('uses', 'use', n)} "
            f"{pluralize('restricted volume type', 'restricted volume types', len(types))} "
            f"{join_quote(sorted(types))}",
        )
    return None


def run_as_non_root_1_0(p: PodView, out: list[Violation] | None) -> Result:
    bad_setters: list[str] = []
    pod_true = False
    v = p.psc.get("runAsNonRoot")
    if v is not None:
        if v is False:
            bad_setters.append("pod")
            if out is not None:
                path = f"{p.spec_path}.securityContext.runAsNonRoot"
                out.append(
                    Violation(
                        "runAsNonRoot",
                        "runAsNonRoot != true",
                        "pod must not set securityContext.runAsNonRoot=false",
                        path,
                        None,
                        [{"op": "replace", "path": json_pointer(path), "value": True}],
                        _IMAGE_NOTE,
                    )
                )
        else:
            pod_true = True
    explicit: list[str] = []
    implicit: list[str] = []
    for name, sc, _c, cpath in p.containers:
        v = sc.get("runAsNonRoot")
        if v is not None:
            if v is False:
                explicit.append(name)
                if out is not None:
                    path = f"{cpath}.securityContext.runAsNonRoot"
                    out.append(
                        Violation(
                            "runAsNonRoot",
                            "runAsNonRoot != true",
                            f'container "{name}" must not set securityContext.runAsNonRoot=false',
                            path,
                            name,
                            [{"op": "replace", "path": json_pointer(path), "value": True}],
                            _IMAGE_NOTE,
                        )
                    )
        elif not pod_true:
            implicit.append(name)
    if explicit:
        bad_setters.append(_containers(explicit))
    if bad_setters:
        return (
            "runAsNonRoot != true",
            f"{' and '.join(bad_setters)} must not set securityContext.runAsNonRoot=false",
        )
    if implicit:
        if out is not None:
            out.append(
                Violation(
                    "runAsNonRoot",
                    "runAsNonRoot != true",
                    f"pod or {_containers(implicit)} must set securityContext.runAsNonRoot=true",
                    f"{p.spec_path}.securityContext.runAsNonRoot",
                    None,
                    set_patch(p.spec_path, p.spec, ["securityContext", "runAsNonRoot"], True),
                    _IMAGE_NOTE,
                )
            )
        return (
            "runAsNonRoot != true",
            f"pod or {_containers(implicit)} must set securityContext.runAsNonRoot=true",
        )
    return None


run_as_non_root_1_35 = _host_users_exempt(run_as_non_root_1_0)


def run_as_user_1_23(p: PodView, out: list[Violation] | None) -> Result:
    bad_setters: list[str] = []
    if p.psc.get("runAsUser") == 0:
        bad_setters.append("pod")
        if out is not None:
            path = f"{p.spec_path}.securityContext.runAsUser"
            out.append(
                Violation(
                    "runAsUser",
                    "runAsUser=0",
                    "pod must not set runAsUser=0",
                    path,
                    None,
                    _remove(path),
                    _IMAGE_NOTE,
                )
            )
    bad: list[str] = []
    for name, sc, _c, cpath in p.containers:
        if sc.get("runAsUser") == 0:
            bad.append(name)
            if out is not None:
                path = f"{cpath}.securityContext.runAsUser"
                out.append(
                    Violation(
                        "runAsUser",
                        "runAsUser=0",
                        f'container "{name}" must not set runAsUser=0',
                        path,
                        name,
                        _remove(path),
                        _IMAGE_NOTE,
                    )
                )
    if bad:
        bad_setters.append(_containers(bad))
    if bad_setters:
        return "runAsUser=0", f"{' and '.join(bad_setters)} must not set runAsUser=0"
    return None


run_as_user_1_35 = _host_users_exempt(run_as_user_1_23)


def seccomp_profile_restricted_1_19(p: PodView, out: list[Violation] | None) -> Result:
    return _seccomp(p, out, "seccompProfile_restricted", required=True)


# --- the table -----------------------------------------------------------------------------------

B, R = Level.BASELINE, Level.RESTRICTED

CHECKS: tuple[CheckDef, ...] = (
    CheckDef("appArmorProfile", B, (Variant(0, app_armor_profile_1_0),)),
    CheckDef("capabilities_baseline", B, (Variant(0, capabilities_baseline_1_0),)),
    CheckDef("hostNamespaces", B, (Variant(0, host_namespaces_1_0),)),
    CheckDef("hostPathVolumes", B, (Variant(0, host_path_volumes_1_0),)),
    CheckDef("hostPorts", B, (Variant(0, host_ports_1_0),)),
    CheckDef("hostProbesAndHostLifecycle", B, (Variant(34, host_probes_and_host_lifecycle_1_34),)),
    CheckDef("privileged", B, (Variant(0, privileged_1_0),)),
    CheckDef("procMount", B, (Variant(0, proc_mount_1_0), Variant(35, proc_mount_1_35))),
    CheckDef(
        "seLinuxOptions",
        B,
        (Variant(0, _selinux(SELINUX_TYPES_1_0)), Variant(31, _selinux(SELINUX_TYPES_1_31))),
    ),
    CheckDef(
        "seccompProfile_baseline",
        B,
        (Variant(0, seccomp_profile_baseline_1_0), Variant(19, seccomp_profile_baseline_1_19)),
    ),
    CheckDef(
        "sysctls",
        B,
        (
            Variant(0, _sysctls(SYSCTLS_ALLOWED_1_0)),
            Variant(27, _sysctls(SYSCTLS_ALLOWED_1_27)),
            Variant(29, _sysctls(SYSCTLS_ALLOWED_1_29)),
            Variant(32, _sysctls(SYSCTLS_ALLOWED_1_32)),
            Variant(37, _sysctls(SYSCTLS_ALLOWED_1_37)),
        ),
    ),
    CheckDef("windowsHostProcess", B, (Variant(0, windows_host_process_1_0),)),
    CheckDef(
        "allowPrivilegeEscalation",
        R,
        (
            Variant(8, allow_privilege_escalation_1_8),
            Variant(25, _windows_exempt(allow_privilege_escalation_1_8)),
        ),
    ),
    CheckDef(
        "capabilities_restricted",
        R,
        (
            Variant(22, capabilities_restricted_1_22, ("capabilities_baseline",)),
            Variant(25, _windows_exempt(capabilities_restricted_1_22), ("capabilities_baseline",)),
        ),
    ),
    CheckDef("procMount_restricted", R, (Variant(35, proc_mount_restricted_1_35, ("procMount",)),)),
    CheckDef("restrictedVolumes", R, (Variant(0, restricted_volumes_1_0, ("hostPathVolumes",)),)),
    CheckDef("runAsNonRoot", R, (Variant(0, run_as_non_root_1_0), Variant(35, run_as_non_root_1_35))),
    CheckDef("runAsUser", R, (Variant(23, run_as_user_1_23), Variant(35, run_as_user_1_35))),
    CheckDef(
        "seccompProfile_restricted",
        R,
        (
            Variant(19, seccomp_profile_restricted_1_19, ("seccompProfile_baseline",)),
            Variant(25, _windows_exempt(seccomp_profile_restricted_1_19), ("seccompProfile_baseline",)),
        ),
    ),
)
