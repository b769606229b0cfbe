"""Cedar authorization and admission for Kubernetes.

Public API (what the server and CLI use):

- ``PolicyStore(tiers)``: ``.load()`` (raises ``PolicyLoadError``, keeps the previous set),
  ``.reload_if_changed()``, ``.snapshot``, ``.ready``, counters ``.reloads``/``.rejections``;
  ``PolicyStore.from_text(cedar)`` for one in-memory tier.
- ``Authorizer(store).review(sar) -> dict``: SubjectAccessReview v1/v1beta1 in, response out;
  ``.decide(sar) -> Verdict``; ``.stats`` (allowed/denied/no_opinion/evaluation_errors).
- ``AdmissionPolicyEvaluator(store).evaluate(request) -> AdmissionDecision(allowed, denials, errors)``;
  ``admission_response(review, evaluator)`` builds the full AdmissionReview response.
- ``InvalidReview``: malformed input (the server answers 400).
- ``SCHEMA_TEXT`` / ``schema()``: kubestrata's Cedar schema for Kubernetes.
- ``convert_rbac(objects) -> RbacConversion``: RBAC Roles/ClusterRoles and bindings as Cedar permits.
"""

from kubestrata.authz.admission import AdmissionDecision, AdmissionPolicyEvaluator, admission_response
from kubestrata.authz.authorizer import Authorizer, AuthzStats, Verdict
from kubestrata.authz.entities import InvalidReview
from kubestrata.authz.schema import SCHEMA_TEXT, schema
from kubestrata.authz.store import PolicyInfo, PolicyLoadError, PolicySnapshot, PolicySource, PolicyStore

__all__ = [
    "SCHEMA_TEXT",
    "AdmissionDecision",
    "AdmissionPolicyEvaluator",
    "Authorizer",
    "AuthzStats",
    "InvalidReview",
    "PolicyInfo",
    "PolicyLoadError",
    "PolicySnapshot",
    "PolicySource",
    "PolicyStore",
    "Verdict",
    "admission_response",
    "schema",
]
