"""Kubernetes requests as Cedar requests: SubjectAccessReview and AdmissionReview to principal, action,
resource and the entities they need.

Entity ids (a kubestrata choice; the reference project uses the user's UID for ``User``):
``k8s::User::"<username>"`` (so ``principal == k8s::User::"alice"`` reads naturally; the UID is the
``uid`` attribute), ``k8s::ServiceAccount::"system:serviceaccount:<ns>:<name>"``,
``k8s::Node::"system:node:<name>"``, ``k8s::Group::"<group>"``; the resource id is the request's URL
path. Every request is described by plain JSON so no Cedar syntax is ever built from request data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubestrata.authz.schema import cedar_namespace_for_group
from kubestrata.errors import KubestrataError

SA_PREFIX = "system:serviceaccount:"
NODE_PREFIX = "system:node:"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

SAR_VERSIONS = ("authorization.k8s.io/v1", "authorization.k8s.io/v1beta1")
LABEL_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
# Cedar's JSON entity format treats these record keys as escapes; object data must never smuggle one in
_JSON_ESCAPES = frozenset({"__entity", "__extn", "__expr"})
MAX_OBJECT_DEPTH = 32


class InvalidReview(KubestrataError):
    """A review the webhook must reject (HTTP 400): wrong apiVersion/kind, missing or mistyped fields."""


def uid(type_: str, id_: str) -> dict[str, str]:
    return {"type": type_, "id": id_}


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) for a valid service account username, as serviceaccount.SplitUsername does."""
    if not username.startswith(SA_PREFIX):
        return None
    parts = username[len(SA_PREFIX) :].split(":")
    if len(parts) != 2:
        return None
    ns, name = parts
    if not _DNS_LABEL.match(ns) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return None
    return ns, name


def node_name(username: str) -> str | None:
    if username.startswith(NODE_PREFIX):
        rest = username[len(NODE_PREFIX) :]
        if rest and ":" not in rest:
            return rest
    return None


def principal_kind(username: str) -> tuple[str, dict[str, Any]]:
    """The Cedar entity type and identifying attributes a username maps to."""
    sa = split_service_account(username)
    if sa is not None:
        return "k8s::ServiceAccount", {"namespace": sa[0], "name": sa[1]}
    node = node_name(username)
    if node is not None:
        return "k8s::Node", {"name": node}
    return "k8s::User", {"name": username}


def is_opinionless_system_user(username: str) -> bool:
    """`system:` users other than service accounts and nodes get no opinion (the reference authorizer's
    rule): control-plane identities must never depend on a policy file."""
    return username.startswith("system:") and principal_kind(username)[0] == "k8s::User"


@dataclass
class CedarRequest:
    principal: dict[str, str]
    action: dict[str, str]
    resource: dict[str, str]
    entities: list[dict[str, Any]]
    # what the slicing index keys on
    principal_type: str
    principal_name: str  # the principal's `name` attribute
    groups: tuple[str, ...]
    resource_type: str
    k8s_resource: str | None = None
    api_group: str | None = None
    namespace: str | None = None  # the Resource's namespace attribute (None when absent)

    def as_cedarpy(self) -> dict[str, Any]:
        # no "context" key: every kubestrata request has an empty context, and cedarpy then skips
        # serialising one per call
        return {"principal": self.principal, "action": self.action, "resource": self.resource}


def _str(d: dict[str, Any], key: str, where: str) -> str:
    v = d.get(key, "")
    if v is None:
        return ""
    if not isinstance(v, str):
        raise InvalidReview(f"{where}.{key} must be a string")
    return v


def _str_list(d: dict[str, Any], key: str, where: str) -> list[str]:
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InvalidReview(f"{where}.{key} must be a list of strings")
    return v


def _extra(d: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, dict):
        raise InvalidReview(f"{where}.{key} must be a mapping of string lists")
    out = []
    for k, vals in sorted(v.items()):
        if vals is None:
            vals = []
        if not isinstance(vals, list) or not all(isinstance(x, str) for x in vals):
            raise InvalidReview(f"{where}.{key}.{k} must be a list of strings")
        # the API server lower-cases extra keys in the authorizer attributes
        out.append({"key": str(k).lower(), "values": sorted(set(vals))})
    return out


def principal_entities(
    username: str, groups: list[str], user_uid: str, extra: list[dict[str, Any]]
) -> tuple[dict[str, str], list[dict[str, Any]], str]:
    """The principal's uid, its entity (groups as parents), and its Cedar type."""
    ptype, attrs = principal_kind(username)
    attrs = dict(attrs)
    if user_uid:
        attrs["uid"] = user_uid
    if extra:
        attrs["extra"] = extra
    parents = [uid("k8s::Group", g) for g in dict.fromkeys(groups)]
    principal = uid(ptype, username)
    ents = [{"uid": principal, "attrs": attrs, "parents": parents}]
    # Group entities themselves are not sent: `principal in k8s::Group::"g"` needs only the parent
    # edge, and each entity costs cedarpy ~8 us to parse. Callers read `name` back from ents[0].
    return principal, ents, ptype


def resource_path(group: str, version: str, namespace: str, resource: str, name: str, sub: str) -> str:
    parts = ["/api", version or "v1"] if not group else ["/apis", group, version or "*"]
    if namespace:
        parts += ["namespaces", namespace]
    if resource:
        parts.append(resource)
    if name:
        parts.append(name)
    if sub:
        parts.append(sub)
    return "/".join(parts)


def _requirements(sel: Any, where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Each requirement of a label or field selector in a SubjectAccessReview, with its field path."""
    if sel is None:
        return
    if not isinstance(sel, dict):
        raise InvalidReview(f"{where} must be a mapping")
    reqs = sel.get("requirements") or []
    if sel.get("rawSelector") and reqs:
        # two encodings of one selector invite parser-disagreement bugs (cf. CVE-2022-2880)
        raise InvalidReview(f"{where} sets both rawSelector and requirements")
    if not isinstance(reqs, list):
        raise InvalidReview(f"{where}.requirements must be a list")
    for i, r in enumerate(reqs):
        if not isinstance(r, dict):
            raise InvalidReview(f"{where}.requirements[{i}] must be a mapping")
        yield r, f"{where}.requirements[{i}]"


def _label_requirements(sel: Any, where: str) -> list[dict[str, Any]]:
    out = []
    for r, at in _requirements(sel, where):
        op = LABEL_OPERATORS.get(str(r.get("operator")))
        if op is None:
            continue  # requirements only narrow a request: dropping an unknown one is safe
        out.append(
            {
                "key": _str(r, "key", at),
                "operator": op,
                "values": sorted(set(_str_list(r, "values", at))),
            }
        )
    return out


def _field_requirements(sel: Any, where: str) -> list[dict[str, Any]]:
    out = []
    for r, at in _requirements(sel, where):
        values = _str_list(r, "values", at)
        op = {"In": "=", "NotIn": "!="}.get(str(r.get("operator")))
        # field selectors only support one value per requirement; anything else cannot narrow in Cedar
        if op is None or len(values) != 1:
            continue
        out.append({"field": _str(r, "key", at), "operator": op, "value": values[0]})
    return out


IMPERSONATION_TARGETS = {
    ("authentication.k8s.io", "users"),
    ("authentication.k8s.io", "groups"),
    ("authentication.k8s.io", "uids"),
    ("authentication.k8s.io", "userextras"),
    ("", "serviceaccounts"),
}


def _impersonation_target(
    group: str, resource: str, sub: str, namespace: str, name: str
) -> tuple[dict[str, Any], str] | None:
    """The entity for what an impersonate request names (the API server's impersonation filter shape),
    or None when the request is an ordinary resource request."""
    if (group, resource) not in IMPERSONATION_TARGETS or (sub and resource != "userextras"):
        return None
    if namespace and resource != "serviceaccounts":
        return None  # users, groups, uids and extras are cluster-scoped; a namespaced review is a plain one
    if resource == "users":
        t, attrs = principal_kind(name)
        if t == "k8s::ServiceAccount":  # impersonating an SA goes through serviceaccounts; keep it a User
            t, attrs = "k8s::User", {"name": name}
        return {"uid": uid(t, name), "attrs": attrs, "parents": []}, t
    if resource == "groups":
        return {"uid": uid("k8s::Group", name), "attrs": {"name": name}, "parents": []}, "k8s::Group"
    if resource == "uids":
        return {"uid": uid("k8s::PrincipalUID", name), "attrs": {}, "parents": []}, "k8s::PrincipalUID"
    if resource == "userextras":
        attrs = {"key": sub}
        if name:
            attrs["value"] = name
        return {"uid": uid("k8s::Extra", f"{sub}={name}"), "attrs": attrs, "parents": []}, "k8s::Extra"
    ident = f"{SA_PREFIX}{namespace}:{name}"
    return (
        {
            "uid": uid("k8s::ServiceAccount", ident),
            "attrs": {"name": name, "namespace": namespace},
            "parents": [],
        },
        "k8s::ServiceAccount",
    )


def sar_to_request(sar: Any) -> CedarRequest:
    """Map a SubjectAccessReview (v1 or v1beta1) to a Cedar request. Raises InvalidReview."""
    if not isinstance(sar, dict):
        raise InvalidReview("a SubjectAccessReview must be a JSON object")
    api_version = sar.get("apiVersion")
    if api_version not in SAR_VERSIONS:
        raise InvalidReview(f"apiVersion must be one of {', '.join(SAR_VERSIONS)}, got {api_version!r}")
    if sar.get("kind") != "SubjectAccessReview":
        raise InvalidReview(f"kind must be SubjectAccessReview, got {sar.get('kind')!r}")
    spec = sar.get("spec")
    if not isinstance(spec, dict):
        raise InvalidReview("spec must be a mapping")
    username = _str(spec, "user", "spec")
    # v1beta1 spells the group list "group"
    groups = _str_list(spec, "groups" if api_version.endswith("/v1") else "group", "spec")
    principal, ents, ptype = principal_entities(
        username, groups, _str(spec, "uid", "spec"), _extra(spec, "extra", "spec")
    )
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if ra is not None and nra is not None:
        raise InvalidReview("spec sets both resourceAttributes and nonResourceAttributes")
    if nra is not None:
        if not isinstance(nra, dict):
            raise InvalidReview("spec.nonResourceAttributes must be a mapping")
        path = _str(nra, "path", "spec.nonResourceAttributes")
        verb = _str(nra, "verb", "spec.nonResourceAttributes")
        res = uid("k8s::NonResourceURL", path)
        ents.append({"uid": res, "attrs": {"path": path}, "parents": []})
        return CedarRequest(
            principal,
            uid("k8s::Action", verb),
            res,
            ents,
            ptype,
            ents[0]["attrs"]["name"],
            tuple(groups),
            "k8s::NonResourceURL",
        )
    if not isinstance(ra, dict):
        raise InvalidReview("spec must set resourceAttributes or nonResourceAttributes")
    w = "spec.resourceAttributes"
    verb, group, version = _str(ra, "verb", w), _str(ra, "group", w), _str(ra, "version", w)
    resource, sub = _str(ra, "resource", w), _str(ra, "subresource", w)
    namespace, name = _str(ra, "namespace", w), _str(ra, "name", w)
    if "/" in resource or "/" in sub:
        # the API server never sends these (they are URL path segments); RBAC would read
        # "pods/log" as resource/subresource and a policy would not: refuse rather than disagree
        raise InvalidReview(f"{w}.resource and .subresource must not contain '/'")
    action = uid("k8s::Action", verb)
    if verb == "impersonate":
        target = _impersonation_target(group, resource, sub, namespace, name)
        if target is not None:
            ent, ttype = target
            if ent["uid"] != principal:
                ents.append(ent)
            return CedarRequest(
                principal, action, ent["uid"], ents, ptype, ents[0]["attrs"]["name"], tuple(groups), ttype
            )
    attrs: dict[str, Any] = {"apiGroup": group, "resource": resource}
    if name:
        attrs["name"] = name
    if sub:
        attrs["subresource"] = sub
    if namespace:
        attrs["namespace"] = namespace
    labels = _label_requirements(ra.get("labelSelector"), w + ".labelSelector")
    if labels:
        attrs["labelSelector"] = labels
    fields = _field_requirements(ra.get("fieldSelector"), w + ".fieldSelector")
    if fields:
        attrs["fieldSelector"] = fields
    res = uid("k8s::Resource", resource_path(group, version, namespace, resource, name, sub))
    ents.append({"uid": res, "attrs": attrs, "parents": []})
    return CedarRequest(
        principal,
        action,
        res,
        ents,
        ptype,
        ents[0]["attrs"]["name"],
        tuple(groups),
        "k8s::Resource",
        resource,
        group,
        namespace or None,
    )


# --- admission -------------------------------------------------------------------------------------

# object fields that are string maps in the Kubernetes API and become Set<{key, value}>
MAP_FIELDS = frozenset(
    {"labels", "annotations", "data", "stringData", "binaryData", "nodeSelector", "matchLabels", "selector"}
)


def _to_cedar_value(v: Any, key: str, depth: int) -> Any:
    """A JSON value as Cedar JSON: nulls and floats dropped (Cedar has neither), string maps as key/value
    sets, at most MAX_OBJECT_DEPTH levels (as the reference webhook)."""
    if depth > MAX_OBJECT_DEPTH or v is None or isinstance(v, float):
        return None
    if isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**63 else None
    if isinstance(v, list):
        items = [_to_cedar_value(x, key, depth + 1) for x in v]
        return [x for x in items if x is not None]
    if isinstance(v, dict):
        if key in MAP_FIELDS and all(isinstance(x, str) for x in v.values()):
            return [{"key": str(k), "value": x} for k, x in sorted(v.items())]
        out = {}
        for k, x in v.items():
            if k in _JSON_ESCAPES:
                continue
            cv = _to_cedar_value(x, k, depth + 1)
            if cv is not None:
                out[k] = cv
        return out
    return None


def admission_entity_type(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    return f"{cedar_namespace_for_group(group)}::{version}::{kind}"


def object_entity(
    obj: dict[str, Any], type_: str, id_: str, old_uid: dict[str, str] | None
) -> dict[str, Any]:
    attrs = {}
    for k, v in obj.items():
        if k in ("apiVersion", "kind") or k in _JSON_ESCAPES:
            continue
        cv = _to_cedar_value(v, k, 1)
        if cv is not None:
            attrs[k] = cv
    if old_uid is not None:
        attrs["oldObject"] = {"__entity": old_uid}
    return {"uid": uid(type_, id_), "attrs": attrs, "parents": []}


def admission_to_request(req: Any) -> CedarRequest:
    """Map an AdmissionReview ``request`` to a Cedar admission request. Raises InvalidReview."""
    if not isinstance(req, dict):
        raise InvalidReview("request must be a mapping")
    op = req.get("operation")
    if op not in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        raise InvalidReview(f"request.operation must be CREATE, UPDATE, DELETE or CONNECT, got {op!r}")
    user = req.get("userInfo") or {}
    if not isinstance(user, dict):
        raise InvalidReview("request.userInfo must be a mapping")
    username = _str(user, "username", "request.userInfo")
    groups = _str_list(user, "groups", "request.userInfo")
    principal, ents, ptype = principal_entities(
        username, groups, _str(user, "uid", "request.userInfo"), _extra(user, "extra", "request.userInfo")
    )
    obj, old = req.get("object"), req.get("oldObject")
    main = old if op == "DELETE" else obj
    if not isinstance(main, dict):
        raise InvalidReview(
            f"request.{'oldObject' if op == 'DELETE' else 'object'} must be an object for {op}"
        )
    kind = req.get("kind") or {}
    if not isinstance(kind, dict):
        raise InvalidReview("request.kind must be a mapping")
    k_group, k_version, k_kind = (_str(kind, k, "request.kind") for k in ("group", "version", "kind"))
    api_version = f"{k_group}/{k_version}" if k_group else k_version
    if not k_kind:
        api_version, k_kind = str(main.get("apiVersion") or "v1"), str(main.get("kind") or "")
    type_ = admission_entity_type(api_version, k_kind)
    review_uid = _str(req, "uid", "request")
    ns, name = _str(req, "namespace", "request"), _str(req, "name", "request")
    res = req.get("resource") or {}
    if not isinstance(res, dict):
        raise InvalidReview("request.resource must be a mapping")
    main_id = resource_path(
        k_group,
        k_version,
        ns,
        _str(res, "resource", "request.resource"),
        name,
        _str(req, "subResource", "request"),
    )
    old_uid = None
    if op == "UPDATE" and isinstance(old, dict):
        old_uid = uid(type_, f"{main_id}#old:{review_uid}")
        ents.append(object_entity(old, type_, old_uid["id"], None))
    ent = object_entity(main, type_, main_id, old_uid)
    ents.append(ent)
    action = uid("k8s::admission::Action", op.lower())
    # no schema is passed at evaluation time, so the action hierarchy travels with the request
    ents.append({"uid": action, "attrs": {}, "parents": [uid("k8s::admission::Action", "all")]})
    return CedarRequest(
        principal,
        action,
        ent["uid"],
        ents,
        ptype,
        ents[0]["attrs"]["name"],
        tuple(groups),
        type_,
    )
