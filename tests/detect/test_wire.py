"""detect/wire.py reads a line into exactly the AuditEvent that orjson's dict gives, or declines."""

from __future__ import annotations

import re

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.detect.event import AuditEvent, BadEvent
from kubestrata.detect.pipeline import Pipeline
from kubestrata.detect.wire import read_event
from tests.detect.helpers import event
from tests.detect.test_event import _raw

_FIELDS = [k for k in AuditEvent.__slots__ if k not in ("_raw", "_line", "_memo", "produced")]

SNIPPETS = [
    b'"x"', b'""', b"1", b"-0", b"200", b"1.0", b"2e2", b"1e400", b"-1e400", b"123456789012345678901234567890",
    b"9223372036854775807", b"9223372036854775808", b"-9223372036854775809", b"null", b"true", b"{}", b"[]",
    b'["a"]', b'["a",1]', b'{"a":"b"}', b'{"a":["b"]}', b'{"a":1}', b'"\\ud800"', b'"\\ud83d\\ude00"', b'"\\u00e9"',
    '"é"'.encode(), b'"\xff"', b'"a\\u0000b"', b'"\\/"', b'"Event"', b'"ResponseComplete"', b'"audit.k8s.io/v1"',
    b'"audit.k8s.io/v2"', b'"Bogus"', b'[' * 3 + b']' * 3,
]  # fmt: skip
KEYS = [
    "kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user", "impersonatedUser", "sourceIPs",
    "userAgent", "objectRef", "responseStatus", "requestObject", "responseObject", "requestReceivedTimestamp",
    "stageTimestamp", "timestamp", "annotations", "unknown", "username", "uid", "groups", "extra", "resource",
    "subresource", "metadata", "code", "details", "continue", "selfLink", "causes", "messageType", "logEvents",
]  # fmt: skip
WHERE = [b"{", b'"user":{', b'"objectRef":{', b'"responseStatus":{', b'"metadata":{', b'"annotations":{']


def _replaced(line: bytes, key: str, value: bytes) -> bytes:
    """The line with the first scalar value of ``key`` replaced by ``value``."""
    scalar = rb'":("(?:[^"\\]|\\.)*"|[-0-9.eE+]+|true|false|null)'
    return re.sub(
        b'"' + key.encode() + scalar,
        b'"' + key.encode() + b'":' + value.replace(b"\\", b"\\\\"),
        line,
        count=1,
    )


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    """A usual event's line, sometimes with a key inserted somewhere (a repeat, an unknown key, a
    value of another type), whitespace, or a byte that is not ASCII."""
    line = orjson.dumps(draw(_raw()))
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.sampled_from(WHERE))
        at = line.find(where)
        if at < 0:
            continue
        at += len(where)
        key = draw(st.sampled_from(KEYS)).encode()
        value = draw(st.sampled_from(SNIPPETS))
        sep = b"" if line[at : at + 1] == b"}" else b","
        line = line[:at] + b'"' + key + b'":' + value + sep + line[at:]
    for _ in range(draw(st.integers(0, 2))):  # a scalar value replaced (the last of repeated keys wins)
        line = _replaced(line, draw(st.sampled_from(KEYS)), draw(st.sampled_from(SNIPPETS)))
    if draw(st.booleans()):
        line = line.replace(b",", draw(st.sampled_from([b" ,", b",\t", b",\n "])), 1)
    return line


def _reference(line: bytes) -> AuditEvent | str:
    """orjson's dict and the AuditEvent built from it (the pipeline's general path), or why not."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "invalid JSON"
    if type(obj) is not dict:
        return "not an object"
    try:
        return AuditEvent(obj)
    except BadEvent as e:
        return f"bad: {e}"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines())
def test_read_event_agrees_with_orjson_or_declines(line: bytes) -> None:
    _agrees(line)
    ref = _reference(line)
    assert (
        read_event(line) is None
        or type(ref.raw.get("kind")) is str
        and not {"messageType", "logEvents"} & set(ref.raw)
    )  # one plain Event


def _agrees(line: bytes) -> None:
    ev = read_event(line)
    if ev is None:
        return
    ref = _reference(line)
    assert isinstance(ref, AuditEvent), (line, ref)
    assert {k: getattr(ev, k) for k in _FIELDS} == {k: getattr(ref, k) for k in _FIELDS}
    assert ev.raw == ref.raw


def test_every_value_in_every_scalar_field() -> None:
    # each snippet (numbers past 64 bits or a double's range, escapes, bytes that are not ASCII,
    # other types) in each field of a usual event: read_event agrees with orjson or declines
    usual = orjson.dumps(event("get", "pods", name="x", ips=["10.0.0.1"]))
    usual = usual.replace(b'"code":200', b'"code":200,"status":"Success","reason":""')
    taken = 0
    for key in KEYS:
        for value in SNIPPETS:
            line = _replaced(usual, key, value)
            _agrees(line)
            taken += read_event(line) is not None
    assert taken > 50


def test_read_event_takes_the_usual_line_and_declines_the_rest() -> None:
    usual = orjson.dumps(event("get", "pods", ips=["10.0.0.1"]))
    assert read_event(usual) is not None  # (else the test above proves little)
    assert read_event(usual.replace(b'"get"', b'"g\xc3\xa9t"')) is None  # not ASCII
    assert read_event(usual.replace(b'"code":200', b'"code":1e400')) is None
    assert read_event(usual.replace(b'"code":200', b'"code":200,"x":1e400')) is None  # an unknown key
    assert read_event(orjson.dumps(event("create", "pods", request_object={"kind": "Pod"}))) is None
    assert read_event(usual.replace(b'"kind":"Event",', b"")) is None  # normalisers drop kind


def test_the_pipeline_counts_the_same_whichever_way_a_line_is_read() -> None:
    good = orjson.dumps(event("get", "pods", ips=["10.0.0.1"]))
    bad = good.replace(b'"sourceIPs":["10.0.0.1"]', b'"sourceIPs":["10.0.0.1",5]')
    broken = good.replace(b'"code":200', b'"code":1e400')  # valid JSON orjson cannot read: invalid-json
    pipe = Pipeline()
    for line in (good, bad, broken, good):
        pipe.process_line(line, "t")
    st = pipe.stats
    assert (st.lines, st.events, st.duplicates, st.bad["bad-event"], st.bad["invalid-json"]) == (
        4,
        2,
        1,
        1,
        1,
    )
