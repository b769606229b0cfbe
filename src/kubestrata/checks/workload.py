"""Application-layer workload practices from the talk: privilege, tokens, host paths, root, resources.

Every check visits init, regular and ephemeral containers and honours pod vs container precedence.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

from kubestrata.checks.base import CheckContext, check
from kubestrata.checks.needs import known_needs_for
from kubestrata.errors import InputError
from kubestrata.findings import Evidence, Finding, Layer, Severity, json_pointer
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import WORKLOAD_KINDS, service_account_name
from kubestrata.pss.checks import set_patch

APP = Layer.APPLICATION


def _bool(v: object) -> bool | None:
    return v if isinstance(v, bool) else None


@check(
    "KS-WL-001",
    "Privileged container",
    severity=Severity.HIGH,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="A privileged container has every capability and device of the node: a container escape "
    "is one step away. Limit privilege to the system components that need it (CNI, storage "
    "drivers), which the allow-list turns into informational findings.",
    remediation="Remove securityContext.privileged or set it to false; grant only the specific "
    "capabilities the workload needs.",
    references={
        "cis-eks": ["4.2.1"],
        "nsa-cisa": ["Pod security: non-privileged containers"],
        "mitre": ["T1611 Escape to Host"],
        "pss": ["baseline: privileged"],
    },
)
def privileged_container(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    tpl = ctx.template(obj)
    if tpl is None:
        return
    meta = privileged_container.meta
    for c in ctx.containers(obj):
        if c.security_context.get("privileged") is not True:
            continue
        needs = known_needs_for(obj, ctx)
        needed = needs.container(c.name).privileged
        allowed = needed or any(
            fnmatchcase(obj.namespace, e.namespace)
            and fnmatchcase(obj.name, e.name)
            and fnmatchcase(obj.kind, e.kind)
            and fnmatchcase(c.name, e.container)
            for e in ctx.config.privileged_allowlist
        )
        path = f"{c.path}.securityContext.privileged"
        yield meta.finding(
            obj,
            f"container {c.name!r} runs privileged"
            + (
                f": a known need of {needs.component}"
                if needed
                else (" (allow-listed system component)" if allowed else "")
            ),
            severity=Severity.INFO if allowed else None,
            container=c.name,
            evidence=[Evidence(path, True, False)],
            fix=[{"op": "replace", "path": json_pointer(path), "value": False}],
            fix_note="the workload may need specific capabilities instead",
        )


def _bound_service_accounts(ctx: CheckContext) -> set[tuple[str, str]] | None:
    """(namespace, name) of ServiceAccounts that some RoleBinding or ClusterRoleBinding names, directly
    or through the system:serviceaccounts groups; ``("*", "*")`` and ``(ns, "*")`` for group grants.
    None when the input has no bindings or the source could not list them (then we cannot tell)."""

    def build() -> set[tuple[str, str]] | None:
        if not ctx.rbac_present or {"RoleBinding", "ClusterRoleBinding"} & ctx.cluster.missing_kinds:
            return None  # no bindings in the input, or some could not be read: we cannot tell
        bound: set[tuple[str, str]] = set()
        for b in ctx.cluster.of_kind("RoleBinding", "ClusterRoleBinding"):
            for s in b.raw.get("subjects") or []:
                if not isinstance(s, dict):
                    continue
                kind, name = s.get("kind"), str(s.get("name") or "")
                if kind == "ServiceAccount":
                    bound.add((str(s.get("namespace") or b.namespace or "default"), name))
                elif kind == "Group" and name == "system:serviceaccounts":
                    bound.add(("*", "*"))
                elif kind == "Group" and name.startswith("system:serviceaccounts:"):
                    bound.add((name.split(":", 2)[2], "*"))
        return bound

    return ctx.memo("rbac.bound-service-accounts", build)


@check(
    "KS-WL-002",
    "Service account token mounted",
    severity=Severity.MEDIUM,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="A mounted token lets anyone who compromises the container call the API server as the "
    "pod's ServiceAccount. Most workloads never call the API; disable the mount unless needed. "
    "The pod's automountServiceAccountToken wins if set, else the ServiceAccount's, else the "
    "token is mounted.",
    remediation="Set automountServiceAccountToken: false on the pod spec (or on the ServiceAccount); mount "
    "a projected token only in pods that call the API.",
    references={
        "cis-eks": ["4.1.6"],
        "nsa-cisa": ["Pod security: service account tokens"],
        "mitre": ["T1528 Steal Application Access Token"],
    },
)
def token_automount(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    tpl = ctx.template(obj)
    if tpl is None:
        return
    meta = token_automount.meta
    pod_value = _bool(tpl.spec.get("automountServiceAccountToken"))
    sa_name = service_account_name(tpl.spec)
    sa = ctx.cluster.get("ServiceAccount", obj.namespace, sa_name)
    sa_value = _bool(sa.raw.get("automountServiceAccountToken")) if sa else None
    if pod_value is False or (pod_value is None and sa_value is False):
        return
    if pod_value is True:
        why, path = (
            "the pod sets automountServiceAccountToken: true",
            f"{tpl.spec_path}.automountServiceAccountToken",
        )
    elif sa_value is True:
        why, path = (
            f"ServiceAccount {sa_name!r} sets automountServiceAccountToken: true",
            f"{tpl.spec_path}.automountServiceAccountToken",
        )
    else:
        why = (
            "neither the pod nor "
            + (f"ServiceAccount {sa_name!r}" if sa else f"the ServiceAccount {sa_name!r} (not in the input)")
            + " disables it"
        )
        path = f"{tpl.spec_path}.automountServiceAccountToken"
    severity = None
    bound = _bound_service_accounts(ctx)
    unused = bound is not None and not (
        ("*", "*") in bound or (obj.namespace, "*") in bound or (obj.namespace, sa_name) in bound
    )
    if unused:
        severity = Severity.HIGH
        why += f"; ServiceAccount {sa_name!r} has no RBAC binding, so the pod does not need API access"
    yield meta.finding(
        obj,
        f"service account token is mounted: {why}",
        severity=severity,
        evidence=[Evidence(path, pod_value, False)],
        fix=[
            {
                "op": "add",
                "path": json_pointer(f"{tpl.spec_path}.automountServiceAccountToken"),
                "value": False,
            }
        ],
        fix_note=None if unused else "check that the workload does not call the Kubernetes API",
    )


def _host_path_rank(path: str, sensitive: list[str]) -> bool:
    norm = "/" + path.strip("/") if path.strip("/") else "/"
    for s in sensitive:
        if norm == s or (s != "/" and norm.startswith(s.rstrip("/") + "/")):
            return True
    return False


@check(
    "KS-WL-003",
    "hostPath volume",
    severity=Severity.MEDIUM,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="hostPath volumes expose the node's filesystem to the container. Writable mounts of "
    "sensitive paths (/, /etc, the container runtime sockets, /var/lib/kubelet) give node "
    "takeover.",
    remediation="Use emptyDir, a ConfigMap, a PersistentVolume or a CSI driver instead; if a hostPath is "
    "unavoidable, mount it readOnly and as narrow a path as possible.",
    references={
        "cis-eks": ["4.2.x"],
        "nsa-cisa": ["Pod security: hostPath"],
        "mitre": ["T1611 Escape to Host"],
        "pss": ["baseline: hostPathVolumes"],
    },
)
def host_path_volume(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    tpl = ctx.template(obj)
    if tpl is None:
        return
    meta = host_path_volume.meta
    volumes = tpl.spec.get("volumes") or []
    containers = ctx.containers(obj)
    for i, vol in enumerate(volumes):
        if not isinstance(vol, dict) or not isinstance(vol.get("hostPath"), dict):
            continue
        host_path = str(vol["hostPath"].get("path") or "")
        vname = vol.get("name")
        writable = []
        for c in containers:
            mounts = c.container.get("volumeMounts") or []
            if not isinstance(mounts, list):
                raise InputError(
                    f"expected a list, got {type(mounts).__name__}", field=f"{c.path}.volumeMounts"
                )
            for j, m in enumerate(mounts):
                if isinstance(m, dict) and m.get("name") == vname and m.get("readOnly") is not True:
                    writable.append((c, j))
        sensitive = _host_path_rank(host_path, ctx.config.sensitive_host_paths)
        needs = known_needs_for(obj, ctx)
        if needs and needs.host_path(host_path):
            vpath = f"{tpl.spec_path}.volumes[{i}].hostPath.path"
            yield meta.finding(
                obj,
                f"volume {vname!r} mounts host path {host_path!r}: a known need of {needs.component}",
                severity=Severity.INFO,
                evidence=[Evidence(vpath, host_path, f"the paths {needs.component} is known to need")],
            )
            continue
        if sensitive and writable:
            sev = Severity.CRITICAL
        elif sensitive or writable:
            sev = Severity.HIGH
        else:
            sev = Severity.MEDIUM
        detail = ("sensitive " if sensitive else "") + ("writable" if writable else "read-only")
        vpath = f"{tpl.spec_path}.volumes[{i}].hostPath.path"
        fix = [
            {"op": "add", "path": json_pointer(f"{c.path}.volumeMounts[{j}].readOnly"), "value": True}
            for c, j in writable
        ] or None
        yield meta.finding(
            obj,
            f"volume {vname!r} mounts host path {host_path!r} ({detail})"
            + (f" in container(s) {', '.join(sorted({c.name for c, _ in writable}))}" if writable else ""),
            severity=sev,
            container=writable[0][0].name if len(writable) == 1 else None,
            evidence=[Evidence(vpath, host_path, "no hostPath volume")],
            fix=fix,
            fix_note="a read-only mount may break a workload that writes to the host" if fix else None,
        )


@check(
    "KS-WL-004",
    "Root filesystem is writable",
    severity=Severity.LOW,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="A read-only root filesystem stops an attacker from writing tools or altering binaries in "
    "the container; writable paths are then explicit emptyDir volumes.",
    remediation="Set securityContext.readOnlyRootFilesystem: true on each container and mount emptyDir "
    "volumes where the application must write.",
    references={
        "cis-eks": ["4.2.x"],
        "nsa-cisa": ["Pod security: immutable container filesystems"],
        "mitre": ["T1036 Masquerading"],
    },
)
def writable_root_filesystem(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    tpl = ctx.template(obj)
    if tpl is None:
        return
    meta = writable_root_filesystem.meta
    for c in ctx.containers(obj):
        if c.security_context.get("readOnlyRootFilesystem") is True:
            continue
        path = f"{c.path}.securityContext.readOnlyRootFilesystem"
        fix = set_patch(c.path, c.container, ["securityContext", "readOnlyRootFilesystem"], True)
        yield meta.finding(
            obj,
            f"container {c.name!r} has a writable root filesystem",
            container=c.name,
            evidence=[Evidence(path, c.security_context.get("readOnlyRootFilesystem"), True)],
            fix=fix,
            fix_note="the application may need emptyDir volumes for the paths it writes",
        )


@check(
    "KS-WL-005",
    "Container may run as root",
    severity=Severity.MEDIUM,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="A process running as UID 0 in the container is root on the node if it escapes. "
    "runAsNonRoot and runAsUser on the container override the pod's. A pod with hostUsers: false runs "
    "in a user namespace (container UID 0 is not root on the node) and is not reported, as Pod Security "
    "restricted admits it from v1.35.",
    remediation="Set runAsNonRoot: true (and a non-zero runAsUser) in the pod or container securityContext, "
    "and build the image with a non-root USER.",
    references={
        "cis-eks": ["4.2.6"],
        "nsa-cisa": ["Pod security: non-root containers"],
        "mitre": ["T1611 Escape to Host"],
        "pss": ["restricted: runAsNonRoot, runAsUser"],
    },
)
def runs_as_root(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    tpl = ctx.template(obj)
    if tpl is None:
        return
    meta = runs_as_root.meta
    if tpl.spec.get("hostUsers") is False:
        # a user namespace: UID 0 in the container maps to an unprivileged UID on the node (PSA
        # restricted admits such pods from v1.35 on); nothing here is root on the node
        return
    pod_sc = tpl.spec.get("securityContext") or {}
    pod_non_root = _bool(pod_sc.get("runAsNonRoot"))
    pod_user = pod_sc.get("runAsUser")
    for c in ctx.containers(obj):
        sc = c.security_context
        non_root = _bool(sc.get("runAsNonRoot"))
        user = sc.get("runAsUser")
        eff_non_root = non_root if non_root is not None else pod_non_root
        eff_user = user if user is not None else pod_user
        needs = known_needs_for(obj, ctx)
        if needs and needs.container(c.name).root and (eff_user == 0 or eff_non_root is not True):
            yield meta.finding(
                obj,
                f"container {c.name!r} may run as root: a known need of {needs.component}",
                severity=Severity.INFO,
                container=c.name,
                evidence=[Evidence(f"{c.path}.securityContext.runAsUser", eff_user, "non-zero UID")],
            )
            continue
        if eff_user == 0:
            where = (
                f"{c.path}.securityContext.runAsUser"
                if user is not None
                else f"{tpl.spec_path}.securityContext.runAsUser"
            )
            yield meta.finding(
                obj,
                f"container {c.name!r} runs as UID 0",
                severity=Severity.HIGH,
                container=c.name,
                evidence=[Evidence(where, 0, "non-zero UID")],
                fix=[{"op": "replace", "path": json_pointer(where), "value": 65532}],
                fix_note="may require an image change: the image must work as a non-root user",
            )
            continue
        if eff_non_root is True or (isinstance(eff_user, int) and eff_user > 0):
            continue
        if non_root is False:
            where, observed = f"{c.path}.securityContext.runAsNonRoot", False
        elif pod_non_root is False:
            where, observed = f"{tpl.spec_path}.securityContext.runAsNonRoot", False
        else:
            where, observed = f"{c.path}.securityContext.runAsNonRoot", None
        fix = set_patch(c.path, c.container, ["securityContext", "runAsNonRoot"], True)
        yield meta.finding(
            obj,
            f"container {c.name!r} may run as root: runAsNonRoot is not true and no non-zero runAsUser is set",
            container=c.name,
            evidence=[Evidence(where, observed, True)],
            fix=fix,
            fix_note="may require an image change: the kubelet refuses to start an image whose user is root",
        )


@check(
    "KS-WL-006",
    "Missing resource requests or limits",
    severity=Severity.LOW,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="Without requests the scheduler cannot place pods sensibly; without a memory limit one "
    "container can starve the node (a denial of service on its neighbours). limits.cpu is only required "
    "when scan.require_cpu_limits is true (default false: CPU is compressible, and a CPU limit throttles "
    "a container even on an idle node).",
    remediation="Set resources.requests.cpu, resources.requests.memory and resources.limits.memory (and "
    "limits.cpu where your policy wants it: scan.require_cpu_limits) on every container.",
    references={
        "cis-eks": ["5.x"],
        "nsa-cisa": ["Pod security: resource policies"],
        "mitre": ["T1496 Resource Hijacking"],
    },
)
def missing_resources(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    tpl = ctx.template(obj)
    if tpl is None:
        return
    meta = missing_resources.meta
    for c in ctx.containers(obj):
        if c.list_field == "ephemeralContainers":
            continue  # the API forbids resources on ephemeral containers
        res = c.container.get("resources") or {}
        missing = []
        for section in ("requests", "limits"):
            sec = res.get(section) if isinstance(res, dict) else None
            for r in ("cpu", "memory"):
                if section == "limits" and r == "cpu" and not ctx.config.require_cpu_limits:
                    continue
                if not (isinstance(sec, dict) and sec.get(r) not in (None, "")):
                    missing.append(f"{section}.{r}")
        if missing:
            yield meta.finding(
                obj,
                f"container {c.name!r} lacks {', '.join(missing)}",
                container=c.name,
                evidence=[Evidence(f"{c.path}.resources.{m}", None, "set") for m in missing],
            )
