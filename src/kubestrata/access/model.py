"""Who is who and who may do what: IAM principals mapped through access entries and aws-auth, with RBAC
plus access-policy grants (the EKS authorizer allows or passes; RBAC then decides; either allowing wins).

Precedence per principal: in ``API`` mode only access entries authenticate; in ``CONFIG_MAP`` only
aws-auth (and the invisible cluster creator, as ``system:masters``); in ``API_AND_CONFIG_MAP`` an access
entry beats an aws-auth mapping of the same principal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from kubestrata.access.awsauth import (
    TEMPLATES,
    AwsAuth,
    Mapping,
    parse_aws_auth,
    template_pattern,
)
from kubestrata.access.policies import association_allows
from kubestrata.eks.arn import ArnError, canonicalize, parse_arn, strip_path
from kubestrata.eks.model import AccessEntry, Association, EKSAccess
from kubestrata.eks.objects import from_objects
from kubestrata.errors import InputError, KubestrataError
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.rbac import Attributes, RBACAuthorizer, UserInfo, service_account_user
from kubestrata.rbac.evaluator import SA_PREFIX, SUPERUSER_GROUP

RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
AUTHENTICATED = "system:authenticated"
ANONYMOUS = "system:anonymous"


@dataclass(frozen=True)
class Identity:
    """An IAM principal as Kubernetes sees it."""

    arn: str
    source: str  # access-entry | aws-auth | aws-auth-account | creator
    username: str  # may hold templates
    groups: tuple[str, ...]
    associations: tuple[Association, ...] = ()
    entry: AccessEntry | None = None
    mapping: Mapping | None = None
    entry_type: str = ""
    shadows: Mapping | None = None  # the aws-auth mapping this access entry overrides

    @classmethod
    def of_entry(cls, e: AccessEntry) -> Identity:
        """An access entry's identity; only STANDARD entries carry access policy associations."""
        return cls(
            e.principal_arn,
            "access-entry",
            e.effective_username,
            e.effective_groups,
            tuple(e.associations) if e.type == "STANDARD" else (),
            entry=e,
            entry_type=e.type,
        )

    @classmethod
    def of_mapping(cls, m: Mapping) -> Identity:
        return cls(m.arn, "aws-auth", m.username, m.groups, mapping=m)

    @property
    def user_info(self) -> UserInfo:
        return UserInfo(self.username, (*self.groups, AUTHENTICATED))

    @property
    def templated(self) -> bool:
        return any(t in self.username for t in TEMPLATES)

    @property
    def label(self) -> str:
        return f"iam:{self.arn}"


@dataclass(frozen=True)
class Request:
    verb: str
    resource: str = ""
    api_group: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""  # non-resource URL

    def attributes(self, user: UserInfo, namespace: str = "") -> Attributes:
        if self.path:
            return Attributes(user, self.verb, resource_request=False, path=self.path)
        return Attributes(
            user, self.verb, True, namespace, self.api_group, self.resource, self.subresource, self.name
        )

    def __str__(self) -> str:
        if self.path:
            return f"{self.verb} {self.path}"
        res = self.resource + (f".{self.api_group}" if self.api_group else "")
        res += f"/{self.subresource}" if self.subresource else ""
        return f"{self.verb} {res}" + (f" {self.name}" if self.name else "")


_CORE_ALIASES = {
    "po": "pods",
    "pod": "pods",
    "svc": "services",
    "cm": "configmaps",
    "sa": "serviceaccounts",
    "ns": "namespaces",
    "no": "nodes",
    "secret": "secrets",
    "deploy": "deployments.apps",
    "ds": "daemonsets.apps",
    "sts": "statefulsets.apps",
    "rs": "replicasets.apps",
    "cj": "cronjobs.batch",
    "ing": "ingresses.networking.k8s.io",
    "netpol": "networkpolicies.networking.k8s.io",
    "crb": "clusterrolebindings.rbac.authorization.k8s.io",
    "rb": "rolebindings.rbac.authorization.k8s.io",
}
_WELL_KNOWN_GROUPS = {
    "deployments": "apps",
    "daemonsets": "apps",
    "statefulsets": "apps",
    "replicasets": "apps",
    "controllerrevisions": "apps",
    "jobs": "batch",
    "cronjobs": "batch",
    "ingresses": "networking.k8s.io",
    "networkpolicies": "networking.k8s.io",
    "roles": "rbac.authorization.k8s.io",
    "rolebindings": "rbac.authorization.k8s.io",
    "clusterroles": "rbac.authorization.k8s.io",
    "clusterrolebindings": "rbac.authorization.k8s.io",
    "horizontalpodautoscalers": "autoscaling",
    "poddisruptionbudgets": "policy",
    "customresourcedefinitions": "apiextensions.k8s.io",
    "mutatingwebhookconfigurations": "admissionregistration.k8s.io",
    "validatingwebhookconfigurations": "admissionregistration.k8s.io",
    "certificatesigningrequests": "certificates.k8s.io",
    "leases": "coordination.k8s.io",
    "endpointslices": "discovery.k8s.io",
    "storageclasses": "storage.k8s.io",
}


def parse_request(verb: str, resource: str, name: str = "") -> Request:
    """kubectl-style ``VERB TYPE[.GROUP][/SUBRESOURCE]`` or a non-resource URL starting with "/"."""
    verb = verb.strip().lower()
    if not verb:
        raise KubestrataError("VERB must not be empty")
    if resource.startswith("/"):
        return Request(verb, path=resource)
    res, _, sub = resource.partition("/")
    res = _CORE_ALIASES.get(res.lower(), res.lower())
    base, _, group = res.partition(".")
    if not base or "/" in sub:  # the API server has no sub-subresources (RBAC would never match one)
        raise KubestrataError(f"cannot parse resource {resource!r}; expected TYPE[.GROUP][/SUBRESOURCE]")
    if not group and base in _WELL_KNOWN_GROUPS:
        group = _WELL_KNOWN_GROUPS[base]
    if group == "core":
        group = ""
    return Request(verb, base, group, sub, name)


@dataclass
class AccessGrant:
    """Why an identity may do something, summarized: an access policy, system:masters or RBAC (whose own
    grant, a rule reachable through a binding, is rbac.evaluator.Grant)."""

    via: str  # "rbac" | "access-policy" | "system:masters"
    detail: str


@dataclass
class WhoCanRow:
    subject: str  # "User alice", "Group g", "ServiceAccount ns/name", "IAM arn"
    via: str
    condition: str = ""  # e.g. "when the session renders to ..."


@dataclass
class AccessModel:
    cluster: Cluster
    eks: EKSAccess | None = None
    sso_enabled: bool = False
    errors: list[InputError] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rbac = RBACAuthorizer(o for o in self.cluster.real_objects() if o.kind in RBAC_KINDS)
        if self.eks is None:
            self.eks, errs = from_objects(self.cluster.of_kind("EKSClusterAccess"))
            self.errors.extend(errs)
        self.aws_auth_obj: KubeObject | None = self.cluster.get("ConfigMap", "kube-system", "aws-auth")
        self.aws_auth: AwsAuth | None = (
            parse_aws_auth(self.aws_auth_obj.raw.get("data"), self.sso_enabled) if self.aws_auth_obj else None
        )
        self._identities: list[Identity] | None = None

    # -- modes and identities ---------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        if self.eks is not None and self.eks.authentication_mode:
            return self.eks.authentication_mode
        return "API_AND_CONFIG_MAP" if self.eks is not None and self.eks.entries else "CONFIG_MAP"

    @property
    def config_map_active(self) -> bool:
        return self.mode in ("CONFIG_MAP", "API_AND_CONFIG_MAP")

    @property
    def entries_active(self) -> bool:
        return self.mode in ("API", "API_AND_CONFIG_MAP")

    def identities(self) -> list[Identity]:
        """Every IAM principal that can authenticate, with the mapping that wins for it."""
        if self._identities is not None:
            return self._identities
        out: list[Identity] = []
        by_arn: dict[str, Identity] = {}
        if self.entries_active and self.eks is not None:
            for e in self.eks.entries:
                ident = Identity.of_entry(e)
                by_arn[match_key(e.principal_arn)] = ident
                out.append(ident)
        if self.config_map_active and self.aws_auth is not None:
            for m in self.aws_auth.mappings:
                if not m.arn:
                    continue
                key = m.arn.lower()
                winner = by_arn.get(key)
                if winner is not None:
                    idx = out.index(winner)
                    out[idx] = by_arn[key] = replace(winner, shadows=m)
                    continue
                out.append(Identity.of_mapping(m))
        if (
            self.mode == "CONFIG_MAP"
            and self.eks is not None
            and self.eks.creator_arn
            and not any(i.arn.lower() == self.eks.creator_arn.lower() for i in out)
        ):
            out.append(Identity(self.eks.creator_arn, "creator", self.eks.creator_arn, (SUPERUSER_GROUP,)))
        self._identities = out
        return out

    def resolve(self, arn: str, session_name: str = "") -> Identity | None:
        """The identity an IAM caller (user, role or assumed-role session ARN) gets."""
        try:
            canonical = canonicalize(arn)
        except ArnError as err:
            raise KubestrataError(str(err)) from None
        if ":assumed-role/" in arn and not session_name:
            session_name = arn.rsplit("/", 1)[-1]
        if self.entries_active and self.eks is not None:
            for e in self.eks.entries:
                # EKS matches the principal; the role ARN in the entry carries its path, the session not
                if match_key(e.principal_arn) == canonical.lower() or e.principal_arn == arn:
                    return self._render(Identity.of_entry(e), arn, session_name)
        if self.config_map_active and self.aws_auth is not None:
            m = self.aws_auth.match(canonical, self.sso_enabled)
            if m is not None:
                return self._render(Identity.of_mapping(m), arn, session_name)
            if self.aws_auth.account_allowed(parse_arn(arn).account):
                return Identity(canonical, "aws-auth-account", canonical, ())
        if self.mode == "CONFIG_MAP" and self.eks is not None and self.eks.creator_arn:
            if canonicalize(self.eks.creator_arn).lower() == canonical.lower():
                return Identity(self.eks.creator_arn, "creator", canonical, (SUPERUSER_GROUP,))
        return None

    @staticmethod
    def _render(ident: Identity, arn: str, session: str) -> Identity:
        if not session:
            return ident
        acct = parse_arn(arn).account

        def r(s: str) -> str:
            s = s.replace("{{AccountID}}", acct).replace("{{SessionNameRaw}}", session)
            s = s.replace("{{SessionName}}", session.replace("@", "-"))
            return s.replace("{{EC2PrivateDNSName}}", session)  # stands in for the instance's DNS name

        return Identity(
            **{**ident.__dict__, "username": r(ident.username), "groups": tuple(r(g) for g in ident.groups)}
        )

    def not_evaluated(self, user: UserInfo | None = None) -> list[str]:
        """Bindings whose role is neither in the input nor a built-in role (only those naming ``user`` or
        one of its groups when given): what they grant is unknown, so an answer that depends on them is
        incomplete (said next to the answer, never dropped)."""
        mine = None if user is None else {id(b) for b in self.rbac.bindings_for(user)}
        return [
            f"{b.ref}: {detail}"
            for b, detail in self.rbac.unresolved_bindings()
            if mine is None or id(b) in mine
        ]

    # -- decisions --------------------------------------------------------------------------------------

    def check(
        self,
        req: Request,
        user: UserInfo,
        namespace: str = "",
        associations: Iterable[Association] = (),
    ) -> tuple[bool, list[AccessGrant], list[str]]:
        """Allowed?, the grants that allow it, notes (e.g. policies with unknown rules)."""
        attrs = req.attributes(user, namespace)
        grants: list[AccessGrant] = []
        notes: list[str] = []
        for a in associations:
            ok = association_allows(a, attrs)
            if ok:
                grants.append(AccessGrant("access-policy", f"{a.policy} ({a.scope})"))
            elif ok is None:
                notes.append(f"{a.policy} ({a.scope}) is a system policy whose rules are not published")
        d = self.rbac.authorize(attrs)
        if d.allowed:
            grants.append(
                AccessGrant(
                    "system:masters" if d.grant is None else "rbac",
                    d.reason.removeprefix("allowed: ").removeprefix("allowed by "),
                )
            )
        return bool(grants), grants, notes

    def who_can(self, req: Request, namespace: str = "") -> list[WhoCanRow]:
        """Every subject allowed: RBAC subjects, system:masters, and IAM principals via policies or RBAC."""
        rows: list[WhoCanRow] = [WhoCanRow(f"Group {SUPERUSER_GROUP}", "bypasses RBAC (privileged group)")]
        probe = req.attributes(UserInfo("\x00"), namespace)
        allowed_users: dict[str, str] = {}
        allowed_groups: dict[str, str] = {SUPERUSER_GROUP: "system:masters"}
        for b in self.rbac.bindings:
            if b.namespace and (not probe.resource_request or b.namespace != namespace):
                continue
            if not any(r.matches(probe) for r in self.rbac.role_rules(b)):
                continue
            via = f"{b.ref} -> {b.role_kind}/{b.role_name}"
            for s in b.subjects:
                kind, name = s.get("kind"), str(s.get("name") or "")
                if kind == "User":
                    allowed_users.setdefault(name, via)
                    rows.append(WhoCanRow(f"User {name}", via))
                elif kind == "Group":
                    allowed_groups.setdefault(name, via)
                    rows.append(WhoCanRow(f"Group {name}", via))
                elif kind == "ServiceAccount":
                    ns = str(s.get("namespace") or b.namespace)
                    if ns:
                        allowed_users.setdefault(service_account_user(ns, name).name, via)
                        rows.append(WhoCanRow(f"ServiceAccount {ns}/{name}", via))
        for ident in self.identities():
            label = f"IAM {ident.arn}"
            hit = False
            for a in ident.associations:
                if association_allows(a, req.attributes(ident.user_info, namespace)):
                    rows.append(WhoCanRow(label, f"access policy {a.policy} ({a.scope}) [{ident.source}]"))
                    hit = True
            for g in ident.user_info.groups:
                if g in allowed_groups:
                    rows.append(WhoCanRow(label, f"group {g}: {allowed_groups[g]} [{ident.source}]"))
                    hit = True
                    break
            if hit:
                continue
            if ident.username in allowed_users:
                rows.append(
                    WhoCanRow(
                        label, f"user {ident.username}: {allowed_users[ident.username]} [{ident.source}]"
                    )
                )
            elif ident.templated:
                pat = template_pattern(ident.username)
                for u, via in allowed_users.items():
                    if pat.fullmatch(u):
                        rows.append(
                            WhoCanRow(
                                label,
                                f"user {u}: {via} [{ident.source}]",
                                f"when the username renders to {u}",
                            )
                        )
        seen: set[tuple[str, str, str]] = set()
        out = []
        for r in rows:
            k = (r.subject, r.via, r.condition)
            if k not in seen:
                seen.add(k)
                out.append(r)
        return out


def kubernetes_user(name: str, extra_groups: Iterable[str] = ()) -> UserInfo:
    """The groups the API server's authenticators add to a Kubernetes username, as `kubectl auth can-i
    --as` would need them spelled out: a ServiceAccount (system:serviceaccount:NS:NAME) is in
    system:serviceaccounts, system:serviceaccounts:NS and system:authenticated; system:anonymous is in
    system:unauthenticated; every other user is in system:authenticated. ``extra_groups`` are added."""
    extra = tuple(extra_groups)
    if name.startswith(SA_PREFIX):
        ns, sep, sa = name.removeprefix(SA_PREFIX).partition(":")
        if not (ns and sep and sa) or ":" in sa:
            raise KubestrataError(f"--as {name!r}: expected system:serviceaccount:NAMESPACE:NAME")
        base = service_account_user(ns, sa)
        return UserInfo(base.name, (*extra, *(g for g in base.groups if g not in extra)))
    implied = "system:unauthenticated" if name == ANONYMOUS else AUTHENTICATED
    return UserInfo(name, (*extra, *((implied,) if implied not in extra else ())))


def match_key(principal_arn: str) -> str:
    """How a caller's canonical ARN meets an access entry: role sessions carry no IAM path (so a role
    entry's path is dropped), while an IAM user's caller ARN keeps its path."""
    try:
        p = parse_arn(principal_arn)
    except ArnError:
        return principal_arn.lower()
    return (strip_path(principal_arn) if p.resource_type == "role" else principal_arn).lower()
