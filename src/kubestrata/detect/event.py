"""The audit Event model: audit.k8s.io/v1 and v1beta1 Events, read straight from the decoded JSON.

One small ``__slots__`` object per event, filled from the top-level fields only; nested request
objects stay as the decoded dicts and are read lazily by the rules that need them. No pydantic on
the hot path: at 50k events/s every attribute copy counts.

Field semantics follow kubernetes/kubernetes staging/src/k8s.io/apiserver/pkg/apis/audit/v1/types.go
(reference §4.1). Normalisers (AKS, GKE, SIEM exports) often drop ``kind``, ``apiVersion``,
``auditID`` or ``stage``; such events are accepted. An event without a stage is evaluated by the
rules of every stage, because it is the only record of that request we will get.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

AUDIT_API_VERSIONS = frozenset({"audit.k8s.io/v1", "audit.k8s.io/v1beta1"})
STAGES = frozenset({"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"})
RESPONSE_COMPLETE = "ResponseComplete"
RESPONSE_STARTED = "ResponseStarted"

DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"

_EMPTY: dict[str, Any] = {}


class BadEvent(ValueError):
    """An input record that is not a usable audit Event; names the field at fault."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)


def _str(d: dict[str, Any], key: str, field: str) -> str:
    v = d.get(key)
    if v is None:
        return ""
    if type(v) is not str:
        raise BadEvent(f"expected a string, got {type(v).__name__}", field)
    return v


def _str_list(v: Any, field: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if type(v) is not list:
        raise BadEvent(f"expected a list of strings, got {type(v).__name__}", field)
    for i, item in enumerate(v):
        if type(item) is not str:
            raise BadEvent(f"expected a string, got {type(item).__name__}", f"{field}[{i}]")
    return tuple(v)


def _dict(d: dict[str, Any], key: str, field: str) -> dict[str, Any]:
    v = d.get(key)
    if v is None:
        return _EMPTY
    if type(v) is not dict:
        raise BadEvent(f"expected an object, got {type(v).__name__}", field)
    return v


class AuditEvent:
    """One audit Event. ``raw`` is the decoded JSON object; the rest are validated copies."""

    __slots__ = (
        "_raw",  # the decoded object; None for an event read by detect/wire.py until ``raw`` is read
        "api_version",
        "audit_id",
        "stage",
        "level",
        "verb",
        "uri",
        "user",
        "groups",
        "user_extra",
        "user_uid",
        "impersonated_user",
        "source_ips",
        "user_agent",
        "resource",
        "subresource",
        "namespace",
        "name",
        "api_group",
        "code",
        "annotations",
        "timestamp",
        "cluster",
        "_query",
        "_command",
        "_epoch",
        "produced",
        "_memo",
        "_line",  # the JSON line of an event read by detect/wire.py, whose raw is decoded on first use
    )
    _line: bytes

    def __init__(self, raw: dict[str, Any], cluster: str = "") -> None:
        self._raw: dict[str, Any] | None = raw
        self.cluster = cluster
        if not self._read_plain(raw):
            self._read_checked(raw)
        self._query: dict[str, list[str]] | None = None
        self._command: list[str] | None = None
        self._epoch: float | None | bool = False  # False: not parsed yet
        self.produced: Any = None  # rules.helpers.produced's cache: a Produced or False
        self._memo: dict[Hashable, Any] | None = None  # (memo's dict, made on first use)

    def _read_plain(self, raw: dict[str, Any]) -> bool:
        """The usual event, read with few checks: every field present has the type the API server
        writes. False, having set nothing that _read_checked does not set again, at anything else
        (a wrong type, an unknown stage, an impersonation): _read_checked then reads the event field
        by field and names the one at fault. The two agree on every input (tests/detect/test_event.py)."""
        get = raw.get
        kind = get("kind")
        api_version = get("apiVersion")
        if not (kind is None or kind == "Event") or not (
            api_version is None or (type(api_version) is str and api_version in AUDIT_API_VERSIONS)
        ):
            return False
        user = get("user")
        ref = get("objectRef")
        status = get("responseStatus")
        ips = get("sourceIPs")
        ann = get("annotations")
        if (
            type(user) is not dict
            or not (type(ref) is dict or ref is None)
            or not (type(status) is dict or status is None)
            or not (type(ips) is list or ips is None)
            or not (type(ann) is dict or ann is None)
            or get("impersonatedUser") is not None
        ):
            return False
        audit_id = get("auditID", "")
        stage = get("stage", "")
        level = get("level", "")
        verb = get("verb", "")
        uri = get("requestURI", "")
        user_agent = get("userAgent", "")
        username = user.get("username", "")
        groups = user.get("groups")
        extra = user.get("extra")
        uid = user.get("uid")
        if ref:
            resource = ref.get("resource", "")
            subresource = ref.get("subresource", "")
            namespace = ref.get("namespace", "")
            name = ref.get("name", "")
            api_group = ref.get("apiGroup", "")
        else:
            resource = subresource = namespace = name = api_group = ""
        code = status.get("code") if status is not None else None
        ts = get("stageTimestamp") or get("requestReceivedTimestamp") or get("timestamp")
        response = get("responseObject")
        request = get("requestObject")
        if not (
            type(audit_id) is str
            and type(stage) is str
            and type(level) is str
            and type(verb) is str
            and type(uri) is str
            and type(user_agent) is str
            and type(username) is str
            and type(resource) is str
            and type(subresource) is str
            and type(namespace) is str
            and type(name) is str
            and type(api_group) is str
            and (type(groups) is list or groups is None)
            and (type(extra) is dict or extra is None)
            and (type(code) is int or code is None)
            and (type(ts) is str or ts is None)
            and (type(response) is dict or response is None)
            and (type(request) is dict or request is None or (type(request) is list and verb == "patch"))
            and (verb or uri)
            and (not stage or stage in STAGES)
        ):
            return False
        try:  # every sourceIP and group a string: join raises TypeError at anything else, in C
            "".join(ips or ())
            "".join(groups or ())
        except TypeError:
            return False
        self.api_version = api_version or ""
        self.audit_id = audit_id
        self.stage = stage
        self.level = level
        self.verb = verb
        self.uri = uri
        self.user = username
        self.groups = tuple(groups) if groups else ()
        self.user_extra = extra if extra is not None else _EMPTY
        self.user_uid = uid if type(uid) is str else ""
        self.impersonated_user = ""
        self.source_ips = tuple(ips) if ips else ()
        self.user_agent = user_agent
        self.resource = resource
        self.subresource = subresource
        self.namespace = namespace
        self.name = name
        self.api_group = api_group
        self.code = code
        self.annotations = ann if ann is not None else _EMPTY
        self.timestamp = ts or ""
        return True

    def _read_checked(self, raw: dict[str, Any]) -> None:
        """Every field checked in turn; BadEvent names the first one at fault."""
        kind = raw.get("kind")
        if kind is not None and kind != "Event":
            raise BadEvent(f"expected kind Event, got {kind!r}"[:120], "kind")
        api_version = raw.get("apiVersion")
        if api_version is not None and (
            type(api_version) is not str or api_version not in AUDIT_API_VERSIONS
        ):
            raise BadEvent(f"unsupported apiVersion {api_version!r}"[:120], "apiVersion")
        self.api_version = api_version or ""
        get = raw.get
        # the helpers (which name the field) run only when a value is not a string
        v = get("auditID", "")
        self.audit_id = v if type(v) is str else _str(raw, "auditID", "auditID")
        v = get("stage", "")
        stage = v if type(v) is str else _str(raw, "stage", "stage")
        if stage and stage not in STAGES:
            raise BadEvent(f"unknown stage {stage!r}"[:120], "stage")
        self.stage = stage
        v = get("level", "")
        self.level = v if type(v) is str else _str(raw, "level", "level")
        v = get("verb", "")
        self.verb = v if type(v) is str else _str(raw, "verb", "verb")
        v = get("requestURI", "")
        self.uri = v if type(v) is str else _str(raw, "requestURI", "requestURI")
        if not self.verb and not self.uri:
            raise BadEvent("neither verb nor requestURI: not an audit event", "verb")
        user = get("user")
        if type(user) is not dict:
            user = _dict(raw, "user", "user")
        v = user.get("username", "")
        self.user = v if type(v) is str else _str(user, "username", "user.username")
        self.groups = _str_list(user.get("groups"), "user.groups")
        self.user_extra = _dict(user, "extra", "user.extra")
        uid = user.get("uid")
        self.user_uid = (
            uid if type(uid) is str else ""
        )  # (not checked: only a cloud IAM prefix is read of it)
        imp = get("impersonatedUser")
        self.impersonated_user = (
            _str(_dict(raw, "impersonatedUser", "impersonatedUser"), "username", "impersonatedUser.username")
            if imp is not None
            else ""
        )
        self.source_ips = _str_list(get("sourceIPs"), "sourceIPs")
        v = get("userAgent", "")
        self.user_agent = v if type(v) is str else _str(raw, "userAgent", "userAgent")
        ref = get("objectRef")
        if ref:
            if type(ref) is not dict:
                raise BadEvent(f"expected an object, got {type(ref).__name__}", "objectRef")
            self.resource = _str(ref, "resource", "objectRef.resource")
            self.subresource = _str(ref, "subresource", "objectRef.subresource")
            self.namespace = _str(ref, "namespace", "objectRef.namespace")
            self.name = _str(ref, "name", "objectRef.name")
            self.api_group = _str(ref, "apiGroup", "objectRef.apiGroup")
        else:
            self.resource = self.subresource = self.namespace = self.name = self.api_group = ""
        status = get("responseStatus")
        if status is None:
            code = None
        elif type(status) is dict:
            code = status.get("code")
            if code is not None and type(code) is not int:
                raise BadEvent(f"expected an integer, got {type(code).__name__}", "responseStatus.code")
        else:
            raise BadEvent(f"expected an object, got {type(status).__name__}", "responseStatus")
        self.code = code
        ann = get("annotations")
        self.annotations = ann if type(ann) is dict else _dict(raw, "annotations", "annotations")
        ts = get("stageTimestamp") or get("requestReceivedTimestamp") or get("timestamp")
        if ts is not None and type(ts) is not str:
            raise BadEvent(f"expected a timestamp string, got {type(ts).__name__}", "stageTimestamp")
        self.timestamp = ts or ""
        v = get("responseObject")
        if v is not None and type(v) is not dict:
            raise BadEvent(f"expected an object, got {type(v).__name__}", "responseObject")
        v = get("requestObject")
        # a patch request logs the patch document as sent (apiserver audit.LogRequestPatch): an
        # object for strategic-merge, merge and apply patches, a list of operations for a JSON patch
        if v is not None and type(v) is not dict and not (type(v) is list and self.verb == "patch"):
            raise BadEvent(f"expected an object, got {type(v).__name__}", "requestObject")

    # A property, not __getattr__: a class with __getattr__ has every attribute read (ev.verb, ev.user,
    # ... tens per event in the rules) go through the generic lookup, which CPython 3.11 does not
    # specialise (about twice the cost of a slot read).
    @property
    def raw(self) -> dict[str, Any]:
        """The event's JSON object; of an event read by detect/wire.py, decoded from its line on first
        use (orjson accepts that line, and reads the values the event was filled with)."""
        raw = self._raw
        if raw is None:
            raw = self._raw = orjson.loads(self._line)
        return raw

    @raw.setter
    def raw(self, value: dict[str, Any]) -> None:
        self._raw = value

    @property
    def memo(self) -> dict[Hashable, Any]:
        """What several rules read of this event, computed once (a pod's spec, an exec's verdict).
        Made on first use: most events meet no rule that keeps anything here."""
        memo = self._memo
        if memo is None:
            memo = self._memo = {}
        return memo

    # -- derived fields (computed on demand; most events never need them) --

    @property
    def success(self) -> bool:
        """Falco's response_successful: the response code starts with 2."""
        return self.code is not None and 200 <= self.code < 300

    @property
    def decision(self) -> str:
        v = self.annotations.get(DECISION_ANNOTATION)
        return v if isinstance(v, str) else ""

    @property
    def reason(self) -> str:
        v = self.annotations.get(REASON_ANNOTATION)
        return v if isinstance(v, str) else ""

    @property
    def request_object(self) -> dict[str, Any]:
        """The request body as an object; empty for a JSON patch (see ``json_patch``)."""
        v = self.raw.get("requestObject")
        return v if type(v) is dict else _EMPTY

    @property
    def json_patch(self) -> list[Any] | None:
        """The operations of a JSON patch (RFC 6902) request, else None."""
        v = self.raw.get("requestObject")
        return v if type(v) is list else None

    @property
    def response_object(self) -> dict[str, Any]:
        return self.raw.get("responseObject") or _EMPTY

    @property
    def path(self) -> str:
        """requestURI without the query string."""
        return self.uri.split("?", 1)[0]

    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(urlsplit(self.uri).query, keep_blank_values=True) if self.uri else {}
        return self._query

    def exec_command(self) -> list[str]:
        """The exec command: repeated ``command=`` query parameters (percent-decoded), else the
        ``command`` list of the request object (GKE and some SIEM normalisers put it there)."""
        cmd = self._command
        if cmd is None:
            cmd = self._command = self._query_command() or self._object_command()
        return cmd

    def _query_command(self) -> list[str]:
        """``query().get("command")`` without parsing the rest of the query: for an ASCII request
        URI that is a path, the same split and decoding as urllib.parse.parse_qs. (urlsplit strips
        nothing from the front of a path, and its query is what follows the first "?" before any
        "#", unless a tab or line break, which it deletes, is in the query: then query() answers.
        One difference is kept from before: of a URI starting "//" whose authority urlsplit refuses,
        brackets around no IPv6 address, query() raises ValueError while the query is read here.)"""
        uri = self.uri
        if self._query is not None or not (uri[:1] == "/" and uri.isascii()):
            return self.query().get("command") or []
        if "#" in uri:
            query = uri.split("#", 1)[0].partition("?")[2]
        else:  # (the usual URI: one new string, the query)
            i = uri.find("?")
            query = uri[i + 1 :] if i >= 0 else ""
        # an exec's query (``command=sh&command=-c&command=...&container=app&stdin=true``) repeats
        # from event to event while the pod in the path changes: its commands are read once
        cmds = _QUERY_COMMANDS.get(query)
        if cmds is None:
            if "\t" in query or "\n" in query or "\r" in query:
                return self.query().get("command") or []
            cmds = () if "command" not in query and "%" not in query else tuple(_commands(query))
            if len(query) <= _REMEMBERED_QUERY_MAX:
                if len(_QUERY_COMMANDS) >= _REMEMBERED_QUERIES:
                    _QUERY_COMMANDS.clear()
                _QUERY_COMMANDS[query] = cmds
        return list(cmds)  # a fresh list each time: the caller owns it (the remembered tuple is shared)

    def _object_command(self) -> list[str]:
        ro = self.request_object.get("command")
        return [str(c) for c in ro] if isinstance(ro, list) else []

    @property
    def epoch(self) -> float | None:
        """The event's time (stage timestamp, else when received) in seconds since the epoch;
        None when absent or not RFC 3339."""
        t = self._epoch
        if t is False:
            t = self._epoch = parse_time(self.timestamp)
        return t

    @property
    def remote_ip(self) -> str:
        """The last sourceIP: the address the API server saw; the others are client-settable."""
        return self.source_ips[-1] if self.source_ips else ""

    @property
    def key(self) -> tuple[str, str] | None:
        return (self.audit_id, self.stage) if self.audit_id else None


@lru_cache(maxsize=4096)
def _unquote_plus(value: str) -> str:
    """A query value percent-decoded (``+`` as a space), cached: exec commands repeat across events
    (``sh -c ...``, a shell's arguments) and unquote is several µs each."""
    return unquote(value.replace("+", " "))


def _commands(query: str) -> list[str]:
    """The ``command`` values of a printable-ASCII query string, as parse_qs decodes them."""
    out = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = unquote(name.replace("+", " "))
        if name == "command":
            out.append(_unquote_plus(value) if "%" in value or "+" in value else value)
    return out


# The commands of each query read (AuditEvent._query_command), by the query: a dict, not an
# lru_cache (a hit is one lookup). Bounded: clients choose the query (longer ones are read anew each
# time; one with a tab or line break is query()'s, never remembered).
_QUERY_COMMANDS: dict[str, tuple[str, ...]] = {}
_REMEMBERED_QUERY_MAX = 4096
_REMEMBERED_QUERIES = 4096


def parse_time(ts: str) -> float | None:
    # (no remembered seconds: fromisoformat, in C, is ~4.8k instructions a stamp; a Python lookup of
    # the stamp's second plus the microseconds added was ~5k on a hit, ~2x on a miss: performance.md)
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def is_system_user(username: str) -> bool:
    return username.startswith("system:")
