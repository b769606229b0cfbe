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


def _over(value: Any, limit: int) -> bool:
    return isinstance(value, str) and len(value) > limit


def _user_fields(user: Any, groups: Any, extra: Any, uid: Any, lim: Any, where: str) -> str | None:
    if _over(user, lim.user):
        return f"{where}user is over {lim.user} characters"
    if _over(uid, lim.user):
        return f"{where}uid is over {lim.user} characters"
    if isinstance(groups, list):
        if len(groups) > lim.groups:
            return f"{where}groups has more than {lim.groups} entries"
        if any(_over(g, lim.user) for g in groups):
            return f"{where}groups has a group name over {lim.user} characters"
    if isinstance(extra, dict):
        if len(extra) > lim.extra_keys:
            return f"{where}extra has more than {lim.extra_keys} keys"
        for k, vs in extra.items():
            if _over(k, lim.extra_value):
                return f"{where}extra has a key over {lim.extra_value} characters"
            if isinstance(vs, list):
                if len(vs) > lim.extra_values:
                    return f"{where}extra has a key with more than {lim.extra_values} values"
                if any(_over(v, lim.extra_value) for v in vs):
                    return f"{where}extra has a value over {lim.extra_value} characters"
    return None


def _selector(sel: Any, lim: Any, where: str) -> str | None:
    if not isinstance(sel, dict):
        return None
    if _over(sel.get("rawSelector"), lim.label):
        return f"{where}.rawSelector is over {lim.label} characters"
    reqs = sel.get("requirements")
    if isinstance(reqs, list):
        if len(reqs) > lim.selector_requirements:
            return f"{where}.requirements has more than {lim.selector_requirements} entries"
        for r in reqs:
            if not isinstance(r, dict):
                continue
            if _over(r.get("key"), lim.label):
                return f"{where} has a key over {lim.label} characters"
            vals = r.get("values")
            if isinstance(vals, list):
                if len(vals) > lim.selector_requirements:
                    return f"{where} has a requirement with more than {lim.selector_requirements} values"
                if any(_over(v, lim.label) for v in vals):
                    return f"{where} has a value over {lim.label} characters"
    return None


def oversized_sar_field(doc: dict[str, Any], lim: Any) -> str | None:
    """The first field of a checked review over its limit (``limits.fields``), described without its
    value, or None. Kubernetes' own limits are far smaller; an oversized field is an attack or a bug."""
    spec = doc["spec"]
    groups = spec.get("groups") if doc["apiVersion"].endswith("/v1") else spec.get("group")
    msg = _user_fields(spec.get("user"), groups, spec.get("extra"), spec.get("uid"), lim, "spec.")
    if msg:
        return msg
    for name in ("resourceAttributes", "nonResourceAttributes"):
        attrs = spec.get(name)
        if not isinstance(attrs, dict):
            continue
        for k, v in attrs.items():
            if k in ("labelSelector", "fieldSelector"):
                msg = _selector(v, lim, f"spec.{name}.{k}")
                if msg:
                    return msg
            elif _over(v, lim.name):
                return f"spec.{name}.{k} is over {lim.name} characters"
    return None


def oversized_admission_field(req: Any, lim: Any) -> str | None:
    """As ``oversized_sar_field`` for a parsed AdmissionRequest: userInfo, names, the object's labels."""
    u = req.user
    msg = _user_fields(
        u.name, list(u.groups), {k: list(vs) for k, vs in u.extra}, u.uid, lim, "request.userInfo."
    )
    if msg:
        return msg
    for key, v in (("name", req.name), ("namespace", req.namespace), ("subResource", req.sub_resource)):
        if _over(v, lim.name):
            return f"request.{key} is over {lim.name} characters"
    for which, obj in (("object", req.object), ("oldObject", req.old_object)):
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if not isinstance(meta, dict):
            continue
        for key in ("name", "namespace", "generateName"):
            if _over(meta.get(key), lim.name):
                return f"request.{which}.metadata.{key} is over {lim.name} characters"
        labels = meta.get("labels")
        if isinstance(labels, dict):
            if len(labels) > lim.selector_requirements * 4:
                return f"request.{which}.metadata.labels has more than {lim.selector_requirements * 4} labels"
            for k, v in labels.items():
                if _over(k, lim.label) or _over(v, lim.label):
                    return f"request.{which}.metadata.labels has a key or value over {lim.label} characters"
    return None
