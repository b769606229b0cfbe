"""SubjectAccessReview envelopes: checked before the authorizer sees them, so a malformed review is a
400 naming the field, never a guess (a guessed review could be cached by the API server)."""

from __future__ import annotations

from typing import Any

from kubestrata.admission.review import ReviewError

SAR_VERSIONS = ("authorization.k8s.io/v1", "authorization.k8s.io/v1beta1")


def _strs(v: Any, where: str) -> None:
    if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
        raise ReviewError(f"{where} must be a list of strings")


def check_sar(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ReviewError("a SubjectAccessReview must be a JSON object")
    if doc.get("kind") != "SubjectAccessReview":
        raise ReviewError(f"kind must be SubjectAccessReview, got {doc.get('kind')!r}"[:120])
    if doc.get("apiVersion") not in SAR_VERSIONS:
        raise ReviewError(
            f"apiVersion must be one of {', '.join(SAR_VERSIONS)}, got {doc.get('apiVersion')!r}"[:160]
        )
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise ReviewError("spec is required and must be an object")
    for k in ("user", "uid"):
        if spec.get(k) is not None and not isinstance(spec[k], str):
            raise ReviewError(f"spec.{k} must be a string")
    groups_key = "groups" if doc["apiVersion"].endswith("/v1") else "group"
    _strs(spec.get(groups_key), f"spec.{groups_key}")
    extra = spec.get("extra")
    if extra is not None:
        if not isinstance(extra, dict):
            raise ReviewError("spec.extra must be an object of string lists")
        for k, v in extra.items():
            _strs(v, f"spec.extra[{k[:40]!r}]")
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (ra is None) == (nra is None):
        raise ReviewError("spec needs exactly one of resourceAttributes and nonResourceAttributes")
    attrs, name = (ra, "resourceAttributes") if ra is not None else (nra, "nonResourceAttributes")
    if not isinstance(attrs, dict):
        raise ReviewError(f"spec.{name} must be an object")
    for k, v in attrs.items():
        if k in ("labelSelector", "fieldSelector"):
            if v is not None and not isinstance(v, dict):
                raise ReviewError(f"spec.{name}.{k} must be an object")
        elif v is not None and not isinstance(v, str):
            raise ReviewError(f"spec.{name}.{k} must be a string")
    if not attrs.get("verb"):
        raise ReviewError(f"spec.{name}.verb is required")
    return doc


def sar_response(doc: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """The reply the API server reads: the review echoed with ``status`` set (same apiVersion)."""
    return {"apiVersion": doc["apiVersion"], "kind": "SubjectAccessReview", "status": status}


def outcome_of(status: dict[str, Any]) -> str:
    if status.get("evaluationError"):
        return "error"
    if status.get("denied"):
        return "denied"
    if status.get("allowed"):
        return "allowed"
    return "no_opinion"
