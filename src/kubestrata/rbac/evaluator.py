"""An RBAC authorizer with upstream semantics (kubernetes/plugin/pkg/auth/authorizer/rbac and
pkg/apis/rbac/v1/evaluation_helpers.go):

- verbs, apiGroups, resources: "*" matches all; resources match "resource/subresource" exactly, "*" or
  "*/subresource"; resourceNames empty matches every name (a non-empty list never matches a request
  without a name, such as list or create);
- nonResourceURLs: "*", exact, or a trailing "*" prefix; only through ClusterRoleBindings;
- RoleBindings grant their role's rules in their own namespace only (a ClusterRole referenced from a
  RoleBinding included); ClusterRoleBindings grant everywhere;
- subjects: User, Group, ServiceAccount (namespace defaults to the binding's);
- aggregated ClusterRoles: rules are the union of the ClusterRoles matched by aggregationRule selectors
  (as the aggregation controller writes them), computed here when the input holds only the selectors;
- the API server's bootstrap ClusterRoles (cluster-admin, admin, edit, view, system:*) exist on every
  cluster: a name the input does not define resolves to the known role (kubestrata.rbac.builtin, package
  data with its upstream source); a role neither in the input nor known is reported by
  ``unresolved_bindings()`` ("not evaluated"), never treated as a silent "grants nothing".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubestrata.kube.objects import KubeObject
from kubestrata.kube.selectors import LabelSelector
from kubestrata.rbac.builtin import builtin_cluster_roles, unknown_role_detail

SA_PREFIX = "system:serviceaccount:"
SUPERUSER_GROUP = "system:masters"


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


def service_account_user(namespace: str, name: str) -> UserInfo:
    """The identity the API server gives a ServiceAccount token."""
    return UserInfo(
        f"{SA_PREFIX}{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


@dataclass(frozen=True, slots=True)
class Attributes:
    """One request, as SubjectAccessReview spells it."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True, slots=True)
class PolicyRule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicyRule:
        def t(key: str) -> tuple[str, ...]:
            v = d.get(key) or []
            return tuple(str(x) for x in v) if isinstance(v, list) else ()

        return cls(t("verbs"), t("apiGroups"), t("resources"), t("resourceNames"), t("nonResourceURLs"))

    def to_dict(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"verbs": list(self.verbs)}
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        if self.api_groups or self.resources:
            out["apiGroups"] = list(self.api_groups)
            out["resources"] = list(self.resources)
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        return out

    def matches(self, a: Attributes) -> bool:
        if not ("*" in self.verbs or a.verb in self.verbs):
            return False
        if not a.resource_request:
            return any(
                # upstream NonResourceURLMatches trims every trailing "*" (strings.TrimRight)
                u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u.rstrip("*")))
                for u in self.non_resource_urls
            )
        if not ("*" in self.api_groups or a.api_group in self.api_groups):
            return False
        combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        if not any(
            r == "*" or r == combined or (a.subresource and r == "*/" + a.subresource) for r in self.resources
        ):
            return False
        return not self.resource_names or a.name in self.resource_names


@dataclass(frozen=True, slots=True)
class Grant:
    """A rule reachable through a binding: the binding (kind/ns/name), role (kind/name), scope namespace
    ("" = cluster-wide)."""

    rule: PolicyRule
    binding: str
    role: str
    namespace: str


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""
    grant: Grant | None = None


@dataclass
class _Binding:
    """A RoleBinding or ClusterRoleBinding: ref, scope namespace ("" = cluster), role, subjects."""

    ref: str
    namespace: str  # "" for ClusterRoleBinding
    role_kind: str
    role_name: str
    subjects: list[dict[str, Any]] = field(default_factory=list)


def _subject_key(s: dict[str, Any], binding_ns: str) -> tuple[str, str] | None:
    kind = s.get("kind")
    name = str(s.get("name") or "")
    if kind == "User":
        return ("user", name)
    if kind == "Group":
        return ("group", name)
    if kind == "ServiceAccount":
        ns = str(s.get("namespace") or binding_ns)
        if not ns:
            return None  # a ServiceAccount subject of a ClusterRoleBinding without namespace matches no one
        return ("user", f"{SA_PREFIX}{ns}:{name}")
    return None


def _list(v: Any) -> list[Any]:
    """A list field of an untrusted object; any other type (the API server rejects it) is empty."""
    return v if isinstance(v, list) else []


class RBACAuthorizer:
    """Build once from Roles, ClusterRoles and bindings; answer authorize() and enumerate grants.

    ``builtin`` adds the bootstrap ClusterRoles the input does not define (as an API server has them);
    ``version`` picks the Kubernetes minor whose table is used ("latest" by default)."""

    def __init__(
        self,
        objects: Iterable[KubeObject | dict[str, Any]],
        *,
        builtin: bool = True,
        version: str = "latest",
    ) -> None:
        self.roles: dict[tuple[str, str], list[PolicyRule]] = {}  # (ns, name) -> rules
        self.cluster_roles: dict[str, list[PolicyRule]] = {}
        self.bindings: list[_Binding] = []
        cluster_role_objs: dict[str, dict[str, Any]] = {}
        for o in objects:
            raw = o.raw if isinstance(o, KubeObject) else o
            kind = raw.get("kind")
            meta = raw.get("metadata") or {}
            name = str(meta.get("name") or "")
            ns = str(meta.get("namespace") or "default")
            if kind == "Role":
                self.roles[(ns, name)] = [
                    PolicyRule.from_dict(r) for r in _list(raw.get("rules")) if isinstance(r, dict)
                ]
            elif kind == "ClusterRole":
                cluster_role_objs[name] = raw
            elif kind in ("RoleBinding", "ClusterRoleBinding"):
                rr = raw.get("roleRef")
                if not isinstance(rr, dict):
                    # the API server rejects such a binding, so it grants nothing
                    rr = {}
                b = _Binding(
                    ref=f"{kind}/{ns}/{name}" if kind == "RoleBinding" else f"{kind}/{name}",
                    namespace=ns if kind == "RoleBinding" else "",
                    role_kind=str(rr.get("kind") or ""),
                    role_name=str(rr.get("name") or ""),
                    subjects=[s for s in _list(raw.get("subjects")) if isinstance(s, dict)],
                )
                self.bindings.append(b)
        self.builtin_roles: set[str] = set()
        if builtin:
            for name, raw in builtin_cluster_roles(version).items():
                if name not in cluster_role_objs:
                    cluster_role_objs[name] = raw
                    self.builtin_roles.add(name)
        self._resolve_cluster_roles(cluster_role_objs)
        # index: subject key -> bindings naming it
        self._by_subject: dict[tuple[str, str], list[_Binding]] = defaultdict(list)
        for b in self.bindings:
            for s in b.subjects:
                key = _subject_key(s, b.namespace)
                if key is not None:
                    self._by_subject[key].append(b)

    def _resolve_cluster_roles(self, objs: dict[str, dict[str, Any]]) -> None:
        for name, raw in objs.items():
            self.cluster_roles[name] = [
                PolicyRule.from_dict(r) for r in _list(raw.get("rules")) if isinstance(r, dict)
            ]
        aggregated: dict[str, list[LabelSelector]] = {}
        for name, raw in objs.items():
            agg = raw.get("aggregationRule")
            if isinstance(agg, dict):
                aggregated[name] = [
                    LabelSelector.parse(s)
                    for s in _list(agg.get("clusterRoleSelectors"))
                    if isinstance(s, dict)
                ]
        # the aggregation controller re-runs whenever a source role changes, so nested aggregation
        # (an aggregated role selecting another aggregated role) settles at a fixed point
        for _ in range(len(aggregated) + 1):
            changed = False
            for name, selectors in aggregated.items():
                rules = self.cluster_roles[name]
                for other, oraw in sorted(objs.items()):
                    if other == name:
                        continue
                    labels = (oraw.get("metadata") or {}).get("labels") or {}
                    if isinstance(labels, dict) and any(sel.matches(labels) for sel in selectors):
                        for r in self.cluster_roles[other]:
                            if r not in rules:
                                rules.append(r)
                                changed = True
            if not changed:
                break

    def subject_bindings(self, kind: str, name: str) -> list[_Binding]:
        """Bindings naming a subject: kind "user" (ServiceAccounts as system:serviceaccount:ns:name) or
        "group". An index lookup, for who-can style queries."""
        return self._by_subject.get((kind, name), [])

    def role_source(self, b: _Binding) -> str:
        """Where a binding's role comes from: "input", "built-in", or "" when it is unresolved."""
        if b.role_kind == "ClusterRole" and b.role_name in self.cluster_roles:
            return "built-in" if b.role_name in self.builtin_roles else "input"
        if b.role_kind == "Role" and b.namespace and (b.namespace, b.role_name) in self.roles:
            return "input"
        return ""

    def unresolved_bindings(self) -> list[tuple[_Binding, str]]:
        """Bindings whose role is neither in the input nor a known built-in role, with why: what they
        grant is unknown, so it is "not evaluated" (a Role missing from the input, an EKS-managed
        eks:* ClusterRole, a controller or feature-gated system: role, a custom role not supplied)."""
        out: list[tuple[_Binding, str]] = []
        for b in self.bindings:
            if self.role_source(b):
                continue
            if b.role_kind == "ClusterRole":
                detail = unknown_role_detail(b.role_name)
            elif b.role_kind == "Role" and b.namespace:
                detail = f"Role {b.namespace}/{b.role_name} is not in the input"
            else:
                detail = (
                    f"roleRef kind {b.role_kind!r} is not Role or ClusterRole (the API server rejects it)"
                )
            out.append((b, detail))
        return out

    def role_rules(self, b: _Binding) -> list[PolicyRule]:
        """The rules a binding grants (its role's, aggregation resolved); empty if the role is missing."""
        return self._role_rules(b)

    def _role_rules(self, b: _Binding) -> list[PolicyRule]:
        if b.role_kind == "ClusterRole":
            return self.cluster_roles.get(b.role_name, [])
        if b.role_kind == "Role" and b.namespace:
            return self.roles.get((b.namespace, b.role_name), [])
        return []

    def bindings_for(self, user: UserInfo) -> Iterator[_Binding]:
        seen: set[int] = set()
        keys = [("user", user.name)] + [("group", g) for g in user.groups]
        for key in keys:
            for b in self._by_subject.get(key, ()):
                if id(b) not in seen:
                    seen.add(id(b))
                    yield b

    def grants_for(self, user: UserInfo) -> Iterator[Grant]:
        """Every rule the user holds, with the binding that grants it and its namespace scope."""
        for b in self.bindings_for(user):
            role = f"{b.role_kind}/{b.role_name}"
            for rule in self._role_rules(b):
                yield Grant(rule, b.ref, role, b.namespace)

    def authorize(self, a: Attributes) -> Decision:
        # the API server's privileged-group authorizer runs before RBAC: system:masters may do anything
        if SUPERUSER_GROUP in a.user.groups:
            return Decision(True, f"allowed: member of {SUPERUSER_GROUP} (bypasses RBAC)")
        for g in self.grants_for(a.user):
            if g.namespace and (not a.resource_request or g.namespace != a.namespace):
                continue
            if g.rule.matches(a):
                return Decision(True, f"allowed by {g.binding} of {g.role}", g)
        return Decision(False, "no RBAC rule allows it")
