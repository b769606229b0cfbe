"""GuardDuty EKS audit-log finding types, rule-based (KS-AUD-G01..G07) and tactic x source
(KS-AUD-G10..G29: an API in a tactic bucket called from a listed IP or by system:anonymous)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.facts import Fact
from kubestrata.detect.rules.helpers import (
    WORKLOAD_ON,
    binding_role,
    binding_subjects,
    exec_ok,
    introduced,
    pod_spec,
    privileged_and_mounts,
    produced_spec,
)
from kubestrata.detect.rules.lists import ADMIN_ROLES, MODIFY, READ_VERBS
from kubestrata.detect.rules.registry import STARTED, Hit, RuleContext, RuleSpec, hit, rule
from kubestrata.findings import Severity


@rule(
    RuleSpec(
        "KS-AUD-G01",
        "Command executed in a kube-system pod",
        Severity.MEDIUM,
        "pods/exec into a pod in kube-system.",
        ("T1609",),
        guardduty=("Execution:Kubernetes/ExecInKubeSystemPod",),
    ),
    on="create,get pods/exec",
    stages=STARTED,
    when=Fact.EXEC_IN_KUBE_SYSTEM,
)
def exec_in_kube_system(ev: AuditEvent, ctx: RuleContext) -> list[Hit] | None:
    # a list or None, not a generator: it runs on every exec into kube-system (see native_exec)
    if ev.namespace == "kube-system" and exec_ok(ev):
        return [Hit("KS-AUD-G01", f"exec into kube-system pod {ev.name}",
                    [("objectRef.namespace", "kube-system"), ("requestURI?command", ev.exec_command())])]  # fmt: skip
    return None


ANONYMOUS_SUBJECTS = frozenset({"system:anonymous", "system:unauthenticated"})


def _all_sa_group(s: dict[str, Any]) -> bool:
    """Group system:serviceaccounts (every ServiceAccount) or system:serviceaccounts:<ns> (every
    one of a namespace): both include the default ServiceAccounts."""
    name = str(s.get("name") or "")
    return s.get("kind") == "Group" and (
        name == "system:serviceaccounts" or name.startswith("system:serviceaccounts:")
    )


def _sa_subject(s: dict[str, Any], binding_ns: str) -> tuple[str, str] | None:
    """(namespace, name) when the subject is a ServiceAccount, in either spelling."""
    if s.get("kind") == "ServiceAccount":
        return str(s.get("namespace") or binding_ns), str(s.get("name") or "")
    name = str(s.get("name") or "")
    if s.get("kind") == "User" and name.startswith("system:serviceaccount:"):
        parts = name.split(":")
        if len(parts) == 4:
            return parts[2], parts[3]
    return None


BINDINGS_ON = "create,update,patch rolebindings,clusterrolebindings"


@rule(
    RuleSpec("KS-AUD-G02", "Anonymous access granted by a binding", Severity.HIGH,
             "A RoleBinding or ClusterRoleBinding binding system:anonymous or the group "
             "system:unauthenticated was created, or changed to, successfully.",
             ("T1098.006",), guardduty=("Policy:Kubernetes/AnonymousAccessGranted",)),
    on=BINDINGS_ON,
)  # fmt: skip
def anonymous_access_granted(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        role = binding_role(ev, obj)
        for i, s in enumerate(binding_subjects(ev, obj)):
            # the anonymous user, or the group every unauthenticated request has
            if s.get("name") in ANONYMOUS_SUBJECTS:
                yield hit("KS-AUD-G02", f"{ev.resource[:-1]} {ev.name!r} binds system:anonymous to {role!r}",
                          (f"{prefix}.subjects[{i}]", s), (f"{prefix}.roleRef.name", role))  # fmt: skip
                break

    yield from introduced(ev, ctx, check)


@rule(
    RuleSpec("KS-AUD-G03", "Admin access given to a default ServiceAccount", Severity.HIGH,
             "A binding gave the default ServiceAccount of a namespace (or a group that includes it, "
             "system:serviceaccounts[:<ns>]) admin or cluster-admin.",
             ("T1098.006",), guardduty=("Policy:Kubernetes/AdminAccessToDefaultServiceAccount",)),
    on=BINDINGS_ON,
)  # fmt: skip
def admin_to_default_service_account(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        role = binding_role(ev, obj)
        if role not in ADMIN_ROLES:
            return
        for i, s in enumerate(binding_subjects(ev, obj)):
            sa = _sa_subject(s, ev.namespace)
            if (sa and sa[1] == "default") or _all_sa_group(s):
                who = f"default ServiceAccount of {sa[0]}" if sa else f"group {s.get('name')}"
                yield hit("KS-AUD-G03", f"{who} bound to {role}",
                          (f"{prefix}.subjects[{i}]", s), (f"{prefix}.roleRef.name", role))  # fmt: skip
                break

    yield from introduced(ev, ctx, check)


def _internet_lb(spec: dict[str, Any], meta: dict[str, Any]) -> bool:
    if spec.get("type") != "LoadBalancer":
        return False
    ann = ann_ if isinstance(ann_ := meta.get("annotations"), dict) else {}
    if ann.get("service.beta.kubernetes.io/aws-load-balancer-internal") in ("true", "0.0.0.0/0"):
        return False
    if ann.get("service.beta.kubernetes.io/aws-load-balancer-scheme") == "internal":
        return False
    if ann.get("service.beta.kubernetes.io/azure-load-balancer-internal") == "true":
        return False
    if ann.get("networking.gke.io/load-balancer-type") == "Internal":
        return False
    ranges = spec.get("loadBalancerSourceRanges")
    if isinstance(ranges, list) and ranges:
        return any(r in ("0.0.0.0/0", "::/0") for r in ranges)
    return True


def _exposed_dashboard(spec: RuleSpec, names: tuple[str, ...], what: str) -> None:
    """GuardDuty's ExposedDashboard and KubeflowDashboardExposed: one rule each, one condition."""

    def fn(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
        def check(ro: dict[str, Any], prefix: str) -> Iterator[Hit]:
            svc, meta = ro.get("spec"), ro.get("metadata") or {}
            if not isinstance(svc, dict) or not isinstance(meta, dict) or not _internet_lb(svc, meta):
                return
            sel = sel_ if isinstance(sel_ := svc.get("selector"), dict) else {}
            labels = labels_ if isinstance(labels_ := meta.get("labels"), dict) else {}
            words = {
                ev.name,
                str(meta.get("name") or ""),
                *map(str, sel.values()),
                *map(str, labels.values()),
            }
            if any(n in w for w in words for n in names):
                yield hit(spec.id, f"{what} Service {ev.namespace}/{ev.name} exposed by an internet LoadBalancer",
                          (f"{prefix}.spec.type", "LoadBalancer"), (f"{prefix}.spec.selector", sel))  # fmt: skip

        yield from introduced(ev, ctx, check)

    fn.__name__ = fn.__qualname__ = "exposed_" + what.split()[0].lower() + "_dashboard"
    rule(spec, on="create,update,patch services")(fn)


_exposed_dashboard(
    RuleSpec("KS-AUD-G04", "Kubernetes dashboard exposed to the internet", Severity.MEDIUM,
             "The Kubernetes dashboard Service was made an internet-facing LoadBalancer.", ("T1133",),
             guardduty=("Policy:Kubernetes/ExposedDashboard",)),
    ("kubernetes-dashboard",), "Kubernetes dashboard",
)  # fmt: skip
_exposed_dashboard(
    RuleSpec("KS-AUD-G05", "Kubeflow dashboard exposed to the internet", Severity.MEDIUM,
             "The Kubeflow central dashboard Service was made an internet-facing LoadBalancer.", ("T1133",),
             guardduty=("Policy:Kubernetes/KubeflowDashboardExposed",)),
    ("centraldashboard", "kubeflow-dashboard"), "Kubeflow dashboard",
)  # fmt: skip


@rule(
    RuleSpec("KS-AUD-G06", "Privileged container from an image new to privileged use", Severity.MEDIUM,
             "A privileged container was started from an image never before used for privileged "
             "containers in this cluster (first-seen state).", ("T1610", "T1611"),
             guardduty=("PrivilegeEscalation:Kubernetes/PrivilegedContainer",)),
    on=WORKLOAD_ON,
)  # fmt: skip
def privileged_container_new_image(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    ps = produced_spec(ev, ctx)
    if ps is None:
        return
    for img, p in privileged_and_mounts(*ps)[0]:
        if ctx.first_seen("privileged-image", img or "<none>") and not ctx.learning:
            yield hit("KS-AUD-G06", f"privileged container from image {img!r}, new to privileged use",
                      (p + ".securityContext.privileged", True), (p + ".image", img))  # fmt: skip


@rule(
    RuleSpec("KS-AUD-G07", "Container with a writable sensitive host mount", Severity.MEDIUM,
             "A container was started with a sensitive host path mounted writable.", ("T1611",),
             guardduty=("Persistence:Kubernetes/ContainerWithSensitiveMount",)),
    on=WORKLOAD_ON,
)  # fmt: skip
def writable_sensitive_mount(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        ps = pod_spec(ev, obj, prefix)
        for img, p, hp in privileged_and_mounts(*ps)[1] if ps else []:
            yield hit("KS-AUD-G07", f"container mounts host path {hp} writable", (p, hp), (p + ".image", img))
            break

    yield from introduced(ev, ctx, check)


# --- GuardDuty tactic x source ---------------------------------------------------------------

# Our API-to-tactic map (GuardDuty does not publish one). First match wins; see docs/detect.md.
_TACTIC_TABLE: list[tuple[frozenset[str] | None, frozenset[str] | None, frozenset[str] | None, str]] = [
    # (verbs or None=any, resources, subresources or None=any, tactic)
    (READ_VERBS, frozenset({"secrets"}), frozenset({""}), "CredentialAccess"),
    (frozenset({"create"}), frozenset({"serviceaccounts"}), frozenset({"token"}), "CredentialAccess"),
    (frozenset({"create", "update", "patch"}), frozenset({"certificatesigningrequests"}), None, "CredentialAccess"),
    (frozenset({"delete", "deletecollection", "update", "patch"}),
     frozenset({"events", "networkpolicies", "validatingwebhookconfigurations",
                "mutatingwebhookconfigurations", "validatingadmissionpolicies",
                "validatingadmissionpolicybindings", "podsecuritypolicies"}), None, "DefenseEvasion"),
    (frozenset({"create"}), frozenset({"pods"}), frozenset({"exec", "attach", "portforward"}), "DefenseEvasion"),
    (frozenset({"get"}), frozenset({"pods"}), frozenset({"exec", "attach", "portforward"}), "DefenseEvasion"),
    (MODIFY, frozenset({"roles", "clusterroles", "rolebindings", "clusterrolebindings", "serviceaccounts",
                        "daemonsets", "deployments", "statefulsets", "replicasets", "cronjobs", "jobs",
                        "pods", "mutatingwebhookconfigurations", "validatingwebhookconfigurations",
                        "customresourcedefinitions", "apiservices"}), frozenset({"", "ephemeralcontainers"}),
     "Persistence"),
    (frozenset({"update", "patch"}), frozenset({"certificatesigningrequests"}), frozenset({"approval"}), "Persistence"),
    (frozenset({"delete", "deletecollection"}), None, None, "Impact"),
    (MODIFY, frozenset({"nodes", "services", "configmaps", "namespaces", "persistentvolumes",
                        "persistentvolumeclaims", "ingresses", "endpoints", "endpointslices"}), None, "Impact"),
    (frozenset({"update", "patch"}), None, frozenset({"scale", "status"}), "Impact"),
    (frozenset({"create"}), frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews",
                                       "subjectaccessreviews", "localsubjectaccessreviews"}), None, "Discovery"),
    (READ_VERBS, None, None, "Discovery"),
]  # fmt: skip
_DISCOVERY_NONRESOURCE_EXCLUDED = ("/healthz", "/livez", "/readyz", "/version")


def tactic_of(ev: AuditEvent) -> str | None:
    if not ev.resource:
        # Non-resource URLs (/api, /apis, /openapi, /metrics, /version ...) are discovery reads.
        return "Discovery" if ev.verb in ("get", "head", "options") or ev.verb in READ_VERBS else None
    for verbs, res, subs, tactic in _TACTIC_TABLE:
        if (
            (verbs is None or ev.verb in verbs)
            and (res is None or ev.resource in res)
            and (subs is None or ev.subresource in subs)
        ):
            return tactic
    return None


GD_TACTICS = {
    # tactic: (MITRE tactic technique, severity per source: Malicious, Custom, Tor, Anonymous)
    "CredentialAccess": (("T1552.007",), ("high", "high", "high", "high")),
    "DefenseEvasion": (("T1562.001",), ("high", "high", "high", "high")),
    "Discovery": (("T1613",), ("medium", "medium", "medium", "medium")),
    "Impact": (("T1485",), ("high", "high", "high", "high")),
    "Persistence": (("T1098",), ("medium", "medium", "medium", "high")),
}
GD_SOURCES = [
    ("MaliciousIPCaller", "from an IP address on the malicious-IP threat list"),
    ("MaliciousIPCaller.Custom", "from an IP address on your custom threat list"),
    ("TorIPCaller", "from a Tor exit node"),
    ("SuccessfulAnonymousAccess", "successfully by system:anonymous"),
]
GD_SOURCE_TECHNIQUE = {"TorIPCaller": "T1090.003", "SuccessfulAnonymousAccess": "T1078.001"}
TACTIC_SOURCE_SPECS: list[RuleSpec] = []
_GD_IDS: dict[tuple[str, str], str] = {}
for _tactic, (_mitre, _sevs) in GD_TACTICS.items():
    for (_src, _words), _sev in zip(GD_SOURCES, _sevs, strict=True):
        _spec = RuleSpec(
            f"KS-AUD-G{10 + len(TACTIC_SOURCE_SPECS)}", f"{_tactic} API called {_words}", Severity(_sev),
            f"An API in our {_tactic} bucket (see docs/detect.md, API-to-tactic map) was called {_words}.",
            (*_mitre, GD_SOURCE_TECHNIQUE.get(_src, "T1078")),
            guardduty=(f"{_tactic}:Kubernetes/{_src}",),
        )  # fmt: skip
        TACTIC_SOURCE_SPECS.append(_spec)
        _GD_IDS[(_tactic, _src)] = _spec.id


@rule(*TACTIC_SOURCE_SPECS, on="* *", when=Fact.ANONYMOUS | Fact.IP_LISTS)
def gd_tactic_source(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    lists = ctx.ip_lists
    anonymous = ev.user == "system:anonymous"
    if not anonymous and not lists.any_loaded:
        return
    tactic = None
    if lists.any_loaded and ev.source_ips:
        for i, ip in enumerate(ev.source_ips):
            for source in lists.sources_of(ip):
                if source == "MaliciousIPCaller" and anonymous:
                    continue  # GuardDuty does not raise MaliciousIPCaller for unauthenticated calls
                tactic = tactic or tactic_of(ev)
                if tactic is None:
                    return
                yield hit(_GD_IDS[(tactic, source)], f"{tactic} API {ev.verb} {ev.resource or ev.path} from {ip}",
                          (f"sourceIPs[{i}]", ip), ("verb", ev.verb), ("objectRef.resource", ev.resource),
                          ("sourceIPs.clientSettable", i < len(ev.source_ips) - 1))  # fmt: skip
    if anonymous and ev.success:
        tactic = tactic or tactic_of(ev)
        if tactic is None:
            return
        if tactic == "Discovery" and not ev.resource and ev.path in _DISCOVERY_NONRESOURCE_EXCLUDED:
            return
        yield hit(_GD_IDS[(tactic, "SuccessfulAnonymousAccess")],
                  f"{tactic} API {ev.verb} {ev.resource or ev.path} succeeded as system:anonymous",
                  ("user.username", ev.user), ("requestURI", ev.uri), ("responseStatus.code", ev.code))  # fmt: skip
