"""The Cedar authorization decision for SubjectAccessReviews.

Decision mapping (issue 4, reference/cedar-k8s.md §1.2 and §6):

- Cedar Allow => ``allowed: true``, reason naming the permitting policies;
- Deny with a determining forbid => ``denied: true``, reason naming each forbid (stable id plus @id);
- nothing matched => no opinion (``allowed: false``, no ``denied``): the next authorizer decides;
- evaluation errors => no opinion with ``evaluationError`` (and ``stats.evaluation_errors``); an Allow
  reached while a *forbid* errored is also turned into no opinion, so an erroring forbid never fails
  open;
- ``system:`` users other than service accounts and nodes => no opinion, as do reviews arriving before
  policies are loaded.

Tiers: the first tier with an explicit decision (a satisfied policy or an error) decides.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

import cedarpy
import orjson

from kubestrata.authz.entities import CedarRequest, InvalidReview, is_opinionless_system_user, sar_to_request
from kubestrata.authz.store import EvalResult, PolicyInfo, PolicySnapshot, PolicyStore


@dataclass
class AuthzStats:
    """Counters the server exports as metrics."""

    allowed: int = 0
    denied: int = 0
    no_opinion: int = 0
    evaluation_errors: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """One decision: ``outcome`` is "allowed", "denied" or "no_opinion"."""

    outcome: str
    reason: str = ""
    evaluation_error: str = ""
    policies: tuple[str, ...] = ()

    def status(self) -> dict[str, Any]:
        st: dict[str, Any] = {"allowed": self.outcome == "allowed"}
        if self.outcome == "denied":
            st["denied"] = True
        if self.reason:
            st["reason"] = self.reason
        if self.evaluation_error:
            st["evaluationError"] = self.evaluation_error
        return st


def entities_json(req: CedarRequest) -> str:
    return orjson.dumps(req.entities).decode()


@functools.lru_cache(maxsize=4096)
def _principal_handle(principal_json: str) -> cedarpy.Entities:
    return cedarpy.Entities.from_json_str(principal_json)


def request_entities(req: CedarRequest) -> cedarpy.Entities:
    """The request's entities as a cedarpy handle: the principal's parsed handle is reused across
    requests (the same users and service accounts ask again and again) and only the rest is parsed."""
    base = _principal_handle(orjson.dumps([req.entities[0]]).decode())
    if len(req.entities) == 1:
        return base
    return base.with_added_json_str(orjson.dumps(req.entities[1:]).decode())


def _describe(snap: PolicySnapshot, ids: tuple[str, ...]) -> str:
    return ", ".join((p.describe() if (p := snap.policy(i)) else i) for i in ids)


def tier_decision(
    snap: PolicySnapshot, req: CedarRequest, *, sliced: bool = True
) -> tuple[EvalResult | None, int]:
    """The first tier's explicit result (or None when no tier matched) and that tier's index."""
    ents = None
    for i, tier in enumerate(snap.tiers):
        if sliced and not tier.index.slice(req):
            continue  # nothing in this tier can apply: skip building entities and calling Cedar
        if ents is None:
            ents = request_entities(req)
        res = tier.evaluate(req, ents, sliced=sliced)
        if res.reasons or res.errors or res.decision == "NoDecision":
            return res, i
    return None, -1


class Authorizer:
    """``Authorizer(store).review(sar)`` returns the SubjectAccessReview the webhook answers with.

    ``system_users_no_opinion=False`` evaluates system users too (used by the RBAC-equivalence proof,
    where the converted policies, not the webhook's gate, are under test). ``sliced=False`` evaluates
    the whole policy set (the benchmark's control and the slicing-equivalence test).
    ``deny_on_error=True`` answers ``denied`` (naming the forbid) instead of no opinion when a forbid,
    or an error that cannot be attributed, failed to evaluate: the forbid fails closed, at the price
    of denying every request it could match until it is fixed.
    """

    def __init__(
        self,
        store: PolicyStore,
        *,
        system_users_no_opinion: bool = True,
        sliced: bool = True,
        deny_on_error: bool = False,
    ) -> None:
        self.store = store
        self.deny_on_error = deny_on_error
        self.system_users_no_opinion = system_users_no_opinion
        self.sliced = sliced
        self.stats = AuthzStats()
        self._lock = threading.Lock()

    def review(self, sar: Any) -> dict[str, Any]:
        """SubjectAccessReview (v1 or v1beta1) in, the response SubjectAccessReview out.
        Raises InvalidReview for a malformed review (the server answers 400)."""
        verdict = self.decide(sar)
        return {"apiVersion": sar["apiVersion"], "kind": "SubjectAccessReview", "status": verdict.status()}

    def decide(self, sar: Any) -> Verdict:
        req = sar_to_request(sar)
        verdict = self.decide_request(req)
        with self._lock:
            if verdict.outcome == "allowed":
                self.stats.allowed += 1
            elif verdict.outcome == "denied":
                self.stats.denied += 1
            else:
                self.stats.no_opinion += 1
            if verdict.evaluation_error:
                self.stats.evaluation_errors += 1
        return verdict

    def decide_request(self, req: CedarRequest) -> Verdict:
        if (
            self.system_users_no_opinion
            and req.principal["type"] == "k8s::User"
            and is_opinionless_system_user(req.principal["id"])
        ):
            return Verdict("no_opinion", "system users are left to the other authorizers")
        snap = self.store.snapshot
        if snap is None:
            return Verdict("no_opinion", evaluation_error="Cedar policies are not loaded yet")
        try:
            res, _tier = tier_decision(snap, req, sliced=self.sliced)
        except ValueError as e:  # cedarpy input errors: never an allow
            return Verdict("no_opinion", evaluation_error=f"Cedar evaluation failed: {e}")
        if res is None:
            return Verdict("no_opinion")
        err = "; ".join(res.errors)
        if res.errors and self.deny_on_error and not (res.decision == "Deny" and res.reasons):
            erroring, complete = erroring_policies(snap, res.errors)
            forbids = [p for p in erroring if p.effect == "forbid"]
            if forbids or not complete:
                named = _describe(snap, tuple(p.id for p in forbids)) if forbids else "(unattributed error)"
                return Verdict(
                    "denied",
                    f"denied: Cedar policy {named} could not be evaluated (deny_on_error)",
                    err,
                    tuple(p.id for p in forbids),
                )
        if res.decision == "Allow":
            # an Allow stands only if every error is a permit's: an erroring forbid, or an error we
            # cannot attribute, might have denied, and must never fail open
            erroring, complete = erroring_policies(snap, res.errors)
            if not complete or any(p.effect == "forbid" for p in erroring):
                return Verdict("no_opinion", evaluation_error=err)
            return Verdict(
                "allowed", "allowed by Cedar policy " + _describe(snap, res.reasons), err, res.reasons
            )
        if res.decision == "Deny" and res.reasons:
            return Verdict(
                "denied", "denied by Cedar policy " + _describe(snap, res.reasons), err, res.reasons
            )
        return Verdict("no_opinion", evaluation_error=err or "Cedar returned no decision")


ERROR_PREFIX = "error while evaluating policy `"


def erroring_policies(
    snap: PolicySnapshot, errors: tuple[str, ...] | list[str]
) -> tuple[list[PolicyInfo], bool]:
    """The policies cedarpy's error strings name ("error while evaluating policy `<id>`: ..."), and
    whether every error could be attributed. Ids may themselves contain backticks, so each backtick
    is tried as the end of the id against the snapshot's ids."""
    found: list[PolicyInfo] = []
    complete = True
    for e in errors:
        p = None
        if e.startswith(ERROR_PREFIX):
            rest = e[len(ERROR_PREFIX) :]
            k = rest.find("`")
            while k >= 0 and p is None:
                p = snap.policy(rest[:k])
                k = rest.find("`", k + 1)
        if p is None:
            complete = False
        else:
            found.append(p)
    return found, complete


__all__ = ["Authorizer", "AuthzStats", "InvalidReview", "Verdict", "erroring_policies"]
