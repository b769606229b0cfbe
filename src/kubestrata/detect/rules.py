"""Rule logic: small functions, each registered with the catalogue ids it can raise and a dispatch
key (verbs, resource, subresource) so that an event only meets the rules that can match it.

Falco parity rules implement the conditions of falcosecurity/plugins
plugins/k8saudit/rules/k8s_audit_rules.yaml literally, with its lists; see docs/detect.md for the
GuardDuty API-to-tactic map and the few places where we differ.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from kubestrata.detect.event import RESPONSE_COMPLETE, RESPONSE_STARTED, AuditEvent
from kubestrata.detect.objects import apply_json_patch, merge
from kubestrata.errors import InputError
from kubestrata.findings import Severity
from kubestrata.kube.podspec import iter_containers, pod_template

COMPLETE = frozenset({RESPONSE_COMPLETE})
STARTED = frozenset({RESPONSE_STARTED})

# --- Falco lists (k8s_audit_rules.yaml) ------------------------------------------------------

ALLOWED_K8S_USERS = frozenset(
    {
        "minikube",
        "minikube-user",
        "kubelet",
        "kops",
        "admin",
        "kube",
        "kube-proxy",
        "kube-apiserver-healthcheck",
        "kubernetes-admin",
        "vpa-recommender",
        "vpa-updater",
        "cluster-autoscaler",
        "system:addon-manager",
        "cloud-controller-manager",
        "system:kube-controller-manager",
    }
)
EKS_ALLOWED_K8S_USERS = frozenset(
    {
        "eks:node-manager",
        "eks:certificate-controller",
        "eks:fargate-scheduler",
        "eks:k8s-metrics",
        "eks:authenticator",
        "eks:cluster-event-watcher",
        "eks:nodewatcher",
        "eks:pod-identity-mutating-webhook",
        "eks:cloud-controller-manager",
        "eks:vpc-resource-controller",
        "eks:addon-manager",
    }
)
SENSITIVE_MOUNT_IMAGES = frozenset(
    {
        "falcosecurity/falco",
        "docker.io/falcosecurity/falco",
        "public.ecr.aws/falcosecurity/falco",
        "docker.io/sysdig/sysdig",
        "sysdig/sysdig",
        "gcr.io/google_containers/hyperkube",
        "gcr.io/google_containers/kube-proxy",
        "docker.io/calico/node",
        "docker.io/rook/toolbox",
        "docker.io/cloudnativelabs/kube-router",
        "docker.io/consul",
        "docker.io/datadog/docker-dd-agent",
        "docker.io/datadog/agent",
        "docker.io/docker/ucp-agent",
        "docker.io/gliderlabs/logspout",
        "docker.io/netdata/netdata",
        "docker.io/google/cadvisor",
        "docker.io/prom/node-exporter",
        "amazon/amazon-ecs-agent",
        "prom/node-exporter",
        "amazon/cloudwatch-agent",
    }
)
PRIVILEGED_IMAGES = frozenset(
    {
        "falcosecurity/falco",
        "docker.io/falcosecurity/falco",
        "public.ecr.aws/falcosecurity/falco",
        "docker.io/calico/node",
        "calico/node",
        "docker.io/cloudnativelabs/kube-router",
        "docker.io/docker/ucp-agent",
        "docker.io/mesosphere/mesos-slave",
        "docker.io/rook/toolbox",
        "docker.io/sysdig/sysdig",
        "gcr.io/google_containers/kube-proxy",
        "gcr.io/google-containers/startup-script",
        "gcr.io/projectcalico-org/node",
        "gke.gcr.io/kube-proxy",
        "gke.gcr.io/gke-metadata-server",
        "gke.gcr.io/netd-amd64",
        "gke.gcr.io/watcher-daemonset",
        "gcr.io/google-containers/prometheus-to-sd",
        "registry.k8s.io/ip-masq-agent-amd64",
        "registry.k8s.io/kube-proxy",
        "registry.k8s.io/prometheus-to-sd",
        "quay.io/calico/node",
        "sysdig/sysdig",
        "registry.k8s.io/dns/k8s-dns-node-cache",
        "mcr.microsoft.com/oss/kubernetes/kube-proxy",
    }
)
SENSITIVE_HOST_PATHS = frozenset(
    {
        "/proc",
        "/var/run/docker.sock",
        "/",
        "/etc",
        "/root",
        "/var/run/crio/crio.sock",
        "/run/containerd/containerd.sock",
        "/home/admin",
        "/var/lib/kubelet",
        "/var/lib/kubelet/pki",
        "/etc/kubernetes",
        "/etc/kubernetes/manifests",
    }
)
HOSTNETWORK_IMAGES = frozenset(
    {
        "gcr.io/google-containers/prometheus-to-sd",
        "gcr.io/projectcalico-org/typha",
        "gcr.io/projectcalico-org/node",
        "gke.gcr.io/gke-metadata-server",
        "gke.gcr.io/kube-proxy",
        "gke.gcr.io/netd-amd64",
        "registry.k8s.io/ip-masq-agent-amd64",
        "registry.k8s.io/prometheus-to-sd",
    }
)
ALLOWED_NAMESPACES = frozenset({"kube-system", "kube-public", "default"})
ALLOWED_KUBE_NAMESPACE_IMAGES = frozenset(
    {
        "gcr.io/google-containers/prometheus-to-sd",
        "gcr.io/projectcalico-org/node",
        "gke.gcr.io/addon-resizer",
        "gke.gcr.io/heapster",
        "gke.gcr.io/gke-metadata-server",
        "registry.k8s.io/ip-masq-agent-amd64",
        "registry.k8s.io/kube-apiserver",
        "gke.gcr.io/kube-proxy",
        "gke.gcr.io/netd-amd64",
        "gke.gcr.io/watcher-daemonset",
        "registry.k8s.io/addon-resizer",
        "registry.k8s.io/prometheus-to-sd",
        "registry.k8s.io/k8s-dns-dnsmasq-nanny-amd64",
        "registry.k8s.io/k8s-dns-kube-dns-amd64",
        "registry.k8s.io/k8s-dns-sidecar-amd64",
        "registry.k8s.io/metrics-server-amd64",
        "kope/kube-apiserver-healthcheck",
    }
)
KNOWN_SA_LIST = frozenset(
    {
        "coredns",
        "coredns-autoscaler",
        "cronjob-controller",
        "daemon-set-controller",
        "deployment-controller",
        "disruption-controller",
        "endpoint-controller",
        "endpointslice-controller",
        "endpointslicemirroring-controller",
        "generic-garbage-collector",
        "horizontal-pod-autoscaler",
        "job-controller",
        "namespace-controller",
        "node-controller",
        "persistent-volume-binder",
        "pod-garbage-collector",
        "pv-protection-controller",
        "pvc-protection-controller",
        "replicaset-controller",
        "resourcequota-controller",
        "root-ca-cert-publisher",
        "service-account-controller",
        "statefulset-controller",
    }
)
FULL_ADMIN_K8S_USERS = frozenset(
    {
        "admin",
        "kubernetes-admin",
        "kubernetes-admin@kubernetes",
        "kubernetes-admin@cluster.local",
        "minikube-user",
    }
)
CONFIGMAP_CREDENTIAL_WORDS = (
    "aws_access_key_id",
    "aws-access-key-id",
    "aws_s3_access_key_id",
    "aws-s3-access-key-id",
    "password",
    "passphrase",
)
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")

MODIFY = frozenset({"create", "update", "patch"})
READ_VERBS = frozenset({"get", "list", "watch"})
SYSTEM_NAMESPACES = frozenset({
    "kube-system", "kube-public", "kube-node-lease", "gke-system", "gke-managed-system",
    "gke-connect", "gmp-system", "calico-system", "tigera-operator", "amazon-cloudwatch",
    "aws-observability",
})  # fmt: skip
WORKLOAD_RESOURCES = {
    "pods": "Pod", "deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet", "jobs": "Job", "cronjobs": "CronJob",
    "replicationcontrollers": "ReplicationController", "podtemplates": "PodTemplate",
}  # fmt: skip
ADMIN_ROLES = frozenset({"cluster-admin", "admin"})
PRIVILEGED_CLUSTER_ROLES = frozenset({
    "cluster-admin", "admin", "edit", "system:masters", "system:kube-controller-manager",
    "system:kube-scheduler", "system:node", "system:controller:clusterrole-aggregation-controller",
})  # fmt: skip
DANGEROUS_CAPABILITIES = frozenset({
    "ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "BPF", "PERFMON", "DAC_READ_SEARCH",
    "SYS_RAWIO", "SYS_BOOT",
})  # fmt: skip
# GuardDuty's sensitive host paths for the (retired) ContainerWithSensitiveMount type are not
# published; Falco's list is the documented closest set.
GD_SENSITIVE_PATHS = SENSITIVE_HOST_PATHS
SUSPICIOUS_IMAGE = re.compile(
    r"(?:^|/)(?:kali(?:linux)?|metasploit\w*|parrotsec|nmap|masscan|xmrig|xmr-stak|cpuminer|"
    r"minerd|ncat|netcat|socat|kube-hunter|peirates|botb|deepce|cdk|traitor|linpeas|"
    r"impacket|responder|sliver|empire|mimikatz|chisel)(?:[:@/]|$)",
    re.IGNORECASE,
)
REVERSE_SHELL = re.compile(
    r"/dev/(?:tcp|udp)/|\bnc(?:at)?\b.*\s-[a-z]*e\b|\bsocat\b.*\bexec:|\bbash\s+-i\b|"
    r"\bsh\s+-i\b.*[<>]|python\d?\s+-c\s+.*socket|perl\s+-e\s+.*socket|\bmkfifo\b.*\bnc\b|"
    r"\bxmrig\b|stratum\+tcp://",
    re.IGNORECASE,
)
DOWNLOAD_AND_RUN = re.compile(r"\b(?:curl|wget)\b[^|;]*\|\s*(?:ba|z|da)?sh\b", re.IGNORECASE)
# Instance metadata (AWS, Azure, GCP, OpenStack: 169.254.169.254; AWS IPv6 fd00:ec2::254), the EKS
# Pod Identity agent (169.254.170.23, fd00:ec2::23), Azure's WireServer (168.63.129.16) and GCP's
# metadata host names
METADATA_SERVICE = re.compile(
    r"169\.254\.169\.254|169\.254\.170\.23\b|fd00:ec2::(?:254|23)\b|168\.63\.129\.16\b"
    r"|metadata\.google\.internal|\bmetadata\.goog\b",
    re.IGNORECASE,
)
HOST_SECRETS = re.compile(r"/etc/shadow\b|/root/\.ssh|/\.aws/credentials|/etc/kubernetes/(?:pki|admin\.conf)")
# Projected tokens: the Kubernetes ServiceAccount token, EKS IRSA (eks.amazonaws.com) and EKS Pod
# Identity (pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token), AKS workload identity
# (/var/run/secrets/azure/tokens/azure-identity-token), custom projections under
# /var/run/secrets/tokens; and the environment variables that name them
# (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, AZURE_FEDERATED_TOKEN_FILE)
SA_TOKEN = re.compile(
    r"(?:/var)?/run/secrets/(?:kubernetes\.io/serviceaccount|eks\.amazonaws\.com/serviceaccount"
    r"|pods\.eks\.amazonaws\.com/serviceaccount|azure/tokens|tokens)"
    r"|\b(?:AWS_WEB_IDENTITY_TOKEN_FILE|AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE|AZURE_FEDERATED_TOKEN_FILE)\b"
)


# --- the registry ----------------------------------------------------------------------------


@dataclass(slots=True)
class Hit:
    rule_id: str
    message: str
    evidence: list[tuple[str, Any]]
    severity: Severity | None = None


RuleFn = Callable[[AuditEvent, Any], Iterable[Hit] | None]


@dataclass(frozen=True, slots=True)
class Detector:
    name: str
    ids: tuple[str, ...]
    verbs: frozenset[str] | None  # None = any
    resources: frozenset[str] | None
    subresources: frozenset[str] | None  # frozenset({""}) = no subresource; None = any
    stages: frozenset[str] | None  # None = every stage
    fn: RuleFn

    def accepts(self, stage: str, verb: str, resource: str, subresource: str) -> bool:
        return (
            (self.stages is None or not stage or stage in self.stages)
            and (self.verbs is None or verb in self.verbs)
            and (self.resources is None or resource in self.resources)
            and (self.subresources is None or subresource in self.subresources)
        )


DETECTORS: list[Detector] = []


def _set(spec: str) -> frozenset[str] | None:
    return None if spec == "*" else frozenset(spec.split(","))


def detector(
    *ids: str, on: str = "* *", stages: frozenset[str] | None = COMPLETE
) -> Callable[[RuleFn], RuleFn]:
    """Register fn for catalogue ids. ``on`` is "verbs resource[/subresource]" with commas for
    alternatives and * for any, e.g. "create,get pods/exec,attach"; a resource without "/" matches
    only requests without a subresource, "pods/*" any subresource."""

    def deco(fn: RuleFn) -> RuleFn:
        verbs, target = on.split(" ", 1)
        res, _, sub = target.partition("/")
        subs: frozenset[str] | None
        if res == "*" and not sub:
            subs = None
        elif not _:
            subs = frozenset({""})
        else:
            subs = _set(sub)
        DETECTORS.append(Detector(fn.__name__, ids, _set(verbs), _set(res), subs, stages, fn))
        return fn

    return deco


def dispatch_of(rule_id: str) -> dict[str, Any]:
    """The dispatch key of a catalogue rule: verbs, resources, subresources and stages it can
    match (None = any; "" in subresources = requests without one), over every detector that can
    raise it."""
    ds = [d for d in DETECTORS if rule_id in d.ids]
    if not ds:
        raise KeyError(rule_id)

    def union(field: str) -> list[str] | None:
        values = [getattr(d, field) for d in ds]
        return None if any(v is None for v in values) else sorted(set().union(*values))

    return {
        "verbs": union("verbs"),
        "resources": union("resources"),
        "subresources": union("subresources"),
        "stages": union("stages"),
        "function": ", ".join(d.name for d in ds),
    }


def hit(rule_id: str, message: str, *evidence: tuple[str, Any], severity: Severity | None = None) -> Hit:
    return Hit(rule_id, message, list(evidence), severity)


# --- helpers ---------------------------------------------------------------------------------


def image_repository(image: str) -> str:
    """Falco's ka.req.pod.containers.image.repository: the image without tag and digest."""
    s = image.split("@", 1)[0]
    colon = s.rfind(":")
    return s[:colon] if colon > s.rfind("/") else s


def pod_spec(
    ev: AuditEvent, obj: dict[str, Any] | None = None, prefix: str = "requestObject"
) -> tuple[dict[str, Any], str] | None:
    """The pod spec of a pod or workload object (the request object unless ``obj`` is given),
    with its field path."""
    ro = ev.request_object if obj is None else obj
    kind = WORKLOAD_RESOURCES.get(ev.resource)
    if not ro or kind is None or ev.subresource not in ("", "ephemeralcontainers"):
        return None
    ro = ro if ro.get("kind") == kind else {**ro, "kind": kind}
    tpl = pod_template(ro)
    if tpl is None:
        return None
    return tpl.spec, f"{prefix}.{tpl.spec_path}"


# --- the object a request produced (issue 11: patch and server-side apply) -------------------

REMEMBERED = frozenset(WORKLOAD_RESOURCES) | {
    "roles", "clusterroles", "rolebindings", "clusterrolebindings", "services",
    "mutatingwebhookconfigurations", "validatingwebhookconfigurations",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Produced:
    obj: dict[str, Any]
    prefix: str  # evidence path root: responseObject, requestObject or patchedObject
    prior: dict[str, Any] | None  # the last state seen in this stream, when known
    created: bool  # the request created the object (create, or an apply/patch answered 201)


def _compute_produced(ev: AuditEvent, ctx: Any) -> Produced | None:
    if ev.verb not in MODIFY or not ev.success:
        return None
    if ev.subresource and not (ev.resource == "pods" and ev.subresource == "ephemeralcontainers"):
        return None
    memory = getattr(ctx, "objects", None)
    name = ev.name
    if not name:
        meta = ev.request_object.get("metadata")
        name = str(meta.get("name") or "") if isinstance(meta, dict) else ""
    # no API group in the key: some normalisers drop it, and a resource name is one object in
    # every group it is served from (extensions/apps Deployments)
    key = (ev.cluster, ev.resource, ev.namespace, name)
    prior = memory.get(key) if memory is not None and name and ev.verb != "create" else None
    resp = ev.response_object
    obj: dict[str, Any] | None
    if resp and resp.get("kind") != "Status":
        obj, prefix = resp, "responseObject"
    elif ev.verb != "patch":
        obj, prefix = ev.request_object or None, "requestObject"
    elif (ops := ev.json_patch) is not None:
        obj, prefix = apply_json_patch(prior, ops), "patchedObject"
    elif prior is not None:
        obj, prefix = merge(prior, ev.request_object), "patchedObject"
    else:
        obj, prefix = ev.request_object or None, "requestObject"
    if not obj:
        return None
    if memory is not None and name and ev.resource in REMEMBERED:
        memory.put(key, obj)
    created = (ev.verb == "create" or ev.code == 201) and not ev.subresource
    return Produced(obj, prefix, prior, created)


def produced(ev: AuditEvent, ctx: Any) -> Produced | None:
    """The object a successful create/update/patch produced (computed once per event): the
    responseObject where the audit level has it, else the request object, else the patch applied
    to what this stream last saw of the object (detect/objects.py)."""
    p = ev.produced
    if p is None:
        p = ev.produced = _compute_produced(ev, ctx) or False
    return p or None


def _strip(evidence: list[tuple[str, Any]]) -> set[str]:
    return {p.split(".", 1)[-1] + "=" + orjson.dumps(v, default=str).decode() for p, v in evidence}


def introduced(
    ev: AuditEvent, ctx: Any, check: Callable[[dict[str, Any], str], Iterable[Hit]]
) -> Iterator[Hit]:
    """``check(object, prefix)`` on the produced object; for a change of an object whose prior
    state is known, only the hits whose evidence the change introduced (an already privileged
    Deployment whose labels are patched is not reported again)."""
    p = produced(ev, ctx)
    if p is None:
        return
    hits = list(check(p.obj, p.prefix))
    if not hits:
        return
    before: dict[str, set[str]] = {}
    if p.prior is not None and not p.created:
        for h in check(p.prior, p.prefix):
            before.setdefault(h.rule_id, set()).update(_strip(h.evidence))
    for h in hits:
        old = before.get(h.rule_id)
        if old is None or not _strip(h.evidence) <= old:
            yield h


def containers(spec: dict[str, Any], path: str) -> list[tuple[dict[str, Any], str]]:
    return [(c.container, c.path) for c in iter_containers(spec, path)]


def images(spec: dict[str, Any], path: str) -> list[str]:
    return [c.get("image") if isinstance(c.get("image"), str) else "" for c, _ in containers(spec, path)]


def falco_not_all_in(repos: list[str], allowed: frozenset[str]) -> bool:
    """Falco's ``not <list field> in (<list>)``: true unless there are values and all are allowed."""
    return not repos or not all(r in allowed for r in repos)


def host_paths(spec: dict[str, Any], path: str) -> list[tuple[str, str, str]]:
    """(volume name, host path, field path) of every hostPath volume."""
    out = []
    vols = spec.get("volumes")
    if not isinstance(vols, list):
        return out
    for i, v in enumerate(vols):
        hp = v.get("hostPath") if isinstance(v, dict) else None
        if isinstance(hp, dict) and isinstance(hp.get("path"), str):
            out.append((str(v.get("name") or ""), hp["path"], f"{path}.volumes[{i}].hostPath.path"))
    return out


def role_rules(ev: AuditEvent, obj: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rules = (ev.request_object if obj is None else obj).get("rules")
    return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []


def rule_values(rules: list[dict[str, Any]], key: str) -> list[str]:
    out: list[str] = []
    for r in rules:
        v = r.get(key)
        if isinstance(v, list):
            out.extend(x for x in v if isinstance(x, str))
    return out


def binding_role(ev: AuditEvent, obj: dict[str, Any] | None = None) -> str:
    ref = (ev.request_object if obj is None else obj).get("roleRef")
    return str(ref.get("name") or "") if isinstance(ref, dict) else ""


def binding_subjects(ev: AuditEvent, obj: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    subs = (ev.request_object if obj is None else obj).get("subjects")
    return [s for s in subs if isinstance(s, dict)] if isinstance(subs, list) else []


def is_system(username: str) -> bool:
    """Falco's ``non_system_user`` macro negated (``ka.user.name startswith "system:"``). Used ONLY
    by the Falco parity rules, which keep Falco's condition; every other rule asks ``exempt``."""
    return username.startswith("system:")


# user.extra keys and uid prefixes of people and workloads authenticated by a cloud IAM (EKS's
# aws-iam-authenticator / access entries): such a user is never the control plane, whatever name
# aws-auth or an access entry maps it to
_IAM_EXTRA_KEYS = ("arn", "canonicalArn", "accessKeyId", "sessionName", "principalId")
_IAM_UID_PREFIXES = ("aws-iam-authenticator:", "heptio-authenticator-aws:")


def cloud_iam_user(ev: AuditEvent) -> bool:
    extra = ev.user_extra
    if extra and any(k in extra for k in _IAM_EXTRA_KEYS):
        return True
    user = ev.raw.get("user")
    uid = user.get("uid") if isinstance(user, dict) else None
    return isinstance(uid, str) and uid.startswith(_IAM_UID_PREFIXES)


def exempt(ev: AuditEvent, ctx: Any, rule_id: str) -> bool:
    """The request was made by one of the control plane's own identities, named in the exemption
    list (detect/data/control_plane_identities.yaml or --control-plane-identities), for this rule.
    The name is the authenticated user's, never an impersonated one's; and a user authenticated
    by a cloud IAM is not the control plane even when mapped to a control-plane name."""
    return ctx.config.control_plane.exempt(ev.user, ev.groups, rule_id) and not cloud_iam_user(ev)


def is_system_principal(username: str) -> bool:
    """Kubernetes and provider control-plane identities (not the unauthenticated pseudo-users)."""
    return username.startswith(("system:", "eks:", "aks:")) and username not in (
        "system:anonymous",
        "system:unauthenticated",
    )


def is_node(ev: AuditEvent) -> bool:
    """A kubelet, as the Node authorizer recognises one: group system:nodes and user system:node:<name>."""
    return "system:nodes" in ev.groups and ev.user.startswith("system:node:")


def exec_ok(ev: AuditEvent) -> bool:
    """An exec/attach that went through: 101 Switching Protocols, 2xx, or no status recorded."""
    return ev.code is None or ev.code == 101 or 200 <= ev.code < 300


_ip_cache: dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address | None] = {}


def parse_ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    ip = _ip_cache.get(s, False)
    if ip is False:
        try:
            ip = ipaddress.ip_address(s)
        except ValueError:
            ip = None
        if len(_ip_cache) > 65536:
            _ip_cache.clear()
        _ip_cache[s] = ip
    return ip  # type: ignore[return-value]


_public_cache: dict[str, bool] = {}


def is_public(s: str) -> bool:
    r = _public_cache.get(s)
    if r is None:
        ip = parse_ip(s)
        r = ip is not None and ip.is_global
        if len(_public_cache) > 65536:
            _public_cache.clear()
        _public_cache[s] = r
    return r


# --- Falco parity ----------------------------------------------------------------------------


@detector("KS-AUD-F01", on="* *")
def disallowed_user(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    u = ev.user
    if not is_system(u) and u not in ctx.config.allowed_users and u not in EKS_ALLOWED_K8S_USERS:
        yield hit("KS-AUD-F01", f"request by user {u!r} outside the allowed users", ("user.username", u))


@detector("KS-AUD-F02", "KS-AUD-F03", "KS-AUD-F04", "KS-AUD-F05", "KS-AUD-F06", "KS-AUD-F07", "KS-AUD-F15",
          on="create pods")  # fmt: skip
def falco_pod_create(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    ps = pod_spec(ev)
    spec, path = ps if ps else ({}, "requestObject.spec")
    ctrs = containers(spec, path)
    # ka.req.pod.containers.image.repository: spec.containers only (init/ephemeral have their own
    # fields, which the allowlist conditions do not consult)
    regular = [c for c, p in ctrs if p.startswith(path + ".containers[")]
    repos = [image_repository(c["image"]) for c in regular if isinstance(c.get("image"), str)]
    img_ev = (path + ".containers[*].image", [c.get("image") for c in regular])
    allowed = ctx.config.allowed_images
    if allowed and falco_not_all_in(repos, allowed):
        yield hit("KS-AUD-F02", "pod started with an image not in the allowed list", img_ev)
    priv = [(p, c) for c, p in ctrs if (c.get("securityContext") or {}).get("privileged") is True]
    if priv and falco_not_all_in(repos, PRIVILEGED_IMAGES):
        yield hit("KS-AUD-F03", "pod started with a privileged container",
                  *[(p + ".securityContext.privileged", True) for p, _ in priv], img_ev)  # fmt: skip
    sens = [(n, hp, fp) for n, hp, fp in host_paths(spec, path) if hp in SENSITIVE_HOST_PATHS]
    if sens and falco_not_all_in(repos, SENSITIVE_MOUNT_IMAGES):
        yield hit("KS-AUD-F04", "pod started with a sensitive hostPath mount",
                  *[(fp, hp) for _, hp, fp in sens], img_ev)  # fmt: skip
    for fld, rid, allow, words in (
        ("hostNetwork", "KS-AUD-F05", HOSTNETWORK_IMAGES, "host network"),
        ("hostPID", "KS-AUD-F06", frozenset(), "host PID namespace"),
        ("hostIPC", "KS-AUD-F07", frozenset(), "host IPC namespace"),
    ):
        if spec.get(fld) is True and falco_not_all_in(repos, allow):
            yield hit(rid, f"pod started using the {words}", (f"{path}.{fld}", True), img_ev)
    if ev.namespace in ("kube-system", "kube-public") and falco_not_all_in(
        repos, ALLOWED_KUBE_NAMESPACE_IMAGES
    ):
        yield hit("KS-AUD-F15", f"pod created in namespace {ev.namespace}",
                  ("objectRef.namespace", ev.namespace), img_ev)  # fmt: skip


@detector("KS-AUD-F08", on="create services")
def nodeport_service(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    spec = ev.request_object.get("spec")
    if isinstance(spec, dict) and spec.get("type") == "NodePort":
        yield hit("KS-AUD-F08", "NodePort Service created", ("requestObject.spec.type", "NodePort"),
                  ("requestObject.spec.ports", spec.get("ports")))  # fmt: skip


@detector("KS-AUD-F09", on="create,update,patch configmaps")
def configmap_credentials(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
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


@detector("KS-AUD-F10", on="* *")
def anonymous_allowed(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if ev.user == "system:anonymous" and ev.decision == "allow" and not _health(ev):
        yield hit("KS-AUD-F10", "request by system:anonymous was allowed",
                  ("user.username", ev.user), ("requestURI", ev.uri),
                  ("annotations.authorization.k8s.io/reason", ev.reason))  # fmt: skip


@detector("KS-AUD-F11", on="create,get pods/exec,attach", stages=STARTED)
def attach_exec(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    cmd = ev.exec_command()
    yield hit("KS-AUD-F11", f"{ev.subresource} into pod {ev.namespace}/{ev.name}",
              ("objectRef.subresource", ev.subresource), ("requestURI?command", cmd))  # fmt: skip


@detector("KS-AUD-F12", on="* */portforward", stages=None)
def port_forward(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    yield hit(
        "KS-AUD-F12",
        f"port-forward to pod {ev.namespace}/{ev.name}",
        ("objectRef.subresource", "portforward"),
    )


@detector("KS-AUD-F13", on="create,update,patch pods/ephemeralcontainers")
def ephemeral_containers(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    ecs = ev.request_object.get("ephemeralContainers")
    first = ecs[0] if isinstance(ecs, list) and ecs and isinstance(ecs[0], dict) else {}
    spec = ev.request_object.get("spec")
    if not first and isinstance(spec, dict) and isinstance(spec.get("ephemeralContainers"), list):
        ecs2 = spec["ephemeralContainers"]
        first = ecs2[-1] if ecs2 and isinstance(ecs2[-1], dict) else {}
    yield hit("KS-AUD-F13", f"ephemeral container added to pod {ev.namespace}/{ev.name}",
              ("requestObject.ephemeralContainers[0].name", first.get("name")),
              ("requestObject.ephemeralContainers[0].image", first.get("image")))  # fmt: skip


@detector("KS-AUD-F14", on="create namespaces")
def disallowed_namespace(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if ev.name not in ALLOWED_NAMESPACES:
        yield hit("KS-AUD-F14", f"namespace {ev.name!r} created", ("objectRef.name", ev.name))


@detector("KS-AUD-F16", on="create serviceaccounts")
def sa_in_kube_namespace(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if ev.namespace in ("kube-system", "kube-public") and ev.success and ev.name not in KNOWN_SA_LIST:
        yield hit("KS-AUD-F16", f"ServiceAccount {ev.name!r} created in {ev.namespace}",
                  ("objectRef.namespace", ev.namespace), ("objectRef.name", ev.name))  # fmt: skip


@detector("KS-AUD-F17", on="create,update,patch,delete roles,clusterroles")
def system_role_modified(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    n = ev.name
    if n.startswith("system:") and n not in ("system:coredns", "system:managed-certificate-controller"):
        yield hit("KS-AUD-F17", f"system role {n!r} {ev.verb}d", ("objectRef.name", n), ("verb", ev.verb))


@detector("KS-AUD-F18", on="create clusterrolebindings")
def cluster_admin_binding(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if binding_role(ev) == "cluster-admin":
        yield hit("KS-AUD-F18", "ClusterRoleBinding to cluster-admin created",
                  ("requestObject.roleRef.name", "cluster-admin"),
                  ("requestObject.subjects", binding_subjects(ev)))  # fmt: skip


@detector("KS-AUD-F19", "KS-AUD-F20", "KS-AUD-F21", on="create roles,clusterroles")
def falco_role_create(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    rules = role_rules(ev)
    res, verbs = rule_values(rules, "resources"), rule_values(rules, "verbs")
    if "*" in res or "*" in verbs:
        yield hit("KS-AUD-F19", f"{ev.resource[:-1]} {ev.name!r} with a wildcard created",
                  ("requestObject.rules[*].resources", res), ("requestObject.rules[*].verbs", verbs))  # fmt: skip
    wv = sorted(set(verbs) & WRITE_VERBS)
    if wv:
        yield hit("KS-AUD-F20", f"{ev.resource[:-1]} {ev.name!r} with write verbs created",
                  ("requestObject.rules[*].verbs", wv))  # fmt: skip
    if "pods/exec" in res:
        yield hit("KS-AUD-F21", f"{ev.resource[:-1]} {ev.name!r} with pods/exec created",
                  ("requestObject.rules[*].resources", "pods/exec"))  # fmt: skip


_ACTIVITY_IDS: dict[tuple[str, str], str] = {}
for _i, _res in enumerate(
    ["deployments", "services", "configmaps", "namespaces", "serviceaccounts", "roles", "clusterroles",
     "rolebindings", "clusterrolebindings", "secrets"]
):  # fmt: skip
    _ACTIVITY_IDS[("create", _res)] = f"KS-AUD-F{30 + 2 * _i}"
    _ACTIVITY_IDS[("delete", _res)] = f"KS-AUD-F{31 + 2 * _i}"


@detector(
    *sorted(set(_ACTIVITY_IDS.values())),
    on="create,delete " + ",".join(sorted({r for _, r in _ACTIVITY_IDS})),
)
def falco_activity(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if not ev.success:
        return
    if ev.resource == "namespaces" and ev.verb == "delete" and is_system(ev.user):
        return
    if ev.resource == "secrets" and (ev.namespace == "kube-system" or is_system(ev.user)):
        return
    rid = _ACTIVITY_IDS[(ev.verb, ev.resource)]
    yield hit(rid, f"{ev.resource[:-1]} {ev.namespace + '/' if ev.namespace else ''}{ev.name} {ev.verb}d",
              ("verb", ev.verb), ("objectRef.name", ev.name), ("responseStatus.code", ev.code))  # fmt: skip


@detector("KS-AUD-F50", "KS-AUD-F51", on="get secrets")
def secret_get(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if ev.success:
        yield hit("KS-AUD-F50", f"secret {ev.namespace}/{ev.name} read", ("responseStatus.code", ev.code))
    else:
        yield hit(
            "KS-AUD-F51", f"failed read of secret {ev.namespace}/{ev.name}", ("responseStatus.code", ev.code)
        )


@detector("KS-AUD-F52", on="* *")
def full_admin(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    users = ctx.config.full_admin_users
    if users and not is_system(ev.user) and ev.user in users:
        yield hit("KS-AUD-F52", f"request by default administrator {ev.user!r}", ("user.username", ev.user))


@detector("KS-AUD-F53", on="create ingresses")
def ingress_without_tls(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    spec = ev.request_object.get("spec")
    if ev.success and not (isinstance(spec, dict) and "tls" in spec):
        yield hit("KS-AUD-F53", f"Ingress {ev.namespace}/{ev.name} created without TLS",
                  ("requestObject.spec.tls", None))  # fmt: skip


@detector("KS-AUD-F54", "KS-AUD-F55", on="create nodes")
def untrusted_node(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    allowed = ctx.config.allowed_nodes
    if allowed is None or ev.name in allowed:
        return
    rid = "KS-AUD-F54" if ev.success else "KS-AUD-F55"
    yield hit(rid, f"node {ev.name!r} not in the allowed list", ("objectRef.name", ev.name))


# --- GuardDuty rule-based --------------------------------------------------------------------


@detector("KS-AUD-G01", on="create,get pods/exec", stages=STARTED)
def exec_in_kube_system(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if ev.namespace == "kube-system" and exec_ok(ev):
        yield hit("KS-AUD-G01", f"exec into kube-system pod {ev.name}",
                  ("objectRef.namespace", "kube-system"), ("requestURI?command", ev.exec_command()))  # fmt: skip


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


@detector("KS-AUD-G02", "KS-AUD-G03", on="create,update,patch rolebindings,clusterrolebindings")
def gd_binding(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        subs = binding_subjects(ev, obj)
        role = binding_role(ev, obj)
        for i, s in enumerate(subs):
            # the anonymous user, or the group every unauthenticated request has
            if s.get("name") in ANONYMOUS_SUBJECTS:
                yield hit("KS-AUD-G02", f"{ev.resource[:-1]} {ev.name!r} binds system:anonymous to {role!r}",
                          (f"{prefix}.subjects[{i}]", s), (f"{prefix}.roleRef.name", role))  # fmt: skip
                break
        if role in ADMIN_ROLES:
            for i, s in enumerate(subs):
                sa = _sa_subject(s, ev.namespace)
                if (sa and sa[1] == "default") or _all_sa_group(s):
                    who = f"default ServiceAccount of {sa[0]}" if sa else f"group {s.get('name')}"
                    yield hit("KS-AUD-G03", f"{who} bound to {role}",
                              (f"{prefix}.subjects[{i}]", s), (f"{prefix}.roleRef.name", role))  # fmt: skip
                    break

    yield from introduced(ev, ctx, check)


_DASHBOARD_NAMES = ("kubernetes-dashboard",)
_KUBEFLOW_NAMES = ("centraldashboard", "kubeflow-dashboard")


def _internet_lb(spec: dict[str, Any], meta: dict[str, Any]) -> bool:
    if spec.get("type") != "LoadBalancer":
        return False
    ann = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
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


@detector("KS-AUD-G04", "KS-AUD-G05", on="create,update,patch services")
def exposed_dashboard(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    def check(ro: dict[str, Any], prefix: str) -> Iterator[Hit]:
        spec, meta = ro.get("spec"), ro.get("metadata") or {}
        if not isinstance(spec, dict) or not isinstance(meta, dict) or not _internet_lb(spec, meta):
            return
        sel = spec.get("selector") if isinstance(spec.get("selector"), dict) else {}
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        words = {ev.name, str(meta.get("name") or ""), *map(str, sel.values()), *map(str, labels.values())}
        for rid, names, what in (("KS-AUD-G04", _DASHBOARD_NAMES, "Kubernetes dashboard"),
                                 ("KS-AUD-G05", _KUBEFLOW_NAMES, "Kubeflow dashboard")):  # fmt: skip
            if any(n in w for w in words for n in names):
                yield hit(rid, f"{what} Service {ev.namespace}/{ev.name} exposed by an internet LoadBalancer",
                          (f"{prefix}.spec.type", "LoadBalancer"), (f"{prefix}.spec.selector", sel))  # fmt: skip

    yield from introduced(ev, ctx, check)


def _privileged_and_mounts(spec: dict[str, Any], path: str):
    priv, sens = [], []
    vols = {n: hp for n, hp, _ in host_paths(spec, path)}
    for c, p in containers(spec, path):
        img = c.get("image") if isinstance(c.get("image"), str) else ""
        if (c.get("securityContext") or {}).get("privileged") is True:
            priv.append((img, p))
        for j, m in enumerate(c.get("volumeMounts") or []):
            if isinstance(m, dict) and m.get("name") in vols and m.get("readOnly") is not True:
                hp = vols[m["name"]]
                if hp in GD_SENSITIVE_PATHS:
                    sens.append((img, f"{p}.volumeMounts[{j}]", hp))
    return priv, sens


WORKLOAD_ON = "create,update,patch " + ",".join(sorted(WORKLOAD_RESOURCES))


def _produced_spec(ev: AuditEvent, ctx: Any) -> tuple[dict[str, Any], str] | None:
    p = produced(ev, ctx)
    return pod_spec(ev, p.obj, p.prefix) if p is not None else None


@detector("KS-AUD-G06", "KS-AUD-G07", on=WORKLOAD_ON)
def gd_workload_rules(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    ps = _produced_spec(ev, ctx)
    if ps is None:
        return
    priv, _ = _privileged_and_mounts(*ps)
    for img, p in priv:
        if ctx.first_seen("privileged-image", img or "<none>") and not ctx.learning:
            yield hit("KS-AUD-G06", f"privileged container from image {img!r}, new to privileged use",
                      (p + ".securityContext.privileged", True), (p + ".image", img))  # fmt: skip

    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        ps = pod_spec(ev, obj, prefix)
        for img, p, hp in _privileged_and_mounts(*ps)[1] if ps else []:
            yield hit("KS-AUD-G07", f"container mounts host path {hp} writable", (p, hp), (p + ".image", img))
            break

    yield from introduced(ev, ctx, check)


# --- GuardDuty tactic x source ---------------------------------------------------------------

# Our API-to-tactic map (GuardDuty does not publish one). First match wins; see docs/detect.md.
_TACTIC_TABLE: list[tuple[frozenset[str] | None, frozenset[str], frozenset[str] | None, str]] = [
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


_GD_IDS = {}
_n = 10
for _t in ("CredentialAccess", "DefenseEvasion", "Discovery", "Impact", "Persistence"):
    for _s in ("MaliciousIPCaller", "MaliciousIPCaller.Custom", "TorIPCaller", "SuccessfulAnonymousAccess"):
        _GD_IDS[(_t, _s)] = f"KS-AUD-G{_n}"
        _n += 1


@detector(*sorted(set(_GD_IDS.values())), on="* *")
def gd_tactic_source(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
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


# --- GuardDuty anomaly (first-seen) ----------------------------------------------------------


def _novelty(ev: AuditEvent, ctx: Any) -> list[str]:
    """Which first-seen dimensions this request opens in this cluster: user x verb x resource,
    the user's user agent (product token) and the user's source network (/24, /64)."""
    res = ev.resource + ("/" + ev.subresource if ev.subresource else "")
    new = []
    if ctx.first_seen("user-verb-resource", f"{ev.user}|{ev.verb}|{res}"):
        new.append(f"first {ev.verb} {res} by {ev.user}")
    ua = ev.user_agent.split(" ", 1)[0].split("/", 1)[0]
    if ua and ctx.first_seen("user-agent", f"{ev.user}|{ua}"):
        new.append(f"first user agent {ua!r} for {ev.user}")
    net = _source_network(ev.remote_ip)
    # A ServiceAccount's private address is its pod's, new with every reschedule: only a public
    # one (its token used from outside the cluster network) is a new location.
    if net is not None and (net[1] or "system:serviceaccounts" not in ev.groups):
        if ctx.first_seen("source-network", f"{ev.user}|{net[0]}"):
            new.append(f"first request from {net[0]} for {ev.user}")
    return new


_net_cache: dict[str, tuple[str, bool] | None] = {}


def _source_network(addr: str) -> tuple[str, bool] | None:
    """(the /24 or /64 network of an address, whether it is public), cached."""
    r = _net_cache.get(addr, False)
    if r is False:
        ip = parse_ip(addr)
        r = None
        if ip is not None:
            net = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False)
            r = (str(net), ip.is_global)
        if len(_net_cache) > 65536:
            _net_cache.clear()
        _net_cache[addr] = r
    return r  # type: ignore[return-value]


def _anomaly(rid: str, ev: AuditEvent, ctx: Any, message: str, *ev_fields, severity=None) -> Iterator[Hit]:
    new = _novelty(ev, ctx)
    if new and not ctx.learning:
        yield hit(rid, message + " (" + "; ".join(new) + ")", *ev_fields, ("anomaly", new), severity=severity)


@detector("KS-AUD-G40", on="get,list,watch secrets")
def anomalous_secrets(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if ev.success and not exempt(ev, ctx, "KS-AUD-G40"):
        yield from _anomaly("KS-AUD-G40", ev, ctx, f"unusual {ev.verb} of secrets", ("verb", ev.verb))


@detector("KS-AUD-G41", on="create,update,patch rolebindings,clusterrolebindings")
def anomalous_binding(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    p = produced(ev, ctx)
    if p is None:
        return
    role = binding_role(ev, p.obj)
    sensitive_ns = ev.namespace in SYSTEM_NAMESPACES
    if (
        ev.success
        and not exempt(ev, ctx, "KS-AUD-G41")
        and (role in PRIVILEGED_CLUSTER_ROLES or sensitive_ns)
    ):
        sev = Severity.HIGH if role in ADMIN_ROLES else None
        yield from _anomaly("KS-AUD-G41", ev, ctx, f"unusual binding to {role!r}",
                            (f"{p.prefix}.roleRef.name", role), severity=sev)  # fmt: skip


@detector("KS-AUD-G42", on="create,get pods/exec", stages=STARTED)
def anomalous_exec(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if exec_ok(ev) and not exempt(ev, ctx, "KS-AUD-G42"):
        yield from _anomaly("KS-AUD-G42", ev, ctx, f"unusual exec into {ev.namespace}/{ev.name}",
                            ("requestURI?command", ev.exec_command()))  # fmt: skip


def _command_text(c: dict[str, Any]) -> str:
    parts = [x for k in ("command", "args") for x in (c.get(k) or []) if isinstance(x, str)]
    return " ".join(parts)


def _suspicious_command(c: dict[str, Any]) -> str | None:
    text = _command_text(c)
    return text if text and (REVERSE_SHELL.search(text) or DOWNLOAD_AND_RUN.search(text)) else None


@detector("KS-AUD-G43", "KS-AUD-G44", "KS-AUD-G45", on=WORKLOAD_ON)
def anomalous_workload(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    ps = _produced_spec(ev, ctx)
    if ps is None or exempt(ev, ctx, "KS-AUD-G45"):
        return
    spec, path = ps
    priv, sens = _privileged_and_mounts(spec, path)
    new = _novelty(ev, ctx)
    for img in images(spec, path):
        if ctx.first_seen("image", img or "<none>"):
            new.append(f"first use of image {img!r}")
    if not new or ctx.learning:
        return
    note = " (" + "; ".join(new) + ")"
    if priv:
        yield hit("KS-AUD-G43", "unusual workload with a privileged container" + note,
                  *[(p + ".securityContext.privileged", True) for _, p in priv])  # fmt: skip
    if sens:
        yield hit("KS-AUD-G44", "unusual workload with a writable sensitive host mount" + note,
                  *[(p, hp) for _, p, hp in sens])  # fmt: skip
    bad_img = [i for i in images(spec, path) if SUSPICIOUS_IMAGE.search(i or "")]
    bad_cmd = [t for c, _ in containers(spec, path) if (t := _suspicious_command(c))]
    sev = Severity.MEDIUM if bad_img or bad_cmd else None
    yield hit("KS-AUD-G45", f"unusual {ev.verb} of {ev.resource[:-1]} {ev.namespace}/{ev.name}" + note,
              ("images", images(spec, path)), ("suspiciousImages", bad_img), ("suspiciousCommands", bad_cmd),
              ("anomaly", new), severity=sev)  # fmt: skip


def excessive_permissions(rules: list[dict[str, Any]]) -> list[str]:
    why = []
    for r in rules:
        res = [x for x in r.get("resources") or [] if isinstance(x, str)]
        verbs = [x for x in r.get("verbs") or [] if isinstance(x, str)]
        if "*" in res or "*" in verbs:
            why.append("wildcard")
        if set(verbs) & {"escalate", "bind", "impersonate"}:
            why.append("escalate/bind/impersonate")
        if "secrets" in res and set(verbs) & {"get", "list", "watch", "*"}:
            why.append("reads secrets")
        if "pods/exec" in res or "nodes/proxy" in res:
            why.append("pods/exec or nodes/proxy")
    return sorted(set(why))


@detector("KS-AUD-G46", on="create,update,patch roles,clusterroles")
def anomalous_role(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    p = produced(ev, ctx)
    if p is None:
        return
    rules = role_rules(ev, p.obj)
    why = excessive_permissions(rules)
    if why and not exempt(ev, ctx, "KS-AUD-G46"):
        yield from _anomaly("KS-AUD-G46", ev, ctx, f"unusual {ev.resource[:-1]} {ev.name!r} ({', '.join(why)})",
                            (f"{p.prefix}.rules", rules))  # fmt: skip


POWERFUL_VERBS = frozenset({"*", "create", "escalate", "bind", "impersonate", "delete", "patch", "update"})
POWERFUL_RESOURCES = frozenset({"*", "secrets", "pods/exec", "clusterrolebindings", "rolebindings",
                                "clusterroles", "roles", "nodes/proxy", "serviceaccounts/token"})  # fmt: skip


@detector("KS-AUD-G47", on="create selfsubjectaccessreviews,selfsubjectrulesreviews")
def anomalous_permission_check(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if not ev.success:
        return
    spec = ev.request_object.get("spec") if isinstance(ev.request_object.get("spec"), dict) else {}
    ra = spec.get("resourceAttributes") if isinstance(spec.get("resourceAttributes"), dict) else {}
    status = ev.response_object.get("status")
    if isinstance(status, dict) and status.get("allowed") is False:
        return
    res = str(ra.get("resource") or "") + ("/" + str(ra["subresource"]) if ra.get("subresource") else "")
    verb = str(ra.get("verb") or "")
    powerful = ev.resource == "selfsubjectrulesreviews" or (
        (verb in POWERFUL_VERBS and res in POWERFUL_RESOURCES) or verb == "*" or res == "*"
    )
    if powerful:
        yield from _anomaly("KS-AUD-G47", ev, ctx, f"unusual permission check {verb or 'rules'} {res}",
                            ("requestObject.spec.resourceAttributes", ra))  # fmt: skip


# --- native rules ----------------------------------------------------------------------------


def _webhook_summary(hooks: Any) -> list[dict[str, Any]] | None:
    """What a webhook configuration does (name, target, rules, failure policy), without the
    caBundle that cert injectors rewrite on every rotation."""
    if not isinstance(hooks, list):
        return None
    out = []
    for h in hooks:
        if isinstance(h, dict):
            cc = h.get("clientConfig") if isinstance(h.get("clientConfig"), dict) else {}
            out.append({"name": h.get("name"), "url": cc.get("url"), "service": cc.get("service"),
                        "rules": h.get("rules"), "failurePolicy": h.get("failurePolicy")})  # fmt: skip
    return out


@detector(
    "KS-AUD-N01", on="create,update,patch mutatingwebhookconfigurations,validatingwebhookconfigurations"
)
def admission_webhook(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        what = "created" if ev.verb == "create" or ev.code == 201 else "changed"
        yield hit("KS-AUD-N01", f"{ev.resource[:-1]} {ev.name!r} {what}",
                  (f"{prefix}.webhooks", _webhook_summary(obj.get("webhooks"))))  # fmt: skip

    yield from introduced(ev, ctx, check)


@detector("KS-AUD-N02", on="create,patch certificatesigningrequests")
def client_csr(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    p = produced(ev, ctx)
    spec = p.obj.get("spec") if p is not None and p.created else None
    if not ev.success or exempt(ev, ctx, "KS-AUD-N02") or not isinstance(spec, dict):
        return
    usages = spec.get("usages") if isinstance(spec.get("usages"), list) else []
    if spec.get("signerName") == "kubernetes.io/kube-apiserver-client" and "client auth" in usages:
        yield hit("KS-AUD-N02", f"client certificate requested ({ev.name})",
                  ("requestObject.spec.signerName", spec.get("signerName")),
                  ("requestObject.spec.groups", spec.get("groups")))  # fmt: skip


@detector("KS-AUD-N03", on="create,update,patch clusterrolebindings")
def privileged_crb(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if exempt(ev, ctx, "KS-AUD-N03"):
        return

    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        role = binding_role(ev, obj)
        if role in PRIVILEGED_CLUSTER_ROLES:
            yield hit("KS-AUD-N03", f"ClusterRoleBinding {ev.name!r} to {role!r} ({ev.verb})",
                      (f"{prefix}.roleRef.name", role), (f"{prefix}.subjects", binding_subjects(ev, obj)))  # fmt: skip

    yield from introduced(ev, ctx, check)


@detector("KS-AUD-N04", on="create,update,patch cronjobs")
def cronjob_change(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if ev.success and not exempt(ev, ctx, "KS-AUD-N04"):
        yield hit("KS-AUD-N04", f"CronJob {ev.namespace}/{ev.name} {ev.verb}d", ("verb", ev.verb))


@detector("KS-AUD-N05", on="create,patch daemonsets")
def daemonset_created(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    created = ev.verb == "create" or ev.code == 201  # server-side apply creates with patch, 201
    if ev.success and created and not exempt(ev, ctx, "KS-AUD-N05"):
        yield hit("KS-AUD-N05", f"DaemonSet {ev.namespace}/{ev.name} created", ("objectRef.name", ev.name))


def _is_tar_to_stdout(cmd: list[str]) -> bool:
    if not cmd or not cmd[0].rsplit("/", 1)[-1] == "tar":
        return False
    args = cmd[1:]
    for i, a in enumerate(args):
        if a in ("-f", "--file") and i + 1 < len(args) and args[i + 1] == "-":
            return True
        if a.startswith("--file=") and a[7:] == "-":
            return True
        if not a.startswith("--") and a.lstrip("-").endswith("f") and "c" in a and i + 1 < len(args):
            if args[i + 1] == "-":
                return True
    return False


@detector("KS-AUD-N06", "KS-AUD-N07", "KS-AUD-N08", on="create,get pods/exec", stages=STARTED)
def exec_command_rules(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if not exec_ok(ev):
        return
    cmd = ev.exec_command()
    if not cmd:
        return
    text = " ".join(cmd)
    sys_ns = ev.namespace in SYSTEM_NAMESPACES
    ev_cmd = ("requestURI?command", cmd)
    if _is_tar_to_stdout(cmd) and not (sys_ns and exempt(ev, ctx, "KS-AUD-N06")):
        yield hit("KS-AUD-N06", f"tar to stdout in {ev.namespace}/{ev.name}", ev_cmd)
    if SA_TOKEN.search(text) and not (sys_ns and exempt(ev, ctx, "KS-AUD-N07")):
        yield hit("KS-AUD-N07", f"service account token read in {ev.namespace}/{ev.name}", ev_cmd)
    reasons = [
        why
        for rx, why in (
            (REVERSE_SHELL, "reverse shell"),
            (DOWNLOAD_AND_RUN, "download and run"),
            (METADATA_SERVICE, "cloud metadata service"),
            (HOST_SECRETS, "host credentials"),
        )
        if rx.search(text)
    ]
    if reasons:
        yield hit("KS-AUD-N08", f"{', '.join(reasons)} in {ev.namespace}/{ev.name}", ev_cmd)


def _content_exempt(ev: AuditEvent, ctx: Any, rule_id: str, created: bool) -> bool:
    """Pod-content rules: control-plane identities creating pods in system namespaces (DaemonSet
    pods of CNI and storage drivers), and any change they make to an existing object (controllers
    update annotations and replicas of workloads whose author was judged at create)."""
    if not exempt(ev, ctx, rule_id):
        return False
    return ev.namespace in SYSTEM_NAMESPACES or not created


def _pod_content(ev: AuditEvent, ctx: Any, obj: dict[str, Any], prefix: str, created: bool) -> Iterator[Hit]:
    ps = pod_spec(ev, obj, prefix)
    if ps is None:
        return
    spec, path = ps
    what = f"{ev.resource[:-1]} {ev.namespace}/{ev.name}"
    caps = []
    for c, p in containers(spec, path):
        sc = c.get("securityContext") if isinstance(c.get("securityContext"), dict) else {}
        add = (sc.get("capabilities") or {}).get("add") if isinstance(sc.get("capabilities"), dict) else None
        for j, cap in enumerate(add or []):
            if isinstance(cap, str) and cap.upper().removeprefix("CAP_") in DANGEROUS_CAPABILITIES:
                caps.append((f"{p}.securityContext.capabilities.add[{j}]", cap))
    if caps and not _content_exempt(ev, ctx, "KS-AUD-N09", created):
        yield hit("KS-AUD-N09", f"{what} adds {', '.join(c for _, c in caps)}", *caps)
    hps = host_paths(spec, path)
    if hps and not _content_exempt(ev, ctx, "KS-AUD-N10", created):
        yield hit("KS-AUD-N10", f"{what} mounts host paths", *[(fp, hp) for _, hp, fp in hps])
    shared = [(f"{path}.{f}", True) for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f) is True]
    if shared and not _content_exempt(ev, ctx, "KS-AUD-N21", created):
        yield hit("KS-AUD-N21", f"{what} shares host namespaces", *shared)
    pod_sc = spec.get("securityContext") if isinstance(spec.get("securityContext"), dict) else {}
    bad = []
    for c, p in containers(spec, path):
        sc = c.get("securityContext") or {}
        if sc.get("privileged") is True:
            bad.append((p + ".securityContext.privileged", True))
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if uid == 0 and type(uid) is int:
            where = (
                p + ".securityContext.runAsUser" if "runAsUser" in sc else path + ".securityContext.runAsUser"
            )
            bad.append((where, 0))
    if bad and not _content_exempt(ev, ctx, "KS-AUD-N22", created):
        yield hit("KS-AUD-N22", f"{what} runs privileged or as root", *bad)


WORKLOAD_MODIFY_ON = "create,update,patch " + ",".join(sorted(WORKLOAD_RESOURCES))
# kubectl debug adds (possibly privileged: --profile=sysadmin) ephemeral containers to a running pod
EPHEMERAL_ON = "create,update,patch pods/ephemeralcontainers"


@detector("KS-AUD-N09", "KS-AUD-N10", "KS-AUD-N11", "KS-AUD-N21", "KS-AUD-N22", on=WORKLOAD_MODIFY_ON)
def workload_content_rules(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    """Pods and pod templates of workloads, in whatever object create, update, patch or
    server-side apply produced (ephemeral containers added to a pod: see ephemeral_content_rules)."""
    p = produced(ev, ctx)
    if p is None:
        return
    yield from introduced(ev, ctx, lambda obj, prefix: _pod_content(ev, ctx, obj, prefix, p.created))
    if (
        p.created
        and ev.resource == "pods"
        and ev.namespace in SYSTEM_NAMESPACES
        and not exempt(ev, ctx, "KS-AUD-N11")
    ):
        yield hit("KS-AUD-N11", f"pod {ev.name} created in {ev.namespace} by {ev.user}",
                  ("objectRef.namespace", ev.namespace))  # fmt: skip


@detector("KS-AUD-N09", "KS-AUD-N10", "KS-AUD-N21", "KS-AUD-N22", "KS-AUD-N24", on=EPHEMERAL_ON)
def ephemeral_content_rules(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    """The pod after ephemeral containers were added (kubectl debug): a privileged debug
    container is a privileged container."""

    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        yield from _pod_content(ev, ctx, obj, prefix, False)
        yield from _suspicious_workload(ev, ctx, obj, prefix)

    yield from introduced(ev, ctx, check)


def _suspicious_workload(ev: AuditEvent, ctx: Any, obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
    ps = pod_spec(ev, obj, prefix)
    if ps is None or exempt(ev, ctx, "KS-AUD-N24"):
        return
    found = []
    for c, p in containers(*ps):
        text = _command_text(c)
        reasons = [why for rx, why in ((REVERSE_SHELL, "reverse shell"), (DOWNLOAD_AND_RUN, "download and run"))
                   if rx.search(text)]  # fmt: skip
        if reasons:
            found.append((p, text, reasons))
    if found:
        why = sorted({r for _, _, rs in found for r in rs})
        yield hit("KS-AUD-N24", f"{ev.resource[:-1]} {ev.namespace}/{ev.name} runs a {' / '.join(why)} command",
                  *[(f"{p}.command+args", t) for p, t, _ in found])  # fmt: skip


@detector("KS-AUD-N24", on=WORKLOAD_MODIFY_ON)
def suspicious_workload_command(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    """A container command or args that download and run code or open a reverse shell, in any
    pod or workload template (a `curl | sh` CronJob): the exec rules only see kubectl exec.
    Controllers creating pods from a template are exempt: the template's author was judged."""
    yield from introduced(ev, ctx, lambda obj, prefix: _suspicious_workload(ev, ctx, obj, prefix))


@detector("KS-AUD-N10", on="create,update,patch persistentvolumes")
def host_path_volume(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
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


@detector("KS-AUD-N12", on="create,update,patch roles,clusterroles")
def node_proxy_role(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if exempt(ev, ctx, "KS-AUD-N12"):
        return

    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        res = rule_values(role_rules(ev, obj), "resources")
        bad = [r for r in res if r in ("nodes/proxy", "nodes/*", "*")]
        if bad:
            yield hit("KS-AUD-N12", f"{ev.resource[:-1]} {ev.name!r} grants {', '.join(bad)} ({ev.verb})",
                      (f"{prefix}.rules[*].resources", bad))  # fmt: skip

    yield from introduced(ev, ctx, check)


@detector("KS-AUD-N13", on="get secrets")
def denied_secret_reads(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if ev.code is not None and not ev.success and not exempt(ev, ctx, "KS-AUD-N13"):
        n = ctx.count("KS-AUD-N13", ev.user, ev)
        if n is not None:
            yield hit("KS-AUD-N13", f"{n} denied secret reads by {ev.user}", ("responseStatus.code", ev.code))


@detector("KS-AUD-N14", on="get,list,watch secrets")
def bulk_secret_access(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if ev.success and not exempt(ev, ctx, "KS-AUD-N14"):
        n = ctx.count("KS-AUD-N14", ev.user, ev, distinct=f"{ev.verb}:{ev.namespace}/{ev.name or '*'}")
        if n is not None:
            yield hit("KS-AUD-N14", f"{ev.user} read {n} distinct secrets", ("user.username", ev.user))


@detector("KS-AUD-N15", on="list,watch secrets")
def all_secrets(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if not ev.namespace and ev.success and not exempt(ev, ctx, "KS-AUD-N15"):
        yield hit("KS-AUD-N15", f"{ev.user} listed secrets in all namespaces", ("requestURI", ev.uri))


@detector("KS-AUD-N16", on="create serviceaccounts/token")
def token_request(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if not ev.success:
        return
    if exempt(ev, ctx, "KS-AUD-N16") and (ev.namespace in SYSTEM_NAMESPACES or is_node(ev)):
        return
    yield hit("KS-AUD-N16", f"token minted for {ev.namespace}/{ev.name} by {ev.user}",
              ("objectRef.subresource", "token"))  # fmt: skip


@detector("KS-AUD-N17", "KS-AUD-N18", on="* *")
def public_address_rules(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    ips = ev.source_ips
    if not ips:
        return
    public = [(i, ip) for i, ip in enumerate(ips) if is_public(ip) and not ctx.ip_lists.is_cloud(ip)]
    if not public:
        return
    if is_system_principal(ev.user) and ev.code is not None and ev.code != 403 and ev.code < 400:
        yield hit("KS-AUD-N17", f"{ev.user} used from public address {public[0][1]}",
                  *[(f"sourceIPs[{i}]", ip) for i, ip in public], ("user.username", ev.user))  # fmt: skip
    if ev.code == 403:
        n = ctx.count("KS-AUD-N18", public[-1][1], ev)
        if n is not None:
            yield hit("KS-AUD-N18", f"{n} forbidden responses to {public[-1][1]}",
                      (f"sourceIPs[{public[-1][0]}]", public[-1][1]))  # fmt: skip


@detector("KS-AUD-N19", on="* *")
def anonymous_public(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if ev.user == "system:anonymous":
        public = [(i, ip) for i, ip in enumerate(ev.source_ips) if is_public(ip)]
        if public:
            yield hit("KS-AUD-N19", f"anonymous {ev.verb} {ev.uri or ev.resource} from {public[0][1]}",
                      *[(f"sourceIPs[{i}]", ip) for i, ip in public], ("requestURI", ev.uri),
                      ("annotations.authorization.k8s.io/decision", ev.decision))  # fmt: skip


@detector("KS-AUD-N20", on="delete,deletecollection events")
def events_deleted(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if ev.success and not exempt(ev, ctx, "KS-AUD-N20"):
        yield hit("KS-AUD-N20", f"events deleted in {ev.namespace or 'all namespaces'}", ("verb", ev.verb))


@detector("KS-AUD-N23", on="create,update,patch roles,clusterroles")
def excessive_role(ev: AuditEvent, ctx: Any) -> Iterator[Hit]:
    if exempt(ev, ctx, "KS-AUD-N23"):
        return

    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        rules = role_rules(ev, obj)
        why = excessive_permissions(rules)
        if why:
            what = "created" if ev.verb == "create" or ev.code == 201 else "changed"
            yield hit("KS-AUD-N23", f"{ev.resource[:-1]} {ev.name!r} {what} ({', '.join(why)})",
                      *[(f"{prefix}.rules[{i}]", r) for i, r in enumerate(rules)
                        if excessive_permissions([r])])  # fmt: skip

    yield from introduced(ev, ctx, check)


def safe_call(d: Detector, ev: AuditEvent, ctx: Any) -> list[Hit]:
    """Run one detector; a malformed request object is the event's fault, not the engine's."""
    try:
        return list(d.fn(ev, ctx) or ())
    except (InputError, AttributeError, TypeError, ValueError, KeyError) as e:
        ctx.rule_error(d.name, ev, e)
        return []
