"""The per-finding fast paths (one printable-ASCII check for an event's fields or a list of strings,
event fields built once per event, blocking sinks written inline) give exactly what escaping every
field one by one gives."""

from __future__ import annotations

import io

import orjson
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
