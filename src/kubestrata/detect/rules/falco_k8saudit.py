"""Falco k8saudit parity: the conditions of falcosecurity/plugins
plugins/k8saudit/rules/k8s_audit_rules.yaml, literally, with its lists (detect/data/
falco_k8saudit_lists.yaml). Ids KS-AUD-F*; see docs/detect.md for the few places where we differ."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.facts import Fact
from kubestrata.detect.rules.helpers import (
    binding_role,
    binding_subjects,
    containers,
    falco_not_all_in,
    host_paths,
    image_repository,
    is_system,
    pod_spec,
    role_rules,
    rule_values,
)
from kubestrata.detect.rules.lists import (
    ALLOWED_KUBE_NAMESPACE_IMAGES,
    ALLOWED_NAMESPACES,
    CONFIGMAP_CREDENTIAL_WORDS,
    EKS_ALLOWED_K8S_USERS,
    HEALTH_PATHS,
    HOSTIPC_IMAGES,
    HOSTNETWORK_IMAGES,
    HOSTPID_IMAGES,
    KNOWN_SA_LIST,
    PRIVILEGED_IMAGES,
    SENSITIVE_HOST_PATHS,
    SENSITIVE_MOUNT_IMAGES,
    WRITE_VERBS,
)
from kubestrata.detect.rules.registry import SIGMA, STARTED, Hit, RuleContext, RuleSpec, hit, rule
from kubestrata.findings import Severity

FALCO_PRIORITY = {
    "EMERGENCY": Severity.CRITICAL,
    "ALERT": Severity.CRITICAL,
    "CRITICAL": Severity.CRITICAL,
    "ERROR": Severity.HIGH,
    "WARNING": Severity.MEDIUM,
    "NOTICE": Severity.LOW,
    "INFO": Severity.INFO,
    "DEBUG": Severity.INFO,
}


def falco(
    id_: str,
    name: str,
    prio: str,
    desc: str,
    mitre: tuple[str, ...],
    *,
    legacy: tuple[str, ...] = (),
    sigma: tuple[str, ...] = (),
    enabled: bool = True,
) -> RuleSpec:
    """The record of a Falco parity rule: Falco's name (and older names) and priority."""
    return RuleSpec(id_, name, FALCO_PRIORITY[prio], desc, mitre, falco=(name, *legacy), sigma=tuple(sigma), enabled=enabled)  # fmt: skip


@rule(
    falco(
        "KS-AUD-F01",
        "Disallowed K8s User",
        "WARNING",
        "A non-system user outside Falco's allowed_k8s_users / eks_allowed_k8s_users lists made a request.",
        ("T1078",),
    ),
    on="* *",
    when=Fact.NON_SYSTEM_USER,
)
def disallowed_user(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    u = ev.user
    if not is_system(u) and u not in ctx.config.allowed_users and u not in EKS_ALLOWED_K8S_USERS:
        yield hit("KS-AUD-F01", f"request by user {u!r} outside the allowed users", ("user.username", u))


@dataclass(frozen=True, slots=True)
class FalcoPod:
    """What Falco's pod rules read of a pod create: the spec, its containers, and
    ka.req.pod.containers.image(.repository) (spec.containers only: init and ephemeral containers
    have their own fields, which the allowlist conditions do not consult)."""

    spec: dict[str, Any]
    path: str
    containers: list[tuple[dict[str, Any], str]]
    repos: list[str]
    images: tuple[str, list[Any]]  # the evidence: (path, images)


def falco_pod(ev: AuditEvent) -> FalcoPod:
    """Computed once per event, whichever pod rule asks first."""
    fp = ev.memo.get("falco_pod")
    if fp is None:
        ps = pod_spec(ev)
        spec, path = ps if ps else ({}, "requestObject.spec")
        ctrs = containers(spec, path)
        regular = [c for c, p in ctrs if p.startswith(path + ".containers[")]
        repos = [image_repository(c["image"]) for c in regular if isinstance(c.get("image"), str)]
        img_ev = (path + ".containers[*].image", [c.get("image") for c in regular])
        fp = ev.memo["falco_pod"] = FalcoPod(spec, path, ctrs, repos, img_ev)
    return fp


F02 = falco(
    "KS-AUD-F02",
    "Create Disallowed Pod",
    "WARNING",
    "A pod was created with an image outside the configured allowed images (silent until "
    "--allowed-image is given, as Falco's allowed_k8s_containers).",
    ("T1610",),
    enabled=False,
)


@rule(F02, on="create pods")
def disallowed_pod(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    allowed = ctx.config.allowed_images
    if allowed and falco_not_all_in((fp := falco_pod(ev)).repos, allowed):
        yield hit("KS-AUD-F02", "pod started with an image not in the allowed list", fp.images)


F03 = falco(
    "KS-AUD-F03",
    "Create Privileged Pod",
    "WARNING",
    "An attempt to start a pod with a privileged container whose image is not on Falco's "
    "k8s_audit_privileged_images list.",
    ("T1610", "T1611"),
    sigma=(SIGMA + "kubernetes_audit_privileged_pod_creation.yml",),
)


@rule(F03, on="create pods")
def privileged_pod(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    fp = falco_pod(ev)
    priv = [p for c, p in fp.containers if (c.get("securityContext") or {}).get("privileged") is True]
    if priv and falco_not_all_in(fp.repos, PRIVILEGED_IMAGES):
        yield hit("KS-AUD-F03", "pod started with a privileged container",
                  *[(p + ".securityContext.privileged", True) for p in priv], fp.images)  # fmt: skip


F04 = falco(
    "KS-AUD-F04",
    "Create Sensitive Mount Pod",
    "WARNING",
    "An attempt to start a pod with a hostPath volume on a sensitive host directory (/proc, "
    "/, /etc, container runtime sockets, kubelet state ...).",
    ("T1611",),
    sigma=(SIGMA + "kubernetes_audit_hostpath_mount.yml",),
)


@rule(F04, on="create pods")
def sensitive_mount_pod(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    fp = falco_pod(ev)
    sens = [(hp, path) for _, hp, path in host_paths(fp.spec, fp.path) if hp in SENSITIVE_HOST_PATHS]
    if sens and falco_not_all_in(fp.repos, SENSITIVE_MOUNT_IMAGES):
        yield hit("KS-AUD-F04", "pod started with a sensitive hostPath mount",
                  *[(path, hp) for hp, path in sens], fp.images)  # fmt: skip


def _host_namespace_rule(spec: RuleSpec, field_name: str, allowed: frozenset[str], words: str) -> None:
    """Falco's Create HostNetwork/HostPid/HostIPC Pod: one rule each, the same condition."""

    def fn(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
        fp = falco_pod(ev)
        if fp.spec.get(field_name) is True and falco_not_all_in(fp.repos, allowed):
            yield hit(spec.id, f"pod started using the {words}", (f"{fp.path}.{field_name}", True), fp.images)

    fn.__name__ = fn.__qualname__ = f"{field_name.lower()}_pod"
    rule(spec, on="create pods")(fn)


_host_namespace_rule(
    falco("KS-AUD-F05", "Create HostNetwork Pod", "WARNING",
          "An attempt to start a pod in the host network namespace.", ("T1611",)),
    "hostNetwork", HOSTNETWORK_IMAGES, "host network",
)  # fmt: skip
_host_namespace_rule(
    falco("KS-AUD-F06", "Create HostPid Pod", "WARNING",
          "An attempt to start a pod in the host PID namespace.", ("T1611",)),
    "hostPID", HOSTPID_IMAGES, "host PID namespace",
)  # fmt: skip
_host_namespace_rule(
    falco("KS-AUD-F07", "Create HostIPC Pod", "WARNING",
          "An attempt to start a pod in the host IPC namespace.", ("T1611",)),
    "hostIPC", HOSTIPC_IMAGES, "host IPC namespace",
)  # fmt: skip

F15 = falco(
    "KS-AUD-F15",
    "Pod Created in Kube Namespace",
    "WARNING",
    "A pod was created in kube-system or kube-public with an image not on Falco's allowed list.",
    ("T1610",),
    sigma=(SIGMA + "kubernetes_audit_pod_in_system_namespace.yml",),
)


@rule(F15, on="create pods")
def pod_in_kube_namespace(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.namespace in ("kube-system", "kube-public"):
        fp = falco_pod(ev)
        if falco_not_all_in(fp.repos, ALLOWED_KUBE_NAMESPACE_IMAGES):
            yield hit("KS-AUD-F15", f"pod created in namespace {ev.namespace}",
                      ("objectRef.namespace", ev.namespace), fp.images)  # fmt: skip


@rule(
    falco(
        "KS-AUD-F08",
        "Create NodePort Service",
        "WARNING",
        "An attempt to create a NodePort Service, which opens a port on every node.",
        ("T1133",),
    ),
    on="create services",
)
def nodeport_service(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    spec = ev.request_object.get("spec")
    if isinstance(spec, dict) and spec.get("type") == "NodePort":
        yield hit("KS-AUD-F08", "NodePort Service created", ("requestObject.spec.type", "NodePort"),
                  ("requestObject.spec.ports", spec.get("ports")))  # fmt: skip


@rule(
    falco(
        "KS-AUD-F09",
        "Create/Modify Configmap With Private Credentials",
        "WARNING",
        "A ConfigMap created or modified whose data mentions AWS keys, password or passphrase.",
        ("T1552",),
    ),
    on="create,update,patch configmaps",
)
def configmap_credentials(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    data = ev.request_object.get("data")
    if data is None:
        return
    text = orjson.dumps(data).decode()
    words = [w for w in CONFIGMAP_CREDENTIAL_WORDS if w in text]
    if words:
        yield hit("KS-AUD-F09", "ConfigMap data mentions credentials", ("requestObject.data", words))


def _health(ev: AuditEvent) -> bool:
    u = ev.uri
    return any(u == p or u.startswith(p + "?") for p in HEALTH_PATHS)


@rule(
    falco(
        "KS-AUD-F10",
        "Anonymous Request Allowed",
        "WARNING",
        "A request by system:anonymous was authorized (health endpoints excepted).",
        ("T1078.001",),
    ),
    on="* *",
    when=Fact.ANONYMOUS,
)
def anonymous_allowed(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.user == "system:anonymous" and ev.decision == "allow" and not _health(ev):
        yield hit("KS-AUD-F10", "request by system:anonymous was allowed",
                  ("user.username", ev.user), ("requestURI", ev.uri),
                  ("annotations.authorization.k8s.io/reason", ev.reason))  # fmt: skip


@rule(
    falco(
        "KS-AUD-F11",
        "Attach/Exec Pod",
        "NOTICE",
        "Someone attached to or executed a command in a pod (seen at ResponseStarted).",
        ("T1609",),
        sigma=(SIGMA + "kubernetes_audit_exec_into_container.yml",),
    ),
    on="create,get pods/exec,attach",
    stages=STARTED,
)
def attach_exec(ev: AuditEvent, ctx: RuleContext) -> list[Hit]:
    # a list, not a generator: it runs on every exec (see native_exec); the Hit built directly, as
    # hit() would (one call fewer, ~1k instructions of every exec)
    sub = ev.subresource
    return [Hit("KS-AUD-F11", f"{sub} into pod {ev.namespace}/{ev.name}",
                [("objectRef.subresource", sub), ("requestURI?command", ev.exec_command())])]  # fmt: skip


@rule(
    falco(
        "KS-AUD-F12",
        "port-forward",
        "NOTICE",
        "Someone port-forwarded to a pod (Falco evaluates this rule at every stage).",
        ("T1090",),
    ),
    on="* */portforward",
    stages=None,
)
def port_forward(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    yield hit(
        "KS-AUD-F12",
        f"port-forward to pod {ev.namespace}/{ev.name}",
        ("objectRef.subresource", "portforward"),
    )


@rule(
    falco(
        "KS-AUD-F13",
        "EphemeralContainers Created",
        "NOTICE",
        "An ephemeral (debug) container was added to a pod.",
        ("T1609",),
    ),
    on="create,update,patch pods/ephemeralcontainers",
)
def ephemeral_containers(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    ecs = ev.request_object.get("ephemeralContainers")
    first = ecs[0] if isinstance(ecs, list) and ecs and isinstance(ecs[0], dict) else {}
    spec = ev.request_object.get("spec")
    if not first and isinstance(spec, dict) and isinstance(spec.get("ephemeralContainers"), list):
        ecs2 = spec["ephemeralContainers"]
        first = ecs2[-1] if ecs2 and isinstance(ecs2[-1], dict) else {}
    yield hit("KS-AUD-F13", f"ephemeral container added to pod {ev.namespace}/{ev.name}",
              ("requestObject.ephemeralContainers[0].name", first.get("name")),
              ("requestObject.ephemeralContainers[0].image", first.get("image")))  # fmt: skip


@rule(
    falco(
        "KS-AUD-F14",
        "Create Disallowed Namespace",
        "WARNING",
        "A namespace outside Falco's allowed_namespaces was created.",
        ("T1610",),
    ),
    on="create namespaces",
)
def disallowed_namespace(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.name not in ALLOWED_NAMESPACES:
        yield hit("KS-AUD-F14", f"namespace {ev.name!r} created", ("objectRef.name", ev.name))


@rule(
    falco(
        "KS-AUD-F16",
        "Service Account Created in Kube Namespace",
        "WARNING",
        "A ServiceAccount not in Falco's known controller list was created in kube-system or kube-public.",
        ("T1136",),
        sigma=(SIGMA + "kubernetes_audit_serviceaccount_creation.yml",),
    ),
    on="create serviceaccounts",
)
def sa_in_kube_namespace(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.namespace in ("kube-system", "kube-public") and ev.success and ev.name not in KNOWN_SA_LIST:
        yield hit("KS-AUD-F16", f"ServiceAccount {ev.name!r} created in {ev.namespace}",
                  ("objectRef.namespace", ev.namespace), ("objectRef.name", ev.name))  # fmt: skip


@rule(
    falco(
        "KS-AUD-F17",
        "System ClusterRole Modified/Deleted",
        "WARNING",
        "A Role or ClusterRole named system:* was modified or deleted.",
        ("T1098",),
    ),
    on="create,update,patch,delete roles,clusterroles",
)
def system_role_modified(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    n = ev.name
    if n.startswith("system:") and n not in ("system:coredns", "system:managed-certificate-controller"):
        yield hit("KS-AUD-F17", f"system role {n!r} {ev.verb}d", ("objectRef.name", n), ("verb", ev.verb))


@rule(
    falco(
        "KS-AUD-F18",
        "Attach to cluster-admin Role",
        "WARNING",
        "A ClusterRoleBinding to cluster-admin was created.",
        ("T1098.006",),
        sigma=(SIGMA + "kubernetes_audit_rolebinding_modification.yml",),
    ),
    on="create clusterrolebindings",
)
def cluster_admin_binding(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if binding_role(ev) == "cluster-admin":
        yield hit("KS-AUD-F18", "ClusterRoleBinding to cluster-admin created",
                  ("requestObject.roleRef.name", "cluster-admin"),
                  ("requestObject.subjects", binding_subjects(ev)))  # fmt: skip


def _role_rules(ev: AuditEvent) -> tuple[list[str], list[str]]:
    rules = role_rules(ev)
    return rule_values(rules, "resources"), rule_values(rules, "verbs")


@rule(
    falco("KS-AUD-F19", "ClusterRole With Wildcard Created", "WARNING",
          "A Role or ClusterRole with a * resource or verb was created.", ("T1098.006",)),
    on="create roles,clusterroles",
)  # fmt: skip
def role_with_wildcard(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    res, verbs = _role_rules(ev)
    if "*" in res or "*" in verbs:
        yield hit("KS-AUD-F19", f"{ev.resource[:-1]} {ev.name!r} with a wildcard created",
                  ("requestObject.rules[*].resources", res), ("requestObject.rules[*].verbs", verbs))  # fmt: skip


@rule(
    falco("KS-AUD-F20", "ClusterRole With Write Privileges Created", "NOTICE",
          "A Role or ClusterRole granting create/update/patch/delete/deletecollection was created.", ("T1098.006",)),
    on="create roles,clusterroles",
)  # fmt: skip
def role_with_write_verbs(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    wv = sorted(set(_role_rules(ev)[1]) & WRITE_VERBS)
    if wv:
        yield hit("KS-AUD-F20", f"{ev.resource[:-1]} {ev.name!r} with write verbs created",
                  ("requestObject.rules[*].verbs", wv))  # fmt: skip


@rule(
    falco("KS-AUD-F21", "ClusterRole With Pod Exec Created", "WARNING",
          "A Role or ClusterRole granting pods/exec was created.", ("T1098.006",)),
    on="create roles,clusterroles",
)  # fmt: skip
def role_with_pod_exec(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if "pods/exec" in _role_rules(ev)[0]:
        yield hit("KS-AUD-F21", f"{ev.resource[:-1]} {ev.name!r} with pods/exec created",
                  ("requestObject.rules[*].resources", "pods/exec"))  # fmt: skip
