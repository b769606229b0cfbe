from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.detect.decode import gke_to_event
from kubestrata.detect.event import AuditEvent, BadEvent
from kubestrata.detect.pipeline import Pipeline
from tests.detect.helpers import event, rule_ids


def test_v1_and_v1beta1_events_parse() -> None:
    for api in ("audit.k8s.io/v1", "audit.k8s.io/v1beta1"):
        ev = AuditEvent(event("create", "pods", api_version=api, code=201, name="x"))
        assert (ev.verb, ev.resource, ev.namespace, ev.name, ev.code, ev.success) == (
            "create",
            "pods",
            "default",
            "x",
            201,
            True,
        )


@pytest.mark.parametrize(
    "mutate, field",
    [
        ({"kind": 0}, "kind"),
        ({"apiVersion": "audit.k8s.io/v2"}, "apiVersion"),
        ({"verb": 5}, "verb"),
        ({"user": "alice"}, "user"),
        ({"user": {"username": ["a"]}}, "user.username"),
        ({"user": {"username": "a", "groups": "g"}}, "user.groups"),
        ({"sourceIPs": [1]}, "sourceIPs[0]"),
        ({"objectRef": {"resource": 3}}, "objectRef.resource"),
        ({"responseStatus": {"code": "200"}}, "responseStatus.code"),
        ({"stage": "Sometime"}, "stage"),
        ({"requestObject": []}, "requestObject"),
    ],
)
def test_wrong_field_types_are_named(mutate: dict, field: str) -> None:
    raw = event()
    raw.update(mutate)
    with pytest.raises(BadEvent) as ei:
        AuditEvent(raw)
    assert ei.value.field == field


def test_eventlist_and_dedup_on_auditid_and_stage() -> None:
    a = event("create", "pods", subresource="exec", name="p", stage="ResponseStarted", code=101)
    b = dict(a, stage="ResponseComplete")
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [a, a, b, b]}
    pipe = Pipeline()
    findings = pipe.process_obj(body)
    assert pipe.stats.events == 4 and pipe.stats.duplicates == 2
    # exec rules fire at ResponseStarted only: once, not once per stage
    assert sum(f.rule_id == "KS-AUD-F11" for f in findings) == 1
    assert [f.event.stage for f in findings if f.rule_id == "KS-AUD-F11"] == ["ResponseStarted"]


def test_most_rules_only_at_response_complete() -> None:
    pipe = Pipeline()
    ro = {"kind": "ClusterRoleBinding", "roleRef": {"name": "cluster-admin"}, "subjects": []}
    started = event(
        "create", "clusterrolebindings", namespace=None, stage="RequestReceived", request_object=ro
    )
    assert "KS-AUD-F18" not in rule_ids(pipe.process_obj(started))
    complete = dict(started, stage="ResponseComplete")
    assert "KS-AUD-F18" in rule_ids(pipe.process_obj(complete))


def test_exec_command_decoded_from_request_uri() -> None:
    uri = "/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c&command=cat%20%2Fetc%2Fshadow&stdout=true"
    ev = AuditEvent(
        event("create", "pods", subresource="exec", name="p", uri=uri, stage="ResponseStarted", code=101)
    )
    assert ev.exec_command() == ["sh", "-c", "cat /etc/shadow"]
    findings = Pipeline().process_obj(ev.raw)
    n08 = [f for f in findings if f.rule_id == "KS-AUD-N08"]
    assert n08 and n08[0].evidence[0].observed == ["sh", "-c", "cat /etc/shadow"]


def test_gke_resource_names() -> None:
    ev = gke_to_event(
        {
            "protoPayload": {
                "serviceName": "k8s.io",
                "methodName": "io.k8s.core.v1.pods.exec.create",
                "resourceName": "core/v1/namespaces/prod/pods/db/exec",
                "authenticationInfo": {"principalEmail": "me@example.com"},
                "requestMetadata": {"callerIP": "8.8.8.8"},
                "status": {"code": 7},
            },
            "operation": {"id": "abc"},
        }
    )
    assert ev["verb"] == "create" and ev["responseStatus"]["code"] == 403 and ev["auditID"] == "abc"
    assert ev["objectRef"] == {
        "apiGroup": "",
        "apiVersion": "v1",
        "namespace": "prod",
        "resource": "pods",
        "name": "db",
        "subresource": "exec",
    }


def test_aks_wrapper_and_records() -> None:
    inner = event("create", "daemonsets", code=201, name="d")
    rec = {"category": "kube-audit", "properties": {"log": orjson.dumps(inner).decode()}}
    pipe = Pipeline()
    assert "KS-AUD-N05" in rule_ids(pipe.process_obj({"records": [rec]}))


def test_gcp_non_k8s_entries_are_ignored_not_bad() -> None:
    pipe = Pipeline()
    pipe.process_obj({"protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "x"}})
    assert pipe.stats.ignored == 1 and pipe.stats.bad_total == 0


# -- the plain read and the checked read agree (AuditEvent._read_plain, _read_checked) ---------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6,
)
_strs = st.sampled_from(
    ["", "Event", "EventList", "audit.k8s.io/v1", "audit.k8s.io/v2", "ResponseComplete", "Panic", "Bogus",
     "get", "patch", "create", "/api/v1/pods", "alice", "pods", "10.0.0.1"]
)  # fmt: skip
_value = _strs | _json
_user = (
    st.fixed_dictionaries(
        {},
        optional={
            "username": _value,
            "groups": st.lists(_value, max_size=3) | _json,
            "extra": _json,
            "uid": _value,
        },
    )
    | _json
)
_ref = st.fixed_dictionaries({}, optional={k: _value for k in ("resource", "subresource", "namespace", "name", "apiGroup")}) | _json  # fmt: skip
_status = st.fixed_dictionaries({}, optional={"code": st.sampled_from([200, 403, True, 1.0]) | _json}) | _json
_TOP = ["kind", "apiVersion", "auditID", "stage", "level", "verb", "requestURI", "userAgent", "stageTimestamp",
        "requestReceivedTimestamp", "timestamp", "user", "impersonatedUser", "objectRef", "responseStatus",
        "sourceIPs", "annotations", "requestObject", "responseObject"]  # fmt: skip
_NESTED = {"user": ["username", "groups", "extra", "uid"], "objectRef": ["resource", "subresource", "namespace", "name",
           "apiGroup"], "responseStatus": ["code"]}  # fmt: skip
_change = st.one_of(
    st.tuples(
        st.sampled_from(_TOP), st.just(""), _value | _user | _ref | _status | st.lists(_value, max_size=3)
    ),
    st.sampled_from(sorted(_NESTED)).flatmap(
        lambda k: st.tuples(st.just(k), st.sampled_from(_NESTED[k]), _value | st.lists(_value, max_size=3))
    ),
    st.tuples(st.sampled_from(_TOP), st.just(""), st.just(KeyError)),  # the field removed
)


@st.composite
def _raw(draw: st.DrawFn) -> dict:
    """A usual event (helpers.event) with up to three fields changed to anything JSON can hold."""
    raw = event(
        draw(st.sampled_from(["get", "list", "create", "patch", ""])),
        draw(st.sampled_from(["pods", "secrets", ""])),
        user=draw(_strs),
        ips=draw(st.lists(st.sampled_from(["10.0.0.1", "8.8.8.8", ""]), max_size=2)),
        code=draw(st.sampled_from([200, 403])),
        stage=draw(st.sampled_from(["ResponseComplete", "ResponseStarted", ""])),
        request_object=draw(st.none() | st.just({"kind": "Pod"})),
    )
    for top, sub, value in draw(st.lists(_change, max_size=3)):
        target = raw.get(top) if sub else raw
        if type(target) is not dict:
            continue
        key = sub or top
        if value is KeyError:
            target.pop(key, None)
        else:
            target[key] = value
    return raw


def _read(raw: dict, plain: bool) -> tuple | str:
    ev = AuditEvent.__new__(AuditEvent)
    try:
        if not (plain and ev._read_plain(raw)):
            ev._read_checked(raw)
    except BadEvent as e:
        return f"bad: {e}"
    return tuple(getattr(ev, k) for k in AuditEvent.__slots__ if k not in ("_raw", "cluster", "_query", "_command",
                                                                              "_epoch", "produced", "_memo", "_line"))  # fmt: skip


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_raw())
def test_the_plain_read_agrees_with_the_checked_one(raw: dict) -> None:
    assert _read(raw, plain=True) == _read(raw, plain=False)


def test_the_plain_read_takes_the_usual_event() -> None:
    ev = AuditEvent.__new__(AuditEvent)
    assert ev._read_plain(
        event("get", "pods", ips=["10.0.0.1", "8.8.8.8"])
    )  # (else the test above proves little)
    assert not ev._read_plain(event("get", "pods", ips=["10.0.0.1", 5]))  # type: ignore[list-item]
    assert (
        _read(event("get", "pods", ips=["10.0.0.1", 5]), True)
        == "bad: sourceIPs[1]: expected a string, got int"
    )  # type: ignore[list-item]


def test_exec_command_parsed_once_per_query_and_owned_by_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubestrata.detect import event as event_module

    parsed: list[str] = []
    plain = event_module._commands
    monkeypatch.setattr(event_module, "_commands", lambda q: parsed.append(q) or plain(q))
    uri = "/api/v1/namespaces/ns/pods/{}/exec?command=sh&command=-c&command=cat%20%2Fetc%2Fshadow&stdin=true"
    raw = event("create", "pods", subresource="exec")
    event_module._QUERY_COMMANDS.clear()
    first = AuditEvent({**raw, "requestURI": uri.format("a")}).exec_command()
    second_ev = AuditEvent({**raw, "requestURI": uri.format("b")})
    second = second_ev.exec_command()
    assert len(parsed) == 1  # (the second event's query was remembered)
    assert first == second == ["sh", "-c", "cat /etc/shadow"]
    first.append("x")  # a rule's list is its own: the next event's command is not changed
    assert AuditEvent({**raw, "requestURI": uri.format("c")}).exec_command() == [
        "sh",
        "-c",
        "cat /etc/shadow",
    ]
    long_uri = uri.format("d") + "&x=" + "y" * 5000  # beyond the remembered length: parsed anew, same answer
    assert AuditEvent({**raw, "requestURI": long_uri}).exec_command() == ["sh", "-c", "cat /etc/shadow"]


def test_cloud_iam_uid_read_without_decoding_the_line() -> None:
    """cloud_iam_user reads user.uid from the event, not from ``raw`` (a wire-read line stays undecoded)."""
    from kubestrata.detect.rules.helpers import cloud_iam_user
    from kubestrata.detect.wire import read_event

    for uid, iam in (
        ("aws-iam-authenticator:123:AROA", True),
        ("heptio-authenticator-aws:x", True),
        ("u-1", False),
    ):
        raw = event("get", "secrets", user="system:kube-controller-manager")
        raw["user"]["uid"] = uid
        ev = read_event(orjson.dumps(raw))
        assert ev is not None and cloud_iam_user(ev) is iam
        assert ev._raw is None  # (never decoded)
        assert cloud_iam_user(AuditEvent(raw)) is iam
    raw = event("get", "secrets")
    raw["user"]["uid"] = 5  # not a string: not an IAM uid, and the event is still read
    assert AuditEvent(raw).user_uid == "" and not cloud_iam_user(AuditEvent(raw))
