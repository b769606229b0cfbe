"""Our detections on pod content, in pods, workload templates and ephemeral containers, as the
request produced them (KS-AUD-N09, N10, N11, N21, N22, N24)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.helpers import (
    command_text,
    containers,
    exempt,
    host_paths,
    introduced,
    pod_spec,
    produced,
)
from kubestrata.detect.rules.lists import (
    DANGEROUS_CAPABILITIES,
    DOWNLOAD_AND_RUN,
    REVERSE_SHELL,
    SYSTEM_NAMESPACES,
    WORKLOAD_RESOURCES,
)
from kubestrata.detect.rules.registry import ELASTIC, SIGMA, Hit, RuleContext, RuleSpec, hit, rule
from kubestrata.findings import Severity


def _content_exempt(ev: AuditEvent, ctx: RuleContext, rule_id: str, created: bool) -> bool:
    """Pod-content rules: control-plane identities creating pods in system namespaces (DaemonSet
    pods of CNI and storage drivers), and any change they make to an existing object (controllers
    update annotations and replicas of workloads whose author was judged at create)."""
    if not exempt(ev, ctx, rule_id):
        return False
    return ev.namespace in SYSTEM_NAMESPACES or not created


WORKLOAD_MODIFY_ON = "create,update,patch " + ",".join(sorted(WORKLOAD_RESOURCES))
# kubectl debug adds (possibly privileged: --profile=sysadmin) ephemeral containers to a running pod
EPHEMERAL_ON = "create,update,patch pods/ephemeralcontainers"


def _pod(ev: AuditEvent, obj: dict[str, Any], prefix: str) -> tuple[dict[str, Any], str, list[Any]] | None:
    """The pod spec, its path and containers of a produced object; once per object and event."""
    key = ("pod", id(obj), prefix)
    if key not in ev.memo:
        ps = pod_spec(ev, obj, prefix)
        ev.memo[key] = None if ps is None else (ps[0], ps[1], containers(*ps))
    return ev.memo[key]


Content = Callable[[AuditEvent, dict[str, Any], str, list[Any], str], "Hit | None"]


def _capabilities(ev: AuditEvent, spec: dict[str, Any], path: str, ctrs: list[Any], what: str) -> Hit | None:
    caps = []
    for c, p in ctrs:
        sc = sc_ if isinstance(sc_ := c.get("securityContext"), dict) else {}
        add = (sc.get("capabilities") or {}).get("add") if isinstance(sc.get("capabilities"), dict) else None
        for j, cap in enumerate(add or []):
            if isinstance(cap, str) and cap.upper().removeprefix("CAP_") in DANGEROUS_CAPABILITIES:
                caps.append((f"{p}.securityContext.capabilities.add[{j}]", cap))
    return hit("KS-AUD-N09", f"{what} adds {', '.join(c for _, c in caps)}", *caps) if caps else None


def _host_path(ev: AuditEvent, spec: dict[str, Any], path: str, ctrs: list[Any], what: str) -> Hit | None:
    hps = host_paths(spec, path)
    return hit("KS-AUD-N10", f"{what} mounts host paths", *[(fp, hp) for _, hp, fp in hps]) if hps else None


def _host_namespaces(
    ev: AuditEvent, spec: dict[str, Any], path: str, ctrs: list[Any], what: str
) -> Hit | None:
    shared = [(f"{path}.{f}", True) for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f) is True]
    return hit("KS-AUD-N21", f"{what} shares host namespaces", *shared) if shared else None


def _privileged_or_root(
    ev: AuditEvent, spec: dict[str, Any], path: str, ctrs: list[Any], what: str
) -> Hit | None:
    pod_sc = pod_sc_ if isinstance(pod_sc_ := spec.get("securityContext"), dict) else {}
    bad: list[tuple[str, Any]] = []
    for c, p in ctrs:
        sc = c.get("securityContext") or {}
        if sc.get("privileged") is True:
            bad.append((p + ".securityContext.privileged", True))
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if uid == 0 and type(uid) is int:
            where = (
                p + ".securityContext.runAsUser" if "runAsUser" in sc else path + ".securityContext.runAsUser"
            )
            bad.append((where, 0))
    return hit("KS-AUD-N22", f"{what} runs privileged or as root", *bad) if bad else None


def _content_rule(spec: RuleSpec | str, content: Content, name: str) -> None:
    """One pod-content rule, twice: on workloads (pods and templates, as create, update, patch or
    server-side apply produced them) and on the pod after ephemeral containers were added (kubectl
    debug: a privileged debug container is a privileged container)."""
    rule_id = spec if isinstance(spec, str) else spec.id

    def check(
        ev: AuditEvent, ctx: RuleContext, obj: dict[str, Any], prefix: str, created: bool
    ) -> Iterator[Hit]:
        pod = _pod(ev, obj, prefix)
        h = content(ev, *pod, f"{ev.resource[:-1]} {ev.namespace}/{ev.name}") if pod else None
        if h and not _content_exempt(ev, ctx, rule_id, created):
            yield h

    def on_workload(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
        p = produced(ev, ctx)
        if p is not None:
            yield from introduced(ev, ctx, lambda obj, prefix: check(ev, ctx, obj, prefix, p.created))

    def on_ephemeral(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
        yield from introduced(ev, ctx, lambda obj, prefix: check(ev, ctx, obj, prefix, False))

    on_workload.__name__ = on_workload.__qualname__ = name
    on_ephemeral.__name__ = on_ephemeral.__qualname__ = "ephemeral_" + name
    rule(spec, on=WORKLOAD_MODIFY_ON)(on_workload)
    EPHEMERAL.append((rule_id, on_ephemeral))


EPHEMERAL: list[tuple[str, Callable[..., Iterator[Hit]]]] = []  # registered after the workload forms
_content_rule(
    RuleSpec("KS-AUD-N09", "Pod with dangerous capabilities", Severity.HIGH,
             "A pod or workload template whose containers add SYS_ADMIN, NET_ADMIN, BPF, SYS_PTRACE, "
             "SYS_MODULE or ALL was created or changed to.", ("T1611",),
             elastic=(ELASTIC + "privilege_escalation_container_created_with_excessive_linux_capabilities.toml",)),
    _capabilities, "dangerous_capabilities",
)  # fmt: skip
_content_rule(
    RuleSpec("KS-AUD-N10", "Pod with a hostPath volume", Severity.MEDIUM,
             "A pod or workload template with any hostPath volume was created or changed to "
             "(control-plane identities in system namespaces excepted).", ("T1611",),
             sigma=(SIGMA + "kubernetes_audit_hostpath_mount.yml",)),
    _host_path, "host_path_pod",
)  # fmt: skip
_content_rule(
    RuleSpec("KS-AUD-N21", "Pod sharing a host namespace created", Severity.MEDIUM,
             "A pod or workload template using hostNetwork, hostPID or hostIPC was created or changed to "
             "(control-plane identities in system namespaces excepted). Falco's KS-AUD-F05..F07 also "
             "report failed pod creations.", ("T1611",)),
    _host_namespaces, "host_namespace_pod",
)  # fmt: skip
_content_rule(
    RuleSpec("KS-AUD-N22", "Privileged or root container created", Severity.HIGH,
             "A pod or workload template with a privileged container or one running as UID 0 was "
             "created or changed to (control-plane identities in system namespaces excepted).", ("T1610", "T1611"),
             sigma=(SIGMA + "kubernetes_audit_privileged_pod_creation.yml",)),
    _privileged_or_root, "privileged_or_root_pod",
)  # fmt: skip


@rule(
    RuleSpec("KS-AUD-N11", "Pod created directly in a system namespace", Severity.MEDIUM,
             "A user (control-plane identities excepted) created a pod in kube-system, kube-public, "
             "kube-node-lease or a provider system namespace.", ("T1610", "T1036.005"),
             sigma=(SIGMA + "kubernetes_audit_pod_in_system_namespace.yml",)),
    on=WORKLOAD_MODIFY_ON,
)  # fmt: skip
def pod_in_system_namespace(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    p = produced(ev, ctx) if ev.resource == "pods" and ev.namespace in SYSTEM_NAMESPACES else None
    if p is not None and p.created and not exempt(ev, ctx, "KS-AUD-N11"):
        yield hit("KS-AUD-N11", f"pod {ev.name} created in {ev.namespace} by {ev.user}",
                  ("objectRef.namespace", ev.namespace))  # fmt: skip


N24 = RuleSpec(
    "KS-AUD-N24", "Workload with a download-and-run or reverse-shell command", Severity.HIGH,
    "A pod, workload template or ephemeral container was created or changed to run a command "
    "that pipes curl/wget into a shell or opens a reverse shell (a `curl | sh` CronJob); "
    "controllers creating pods from a template are exempt, the template's author was judged.",
    ("T1610", "T1059", "T1053.007"),
)  # fmt: skip
for _rule_id, _fn in EPHEMERAL:
    rule(_rule_id, on=EPHEMERAL_ON)(_fn)


@rule(N24, on=EPHEMERAL_ON)
def ephemeral_suspicious_command(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    yield from introduced(ev, ctx, lambda obj, prefix: _suspicious_workload(ev, ctx, obj, prefix))


def _suspicious_workload(ev: AuditEvent, ctx: RuleContext, obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
    ps = pod_spec(ev, obj, prefix)
    if ps is None or exempt(ev, ctx, "KS-AUD-N24"):
        return
    found = []
    for c, p in containers(*ps):
        text = command_text(c)
        reasons = [why for rx, why in ((REVERSE_SHELL, "reverse shell"), (DOWNLOAD_AND_RUN, "download and run"))
                   if rx.search(text)]  # fmt: skip
        if reasons:
            found.append((p, text, reasons))
    if found:
        why = sorted({r for _, _, rs in found for r in rs})
        yield hit("KS-AUD-N24", f"{ev.resource[:-1]} {ev.namespace}/{ev.name} runs a {' / '.join(why)} command",
                  *[(f"{p}.command+args", t) for p, t, _ in found])  # fmt: skip


@rule("KS-AUD-N24", on=WORKLOAD_MODIFY_ON)
def suspicious_workload_command(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    """A container command or args that download and run code or open a reverse shell, in any
    pod or workload template (a `curl | sh` CronJob): the exec rules only see kubectl exec.
    Controllers creating pods from a template are exempt: the template's author was judged."""
    yield from introduced(ev, ctx, lambda obj, prefix: _suspicious_workload(ev, ctx, obj, prefix))


@rule("KS-AUD-N10", on="create,update,patch persistentvolumes")
def host_path_volume(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    """A hostPath PersistentVolume: any pod that claims it mounts the host path, and the pod spec
    only names the claim."""
    if exempt(ev, ctx, "KS-AUD-N10"):
        return

    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        spec = obj.get("spec")
        hp = spec.get("hostPath") if isinstance(spec, dict) else None
        if isinstance(hp, dict) and isinstance(hp.get("path"), str):
            yield hit("KS-AUD-N10", f"PersistentVolume {ev.name} maps host path {hp['path']}",
                      (f"{prefix}.spec.hostPath.path", hp["path"]))  # fmt: skip

    yield from introduced(ev, ctx, check)
