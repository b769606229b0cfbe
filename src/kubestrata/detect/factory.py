"""Detect findings from rule hits: kubestrata.findings.Finding with the event's reference.

The work is split by how often it changes: a rule's part (title, severity, references, its id as
bytes) once per rule, the event's part (escaped and capped fields, the fingerprint's identity
prefix) once per event, and only the message, evidence and fingerprint per finding.
"""

from __future__ import annotations

from hashlib import sha256 as _sha256
from typing import TYPE_CHECKING, Any, Literal

import orjson

from kubestrata.detect.event import AuditEvent
from kubestrata.findings import EventRef, Evidence, Finding, Layer
from kubestrata.textsafe import MAX_VALUE_CHARS, clean, clean_any

if TYPE_CHECKING:
    from kubestrata.detect.catalogue import RuleSpec
    from kubestrata.detect.rules import Hit

SOURCE = "k8saudit"
_dumps = orjson.dumps
# a fresh SHA-256 state, copied per fingerprint: the constructor looks the digest up in OpenSSL 3's
# provider store on every call, a copy does not (about 50 ns less per finding on the real CPU,
# though callgrind, which hides the CPU's SHA instructions, counts some 500 instructions more)
_fresh_sha = _sha256().copy
_CAPS = (  # (AuditEvent attribute, length cap) of every client-chosen field a finding carries
    ("timestamp", 64), ("cluster", 253), ("audit_id", 64), ("user", MAX_VALUE_CHARS),
    ("impersonated_user", MAX_VALUE_CHARS), ("verb", 64), ("resource", 128), ("subresource", 64),
    ("namespace", 253), ("name", 253), ("uri", MAX_VALUE_CHARS), ("user_agent", 256),
)  # fmt: skip


def event_ref(ev: AuditEvent) -> tuple[EventRef, str]:
    """The event's reference and time as findings carry them: escaped and capped."""
    ips = ev.source_ips[:16]
    ts, user, imp, uri, ua = ev.timestamp, ev.user, ev.impersonated_user, ev.uri, ev.user_agent
    try:
        joined = "".join((ts, ev.cluster, ev.audit_id, user, imp, ev.verb, ev.resource, ev.subresource,
                          ev.namespace, ev.name, uri, ua, *ips))  # fmt: skip
    except TypeError:
        joined = ""
    if (  # the usual event: printable ASCII within every cap (_CAPS), so nothing to escape or cut
        joined
        and joined.isascii()
        and joined.isprintable()
        and len(ts) <= 64
        and len(ev.cluster) <= 253
        and len(ev.audit_id) <= 64
        and len(user) <= MAX_VALUE_CHARS
        and len(imp) <= MAX_VALUE_CHARS
        and len(ev.verb) <= 64
        and len(ev.resource) <= 128
        and len(ev.subresource) <= 64
        and len(ev.namespace) <= 253
        and len(ev.name) <= 253
        and len(uri) <= MAX_VALUE_CHARS
        and len(ua) <= 256
        and all(len(ip) <= 64 for ip in ips)
    ):
        ref = EventRef(
            SOURCE, ev.audit_id, ev.stage, ev.cluster, user, imp, ev.verb, ev.resource, ev.subresource,
            ev.namespace, ev.name, uri, tuple(ips), ua, ev.code,
        )  # fmt: skip
        return ref, ts
    return escaped_event_ref(ev)


def event_parts(ev: AuditEvent) -> tuple[EventRef, str, bytes]:
    """The event's reference and time as findings carry them (event_ref), and the fingerprint's
    identity: findings.fingerprint's bytes after the rule id (raw values: escaping must not merge
    two events' findings).

    The usual event's part of a finding's JSON line (EventRef._line_part, which jsonlines.json_line
    writes as is) is written here by formatting, not serialised: when every string field is printable
    ASCII with nothing for JSON to escape (no quote, backslash or control character: orjson's
    string is then the string in quotes) and within its cap (_CAPS), JSON's encoding of each is the
    string in quotes, and escaping and capping change nothing. Any other event goes through
    event_ref. (An AuditEvent's fields are strings and its code an int or None, by construction.)"""
    # the fields that repeat from event to event (the actor, the verb and resource, the client):
    # checked and written once (_shared_part), the event's own ones here
    key = (ev.cluster, ev.stage, ev.user, ev.impersonated_user, ev.verb, ev.resource, ev.subresource,
           ev.namespace, ev.user_agent)  # fmt: skip
    cluster, stage, user, imp, verb, resource, sub, ns, ua = key
    ts, audit_id, name, uri, ips, code = ev.timestamp, ev.audit_id, ev.name, ev.uri, ev.source_ips, ev.code
    shared = _shared.get(key)
    if shared is None:
        if len(_shared) >= _SHARED_MAX:
            _shared.clear()
        shared = _shared[key] = _shared_part(key)
    if shared is not False:
        try:  # (the usual event has one source IP: no unpacking)
            joined = "".join(
                (ts, audit_id, name, uri, ips[0]) if len(ips) == 1 else (ts, audit_id, name, uri, *ips)
            )
        except TypeError:  # (not strings: event_ref's general path)
            joined = "\x7f"
        code_json = _CODE_JSON[code]
        if (
            joined.isascii()  # (no lone surrogate either)
            and len(_dumps(joined)) == len(joined) + 2  # JSON escapes nothing: no quote, backslash, control
            and "\x7f" not in joined  # (with the above: printable ASCII, which clean() leaves as it is)
            and code_json is not None
            and type(ips) is tuple  # (the reference holds a tuple, as event_ref's)
            and len(ips) <= 16
            and len(ts) <= 64
            and len(audit_id) <= 64
            and len(name) <= 253
            and len(uri) <= MAX_VALUE_CHARS
        ):
            ips_json = '","'.join(ips)  # (one address: the address itself)
            # (the source IPs within 64 together are each within their cap)
            if len(ips_json) <= 64 or all(len(ip) <= 64 for ip in ips):
                ref = _new(EventRef)
                ref.source = SOURCE
                ref.audit_id = audit_id
                ref.stage = stage
                ref.cluster = cluster
                ref.user = user
                ref.impersonated_user = imp
                ref.verb = verb
                ref.resource = resource
                ref.subresource = sub
                ref.namespace = ns
                ref.name = name
                ref.request_uri = uri
                ref.source_ips = ips
                ref.user_agent = ua
                ref.response_code = code
                # a name in quotes or null, the addresses in quotes or none: the quotes as pieces
                # of the one format, not a quoted copy of each value
                name_quote = '"' if name else ""
                ips_quote = '"' if ips else ""
                after_time, after_audit_id, after_ips, identity_head = shared
                ref._line_part = (
                    ts,
                    f',"time":"{ts}{after_time}{audit_id}{after_audit_id}{name_quote}{name or "null"}{name_quote},'
                    f'"requestURI":"{uri}","sourceIPs":[{ips_quote}{ips_json}{ips_quote}],{after_ips}{code_json},'
                    '"evidence":'.encode(),
                )
                return ref, ts, identity_head + name.encode()
    identity = "\x1f".join(("", cluster, user, verb, resource, sub, ns, name)).encode("utf-8", "replace")
    ref, ts = event_ref(ev)
    return ref, ts, identity


_SHARED_MAX = 4096
# (cluster, stage, user, impersonated user, verb, resource, subresource, namespace, user agent) ->
# _shared_part's (at most _SHARED_MAX, cleared when full)
_shared: dict[tuple[str, ...], tuple[str, str, str, bytes] | Literal[False]] = {}


def _shared_part(key: tuple[str, ...]) -> tuple[str, str, str, bytes] | Literal[False]:
    """The JSON-line pieces of an event's repeated fields, when each is printable ASCII with
    nothing for JSON to escape and within its cap (else False): after the time up to the audit ID's
    value, after the audit ID's value up to the name's, after the source IPs up to the response
    code's; and the fingerprint's identity up to the name."""
    cluster, stage, user, imp, verb, resource, sub, ns, ua = key
    try:
        joined = "".join(key)
    except TypeError:
        return False
    if not (
        joined.isascii()
        and len(_dumps(joined)) == len(joined) + 2
        and "\x7f" not in joined
        and len(cluster) <= 253
        and len(user) <= MAX_VALUE_CHARS
        and len(imp) <= MAX_VALUE_CHARS
        and len(verb) <= 64
        and len(resource) <= 128
        and len(sub) <= 64
        and len(ns) <= 253
        and len(ua) <= 256
    ):
        return False
    imp_json = f'"{imp}"' if imp else "null"
    sub_json = f'"{sub}"' if sub else "null"
    ns_json = f'"{ns}"' if ns else "null"
    return (
        f'","cluster":"{cluster}","auditID":"',
        f'","stage":"{stage}","user":"{user}","impersonatedUser":{imp_json},"verb":"{verb}",'
        f'"resource":"{resource}","subresource":{sub_json},"namespace":{ns_json},"name":',
        f'"userAgent":"{ua}","responseCode":',
        "\x1f".join(("", cluster, user, verb, resource, sub, ns, "")).encode(),
    )


class _CodeJSON(dict[Any, str]):
    """A response code -> its JSON; None for what orjson cannot write (an integer over 64 bits).
    Only ints are keys (True == 1): an AuditEvent's code is an int or None."""

    def __missing__(self, code: Any) -> str | None:
        if type(code) is not int or not -(2**63) <= code < 2**64:
            return None
        if len(self) < 4096:
            self[code] = str(code)
        return str(code)


_CODE_JSON = _CodeJSON({None: "null"})


def escaped_event_ref(ev: AuditEvent) -> tuple[EventRef, str]:
    """event_ref's general path: every field escaped and capped on its own."""
    ref = EventRef(
        SOURCE, clean(ev.audit_id, 64), ev.stage, clean(ev.cluster, 253), clean(ev.user),
        clean(ev.impersonated_user), clean(ev.verb, 64), clean(ev.resource, 128), clean(ev.subresource, 64),
        clean(ev.namespace, 253), clean(ev.name, 253), clean(ev.uri), tuple(clean(ip, 64) for ip in ev.source_ips[:16]),
        clean(ev.user_agent, 256), ev.code,
    )  # fmt: skip
    return ref, clean(ev.timestamp, 64)


# a tuple of types: ``list | tuple | dict`` in isinstance builds a union object on every call
_CONTAINERS = (list, tuple, dict)
_new = object.__new__
_set_path = Evidence.__dict__["path"].__set__
_set_observed = Evidence.__dict__["observed"].__set__
_set_expected = Evidence.__dict__["expected"].__set__


def _evidence(path: str, observed: Any) -> Evidence:
    """Evidence(path, observed), set through its slots: a frozen dataclass's __init__ pays an
    object.__setattr__ call per field (twice the cost, per evidence item of every finding)."""
    e = _new(Evidence)
    _set_path(e, path)
    _set_observed(e, observed)
    _set_expected(e, None)
    return e


_ITEMS_MAX = 4096
_ITEM_CHARS = 4096  # a list of strings longer than this together is escaped anew each time
# (path, value: a string, or a list of strings as a tuple) -> (its Evidence, its shown record or None):
# evidence repeats from event to event (the exec command, the subresource, a namespace), and the
# items are read only: an Evidence is frozen, renderers only read its escaped value, and the
# shown record is only serialised
_items: dict[tuple[Any, ...], tuple[Evidence, dict[str, Any] | None]] = {}
# a whole evidence (its items' keys) -> its escaped items, shown JSON and whether that is all of it
# (FindingFactory._evidence): the same evidence repeats from event to event (an exec's subresource
# and command); a finding's evidence list is a new list of the items
_evidences: dict[tuple[Any, ...], tuple[tuple[Evidence, ...], bytes, bool]] = {}
_CLUSTER = Layer.CLUSTER


class FindingFactory:
    """Builds the findings of a stream of hits; remembers the last event (an event's findings
    share its reference, and often an evidence value: the exec command) and every rule's record."""

    __slots__ = ("_rules", "_ev", "_ref", "_time", "_identity", "_clean")

    def __init__(self) -> None:
        # rule id -> [title, severity, references, id as bytes, its last remembered evidence (a
        # copy: a list of (path, str or list)) and what that was built into]
        self._rules: dict[str, list[Any]] = {}
        self._ev: AuditEvent | None = None
        self._ref: EventRef | None = None
        self._time = ""
        self._identity = b""
        self._clean: dict[int, tuple[Any, Any]] = {}  # id(value) -> (value, escaped), this event's

    def _item(self, p: str, v: Any) -> tuple[Evidence, dict[str, Any] | None]:
        """An evidence item escaped, and what the fingerprint and JSON line show of it (nothing of
        an anomaly's novelty note)."""
        if type(v) is str:
            v = clean(v)
        elif isinstance(v, _CONTAINERS):
            seen = self._clean.get(id(v))
            if seen is None or seen[0] is not v:
                seen = self._clean[id(v)] = (v, clean_any(v))
            v = seen[1]
        return _evidence(p, v), ({"path": p, "value": v} if p != "anomaly" else None)

    def __call__(self, spec: RuleSpec, h: Hit, ev: AuditEvent) -> Finding:
        if ev is not self._ev:
            # a fingerprint names the rule, actor and target: findings.fingerprint's bytes after
            # the rule id (the identity), encoded once per event
            self._ref, self._time, self._identity = event_parts(ev)
            if self._clean:  # (most events escape no container value: no new dict for them)
                self._clean = {}
            self._ev = ev
        rule = self._rules.get(spec.id)
        if rule is None:
            # the references record is shared by every finding of the rule: renderers only read it
            rule = self._rules[spec.id] = [
                spec.title, spec.severity, spec.references(), spec.id.encode("utf-8", "replace"), None, None
            ]  # fmt: skip
        title, severity, refs, rule_bytes, last_evidence, last_known = rule
        evidence = h.evidence
        if last_evidence is not None and last_evidence == evidence:
            # the rule's last evidence again (an exec's command, the same user): what it was built
            # into. Only a remembered-sized evidence of strings and lists of strings is kept (below),
            # and what equals one is one (a str or list subclass could be equal too: rules build
            # their evidence from decoded JSON and their own strings, which are neither)
            known = last_known
        else:
            known = self._known(evidence, rule)
        items, detail, whole = known
        # set through its slots: the dataclass's __init__ is a call with 19 arguments (fields of
        # findings.Finding; test_factory_builds_the_finding_the_dataclass_would)
        f = _new(Finding)
        f.rule_id = spec.id
        f.title = title
        f.severity = h.severity or severity
        f.layer = _CLUSTER
        message = h.message
        # (clean's usual case inline: a short printable ASCII message is kept as it is)
        if (
            type(message) is not str
            or len(message) > MAX_VALUE_CHARS
            or not (message.isascii() and message.isprintable())
        ):
            message = clean(message)
        f.message = message
        f.object = None
        f.source = None
        f.container = None
        f.evidence = [*items]
        f.remediation = ""
        f.fix = None
        f.fix_note = None
        f.references = refs
        f.suppressed = None
        f.time = self._time
        f.event = self._ref
        sha = _fresh_sha()
        sha.update(rule_bytes + self._identity + detail)
        f._fingerprint = sha.hexdigest()[:32]
        f.details = None
        f.evidence_json = detail if whole else None
        return f

    def _known(
        self, evidence: list[tuple[str, Any]], rule: list[Any]
    ) -> tuple[tuple[Evidence, ...], bytes, bool]:
        """A hit's evidence built (_evidence), or remembered across events when every item is
        remembered-sized (_evidences); a remembered one also becomes the rule's last (rule[4:6])."""
        # the item keys of the evidence, when every item is remembered-sized (see _items)
        keys: list[tuple[Any, ...]] | None = []
        for p, v in evidence:
            t = type(v)
            if t is str:
                if len(v) > MAX_VALUE_CHARS:
                    keys = None
                    break
                keys.append((p, v))  # type: ignore[union-attr]
            elif t is list and len(v) <= 64:
                try:  # strings only (TypeError at anything else: 1, 1.0 and True are equal keys)
                    if len("".join(v)) > _ITEM_CHARS:
                        keys = None
                        break
                except TypeError:
                    keys = None
                    break
                keys.append((p, tuple(v)))  # type: ignore[union-attr]
            else:
                keys = None
                break
        key: tuple[Any, ...] | None = None
        if keys is not None:
            try:
                known = _evidences.get(key := tuple(keys))
            except TypeError:  # a path that is not hashable (rules name theirs with strings)
                key = known = None
        else:
            key = known = None
        if known is None:
            known = self._evidence(evidence)
            if key is not None:
                if len(_evidences) >= _ITEMS_MAX:
                    _evidences.clear()
                _evidences[key] = known
        if key is not None:
            rule[4] = [(p, v) if type(v) is str else (p, list(v)) for p, v in evidence]
            rule[5] = known
        return known

    # (the pipeline calls this: a bound method's call costs less than an instance's __call__)
    build = __call__

    def _evidence(self, evidence: list[tuple[str, Any]]) -> tuple[tuple[Evidence, ...], bytes, bool]:
        """A hit's evidence escaped (items remembered across events: _items), the JSON of what the
        fingerprint shows of it, and whether that is the whole evidence (what the JSON line writes)."""
        out = []
        shown = []
        whole = True  # shown is the whole evidence
        items = _items
        for p, v in evidence:
            # (remembered only when short: the cache must not hold an attacker's megabytes)
            t = type(v)
            if t is str:
                key: tuple[Any, ...] | None = (p, v) if len(v) <= MAX_VALUE_CHARS else None
            elif t is list and len(v) <= 64:
                try:  # strings only (TypeError at anything else: 1, 1.0 and True are equal keys)
                    key = (p, tuple(v)) if len("".join(v)) <= _ITEM_CHARS else None
                except TypeError:
                    key = None
            else:
                key = None
            try:
                item = items.get(key) if key is not None else None
            except TypeError:  # a path that is not hashable (rules name theirs with strings)
                item = key = None
            if item is None:
                item = self._item(p, v)
                if key is not None:
                    if len(items) >= _ITEMS_MAX:
                        items.clear()
                    items[key] = item
            out.append(item[0])
            if item[1] is not None:
                shown.append(item[1])
            else:
                whole = False
        # same rule, actor, target and evidence = the same finding (an anomaly's novelty note
        # differs on every event and must not split it)
        try:
            detail = _dumps(shown)  # what _dumps(shown, default=str) gives when it succeeds
        except TypeError:
            detail = _dumps(shown, default=str)
            whole = False  # the JSON line cannot write these values (the sink counts the failure)
        return tuple(out), detail, whole
