"""RBAC to Cedar: one ``permit`` per (binding, subject, rule) and target kind, deciding exactly as the
API server's RBAC authorizer does (``kubestrata.rbac``; tests/authz/test_rbac_equivalence.py proves it
over the reference project's converter inputs and generated reviews).

Semantics carried over: ``*`` verbs/apiGroups/resources; ``resource/subresource`` exact, ``*/sub``,
and RBAC's implicit subresource exclusion (``pods`` does not grant ``pods/log``); resourceNames (a
request without a name never matches a non-empty list); nonResourceURLs exact, ``*`` and trailing-``*``
prefixes, granted only through ClusterRoleBindings; RoleBindings confined to their namespace;
aggregated ClusterRoles; User, Group and ServiceAccount subjects (a subject naming a username that maps
to a ServiceAccount or Node principal is matched on that principal). Impersonation rules also produce
permits on the impersonated identity (``k8s::User``/``Node``/``Group``/``PrincipalUID``/``Extra``/
``ServiceAccount``), which is how kubestrata presents an impersonate review.

Not expressible (reported as warnings, never silently widened): verbs that the schema does not declare
for the target entity type (custom verbs), and subjects of unknown kinds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kubestrata.authz.entities import node_name, principal_kind
from kubestrata.authz.schema import AUTHZ_ACTIONS
from kubestrata.kube.objects import KubeObject
from kubestrata.rbac import PolicyRule, RBACAuthorizer
from kubestrata.rbac.evaluator import SA_PREFIX


def cstr(s: str) -> str:
    """A Cedar string literal."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def cset(values: Iterable[str]) -> str:
    return "[" + ", ".join(cstr(v) for v in values) + "]"


def like_prefix(prefix: str) -> str:
    """A Cedar `like` pattern matching strings that start with ``prefix``."""
    body = cstr(prefix)[1:-1].replace("*", "\\*")
    return '"' + body + '*"'


def _in_list(attr: str, values: list[str]) -> str:
    return f"{attr} == {cstr(values[0])}" if len(values) == 1 else f"{cset(values)}.contains({attr})"


def _names_cond(attr_has: str | None, attr: str, names: tuple[str, ...]) -> str | None:
    """RBAC resourceNames; ``attr_has`` guards an optional attribute (absent when the request has no
    name), None for an attribute that is always present."""
    if not names:
        return None
    if attr_has is None:
        return _in_list(attr, sorted(set(names)))
    present = sorted({n for n in names if n})
    parts = []
    if present:
        parts.append(f"{attr_has} && {_in_list(attr, present)}")
    if "" in names:
        parts.append(f"!({attr_has})")
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def _resources_cond(resources: tuple[str, ...]) -> str | None:
    """RBAC's ResourceMatches over (resource, subresource); None when "*" matches everything."""
    if "*" in resources:
        return None
    plain = sorted({r for r in resources if "/" not in r})
    parts = []
    if plain:
        parts.append(f"{_in_list('resource.resource', plain)} && !(resource has subresource)")
    for r in sorted({r for r in resources if "/" in r}):
        res, _, sub = r.partition("/")
        if res == "*":
            if sub:  # "*/" alone matches nothing: it needs a non-empty subresource equal to ""
                parts.append(f"resource has subresource && resource.subresource == {cstr(sub)}")
        else:
            parts.append(
                f"resource.resource == {cstr(res)} && resource has subresource && "
                f"resource.subresource == {cstr(sub)}"
            )
    if not parts:
        return "false"
    if len(parts) == 1:
        return parts[0]
    either = "(" + " || ".join(f"({p})" for p in parts) + ")"
    if any(r.startswith("*/") for r in resources):
        return either
    # redundant but exact: a leading literal test on resource.resource lets the slicing index use it
    names = sorted({r.partition("/")[0] for r in resources})
    return f"{_in_list('resource.resource', names)} && {either}"


def _urls_cond(urls: tuple[str, ...]) -> str | None:
    if "*" in urls:
        return None
    parts = []
    exact = sorted({u for u in urls if not u.endswith("*")})
    if exact:
        parts.append(_in_list("resource.path", exact))
    for u in sorted({u for u in urls if u.endswith("*")}):
        parts.append(f"resource.path like {like_prefix(u.rstrip('*'))}")
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def _principal(username: str) -> tuple[str, list[str]]:
    """Scope and conditions for a username subject, through the same mapping the authorizer uses."""
    ptype, attrs = principal_kind(username)
    conds = [f"principal.name == {cstr(attrs['name'])}"]
    if ptype == "k8s::ServiceAccount":
        conds.append(f"principal.namespace == {cstr(attrs['namespace'])}")
    return f"principal is {ptype}", conds


def _actions(verbs: tuple[str, ...], entity_type: str) -> tuple[str | None, list[str]]:
    """Action scope for the verbs applicable to ``entity_type``, and the verbs that are not."""
    if "*" in verbs:
        return "action", []
    ok = [v for v in dict.fromkeys(verbs) if entity_type in AUTHZ_ACTIONS.get(v, ())]
    bad = [v for v in dict.fromkeys(verbs) if entity_type not in AUTHZ_ACTIONS.get(v, ())]
    if not ok:
        return None, bad
    if len(ok) == 1:
        return f"action == k8s::Action::{cstr(ok[0])}", bad
    return "action in [" + ", ".join(f"k8s::Action::{cstr(v)}" for v in ok) + "]", bad


def _group_matches(rule: PolicyRule, group: str) -> bool:
    return "*" in rule.api_groups or group in rule.api_groups


def _combined_matches(rule: PolicyRule, resource: str, sub: str) -> bool:
    combined = f"{resource}/{sub}" if sub else resource
    return any(r == "*" or r == combined or (sub and r == "*/" + sub) for r in rule.resources)


@dataclass
class RbacConversion:
    policies: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n\n".join(self.policies) + ("\n" if self.policies else "")


def convert_rbac(objects: Iterable[KubeObject | dict[str, Any]]) -> RbacConversion:
    """Cedar permits equivalent to the RBAC grants in ``objects`` (Roles, ClusterRoles, bindings)."""
    rbac = RBACAuthorizer(objects)
    out = RbacConversion()
    for b in rbac.bindings:
        rules = rbac._role_rules(b)  # resolved rules, aggregation included
        if not rules:
            out.warnings.append(
                f"{b.ref}: {b.role_kind}/{b.role_name} not found or has no rules; nothing granted"
            )
            continue
        kind, _, rest = b.ref.partition("/")
        bname = rest.split("/", 1)[1] if kind == "RoleBinding" else rest
        for s_index, subject in enumerate(b.subjects):
            scope_and_conds = _subject(subject, b.namespace)
            if scope_and_conds is None:
                out.warnings.append(
                    f"{b.ref}: subjects[{s_index}] ({subject.get('kind')}) matches no one; skipped"
                )
                continue
            pscope, pconds = scope_and_conds
            for r_index, rule in enumerate(rules):
                ann = [
                    f"@{'roleBinding' if kind == 'RoleBinding' else 'clusterRoleBinding'}({cstr(bname)})",
                    *([f"@namespace({cstr(b.namespace)})"] if b.namespace else []),
                    f"@{'role' if b.role_kind == 'Role' else 'clusterRole'}({cstr(b.role_name)})",
                    f'@policyRule("{r_index:02d}")',
                    f"@subject({cstr(str(subject.get('kind')) + '/' + str(subject.get('name')))})",
                ]
                for text, bad in _rule_policies(rule, pscope, pconds, b.namespace):
                    if text:
                        out.policies.append("\n".join(ann) + "\n" + text)
                    for v in bad:
                        msg = f"{b.ref} rule {r_index}: verb {v!r} is not a schema action for this target; not converted"
                        if msg not in out.warnings:
                            out.warnings.append(msg)
    return out


def _subject(subject: dict[str, Any], binding_ns: str) -> tuple[str, list[str]] | None:
    kind, name = subject.get("kind"), str(subject.get("name") or "")
    if kind == "Group":
        return f"principal in k8s::Group::{cstr(name)}", []
    if kind == "User":
        return _principal(name)
    if kind == "ServiceAccount":
        ns = str(subject.get("namespace") or binding_ns)
        if not ns:
            return None
        return _principal(f"{SA_PREFIX}{ns}:{name}")
    return None


def _policy(pscope: str, ascope: str, rscope: str, conds: Sequence[str | None]) -> str:
    body = [c for c in conds if c]
    text = f"permit (\n    {pscope},\n    {ascope},\n    {rscope}\n)"
    if body:
        text += " when {\n    " + " &&\n    ".join(body) + "\n}"
    return text + ";"


def _rule_policies(
    rule: PolicyRule, pscope: str, pconds: list[str], namespace: str
) -> Iterable[tuple[str | None, list[str]]]:
    ns_cond = f"resource has namespace && resource.namespace == {cstr(namespace)}" if namespace else None
    if rule.resources or rule.api_groups:
        ascope, bad = _actions(rule.verbs, "Resource")
        if ascope is None:
            yield None, bad
        else:
            groups = (
                None
                if "*" in rule.api_groups
                else _in_list("resource.apiGroup", sorted(set(rule.api_groups)))
            )
            if not rule.api_groups:
                groups = "false"
            yield (
                _policy(
                    pscope,
                    ascope,
                    "resource is k8s::Resource",
                    [
                        *pconds,
                        groups,
                        _resources_cond(rule.resources) if rule.resources else "false",
                        _names_cond("resource has name", "resource.name", rule.resource_names),
                        ns_cond,
                    ],
                ),
                bad,
            )
        if "*" in rule.verbs or "impersonate" in rule.verbs:
            yield from ((t, []) for t in _impersonation_policies(rule, pscope, pconds, namespace))
    if rule.non_resource_urls and not namespace:
        ascope, bad = _actions(rule.verbs, "NonResourceURL")
        if ascope is None:
            yield None, bad
        else:
            urls = _urls_cond(rule.non_resource_urls)
            yield _policy(pscope, ascope, "resource is k8s::NonResourceURL", [*pconds, urls]), bad


def _impersonation_policies(
    rule: PolicyRule, pscope: str, pconds: list[str], namespace: str
) -> Iterable[str]:
    act = 'action == k8s::Action::"impersonate"'
    names = rule.resource_names
    auth = "authentication.k8s.io"
    if not namespace and _group_matches(rule, auth):
        if _combined_matches(rule, "users", ""):
            yield _policy(
                pscope, act, "resource is k8s::User", [*pconds, _names_cond(None, "resource.name", names)]
            )
            node_targets = [n for n in names if node_name(n) is not None]
            if not names:
                yield _policy(pscope, act, "resource is k8s::Node", pconds)
            elif node_targets:
                refs = "[" + ", ".join(f"k8s::Node::{cstr(n)}" for n in sorted(set(node_targets))) + "]"
                yield _policy(pscope, act, "resource is k8s::Node", [*pconds, f"{refs}.contains(resource)"])
        if _combined_matches(rule, "groups", ""):
            yield _policy(
                pscope, act, "resource is k8s::Group", [*pconds, _names_cond(None, "resource.name", names)]
            )
        if _combined_matches(rule, "uids", ""):
            cond = None
            if names:
                cond = (
                    "["
                    + ", ".join(f"k8s::PrincipalUID::{cstr(n)}" for n in sorted(set(names)))
                    + "].contains(resource)"
                )
            yield _policy(pscope, act, "resource is k8s::PrincipalUID", [*pconds, cond])
        key_conds = _extra_key_conds(rule)
        if key_conds is not False:
            yield _policy(
                pscope,
                act,
                "resource is k8s::Extra",
                [*pconds, key_conds, _names_cond("resource has value", "resource.value", names)],
            )
    if _group_matches(rule, "") and _combined_matches(rule, "serviceaccounts", ""):
        ns_cond = f"resource.namespace == {cstr(namespace)}" if namespace else None
        yield _policy(
            pscope,
            act,
            "resource is k8s::ServiceAccount",
            [*pconds, _names_cond(None, "resource.name", names), ns_cond],
        )


def _extra_key_conds(rule: PolicyRule) -> str | None | Literal[False]:
    """Which userextras keys (the subresource) a rule's resources match: None for any, False for none."""
    if "*" in rule.resources:
        return None
    keys: set[str] = set()
    for r in rule.resources:
        if r == "userextras":
            keys.add("")
        elif r.startswith("userextras/"):
            keys.add(r[len("userextras/") :])
        elif r.startswith("*/") and len(r) > 2:
            keys.add(r[2:])
    if not keys:
        return False
    return _in_list("resource.key", sorted(keys))
