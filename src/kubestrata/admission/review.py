"""AdmissionReview v1: the request as the API server sends it, checked field by field, and the
response envelope. A malformed review is a `ReviewError` (the server answers 400 with its message)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubestrata.rbac import UserInfo  # authentication.k8s.io UserInfo, as RBAC evaluates it
from kubestrata.textsafe import printable

ADMISSION_API_VERSION = "admission.k8s.io/v1"
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})

# What the API server does with warnings: each becomes a "Warning: 299" header; over 256 characters
# may be truncated and past 4 KiB in total they are dropped. Keep ours short and bounded.
WARNING_MAX = 256
WARNINGS_TOTAL_MAX = 4000


class ReviewError(ValueError):
    """A review the server cannot evaluate; the message names the field."""


def _want(
    d: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str, required: bool = False
) -> Any:
    v = d.get(key)
    if v is None:
        if required:
            raise ReviewError(f"{where}.{key} is required")
        return None
    if not isinstance(v, typ):
        names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise ReviewError(f"{where}.{key} must be {_article(names)}, got {type(v).__name__}")
    return v


def _article(name: str) -> str:
    return {"dict": "an object", "list": "a list", "str": "a string", "bool": "a boolean"}.get(name, name)


@dataclass(slots=True)
class AdmissionRequest:
    """The fields handlers use, validated; ``raw`` is the request object as received."""

    raw: dict[str, Any]
    uid: str
    operation: str
    kind: dict[str, str]
    resource: dict[str, str]
    sub_resource: str
    name: str
    namespace: str
    user: UserInfo
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    dry_run: bool
    options: dict[str, Any] | None = field(default=None)

    @property
    def gvk(self) -> str:
        g = self.kind.get("group", "")
        return f"{g + '/' if g else ''}{self.kind.get('version', '')}/{self.kind.get('kind', '')}"


def parse_admission_review(doc: Any) -> AdmissionRequest:
    if not isinstance(doc, dict):
        raise ReviewError("an AdmissionReview must be a JSON object")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if kind != "AdmissionReview":
        raise ReviewError(f"kind must be AdmissionReview, got {_show(kind)}")
    if api_version != ADMISSION_API_VERSION:
        raise ReviewError(
            f"apiVersion must be {ADMISSION_API_VERSION}, got {_show(api_version)} "
            "(set admissionReviewVersions: [v1] in the webhook configuration)"
        )
    req = _want(doc, "request", dict, "AdmissionReview", required=True)
    w = "request"
    uid = _want(req, "uid", str, w, required=True)
    if not uid:
        raise ReviewError("request.uid must not be empty")
    op = _want(req, "operation", str, w, required=True)
    if op not in OPERATIONS:
        raise ReviewError(
            f"request.operation must be one of {', '.join(sorted(OPERATIONS))}, got {_show(op)}"
        )
    gvk = _want(req, "kind", dict, w, required=True)
    for k in ("group", "version", "kind"):
        if not isinstance(gvk.get(k, ""), str):
            raise ReviewError(f"request.kind.{k} must be a string")
    if not gvk.get("kind"):
        raise ReviewError("request.kind.kind is required")
    resource = _want(req, "resource", dict, w) or {}
    ui = _want(req, "userInfo", dict, w) or {}
    groups = _want(ui, "groups", list, "request.userInfo") or []
    if not all(isinstance(g, str) for g in groups):
        raise ReviewError("request.userInfo.groups must be a list of strings")
    extra = _want(ui, "extra", dict, "request.userInfo") or {}
    for k, v in extra.items():
        if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            raise ReviewError(f"request.userInfo.extra[{_show(k)}] must be a list of strings")
    obj = _want(req, "object", dict, w)
    old = _want(req, "oldObject", dict, w)
    if op in ("CREATE", "UPDATE") and obj is None:
        raise ReviewError(f"request.object is required for {op}")
    if op == "UPDATE" and old is None:
        raise ReviewError("request.oldObject is required for UPDATE")
    dry = req.get("dryRun", False)
    if dry is None:
        dry = False
    if not isinstance(dry, bool):
        raise ReviewError("request.dryRun must be a boolean")
    return AdmissionRequest(
        raw=req,
        uid=uid,
        operation=op,
        kind={k: str(gvk.get(k) or "") for k in ("group", "version", "kind")},
        resource={k: str(resource.get(k) or "") for k in ("group", "version", "resource")},
        sub_resource=str(_want(req, "subResource", str, w) or ""),
        name=str(_want(req, "name", str, w) or ""),
        namespace=str(_want(req, "namespace", str, w) or ""),
        user=UserInfo(
            name=str(_want(ui, "username", str, "request.userInfo") or ""),
            uid=str(_want(ui, "uid", str, "request.userInfo") or ""),
            groups=tuple(groups),
            extra=tuple((k, tuple(v)) for k, v in extra.items()),
        ),
        object=obj,
        old_object=old,
        dry_run=dry,
        options=_want(req, "options", dict, w),
    )


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def clean_warning(text: str) -> str:
    """One warning as the API server will relay it: printable, bounded."""
    # names inside warnings come from the object: control, C1 and bidi code points made visible
    text = printable(text)
    return text if len(text) <= WARNING_MAX else text[: WARNING_MAX - 3] + "..."


def bound_warnings(warnings: list[str]) -> list[str]:
    out: list[str] = []
    total = 0
    for w in dict.fromkeys(clean_warning(w) for w in warnings):  # de-duplicated, order kept
        if total + len(w) > WARNINGS_TOTAL_MAX:
            out.append(f"{len(warnings) - len(out)} more warnings omitted")
            break
        out.append(w)
        total += len(w)
    return out


def admission_response(
    uid: str,
    *,
    allowed: bool,
    message: str | None = None,
    code: int = 403,
    warnings: list[str] | None = None,
    audit_annotations: dict[str, str] | None = None,
    patch: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    resp: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        resp["status"] = {"code": code, "reason": "Forbidden", "message": message or "denied"}
    elif message:
        resp["status"] = {"code": 200, "message": message}
    if warnings:
        resp["warnings"] = bound_warnings(warnings)
    if audit_annotations:
        resp["auditAnnotations"] = audit_annotations
    if patch:
        resp["patchType"] = "JSONPatch"
        resp["patch"] = base64.b64encode(orjson.dumps(patch)).decode()
    return {"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": resp}
