"""Input shapes -> audit Event dicts: plain Events, EventLists, CloudWatch Logs subscription
payloads (base64 + gzip), AKS diagnostic records (``properties.log``) and GKE Cloud Audit Log
entries (``protoPayload``).

Every function here either returns event dicts or raises BadEvent / NotAudit; the caller counts
and moves on. Nothing here ever stops ingestion.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import orjson

from kubestrata.detect.event import BadEvent

MAX_WRAPPER_DEPTH = 3


class NotAudit(Exception):
    """A well-formed record that is not a Kubernetes audit event (e.g. a GCP compute audit entry,
    a CloudWatch CONTROL_MESSAGE). Counted as ignored, not as bad."""


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        # orjson rejects invalid UTF-8 with the same error class; say which it was.
        msg = str(e)
        if "utf-8" in msg.lower() or "surrogate" in msg.lower():
            raise BadEvent("invalid UTF-8") from None
        raise BadEvent(f"invalid JSON: {msg}"[:200]) from None


def iter_event_dicts(obj: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Unwrap any supported container shape into audit Event dicts (not yet validated)."""
    if type(obj) is not dict:
        raise BadEvent(f"expected a JSON object, got {type(obj).__name__}")
    if depth > MAX_WRAPPER_DEPTH:
        raise BadEvent("wrappers nested too deeply")
    kind = obj.get("kind")
    if kind == "EventList":
        items = obj.get("items")
        if items is None:
            return
        if type(items) is not list:
            raise BadEvent(f"expected a list, got {type(items).__name__}", "items")
        for item in items:
            yield from iter_event_dicts(item, depth + 1)
        return
    if "messageType" in obj and "logEvents" in obj:
        yield from _cloudwatch_dicts(obj, depth)
        return
    if kind is None and "protoPayload" in obj:
        yield gke_to_event(obj)
        return
    if kind is None and "properties" in obj and isinstance(obj.get("properties"), dict):
        yield from iter_event_dicts(aks_to_event(obj), depth + 1)
        return
    if kind is None and type(obj.get("records")) is list:
        for rec in obj["records"]:
            yield from iter_event_dicts(rec, depth + 1)
        return
    yield obj


# --- CloudWatch Logs -------------------------------------------------------------------------


def decode_cloudwatch_payload(data: bytes | str) -> dict[str, Any]:
    """A subscription-filter payload as delivered to Kinesis/Firehose/Lambda: base64 of gzip of
    JSON. Raw gzip and plain JSON are accepted too (Lambda's ``awslogs.data`` is base64)."""
    raw = data.encode() if isinstance(data, str) else data
    if raw[:2] != b"\x1f\x8b" and raw[:1] not in (b"{", b"["):
        try:
            raw = base64.b64decode(raw, validate=False)
        except (binascii.Error, ValueError):
            raise BadEvent("CloudWatch payload: invalid base64") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            raise BadEvent("CloudWatch payload: invalid gzip") from None
    obj = loads(raw)
    if type(obj) is not dict or "logEvents" not in obj:
        raise BadEvent("CloudWatch payload: no logEvents")
    return obj


def _cloudwatch_dicts(obj: dict[str, Any], depth: int) -> Iterator[dict[str, Any]]:
    if obj.get("messageType") == "CONTROL_MESSAGE":
        return
    events = obj.get("logEvents")
    if type(events) is not list:
        raise BadEvent("expected a list", "logEvents")
    for i, le in enumerate(events):
        msg = le.get("message") if type(le) is dict else None
        if type(msg) is not str:
            raise BadEvent("expected a string", f"logEvents[{i}].message")
        yield from iter_event_dicts(loads(msg), depth + 1)


# --- AKS -------------------------------------------------------------------------------------


def aks_to_event(obj: dict[str, Any]) -> dict[str, Any]:
    """Azure Monitor diagnostic record, category kube-audit / kube-audit-admin: the Event is the
    JSON string in ``properties.log``."""
    props = obj["properties"]
    log = props.get("log")
    if type(log) is str:
        inner = loads(log)
    elif type(log) is dict:
        inner = log
    else:
        raise NotAudit("Azure record without properties.log")
    if type(inner) is not dict:
        raise BadEvent("expected a JSON object", "properties.log")
    return inner


# --- GKE -------------------------------------------------------------------------------------

# google.rpc.Code -> HTTP status (googleapis google/rpc/code.proto comments)
_GRPC_TO_HTTP = {
    0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429,
    9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
}  # fmt: skip
_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"})


def gke_to_event(obj: dict[str, Any]) -> dict[str, Any]:
    """GKE Cloud Audit Log entry -> audit.k8s.io/v1 Event shape.

    methodName ``io.k8s.<group>.<version>.<resource>[.<subresource>].<verb>``; resourceName
    ``<group>/<version>[/namespaces/<ns>]/<resource>[/<name>[/<subresource>]]`` (group ``core``
    is the legacy ""), or a path for non-resource URLs. A missing ``status`` is proto3's default
    (code 0, OK).
    """
    pp = obj.get("protoPayload")
    if type(pp) is not dict:
        raise BadEvent("expected an object", "protoPayload")
    if pp.get("serviceName") != "k8s.io":
        raise NotAudit(f"GCP audit entry for {str(pp.get('serviceName'))[:60]!r}, not k8s.io")
    method = method_ if type(method_ := pp.get("methodName")) is str else ""
    mparts = method.split(".")
    verb = mparts[-1] if mparts and mparts[-1] in _VERBS else ""
    event: dict[str, Any] = {"apiVersion": "audit.k8s.io/v1", "kind": "Event", "level": "Request"}
    auth = auth_ if type(auth_ := pp.get("authenticationInfo")) is dict else {}
    if type(auth.get("principalEmail")) is str:
        event["user"] = {"username": auth["principalEmail"]}
    meta = meta_ if type(meta_ := pp.get("requestMetadata")) is dict else {}
    # Cloud Logging's JSON spells it callerIp (google.cloud.audit.RequestMetadata, field
    # caller_ip, lowerCamelCase in JSON); callerIP is accepted from older exports and normalisers
    caller_ip = meta.get("callerIp", meta.get("callerIP"))
    if type(caller_ip) is str:
        event["sourceIPs"] = [caller_ip]
    if type(meta.get("callerSuppliedUserAgent")) is str:
        event["userAgent"] = meta["callerSuppliedUserAgent"]
    status = pp.get("status")
    code = status.get("code", 0) if type(status) is dict else 0
    event["responseStatus"] = {"code": _GRPC_TO_HTTP.get(code, 500) if type(code) is int else 500}
    authz = pp.get("authorizationInfo")
    if type(authz) is list and authz:
        granted = all(type(a) is dict and a.get("granted") is True for a in authz)
        event["annotations"] = {"authorization.k8s.io/decision": "allow" if granted else "forbid"}
    # GKE copies the API server's audit annotations into the LogEntry's labels
    # (authorization.k8s.io/decision and /reason, pod-security.kubernetes.io/*, ...)
    labels = obj.get("labels")
    if type(labels) is dict:
        ann = {
            k: v
            for k, v in labels.items()
            if type(v) is str and k.partition("/")[0].endswith(("k8s.io", "kubernetes.io")) and "/" in k
        }
        if ann:
            event["annotations"] = {**event.get("annotations", {}), **ann}
    rname = rname_ if type(rname_ := pp.get("resourceName")) is str else ""
    ref: dict[str, str] = {}
    if rname and "/" not in rname and not method.startswith("io.k8s.core") and len(mparts) == 3:
        rname = "/" + rname  # a non-resource URL without its slash: resourceName "readyz", method io.k8s.get
    if rname and not rname.startswith("/"):
        parts = rname.split("/")
        if len(parts) >= 3:
            ref["apiGroup"] = "" if parts[0] == "core" else parts[0]
            ref["apiVersion"] = parts[1]
            rest = parts[2:]
            if rest[0] == "namespaces" and len(rest) >= 3:
                ref["namespace"] = rest[1]
                rest = rest[2:]
            ref["resource"] = rest[0]
            if len(rest) > 1:
                ref["name"] = rest[1]
            if len(rest) > 2:
                ref["subresource"] = rest[2]
    elif len(mparts) >= 6 and mparts[0] == "io" and mparts[1] == "k8s" and verb:
        # io.k8s.core.v1.pods.list: no resourceName for some cluster-wide calls
        ref["apiGroup"] = "" if mparts[2] == "core" else mparts[2]
        ref["apiVersion"] = mparts[3]
        ref["resource"] = mparts[4]
        if len(mparts) == 7:
            ref["subresource"] = mparts[5]
    if ref.get("resource"):
        event["objectRef"] = ref
        if len(mparts) == 7 and "subresource" not in ref:
            ref["subresource"] = mparts[5]
    uri = pp.get("requestURI")
    if type(uri) is str:
        event["requestURI"] = uri
    elif rname.startswith("/"):
        event["requestURI"] = rname
    elif not ref and method.startswith("io.k8s.") and len(mparts) == 3:
        event["requestURI"] = "/" + mparts[2]  # io.k8s.readyz
    event["verb"] = verb or ("get" if "requestURI" in event else "")
    if type(pp.get("request")) is dict:
        event["requestObject"] = {k: v for k, v in pp["request"].items() if k != "@type"}
    if type(pp.get("response")) is dict:
        event["responseObject"] = {k: v for k, v in pp["response"].items() if k != "@type"}
    op = obj.get("operation")
    if type(op) is dict and type(op.get("id")) is str:
        event["auditID"] = op["id"]
    if type(obj.get("timestamp")) is str:
        event["stageTimestamp"] = obj["timestamp"]
    return event
