"""Attack paths without a graph database: identities joined by escalation edges, searched breadth-first.

Nodes are identities (IAM principals, users, groups, service accounts, pods through their service
account), a few stepping stones (``run-pods:<ns>``: can start a pod there) and the crown jewels:

- ``cluster-admin``: a cluster-admin equivalent (``*`` on everything, or ``system:masters``);
- ``kube-system-secrets``: every secret of kube-system, where the control-plane add-ons keep theirs;
- ``node-root``: root on a node (a privileged / host-namespace pod, or the kubelet API via nodes/proxy).

Edges carry the evidence that creates them: the binding and rule, the pod field, the annotation.
Capabilities are computed once per RBAC subject key and shared by every identity holding it, and
shortest paths come from one reverse BFS per target, so the work is linear in bindings + edges.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from kubestrata.access.model import AccessModel, Identity
from kubestrata.access.policies import catalog
from kubestrata.errors import InputError
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import (
    WORKLOAD_KINDS,
    iter_containers,
    pod_template,
    service_account_name,
    validate_pod_spec,
)
from kubestrata.rbac import Attributes, PolicyRule, UserInfo, service_account_user
from kubestrata.rbac.evaluator import SA_PREFIX, SUPERUSER_GROUP

JEWELS = ("cluster-admin", "kube-system-secrets", "node-root")
# users and groups of Kubernetes itself and of EKS (eks:node-manager, eks:addon-manager, ...): powerful by design
PLATFORM_PREFIXES = ("system:", "eks:")
# Groups and users whose names look like platform identities but stand for whole populations: a grant
# to one of them is a grant to everyone in it, never a platform component's own permission.
PUBLIC_SUBJECTS = {
    "group:system:authenticated": "every authenticated identity (every mapped IAM principal, every ServiceAccount)",
    "group:system:unauthenticated": "anonymous requests",
    "user:system:anonymous": "anonymous requests",
    "group:system:serviceaccounts": "every ServiceAccount in every namespace",
}


def is_public(node_id: str) -> bool:
    """A node that stands for a population (system:authenticated, system:serviceaccounts[:NS]...)."""
    return node_id in PUBLIC_SUBJECTS or node_id.startswith("group:system:serviceaccounts:")


RBAC_GROUP = "rbac.authorization.k8s.io"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
ALL = "*"
_PROBE = UserInfo("\x00")
POD_WRITERS = (
    ("", "pods", ("create",)),
    ("apps", "deployments", ("create", "update", "patch")),
    ("apps", "daemonsets", ("create", "update", "patch")),
    ("apps", "statefulsets", ("create", "update", "patch")),
    ("apps", "replicasets", ("create", "update", "patch")),
    ("batch", "jobs", ("create",)),
    ("batch", "cronjobs", ("create", "update", "patch")),
    ("", "replicationcontrollers", ("create", "update", "patch")),
)


@dataclass(frozen=True, slots=True)
class Edge:
    src: str
    dst: str
    kind: str
    evidence: str


@dataclass(frozen=True, slots=True)
class Cap:
    """One capability a subject holds: what, where ("*" = every namespace), on which names, and why."""

    kind: str
    namespace: str
    names: tuple[str, ...]
    evidence: str


def _m(rule: PolicyRule, verb: str, group: str, resource: str, sub: str = "", name: str = "") -> bool:
    return rule.matches(Attributes(_PROBE, verb, True, "", group, resource, sub, name))


def _mn(rule: PolicyRule, verb: str, group: str, resource: str, sub: str = "") -> bool:
    """Matches for some object name: requests that carry a name (get, bind, impersonate, create on a
    subresource) are also allowed by rules limited to resourceNames."""
    if _m(rule, verb, group, resource, sub):
        return True
    return bool(rule.resource_names) and _m(rule, verb, group, resource, sub, rule.resource_names[0])


def _rule_caps(rule: PolicyRule, ns: str, evidence: str) -> Iterator[Cap]:
    """The escalation-relevant capabilities of one rule granted in ``ns`` ("*" = cluster-wide)."""
    names = rule.resource_names
    if rule.non_resource_urls:
        return
    if ns == ALL and _m(rule, "*", "*", "*"):
        yield Cap("admin", ALL, (), evidence)
        return
    for group, res, verbs in POD_WRITERS:
        # a resourceNames-limited rule cannot create (create requests carry no name)
        if any(_m(rule, v, group, res) for v in verbs):
            yield Cap("run-pods", ns, (), evidence + f" ({'/'.join(verbs)} {res})")
            break
    if _m(rule, "list", "", "secrets") or _mn(rule, "get", "", "secrets"):
        yield Cap("read-secrets", ns, () if _m(rule, "list", "", "secrets") else names, evidence)
    if _mn(rule, "create", "", "serviceaccounts", "token"):
        yield Cap("create-token", ns, names, evidence)
    if _mn(rule, "create", "", "pods", "exec") or _mn(rule, "get", "", "pods", "exec"):
        yield Cap("exec", ns, names, evidence)
    for res, kind in (
        ("users", "impersonate-user"),
        ("groups", "impersonate-group"),
        ("serviceaccounts", "impersonate-sa"),
    ):
        if kind != "impersonate-sa" and ns != ALL:
            continue  # users and groups are cluster-scoped: only ClusterRoleBindings grant impersonating them
        if _mn(rule, "impersonate", "", res) or _mn(rule, "impersonate", "authentication.k8s.io", res):
            yield Cap(kind, ns, names, evidence)
    if _mn(rule, "bind", RBAC_GROUP, "clusterroles") or _mn(rule, "bind", RBAC_GROUP, "roles"):
        yield Cap("bind", ns, names, evidence)
    if _mn(rule, "escalate", RBAC_GROUP, "clusterroles") or _mn(rule, "escalate", RBAC_GROUP, "roles"):
        yield Cap("escalate", ns, names, evidence)
    # a new binding needs create, which never carries a name
    if ns == ALL and _m(rule, "create", RBAC_GROUP, "clusterrolebindings"):
        yield Cap("write-crb", ALL, (), evidence)
    if _m(rule, "create", RBAC_GROUP, "rolebindings"):
        yield Cap("write-rb", ns, (), evidence)
    if ns == ALL and (_mn(rule, "get", "", "nodes", "proxy") or _mn(rule, "create", "", "nodes", "proxy")):
        yield Cap("nodes-proxy", ALL, (), evidence)
    if ns in (ALL, "kube-system") and any(
        _m(rule, v, "", "configmaps", name="aws-auth") for v in ("update", "patch")
    ):
        yield Cap("write-aws-auth", ns, (), evidence)


@lru_cache(maxsize=65536)
def _cached_caps(rule: PolicyRule, ns: str) -> tuple[Cap, ...]:
    return tuple(_rule_caps(rule, ns, ""))


def rule_caps(rule: PolicyRule, ns: str, evidence: str) -> list[Cap]:
    """The escalation-relevant capabilities of one rule granted in ``ns`` ("*" = cluster-wide), each with
    ``evidence`` (the binding) prefixed to its own detail. Rules repeat across bindings, so the analysis
    is cached per (rule, namespace)."""
    return [Cap(c.kind, c.namespace, c.names, evidence + c.evidence) for c in _cached_caps(rule, ns)]


class AttackGraph:
    def __init__(self, model: AccessModel) -> None:
        self.model = model
        self.cluster = model.cluster
        self.adj: dict[str, list[Edge]] = defaultdict(list)
        self.labels: dict[str, str] = {}
        self.objects: dict[str, KubeObject] = {}
        self.identities: dict[str, Identity] = {}
        self._key_caps: dict[tuple[str, str], list[Cap]] = {}
        self._namespaces = sorted(
            set(self.cluster.namespaces) | {b.namespace for b in model.rbac.bindings if b.namespace}
        )
        self._sas_by_ns: dict[str, list[str]] = defaultdict(list)
        self._pods_by_ns: dict[str, list[str]] = defaultdict(list)
        self._token_secret_sas: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._users: set[str] = set()
        self._build()

    # -- construction -----------------------------------------------------------------------------------

    def _add(self, src: str, dst: str, kind: str, evidence: str) -> None:
        self.adj[src].append(Edge(src, dst, kind, evidence))

    def _subject_caps(self, key: tuple[str, str]) -> list[Cap]:
        caps = self._key_caps.get(key)
        if caps is not None:
            return caps
        caps = []
        rbac = self.model.rbac
        for b in rbac.subject_bindings(*key):
            ev = f"{b.ref} -> {b.role_kind}/{b.role_name}"
            for rule in rbac.role_rules(b):
                caps.extend(rule_caps(rule, b.namespace or ALL, ev))
        self._key_caps[key] = caps
        return caps

    def _policy_caps(self, ident: Identity) -> list[Cap]:
        caps: list[Cap] = []
        for a in ident.associations:
            pol = catalog().get(a.policy)
            if pol is None or pol.rules is None:
                continue
            if a.scope.type == "cluster":
                scopes = [ALL]
            else:
                scopes = [n for n in self._namespaces if a.scope.covers(n)]
            for ns in scopes:
                for rule in pol.rules:
                    caps.extend(rule_caps(rule, ns, f"access policy {a.policy} ({a.scope})"))
        return caps

    def _build(self) -> None:
        for j in JEWELS:
            self.labels[j] = j
        c = self.cluster
        for sa in c.of_kind("ServiceAccount"):
            nid = f"sa:{sa.namespace}/{sa.name}"
            self._sas_by_ns[sa.namespace].append(nid)
            self.objects[nid] = sa
            role = sa.annotations.get(IRSA_ANNOTATION)
            if isinstance(role, str) and role:
                self._add(
                    nid,
                    f"iam:{role}",
                    "irsa",
                    f"ServiceAccount {sa.namespace}/{sa.name} annotation {IRSA_ANNOTATION}={role}",
                )
        for s in c.of_kind("Secret"):
            if s.raw.get("type") == "kubernetes.io/service-account-token":
                owner = s.annotations.get("kubernetes.io/service-account.name")
                if isinstance(owner, str):
                    self._token_secret_sas[s.namespace].add((s.name, owner))
        self._pods()
        for b in self.model.rbac.bindings:
            for subj in b.subjects:
                kind, name = subj.get("kind"), str(subj.get("name") or "")
                if kind == "ServiceAccount":
                    ns = str(subj.get("namespace") or b.namespace)
                    nid = f"sa:{ns}/{name}"
                    if ns and nid not in self._sas_by_ns[ns]:
                        self._sas_by_ns[ns].append(nid)
                elif kind == "User":
                    self._users.add(name)
                elif kind == "Group":
                    self._principal(f"group:{name}", UserInfo("", (name,)), (("group", name),))
        if self.model.eks is not None:
            for p in self.model.eks.pod_identity:
                nid = f"sa:{p.namespace}/{p.service_account}"
                if nid not in self._sas_by_ns[p.namespace]:
                    self._sas_by_ns[p.namespace].append(nid)
                role = p.target_role_arn or p.role_arn
                if role:
                    self._add(
                        nid,
                        f"iam:{role}",
                        "pod-identity",
                        f"Pod Identity association {p.association_id or p.field} {p.namespace}/{p.service_account} -> {role}",
                    )
        for name in sorted(self._users):
            if not name.startswith(SA_PREFIX):
                self._principal(f"user:{name}", UserInfo(name, ("system:authenticated",)), None)
        for ns, sas in self._sas_by_ns.items():
            for nid in sas:
                name = nid.split("/", 1)[1]
                self._principal(nid, service_account_user(ns, name), None)
        for ident in self.model.identities():
            nid = f"iam:{ident.arn}"
            self.identities[nid] = ident
            if "system:nodes" in ident.groups:
                self._add(
                    "node-root",
                    nid,
                    "node-credentials",
                    f"root on a node reads the node role {ident.arn} from the instance metadata service",
                )
            self._principal(nid, ident.user_info, None, self._policy_caps(ident), ident)
        for ns in self._namespaces:
            self._run_pods_node(ns)
            self._add(
                f"run-pods:{ALL}",
                f"run-pods:{ns}",
                "any-namespace",
                f"pods may be created in every namespace, {ns} included",
            )
        self.labels.setdefault(f"run-pods:{ALL}", "can run pods in every namespace")

    def _principal(
        self,
        nid: str,
        user: UserInfo,
        keys: Iterable[tuple[str, str]] | None,
        extra: list[Cap] | None = None,
        ident: Identity | None = None,
    ) -> None:
        if nid in self.labels:
            return
        self.labels[nid] = nid
        if keys is None:
            keys = [("user", user.name), *(("group", g) for g in user.groups)]
        caps: list[Cap] = list(extra or [])
        for k in keys:
            caps.extend(self._subject_caps(k))
        if SUPERUSER_GROUP in user.groups:
            self._add(
                nid,
                "cluster-admin",
                "system:masters",
                f"member of {SUPERUSER_GROUP}" + (f" via {ident.source}" if ident else ""),
            )
        by_kind: dict[str, list[Cap]] = defaultdict(list)
        for cap in caps:
            by_kind[cap.kind].append(cap)
        for cap in by_kind.get("admin", ()):
            self._add(nid, "cluster-admin", "holds-admin", cap.evidence + " grants * on */*")
        for cap in by_kind.get("write-aws-auth", ()):
            self._add(
                nid,
                "cluster-admin",
                "write-aws-auth",
                cap.evidence + " may update kube-system/aws-auth and map itself to system:masters",
            )
        for cap in by_kind.get("nodes-proxy", ()):
            self._add(
                nid,
                "node-root",
                "nodes-proxy",
                cap.evidence + " reaches the kubelet API (nodes/proxy): exec into any pod on any node",
            )
        binders = by_kind.get("bind", []) + by_kind.get("escalate", [])
        for crb in by_kind.get("write-crb", ()):
            for b in binders:
                if b.namespace == ALL and (not b.names or "cluster-admin" in b.names):
                    self._add(
                        nid,
                        "cluster-admin",
                        "bind-cluster-admin",
                        f"{crb.evidence} may write ClusterRoleBindings and {b.evidence} may {b.kind} cluster-admin",
                    )
                    break
        for rb in by_kind.get("write-rb", ()):
            for b in binders:
                if b.namespace in (ALL, rb.namespace) and (
                    not b.names or {"cluster-admin", "admin", "edit"} & set(b.names)
                ):
                    self._add(
                        nid,
                        f"run-pods:{rb.namespace}",
                        "bind-in-namespace",
                        f"{rb.evidence} may write RoleBindings and {b.evidence} may {b.kind} roles: grants itself pod creation",
                    )
                    if rb.namespace in (ALL, "kube-system"):
                        self._add(
                            nid,
                            "kube-system-secrets",
                            "bind-in-namespace",
                            f"{rb.evidence} may bind a role that reads kube-system secrets",
                        )
                    break
        for cap in by_kind.get("impersonate-group", ()):
            if not cap.names or SUPERUSER_GROUP in cap.names:
                self._add(
                    nid,
                    "cluster-admin",
                    "impersonate",
                    cap.evidence + f" may impersonate group {SUPERUSER_GROUP}",
                )
        for cap in by_kind.get("impersonate-user", ()):
            targets = cap.names or tuple(sorted(self._users))
            for u in targets:
                if u.startswith(SA_PREFIX):
                    ns, _, n = u[len(SA_PREFIX) :].partition(":")
                    self._add(nid, f"sa:{ns}/{n}", "impersonate", cap.evidence + f" may impersonate user {u}")
                else:
                    self._add(nid, f"user:{u}", "impersonate", cap.evidence + f" may impersonate user {u}")
        for cap in by_kind.get("impersonate-sa", ()):
            for sa in self._sas_in(cap.namespace):
                if not cap.names or sa.split("/", 1)[1] in cap.names:
                    self._add(nid, sa, "impersonate", cap.evidence + " may impersonate the service account")
        for cap in by_kind.get("run-pods", ()):
            self._add(nid, f"run-pods:{cap.namespace}", "run-pods", cap.evidence)
        for cap in by_kind.get("create-token", ()):
            for sa in self._sas_in(cap.namespace):
                if not cap.names or sa.split("/", 1)[1] in cap.names:
                    self._add(
                        nid, sa, "create-token", cap.evidence + " may request a token (serviceaccounts/token)"
                    )
        for cap in by_kind.get("read-secrets", ()):
            if cap.namespace in (ALL, "kube-system") and not cap.names:
                self._add(
                    nid,
                    "kube-system-secrets",
                    "read-secrets",
                    cap.evidence + " may read secrets in kube-system",
                )
            for ns in self._ns_of(cap.namespace):
                for secret, owner in sorted(self._token_secret_sas.get(ns, ())):
                    if cap.names and secret not in cap.names:
                        continue
                    self._add(
                        nid,
                        f"sa:{ns}/{owner}",
                        "read-token-secret",
                        cap.evidence + f" may read the legacy token Secret of {ns}/{owner}",
                    )
        for cap in by_kind.get("exec", ()):
            for ns in self._ns_of(cap.namespace):
                for pod in self._pods_by_ns.get(ns, ()):
                    if not cap.names or pod.rsplit("/", 1)[-1] in cap.names:
                        self._add(nid, pod, "exec", cap.evidence + " may exec into the pod")

    def _ns_of(self, ns: str) -> list[str]:
        return self._namespaces if ns == ALL else [ns]

    def _sas_in(self, ns: str) -> list[str]:
        if ns == ALL:
            return [sa for n in self._namespaces for sa in self._sas_by_ns.get(n, ())]
        return self._sas_by_ns.get(ns, [])

    def _pods(self) -> None:
        for o, spec, spec_path in workload_pods(self.cluster.real_objects()):
            nid = f"pod:{o.namespace}/{o.kind}/{o.name}"
            self.labels[nid] = nid
            self.objects[nid] = o
            self._pods_by_ns[o.namespace].append(nid)
            sa_name = service_account_name(spec)
            sa_obj = self.cluster.get("ServiceAccount", o.namespace, sa_name)
            if token_mounted(spec, sa_obj):
                sa = f"sa:{o.namespace}/{sa_name}"
                if sa not in self._sas_by_ns[o.namespace]:
                    self._sas_by_ns[o.namespace].append(sa)
                self._add(
                    nid,
                    sa,
                    "mounted-token",
                    f"{o.kind} {o.namespace}/{o.name} mounts the token of ServiceAccount {sa_name}",
                )
            if o.kind == "DaemonSet" and token_mounted(spec, sa_obj):
                # a DaemonSet runs on every node: root on any node holds its ServiceAccount token
                self._add(
                    "node-root",
                    f"sa:{o.namespace}/{sa_name}",
                    "node-token",
                    f"DaemonSet {o.namespace}/{o.name} runs on every node and mounts the token of ServiceAccount {sa_name}",
                )
            reason = pod_node_root_reason(spec, spec_path)
            if reason:
                self._add(nid, "node-root", "privileged-pod", f"{o.kind} {o.namespace}/{o.name}: {reason}")

    def _run_pods_node(self, ns: str) -> None:
        nid = f"run-pods:{ns}"
        self.labels.setdefault(nid, f"can run pods in {ns}")
        for sa in self._sas_by_ns.get(ns, ()):
            self._add(
                nid, sa, "run-as-sa", f"a pod in {ns} may set serviceAccountName: {sa.split('/', 1)[1]}"
            )
        level = self.cluster.namespace_labels(ns).get("pod-security.kubernetes.io/enforce")
        if level not in ("baseline", "restricted"):
            self._add(
                nid,
                "node-root",
                "privileged-pod",
                f"namespace {ns} does not enforce Pod Security baseline (pod-security.kubernetes.io/enforce={level or 'unset'}): a privileged pod is root on its node",
            )
        if ns == "kube-system":
            self._add(
                nid,
                "kube-system-secrets",
                "mount-secrets",
                "a pod in kube-system may mount any kube-system secret",
            )

    # -- search -----------------------------------------------------------------------------------------

    def shortest_to(self, target: str) -> dict[str, Edge]:
        """Next hop from every node that reaches ``target`` (reverse BFS)."""
        rev: dict[str, list[Edge]] = defaultdict(list)
        for edges in self.adj.values():
            for e in edges:
                rev[e.dst].append(e)
        nxt: dict[str, Edge] = {}
        seen = {target}
        q = deque([target])
        while q:
            n = q.popleft()
            for e in rev.get(n, ()):
                if e.src not in seen:
                    seen.add(e.src)
                    nxt[e.src] = e
                    q.append(e.src)
        return nxt

    @staticmethod
    def path_from(src: str, nxt: dict[str, Edge]) -> list[Edge]:
        out: list[Edge] = []
        n = src
        while n in nxt:
            e = nxt[n]
            out.append(e)
            n = e.dst
        return out

    def sources(self) -> list[str]:
        """Starting identities worth reporting: IAM principals, users and groups outside the system:/eks:
        prefixes, service accounts outside kube-system."""
        out = []
        for nid in self.labels:
            if nid.startswith("iam:") and nid in self.identities:
                out.append(nid)
            elif is_public(nid):
                out.append(nid)
            elif nid.startswith("user:") and not nid[5:].startswith(PLATFORM_PREFIXES):
                out.append(nid)
            elif nid.startswith("group:") and not nid[6:].startswith(PLATFORM_PREFIXES):
                out.append(nid)
            elif nid.startswith("sa:") and not nid.startswith("sa:kube-system/"):
                out.append(nid)
        return sorted(out)

    def paths_to(self, target: str) -> list[tuple[str, list[Edge]]]:
        nxt = self.shortest_to(target)
        return [(s, self.path_from(s, nxt)) for s in self.sources() if s in nxt]


def is_direct_admin(path: list[Edge]) -> bool:
    return len(path) == 1 and path[0].kind in ("system:masters", "holds-admin")


def workload_pods(objects: Iterable[KubeObject]) -> Iterator[tuple[KubeObject, dict, str]]:
    for o in objects:
        if o.kind in WORKLOAD_KINDS:
            try:
                tpl = pod_template(o)
                if tpl is not None:
                    validate_pod_spec(tpl.spec, tpl.spec_path)
            except InputError:
                # the API server would reject this pod spec, so it runs nothing; the per-object
                # checks report it as invalid input naming the field
                continue
            if tpl is not None and isinstance(tpl.spec, dict):
                yield o, tpl.spec, tpl.spec_path


def pod_node_root_reason(spec: dict, spec_path: str) -> str:
    for key in ("hostPID", "hostIPC", "hostNetwork"):
        if spec.get(key) is True and key != "hostNetwork":
            return f"{spec_path}.{key}: true"
    for c in iter_containers(spec, spec_path):
        sc = c.security_context
        if isinstance(sc, dict) and sc.get("privileged") is True:
            return f"{c.path}.securityContext.privileged: true"
    for i, v in enumerate(spec.get("volumes") or []):
        if isinstance(v, dict) and isinstance(v.get("hostPath"), dict):
            p = str(v["hostPath"].get("path") or "")
            if p in (
                "/",
                "/var/run/docker.sock",
                "/run/containerd/containerd.sock",
                "/var/run/containerd/containerd.sock",
                "/etc",
                "/var/lib/kubelet",
                "/proc",
            ):
                return f"{spec_path}.volumes[{i}].hostPath.path: {p}"
    return ""


def token_mounted(spec: dict, sa: KubeObject | None) -> bool:
    v = spec.get("automountServiceAccountToken")
    if isinstance(v, bool):
        return v
    if sa is not None and isinstance(sa.raw.get("automountServiceAccountToken"), bool):
        return bool(sa.raw["automountServiceAccountToken"])
    return True


__all__ = ["ALL", "JEWELS", "AttackGraph", "Cap", "Edge", "is_direct_admin", "rule_caps"]
