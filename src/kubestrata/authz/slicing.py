"""Policy slicing: evaluate only the policies that could apply to a request.

Each policy's scope (principal, action, resource) and the leading conjuncts of its first ``when``
clause are read from its JSON (EST) form. A policy is left out of a request's slice only when one of
those constraints is provably false for the request *and* nothing evaluated before it can error:
Cedar evaluates ``scope && when-conjunct-1 && ...`` left to right with short-circuit, so such a policy
evaluates to false without error in the whole set too. Slicing therefore never changes a decision,
its reasons or its errors (tests/authz/test_slicing.py checks this over generated requests).

Recognised constraints: principal ``==``/``in``/``is`` (groups are the only parents), action
``==``/``in`` (with the admission ``Action::"all"`` parent), resource ``==``/``in``/``is``, and in the
``when`` body ``principal.name == "x"``, ``principal is T``, ``principal in E``, ``resource is T``,
``resource has a``, and, once the resource is known to be a ``k8s::Resource``,
``resource.resource``/``resource.apiGroup`` (and ``resource.namespace`` after ``resource has
namespace``) compared with a literal or a literal set's ``contains``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubestrata.authz.entities import CedarRequest
from kubestrata.authz.schema import ADMISSION_OPERATIONS

ADMISSION_ACTION = "k8s::admission::Action"
# the only action hierarchy: every admission operation is in Action::"all"
ACTION_PARENTS = {
    f'{ADMISSION_ACTION}::"{op}"': (f'{ADMISSION_ACTION}::"all"',) for op in ADMISSION_OPERATIONS
}


def ekey(e: dict[str, str]) -> str:
    return f'{e["type"]}::"{e["id"]}"'


@dataclass(frozen=True, slots=True)
class Constraints:
    """What must hold for the policy to possibly apply; None means unconstrained."""

    actions: frozenset[str] | None = None
    principal_types: frozenset[str] | None = None
    principal_eq: str | None = None
    principal_in: tuple[str, ...] = ()  # each must be the principal or one of its groups
    principal_name: str | None = None
    resource_types: frozenset[str] | None = None
    resource_eq: str | None = None  # resource == / in E (resources have no parents)
    k8s_resources: frozenset[str] | None = None
    api_groups: frozenset[str] | None = None
    namespaces: frozenset[str] | None = None  # resource.namespace, after `resource has namespace`

    def admits(self, r: CedarRequest, resource_key: str) -> bool:
        principal_key = ekey(r.principal)
        if self.principal_types is not None and r.principal_type not in self.principal_types:
            return False
        if self.principal_eq is not None and self.principal_eq != principal_key:
            return False
        for e in self.principal_in:
            if e != principal_key and not (e.startswith('k8s::Group::"') and e[13:-1] in r.groups):
                return False
        if self.principal_name is not None and r.principal_name != self.principal_name:
            return False
        if self.resource_types is not None and r.resource_type not in self.resource_types:
            return False
        if self.resource_eq is not None and self.resource_eq != resource_key:
            # resources have no parents, except when an impersonation target is the principal itself
            e = self.resource_eq
            in_groups = (
                resource_key == principal_key and e.startswith('k8s::Group::"') and e[13:-1] in r.groups
            )
            if not in_groups:
                return False
        if self.k8s_resources is not None and r.k8s_resource not in self.k8s_resources:
            return False
        if self.namespaces is not None and r.namespace not in self.namespaces:
            return False
        return self.api_groups is None or r.api_group in self.api_groups

    # admits() split in two, so a slice's principal-independent part is shared by every principal:
    # admits(r, k) == resource_part(r, k) is not False and principal_part(r, ekey(r.principal), k, ...)

    def resource_part(self, r: CedarRequest, resource_key: str) -> bool | None:
        """False: cannot apply to this resource and action. True: the resource constraints hold.
        None: they hold except resource_eq, which an impersonation target may still meet through the
        principal's groups (principal_part decides)."""
        if self.resource_types is not None and r.resource_type not in self.resource_types:
            return False
        if self.k8s_resources is not None and r.k8s_resource not in self.k8s_resources:
            return False
        if self.namespaces is not None and r.namespace not in self.namespaces:
            return False
        if self.api_groups is not None and r.api_group not in self.api_groups:
            return False
        return True if self.resource_eq is None or self.resource_eq == resource_key else None

    def principal_part(
        self, r: CedarRequest, principal_key: str, resource_key: str, eq_pending: bool
    ) -> bool:
        if self.principal_types is not None and r.principal_type not in self.principal_types:
            return False
        if self.principal_eq is not None and self.principal_eq != principal_key:
            return False
        for e in self.principal_in:
            if e != principal_key and not (e.startswith('k8s::Group::"') and e[13:-1] in r.groups):
                return False
        if self.principal_name is not None and r.principal_name != self.principal_name:
            return False
        if eq_pending:
            e = self.resource_eq or ""
            return resource_key == principal_key and e.startswith('k8s::Group::"') and e[13:-1] in r.groups
        return True


def _entity(v: Any) -> str | None:
    if isinstance(v, dict) and "type" in v and "id" in v:
        return ekey(v)
    if isinstance(v, dict) and "__entity" in v:
        return ekey(v["__entity"])
    return None


def _lit(expr: Any) -> Any:
    if isinstance(expr, dict) and "Value" in expr:
        return expr["Value"]
    return None


def _attr(expr: Any, var: str) -> str | None:
    if isinstance(expr, dict) and "." in expr:
        inner = expr["."]
        if inner.get("left") == {"Var": var}:
            return inner.get("attr")
    return None


def _str_set(expr: Any) -> frozenset[str] | None:
    if isinstance(expr, dict) and isinstance(expr.get("Set"), list):
        vals = [_lit(x) for x in expr["Set"]]
        if all(isinstance(v, str) for v in vals):
            return frozenset(vals)
    return None


def _conjuncts(expr: Any) -> list[Any]:
    if isinstance(expr, dict) and "&&" in expr:
        return _conjuncts(expr["&&"]["left"]) + _conjuncts(expr["&&"]["right"])
    return [expr]


def constraints_of(est: dict[str, Any]) -> Constraints:
    c: dict[str, Any] = {"principal_in": []}
    p = est.get("principal") or {}
    if p.get("op") == "==":
        c["principal_eq"] = _entity(p.get("entity"))
    elif p.get("op") == "in":
        c["principal_in"].append(_entity(p.get("entity")))
    elif p.get("op") == "is":
        c["principal_types"] = frozenset([p["entity_type"]])
        if isinstance(p.get("in"), dict):
            c["principal_in"].append(_entity(p["in"].get("entity")))
    a = est.get("action") or {}
    if a.get("op") == "==":
        c["actions"] = frozenset([_entity(a["entity"])])
    elif a.get("op") == "in":
        targets = {_entity(e) for e in (a.get("entities") or [a.get("entity")])}
        c["actions"] = frozenset(
            [t for t in targets if t]
            + [child for child, parents in ACTION_PARENTS.items() if targets & set(parents)]
        )
    r = est.get("resource") or {}
    resource_types: frozenset[str] | None = None
    if r.get("op") in ("==", "in") and not r.get("entities"):
        c["resource_eq"] = _entity(r.get("entity"))
    elif r.get("op") == "is":
        resource_types = frozenset([r["entity_type"]])
        if isinstance(r.get("in"), dict):
            c["resource_eq"] = _entity(r["in"].get("entity"))
    conds = est.get("conditions") or []
    if conds and conds[0].get("kind") == "when":
        for conj in _conjuncts(conds[0].get("body")):
            if not _absorb(conj, c, resource_types):
                break
            if "is_resource_type" in c:
                t = c.pop("is_resource_type")
                resource_types = frozenset([t]) if resource_types is None else resource_types & {t}
    c["resource_types"] = resource_types
    c.pop("resource_has", None)
    c["principal_in"] = tuple(x for x in c["principal_in"] if x)
    return Constraints(**c)


def _absorb(conj: Any, c: dict[str, Any], resource_types: frozenset[str] | None) -> bool:
    """Record what a conjunct requires; False when it is not a recognised error-free test (stop)."""
    if not isinstance(conj, dict) or len(conj) != 1:
        return False
    ((op, body),) = conj.items()
    is_k8s_resource = resource_types == frozenset(["k8s::Resource"])
    if op == "is" and body.get("left") in ({"Var": "principal"}, {"Var": "resource"}) and "in" not in body:
        if body["left"] == {"Var": "principal"}:
            t = frozenset([body["entity_type"]])
            prev = c.get("principal_types")
            c["principal_types"] = t if prev is None else prev & t
        else:
            c["is_resource_type"] = body["entity_type"]
        return True
    if op == "has" and body.get("left") in ({"Var": "principal"}, {"Var": "resource"}):
        if body["left"] == {"Var": "resource"}:
            c.setdefault("resource_has", set()).add(body.get("attr"))
        return True
    if op == "in" and body.get("left") == {"Var": "principal"}:
        e = _entity(_lit(body.get("right")))
        if e is None:
            return False
        c["principal_in"].append(e)
        return True
    if op == "==":
        left, right = body.get("left"), body.get("right")
        for attr_side, lit_side in ((left, right), (right, left)):
            value = _lit(lit_side)
            if not isinstance(value, str):
                continue
            if _attr(attr_side, "principal") == "name":
                if c.get("principal_name") not in (None, value):
                    c["principal_name"] = "\0impossible"
                else:
                    c["principal_name"] = value
                return True
            if _attr(attr_side, "principal") == "namespace" and c.get("principal_types") == frozenset(
                ["k8s::ServiceAccount"]
            ):
                return True  # always present on a ServiceAccount: safe to read past, not indexed
            if (
                is_k8s_resource
                and _attr(attr_side, "resource") == "namespace"
                and "namespace" in c.get("resource_has", ())
            ):
                prev = c.get("namespaces")
                c["namespaces"] = frozenset([value]) if prev is None else prev & {value}
                return True
            if is_k8s_resource and _attr(attr_side, "resource") in ("resource", "apiGroup"):
                key = "k8s_resources" if _attr(attr_side, "resource") == "resource" else "api_groups"
                prev = c.get(key)
                c[key] = frozenset([value]) if prev is None else prev & {value}
                return True
        return False
    if op == "contains" and is_k8s_resource:
        values = _str_set(body.get("left"))
        a = _attr(body.get("right"), "resource")
        if values is not None and a in ("resource", "apiGroup"):
            key = "k8s_resources" if a == "resource" else "api_groups"
            prev = c.get(key)
            c[key] = values if prev is None else prev & values
            return True
    return False


class SliceIndex:
    """Candidate policies per request, with memoised slices.

    Policies are bucketed by (action, Kubernetes resource) with None as the wildcard bucket; the
    remaining constraints are checked per candidate. A request's slice (the tuple of policy ids) is
    memoised on the request's shape, and the parsed PolicySet on the slice, both in bounded caches.
    """

    def __init__(self, items: Iterable[tuple[str, Constraints]], cache_size: int = 8192) -> None:
        self.constraints: dict[str, Constraints] = {}
        self._buckets: dict[tuple[str | None, str | None], list[str]] = {}
        self._uses_resource_entity = False
        for pid, cons in items:
            self.constraints[pid] = cons
            actions = cons.actions if cons.actions is not None else [None]
            resources = cons.k8s_resources if cons.k8s_resources is not None else [None]
            for a in actions:
                for res in resources:
                    self._buckets.setdefault((a, res), []).append(pid)
            self._uses_resource_entity |= cons.resource_eq is not None
        self.order = {pid: i for i, pid in enumerate(self.constraints)}
        self._memo: OrderedDict[tuple[Any, ...], tuple[str, ...]] = OrderedDict()
        self._rmemo: OrderedDict[tuple[Any, ...], tuple[tuple[str, Constraints | None, bool], ...]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        self._cache_size = cache_size

    def shape(self, r: CedarRequest) -> tuple[Any, ...]:
        return (
            r.principal_type,
            r.principal["id"],
            r.principal_name,
            r.groups,
            r.action["id"],
            r.action["type"],
            r.resource_type,
            r.k8s_resource,
            r.api_group,
            r.namespace,
            ekey(r.resource) if self._uses_resource_entity else None,
        )

    def slice(self, r: CedarRequest) -> tuple[str, ...]:
        key = self.shape(r)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        resource_key = ekey(r.resource)
        # the candidates for this action and resource, whoever asks: shared by every principal, so
        # a principal never seen before costs a filter over them, not a walk over the buckets
        rkey = key[4:]  # shape() minus the principal's four fields (the resource key is in it when
        # some policy names a resource entity: only resource_eq reads it)
        cands = self._rmemo.get(rkey)
        if cands is None:
            cands = self._candidates(r, resource_key)
            with self._lock:
                self._rmemo[rkey] = cands
                if len(self._rmemo) > self._cache_size:
                    self._rmemo.popitem(last=False)
        principal_key = ekey(r.principal)
        result = tuple(
            pid
            for pid, cons, eq_pending in cands
            if cons is None or cons.principal_part(r, principal_key, resource_key, eq_pending)
        )
        with self._lock:  # server threads share the index; reads above need no lock
            self._memo[key] = result
            if len(self._memo) > self._cache_size:
                self._memo.popitem(last=False)  # oldest first: a FIFO bound is enough here
        return result

    def _candidates(
        self, r: CedarRequest, resource_key: str
    ) -> tuple[tuple[str, Constraints | None, bool], ...]:
        """(policy id, its constraints or None when nothing about the principal is left to check,
        whether resource_eq is still open) of the policies whose resource constraints hold, in
        policy order."""
        action = ekey(r.action)
        seen: set[str] = set()
        out: list[str] = []
        for bucket in ((action, r.k8s_resource), (action, None), (None, r.k8s_resource), (None, None)):
            for pid in self._buckets.get(bucket, ()):
                if pid not in seen and self.constraints[pid].resource_part(r, resource_key) is not False:
                    seen.add(pid)
                    out.append(pid)
        out.sort(key=self.order.__getitem__)
        res = []
        for pid in out:
            c = self.constraints[pid]
            pending = c.resource_part(r, resource_key) is None
            free = (
                not pending
                and c.principal_types is None
                and c.principal_eq is None
                and not c.principal_in
                and c.principal_name is None
            )
            res.append((pid, None if free else c, pending))
        return tuple(res)
