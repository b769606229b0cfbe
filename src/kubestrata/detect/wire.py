"""The usual audit Event line read straight into an AuditEvent, without building its dict.

Nearly every line of an audit log is an Event without request or response objects (a read, most
writes at the Metadata level). Decoding such a line with orjson builds some thirty objects (the
event, user, objectRef, responseStatus and annotations dicts, their keys and strings) only to copy
a dozen strings out of them and free them again. Here msgspec decodes the line into the Event's
own schema (audit.k8s.io/v1 types.go, and metav1.Status for responseStatus), and the AuditEvent is
filled from that; its ``raw`` dict is decoded by orjson only if something reads it
(event.AuditEvent.__getattr__).

Exactness: ``read_event(line)`` returns either None (then the caller decodes the line with orjson,
as before) or the AuditEvent that ``AuditEvent(orjson.loads(line))`` would be. It returns an event
only when
- the line is ASCII: msgspec does not check UTF-8 in what it skips, orjson does; here nothing is
  skipped anyway (below), but an ASCII line cannot hold invalid UTF-8 at all;
- every key is one the schema names (``forbid_unknown_fields``, at every level) and every value has
  the schema's type: strings, lists and maps of strings, literals, and integers within 64 bits (what
  orjson reads as an int; beyond, it reads a float or fails). So msgspec validates every byte of the
  line as strictly as orjson does (syntax, escapes, surrogates), and the values are orjson's (the
  last of a repeated key wins in both);
- kind is "Event", apiVersion absent or audit.k8s.io/v1(beta1), stage absent, empty or known, verb or
  requestURI non-empty, no impersonatedUser, requestObject or responseObject (those events, the
  ones rules read deeply, take orjson's path, where their objects are dicts from the start).
Any other line returns None: an unusual line costs one failed attempt, and is read as before.
tests/detect/test_wire.py checks the agreement on generated lines.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from kubestrata.detect.event import AuditEvent

Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]  # within what orjson reads as an int


class _Strict(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """gc=False: the decoded structs are not tracked by the garbage collector (cheaper to build and
    free, ~10% of the decoding); they hold strings, tuples and dicts of strings, never a cycle."""


class _UserInfo(_Strict):
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] | None = None  # (decoded as the tuple the event holds)
    extra: dict[str, list[str]] | None = None


class _ObjectReference(_Strict):
    resource: str = ""
    namespace: str = ""
    name: str = ""
    uid: str = ""
    apiGroup: str = ""
    apiVersion: str = ""
    resourceVersion: str = ""
    subresource: str = ""


class _ListMeta(_Strict):
    selfLink: str = ""
    resourceVersion: str = ""
    # "continue" is a Python keyword: the field's name in JSON
    continue_: str = msgspec.field(default="", name="continue")
    remainingItemCount: Int64 | None = None


class _StatusCause(_Strict):
    reason: str = ""
    message: str = ""
    field: str = ""


class _StatusDetails(_Strict):
    name: str = ""
    group: str = ""
    kind: str = ""
    uid: str = ""
    causes: list[_StatusCause] | None = None
    retryAfterSeconds: Int64 | None = None


class _Status(_Strict):
    kind: str = ""
    apiVersion: str = ""
    metadata: _ListMeta | None = None
    status: str = ""
    message: str = ""
    reason: str = ""
    details: _StatusDetails | None = None
    code: Int64 | None = None


class _Event(_Strict):
    kind: Literal["Event"]
    apiVersion: Literal["audit.k8s.io/v1", "audit.k8s.io/v1beta1"] | None = None
    level: str = ""
    auditID: str = ""
    stage: Literal["", "RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"] = ""
    requestURI: str = ""
    verb: str = ""
    user: _UserInfo | None = None
    sourceIPs: tuple[str, ...] | None = None
    userAgent: str = ""
    objectRef: _ObjectReference | None = None
    responseStatus: _Status | None = None
    requestReceivedTimestamp: str = ""
    stageTimestamp: str = ""
    annotations: dict[str, str] | None = None


_decode = msgspec.json.Decoder(_Event).decode
_Invalid = (msgspec.DecodeError, RecursionError)  # (ValidationError is a DecodeError)
_EMPTY: dict[str, str] = {}
_new = AuditEvent.__new__
_CAPITAL_O = ord("O")


def read_event(line: bytes, cluster: str = "") -> AuditEvent | None:
    """The AuditEvent of a usual Event line (see the module's docstring), else None."""
    # requestObject, responseObject: orjson's path (a capital O is rare in audit lines: one byte
    # searched for first, before the slower search for the key; as an int, which is a memchr, where
    # a one-byte bytes needle is searched ten times slower in a line of this size)
    if not line.isascii() or (_CAPITAL_O in line and b'Object"' in line):
        return None
    try:
        e = _decode(line)
    except _Invalid:
        return None
    if not (e.verb or e.requestURI):
        return None  # not an audit event: the checked read says why
    ev = _new(AuditEvent)
    ev._line = line
    ev._raw = None
    ev.cluster = cluster
    ev.api_version = e.apiVersion or ""
    ev.audit_id = e.auditID
    ev.stage = e.stage
    ev.level = e.level
    ev.verb = e.verb
    ev.uri = e.requestURI
    user = e.user
    if user is not None:
        ev.user = user.username
        ev.groups = user.groups or ()
        ev.user_extra = user.extra if user.extra is not None else _EMPTY
        ev.user_uid = user.uid
    else:
        ev.user = ""
        ev.groups = ()
        ev.user_extra = _EMPTY
        ev.user_uid = ""
    ev.impersonated_user = ""
    ev.source_ips = e.sourceIPs or ()
    ev.user_agent = e.userAgent
    ref = e.objectRef
    if ref is not None:
        ev.resource = ref.resource
        ev.subresource = ref.subresource
        ev.namespace = ref.namespace
        ev.name = ref.name
        ev.api_group = ref.apiGroup
    else:
        ev.resource = ev.subresource = ev.namespace = ev.name = ev.api_group = ""
    status = e.responseStatus
    ev.code = status.code if status is not None else None
    ev.annotations = e.annotations if e.annotations is not None else _EMPTY
    ev.timestamp = e.stageTimestamp or e.requestReceivedTimestamp
    ev._query = None
    ev._command = None
    ev._epoch = False
    ev.produced = None
    ev._memo = None
    return ev
