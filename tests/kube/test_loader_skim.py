"""kube.loader.skim_list: a JSON List read without building each item's status. For every input it
takes it must give exactly the objects _load_bytes gives, status left out (same values, same key
order, same source, no errors), and it must leave everything else to _load_bytes."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.kube import loader
from kubestrata.kube.loader import LoadResult, load_file, skim_list
from kubestrata.pss.evaluate import Memo, content_key


def _full(data: bytes) -> LoadResult:
    result = LoadResult()
    loader._load_bytes(data, "f.json", result)
    return result


def _check_same(data: bytes) -> bool:
    """skim_list agrees with _load_bytes on data; True when it took it."""
    skimmed = LoadResult()
    took = skim_list(data, "f.json", skimmed)
    if not took:
        assert skimmed == LoadResult()  # untouched: _load_bytes reads the file
        return False
    orjson.loads(data)  # taken: orjson takes it too, so _load_bytes does not fall back to YAML
    full = _full(data)
    assert skimmed.skimmed and not full.skimmed
    assert not full.errors and not full.not_evaluated
    assert len(skimmed.objects) == len(full.objects)
    for s, f in zip(skimmed.objects, full.objects, strict=True):
        expected = {k: v for k, v in f.raw.items() if k != "status"}
        assert s.raw == expected
        assert list(s.raw) == list(expected)  # key order, as orjson keeps it
        assert orjson.dumps(s.raw) == orjson.dumps(expected)  # types too: 1, 1.0 and True differ
        assert s.source == f.source
    return True


# JSON text with what parsers disagree on: numbers out of range or past 64 bits, -0, exponents,
# escapes, lone surrogates, non-ASCII and invalid UTF-8, control characters, repeated keys, blanks;
# drawn rarely, so that most documents are valid and taken
_NUMBERS = st.sampled_from([b"0", b"-0", b"1", b"-1", b"1.0", b"-0.0", b"1e5", b"1E+2", b"2.5e-3", b"1e308"])
_ODD_NUMBERS = st.sampled_from(
    [
        b"1e309", b"-1e400", b"1e-400", b"18446744073709551615", b"18446744073709551616",
        b"-9223372036854775809", b"1" * 310, b"0.1000000000000000055511151231257827", b"01", b"1.",
    ]
)  # fmt: skip
_STRINGS = st.text(max_size=6).map(lambda s: orjson.dumps(s))
_ODD_STRINGS = st.sampled_from(
    [
        b'"\\ud800"', b'"\\udc00"', b'"\\ud83d\\ude00"', b'"\\u0000"', b'"\\/"', b'"caf\xc3\xa9"',
        b'"\xff"', b'"\xed\xa0\x80"', b'"a\x01b"', b'"\\x"', b'"Pod"', b'"v1"', b'""',
    ]
)  # fmt: skip
_KEYS = st.sampled_from([b'"a"', b'"name"', b'"labels"', b'"annotations"', b'"kind"', b'"x"', b'"\\u0061"'])
_ODD = st.integers(0, 30).map(lambda n: n == 0)  # one draw in 31 is odd


def _values(depth: int = 3) -> st.SearchStrategy[bytes]:
    leaves = st.one_of(
        _NUMBERS, _STRINGS, st.sampled_from([b"true", b"false", b"null"]), _ODD.flatmap(_odd_leaf)
    )
    if depth == 0:
        return leaves
    inner = _values(depth - 1)
    return st.one_of(
        leaves,
        st.lists(inner, max_size=3).map(lambda vs: b"[" + b",".join(vs) + b"]"),
        st.lists(st.tuples(_KEYS, inner), max_size=3).map(_object),
    )


def _odd_leaf(odd: bool) -> st.SearchStrategy[bytes]:
    return st.one_of(_ODD_NUMBERS, _ODD_STRINGS) if odd else st.just(b"1")


def _object(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"{" + b",".join(k + b":" + v for k, v in pairs) + b"}"


_PLAIN = st.sampled_from(
    [
        b'{"name":"p","namespace":"ns","labels":{"app":"a"}}',
        b'{"name":"p","annotations":{"a":"1"}}',
        b'{"generateName":"p-","namespace":"ns","ownerReferences":[{"kind":"ReplicaSet","controller":true}]}',
        b"null",
    ]
)
_ODD_META = st.sampled_from([b'{"labels":null}', b'{"labels":[1]}', b"[]", b'{"annotations":"x"}', b"3"])
_SPECS = st.sampled_from(
    [
        b'{"containers":[{"name":"c","image":"i"}]}',
        b'{"containers":[{"name":"c","image":"i","securityContext":{"runAsUser":0}}]}',
        b'{"template":{"spec":{"containers":[]}}}',
    ]
)


@st.composite
def _items(draw: st.DrawFn) -> bytes:
    """A kubectl-shaped item, its keys in any order, sometimes one more, one missing or repeated,
    or a value of the wrong type."""
    fields = {
        "apiVersion": draw(st.sampled_from([b'"v1"', b'"apps/v1"'])),
        "kind": draw(st.sampled_from([b'"Pod"', b'"Deployment"', b'"ConfigMap"'])),
        "metadata": draw(_PLAIN),
        "spec": draw(st.one_of(_SPECS, _SPECS, _values(2))),
        "status": draw(_values()),
    }
    keys = draw(st.permutations(list(fields)))
    pairs = [(orjson.dumps(k), fields[k]) for k in keys]
    if draw(_ODD):
        pairs.pop(draw(st.integers(0, len(pairs) - 1)))
    if draw(_ODD):
        pairs.append((b'"apiVersion"', draw(st.sampled_from([b"1", b'""', b'"v2"']))))
    if draw(_ODD):
        pairs.append((b'"kind"', draw(st.sampled_from([b'""', b"null", b'"Pod"']))))
    if draw(_ODD):
        pairs.append((b'"metadata"', draw(st.one_of(_ODD_META, _PLAIN))))
    if draw(st.booleans()):
        pairs.insert(draw(st.integers(0, len(pairs))), (b'"data"', draw(_values(2))))
    return _object(pairs)


@st.composite
def _documents(draw: st.DrawFn) -> bytes:
    items = draw(st.lists(_items(), max_size=4))
    if draw(_ODD):
        items.insert(draw(st.integers(0, len(items))), draw(_values(1)))
    # replicas: equal items (a shared spec) are the common case
    items = items + items[: draw(st.integers(0, 2))]
    kind = draw(st.sampled_from([b'"List"', b'"PodList"', b'"Pod"', b"1"])) if draw(_ODD) else b'"List"'
    top = [(b'"apiVersion"', b'"v1"'), (b'"kind"', kind), (b'"items"', b"[" + b",".join(items) + b"]")]
    top = draw(st.permutations(top))
    if draw(st.booleans()):
        top.append((b'"metadata"', draw(_values(1))))
    if draw(_ODD):
        top.append((draw(st.sampled_from([b'"kind"', b'"items"'])), draw(_values(1))))
    blank = draw(st.sampled_from([b"", b" ", b"\n  "]))
    return blank + _object(top) + blank


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents())
def test_skim_gives_the_objects_of_the_full_read_without_status(data):
    _check_same(data)


def _pod(i: int, status: bytes = b'{"phase":"Running"}', spec: bytes | None = None) -> bytes:
    spec = spec or b'{"containers":[{"name":"c","image":"nginx"}]}'
    meta = b'{"name":"p%d","namespace":"ns"}' % i
    return (
        b'{"apiVersion":"v1","kind":"Pod","metadata":'
        + meta
        + b',"spec":'
        + spec
        + b',"status":'
        + status
        + b"}"
    )


def _list(*items: bytes) -> bytes:
    return b'{"apiVersion":"v1","kind":"List","items":[' + b",".join(items) + b"]}"


def test_a_kubectl_list_is_skimmed_and_replicas_share_their_spec():
    data = _list(_pod(0), _pod(1), _pod(2, spec=b'{"containers":[]}'))
    assert _check_same(data)
    result = LoadResult()
    skim_list(data, "f.json", result)
    a, b, c = result.objects
    assert "status" not in a.raw
    assert a.raw["spec"] is b.raw["spec"] and a.raw["spec"] is not c.raw["spec"]


@pytest.mark.parametrize(
    "status",
    [
        b'{"n":1e400}',  # orjson rejects the document (infinity): _load_bytes reads it as YAML
        b'{"n":-1e309}',
        b'{"n":' + b"9" * 320 + b"}",
        b'{"s":"\xff"}',  # not UTF-8: _load_bytes reports it
        b'{"s":"\xed\xa0\x80"}',
        b'{"s":"\\ud800"}',
        b'{"s":"a\x01"}',
        b'{"n":18446744073709551616}',  # orjson reads a float; simdjson refuses: read in full
        b"[" * 1100 + b"]" * 1100,  # deeper than orjson allows
        b'{"a":1,}',
    ],
)
def test_a_status_orjson_would_refuse_sends_the_file_to_the_full_read(status):
    data = _list(_pod(0), _pod(1, status=status))
    assert not _check_same(data)


@pytest.mark.parametrize(
    "data",
    [
        b'\xef\xbb\xbf{"apiVersion":"v1","kind":"List","items":[]}',  # byte order mark
        b'{"apiVersion":"v1","kind":"PodList","items":[{"metadata":{"name":"p"}}]}',  # kind added
        b'{"apiVersion":"v1","kind":"List","items":{}}',  # items not a list: an error
        b'{"apiVersion":"v1","kind":"List","items":[1]}',  # an item that is not a mapping
        b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}',  # not a List
        b'{"apiVersion":"v1","kind":"List"}',
        b'{"apiVersion":1,"kind":"List","items":[{"kind":"Pod"}]}',  # missing apiVersion
        b'{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","apiVersion":"v1","metadata":[]}]}',
        b'{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","apiVersion":"v1",'
        b'"metadata":{"labels":"x"}}]}',
        b"apiVersion: v1\nkind: List\nitems: []\n",  # YAML
        b'{"kind":"List","items":[]}\x00',
    ],
)
def test_what_skim_does_not_take(data):
    assert not _check_same(data)


def test_repeated_keys_take_the_last_value_in_the_first_place():
    item = b'{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"},"spec":{},"metadata":{"name":"b"}}'
    data = b'{"kind":"Pod","items":[],"kind":"List","items":[' + item + b"]}"
    assert _check_same(data)


@pytest.mark.parametrize("depth", range(1018, 1026))
def test_nesting_is_taken_exactly_as_deep_as_orjson_takes_it(depth):
    status = b'{"a":' * depth + b"1" + b"}" * depth
    _check_same(_list(_pod(0, status=status)))  # asserts that orjson takes what skim takes


def test_load_file_skims_only_when_asked(tmp_path):
    f = tmp_path / "pods.json"
    f.write_bytes(_list(_pod(0), _pod(1)))
    assert load_file(f, skim=True).skimmed
    full = load_file(f)
    assert not full.skimmed and full.objects[0].raw["status"] == {"phase": "Running"}


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["Pod", "Deployment", "CronJob"]),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=3), _JSON, max_size=2)),
    st.dictionaries(st.text(max_size=3), _JSON, max_size=3),
)
def test_content_key_with_a_memo_is_the_same_bytes(kind, annotations, spec):
    meta = {"name": "x"} if annotations is None else {"name": "x", "annotations": annotations}
    if kind == "Pod":
        raw = {"kind": kind, "metadata": meta, "spec": spec}
    elif kind == "Deployment":
        raw = {"kind": kind, "spec": {"template": {"metadata": meta, "spec": spec}}}
    else:
        raw = {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}
    memo = Memo()
    expected = content_key(raw)
    assert content_key(raw, memo) == expected
    assert content_key(raw, memo) == expected  # the spec's JSON from the memo
    other = json.loads(json.dumps(raw))  # an equal spec in another dict: same key
    assert content_key(other, memo) == content_key(other)
