"""Cedar admission forbids over AdmissionReview requests.

Admission is allow-by-default: policies see ``k8s::admission::Action::"create"|"update"|"delete"|
"connect"`` (each a child of ``Action::"all"``, so ``action in k8s::admission::Action::"all"`` works),
the principal from ``userInfo`` and the object (``oldObject`` for DELETE) as an entity of type
``<group>::<version>::<Kind>`` whose string maps are ``{key, value}`` sets; on UPDATE the old object is
a second entity reachable as ``resource.oldObject``. Only satisfied forbids deny. A forbid that errors
denies too (fail closed, with the error named): an erroring forbid must never fail open.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from kubestrata.authz.authorizer import erroring_policies, request_entities
from kubestrata.authz.entities import InvalidReview, admission_to_request
from kubestrata.authz.store import PolicyStore


@dataclass
class AdmissionDecision:
    allowed: bool
    denials: list[tuple[str, str]] = field(default_factory=list)  # (policy id, message)
    errors: list[str] = field(default_factory=list)

    def message(self) -> str:
        return "; ".join(f"{pid}: {msg}" for pid, msg in self.denials)


@dataclass
class AdmissionStats:
    allowed: int = 0
    denied: int = 0
    evaluation_errors: int = 0


class AdmissionPolicyEvaluator:
    """``AdmissionPolicyEvaluator(store).evaluate(request)`` for an AdmissionReview's ``request``.
    Raises InvalidReview for a malformed request."""

    def __init__(self, store: PolicyStore, *, sliced: bool = True) -> None:
        self.store = store
        self.sliced = sliced
        self.stats = AdmissionStats()
        self._lock = threading.Lock()

    def evaluate(self, admission_request: Any) -> AdmissionDecision:
        req = admission_to_request(admission_request)
        snap = self.store.snapshot
        decision = AdmissionDecision(True)
        if snap is not None:
            ents = None
            for tier in snap.tiers:
                if self.sliced and not tier.index.slice(req):
                    continue
                try:
                    if ents is None:
                        ents = request_entities(req)
                    res = tier.evaluate(req, ents, sliced=self.sliced)
                except ValueError as e:  # Cedar could not take the request: no forbid was evaluated
                    decision.errors.append(f"Cedar evaluation failed: {e}")
                    decision.denials.append(("cedar", "the object could not be evaluated (fail closed)"))
                    break
                if res.errors:
                    decision.errors += list(res.errors)
                    erroring, complete = erroring_policies(snap, res.errors)
                    for p in erroring:
                        if p.effect == "forbid":
                            decision.denials.append(
                                (p.describe(), "policy could not be evaluated (fail closed)")
                            )
                    if not complete:
                        decision.denials.append(
                            ("cedar", "an error could not be attributed to a policy (fail closed)")
                        )
                if res.decision == "Deny" and res.reasons:
                    for pid in res.reasons:
                        info = snap.policy(pid)
                        name = info.describe() if info else pid
                        msg = (
                            (info.annotations.get("message") or info.annotations.get("reason"))
                            if info
                            else None
                        )
                        decision.denials.append((name, msg or "forbidden by Cedar policy " + name))
                if res.reasons or res.errors or res.decision == "NoDecision":
                    break  # the first tier with an explicit decision decides
            decision.allowed = not decision.denials
        with self._lock:
            if decision.allowed:
                self.stats.allowed += 1
            else:
                self.stats.denied += 1
            if decision.errors:
                self.stats.evaluation_errors += 1
        return decision


def admission_response(review: Any, evaluator: AdmissionPolicyEvaluator) -> dict[str, Any]:
    """The AdmissionReview response the validating webhook sends for ``review`` (Cedar part only)."""
    if not isinstance(review, dict) or review.get("kind") != "AdmissionReview":
        raise InvalidReview("kind must be AdmissionReview")
    if review.get("apiVersion") not in ("admission.k8s.io/v1", "admission.k8s.io/v1beta1"):
        raise InvalidReview(f"apiVersion must be admission.k8s.io/v1, got {review.get('apiVersion')!r}")
    req = review.get("request")
    if not isinstance(req, dict) or not isinstance(req.get("uid"), str) or not req.get("uid"):
        raise InvalidReview("request.uid is required")
    d = evaluator.evaluate(req)
    resp: dict[str, Any] = {"uid": req["uid"], "allowed": d.allowed}
    if not d.allowed:
        resp["status"] = {"code": 403, "reason": "Forbidden", "message": "denied by " + d.message()}
    return {"apiVersion": review["apiVersion"], "kind": "AdmissionReview", "response": resp}
