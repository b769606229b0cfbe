"""Shared rule helpers: pod specs and containers of workload objects, the object a request
produced (create, update, patch, server-side apply), RBAC object readers, identity tests
(control-plane exemptions, nodes, public addresses)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.objects import apply_json_patch, merge
from kubestrata.detect.rules.lists import (
    DOWNLOAD_AND_RUN,
    GD_SENSITIVE_PATHS,
    MODIFY,
    REVERSE_SHELL,
    WORKLOAD_RESOURCES,
)
from kubestrata.detect.rules.registry import Hit, RuleContext
from kubestrata.kube.podspec import iter_containers, pod_template


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


def _compute_produced(ev: AuditEvent, ctx: RuleContext) -> Produced | None:
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


def produced(ev: AuditEvent, ctx: RuleContext) -> Produced | None:
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
    ev: AuditEvent, ctx: RuleContext, check: Callable[[dict[str, Any], str], Iterable[Hit]]
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
    return [img if isinstance(img := c.get("image"), str) else "" for c, _ in containers(spec, path)]


def falco_not_all_in(repos: list[str], allowed: frozenset[str]) -> bool:
    """Falco's ``not <list field> in (<list>)``: true unless there are values and all are allowed."""
    return not repos or not all(r in allowed for r in repos)


def host_paths(spec: dict[str, Any], path: str) -> list[tuple[str, str, str]]:
    """(volume name, host path, field path) of every hostPath volume."""
    out: list[tuple[str, str, str]] = []
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
    # (user.uid as the event holds it: reading ``raw`` would decode a line detect/wire.py read)
    return ev.user_uid.startswith(_IAM_UID_PREFIXES)


def exempt(ev: AuditEvent, ctx: RuleContext, rule_id: str) -> bool:
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
    """An exec/attach that went through: 101 Switching Protocols, 2xx, or no status recorded.
    (Inline in the rules that run on every exec: anomaly.anomalous_exec, native_exec.)"""
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
    return ip  # type: ignore[return-value]  # False (the miss marker) was replaced; mypy keeps bool


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


WORKLOAD_ON = "create,update,patch " + ",".join(sorted(WORKLOAD_RESOURCES))


def produced_spec(ev: AuditEvent, ctx: RuleContext) -> tuple[dict[str, Any], str] | None:
    p = produced(ev, ctx)
    return pod_spec(ev, p.obj, p.prefix) if p is not None else None


def privileged_and_mounts(
    spec: dict[str, Any], path: str
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """(image, container path) of privileged containers; (image, mount path, host path) of the
    writable mounts of sensitive host paths."""
    priv: list[tuple[str, str]] = []
    sens: list[tuple[str, str, str]] = []
    vols = {n: hp for n, hp, _ in host_paths(spec, path)}
    for c, p in containers(spec, path):
        img = img_ if isinstance(img_ := c.get("image"), str) else ""
        if (c.get("securityContext") or {}).get("privileged") is True:
            priv.append((img, p))
        for j, m in enumerate(c.get("volumeMounts") or []):
            if isinstance(m, dict) and m.get("name") in vols and m.get("readOnly") is not True:
                hp = vols[m["name"]]
                if hp in GD_SENSITIVE_PATHS:
                    sens.append((img, f"{p}.volumeMounts[{j}]", hp))
    return priv, sens


def command_text(c: dict[str, Any]) -> str:
    parts = [x for k in ("command", "args") for x in (c.get(k) or []) if isinstance(x, str)]
    return " ".join(parts)


def suspicious_command(c: dict[str, Any]) -> str | None:
    text = command_text(c)
    return text if text and (REVERSE_SHELL.search(text) or DOWNLOAD_AND_RUN.search(text)) else None


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
