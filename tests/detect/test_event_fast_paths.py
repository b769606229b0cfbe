"""The sixth pass's fast paths in reading an event and running its rules (issue 13), each proven
equal to the plain computation on random and hostile inputs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.rules import anomaly
from kubestrata.detect.rules.helpers import exempt
from kubestrata.detect.rules.registry import RULE_ERRORS, Hit
from kubestrata.detect.state import FirstSeen
from tests.detect.helpers import event

# -- the memo of known first-seen groups (rules/anomaly.py's _novelty) --


class _NeverSet(set):  # type: ignore[type-arg]
    """A known_groups that remembers nothing: every request asks for each of its keys."""

    def __contains__(self, item: object) -> bool:
        return False


def _plain_novelty(ev: AuditEvent, ctx: Any) -> list[str]:
    """_novelty as it was before the memo: three keys built and asked for."""
    user, first_seen = ev.user, ctx.first_seen
    res = ev.resource + ("/" + ev.subresource if ev.subresource else "")
    new = []
    if first_seen("user-verb-resource", f"{user}|{ev.verb}|{res}"):
        new.append(f"first {ev.verb} {res} by {user}")
    ua = ev.user_agent.partition(" ")[0].partition("/")[0]
    if ua and first_seen("user-agent", f"{user}|{ua}"):
        new.append(f"first user agent {ua!r} for {user}")
    ips = ev.source_ips
    net = anomaly._source_network(ips[-1] if ips else "")
    if net is not None and (net[1] or "system:serviceaccounts" not in ev.groups):
        if first_seen("source-network", f"{user}|{net[0]}"):
            new.append(f"first request from {net[0]} for {user}")
    return new


_REQUEST = st.tuples(
    st.sampled_from(["alice", "bob", "system:serviceaccount:ns:sa", "a|b", ""]),
    st.sampled_from(["create", "get", "list"]),
    st.sampled_from([("pods", "exec"), ("secrets", ""), ("pods", "")]),
    st.sampled_from(["kubectl/v1.29 (linux)", "kubectl/v1.30", "curl/8", "", " x", "/y"]),
    st.lists(
        st.sampled_from(["10.0.0.1", "10.0.1.9", "8.8.8.8", "2001:db8::1", "2a00:1450::1", "", "x"]),
        max_size=2,
    ),  # fmt: skip
    st.sampled_from([[], ["system:serviceaccounts"], ["system:authenticated", "system:serviceaccounts"]]),
)


def _event_of(req: tuple) -> AuditEvent:
    user, verb, (res, sub), ua, ips, groups = req
    raw = event(verb, res, subresource=sub or None, user=user, user_agent=ua, ips=ips, groups=groups,
                stage="ResponseStarted", code=101)  # fmt: skip
    raw["user"]["groups"] = groups  # (helpers.event puts system:authenticated in an empty list)
    return AuditEvent(raw)


def _pair(urls: tuple[str | None, str | None] = (None, None)) -> tuple[Pipeline, Pipeline]:
    """A pipeline with the memo and one without (each on its state database when given)."""
    memo, plain = (Pipeline(DetectConfig(state_url=u)) for u in urls)
    plain.first_seen_state.known_groups = _NeverSet()
    return memo, plain


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_REQUEST, max_size=40), st.integers(2, 12), st.booleans())
def test_known_groups_answer_as_the_keys_do(
    monkeypatch: pytest.MonkeyPatch, requests: list[tuple], max_cache: int, learning: bool
) -> None:
    """A small cache forgets keys often (in memory, a forgotten key is new again): the memo never
    answers for a group whose keys were forgotten, and both pipelines keep the same state."""
    monkeypatch.setattr(FirstSeen, "MAX_CACHE", max_cache)
    memo, plain = _pair()
    for p in (memo, plain):
        p.learning = learning
    for req in requests * 2:  # (each request again: the second time, the memo can answer)
        ev = _event_of(req)
        want = _plain_novelty(ev, plain)
        assert anomaly._novelty(ev, memo) == want
        assert memo.first_seen_state._known == plain.first_seen_state._known
        assert memo.first_seen_state.forgets == plain.first_seen_state.forgets


def test_known_groups_are_used_and_forgotten_with_the_keys(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The memo answers a repeated request (else the test above proves little), and is emptied when
    the cache forgets keys; on a state database the answers are the database's, as before."""
    p = Pipeline()
    ev = _event_of(("alice", "create", ("pods", "exec"), "kubectl/v1.29", ["8.8.8.8"], []))
    other = _event_of(("bob", "create", ("pods", "exec"), "curl/8", ["10.0.0.1"], []))
    assert len(anomaly._novelty(ev, p)) == 3
    assert anomaly._novelty(ev, p) == [] and len(p.first_seen_state.known_groups) == 1
    p.first_seen_state.known_groups.add("sentinel")
    monkeypatch.setattr(FirstSeen, "MAX_CACHE", len(p.first_seen_state._known))
    assert len(anomaly._novelty(other, p)) == 3  # the cache was full: it forgot alice's keys
    assert p.first_seen_state.forgets == 1 and "sentinel" not in p.first_seen_state.known_groups
    assert len(anomaly._novelty(ev, p)) == 3  # in memory, forgotten keys are new again

    # on a database larger than the cache, a miss asks the database, with or without the memo
    monkeypatch.setattr(FirstSeen, "MAX_CACHE", 2)
    urls = (f"sqlite:///{tmp_path}/memo.db", f"sqlite:///{tmp_path}/plain.db")
    for url in urls:
        seed = Pipeline(DetectConfig(state_url=url))
        assert len(anomaly._novelty(ev, seed)) == 3
        seed.close()
        assert seed.engine is not None
        seed.engine.dispose()
    memo, plain = _pair(urls)
    used = False
    assert not memo.first_seen_state._complete
    monkeypatch.setattr(FirstSeen, "MAX_CACHE", 4)  # (room for one request's keys, not two)
    for e in (ev, other, ev, other, ev):
        assert anomaly._novelty(e, memo) == _plain_novelty(e, plain)
        used = used or bool(memo.first_seen_state.known_groups)
    assert used
    assert memo.first_seen_state.forgets > 0
    for x in (memo, plain):
        x.close()
        assert x.engine is not None
        x.engine.dispose()


def test_a_group_is_not_recorded_when_keys_are_forgotten_while_it_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database answer can say "known" after the cache forgot the group's earlier keys (which an
    outage may then report as new again): such a group is not recorded."""
    p = Pipeline()
    state = p.first_seen_state
    asked: list[str] = []

    def first_seen(dimension: str, key: str) -> bool:
        asked.append(dimension)
        if len(asked) == 2:  # the cache forgets everything, and the database knows the key
            state._known.clear()
            state.known_groups.clear()
            state.forgets += 1
        return False

    monkeypatch.setattr(p, "first_seen", first_seen)
    ev = _event_of(("alice", "create", ("pods", "exec"), "kubectl/v1.29", ["8.8.8.8"], []))
    assert anomaly._novelty(ev, p) == [] and len(asked) == 3
    assert not state.known_groups
    assert anomaly._novelty(ev, p) == [] and len(asked) == 6  # asked again
    assert state.known_groups  # and recorded, this time


# -- anomalous_exec: the exemption asked after the known groups (rules/anomaly.py) --


def _plain_anomalous_exec(ev: AuditEvent, ctx: Any) -> list[Hit] | None:
    """anomalous_exec as it was: the exemption asked first, then the command, then _novelty."""
    code = ev.code
    if (code is None or code == 101 or 200 <= code < 300) and not exempt(ev, ctx, "KS-AUD-G42"):
        cmd = ev.exec_command()
        new = anomaly._novelty(ev, ctx)
        if new and not ctx.learning:
            return [Hit("KS-AUD-G42", f"unusual exec into {ev.namespace}/{ev.name} (" + "; ".join(new) + ")",
                        [("requestURI?command", cmd), ("anomaly", new)])]  # fmt: skip
    return None


def _outcome(fn: Any, ev: AuditEvent, ctx: Any) -> Any:
    try:
        hits = fn(ev, ctx)
    except RULE_ERRORS as e:
        return ("raised", type(e), str(e))
    return [(h.rule_id, h.message, h.evidence, h.severity) for h in hits or ()]


_EXEC = st.tuples(
    # control-plane names: exempt from KS-AUD-G42 by name, or not (a kubelet: named for other rules)
    st.sampled_from(["alice", "system:kube-controller-manager", "system:apiserver", "system:node:n1", "bob"]),
    st.sampled_from(["kubectl/v1.29 (linux)", "curl/8", ""]),
    st.sampled_from([["10.0.0.1"], ["8.8.8.8"], []]),
    st.sampled_from([[], ["system:nodes"], ["system:serviceaccounts"]]),
    st.sampled_from([101, 200, 403, None]),
    # a URI whose command reads, and one urlsplit refuses (exec_command raises)
    st.sampled_from(["/api/v1/namespaces/ns/pods/p/exec?command=sh", "http://[x/?command=sh"]),
    st.booleans(),  # learning
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_EXEC, max_size=30))
def test_anomalous_exec_answers_as_with_the_exemption_asked_first(requests: list[tuple]) -> None:
    """The same hits, the same exceptions and the same first-seen state, whoever asks, whatever the
    command, repeated requests included (a known group is then answered before the exemption)."""
    fast, plain = Pipeline(), Pipeline()
    for user, ua, ips, groups, code, uri, learning in requests * 2:
        raw = event("create", "pods", subresource="exec", user=user, user_agent=ua, ips=ips, groups=groups,
                    stage="ResponseStarted", uri=uri)  # fmt: skip
        raw["user"]["groups"] = groups
        raw["responseStatus"] = {"code": code} if code is not None else None
        fast.learning = plain.learning = learning
        got = _outcome(anomaly.anomalous_exec, AuditEvent(raw), fast)
        assert got == _outcome(_plain_anomalous_exec, AuditEvent(raw), plain)
        assert fast.first_seen_state._known == plain.first_seen_state._known


# -- the exec command of the request URI (AuditEvent._query_command) --

_URI = st.text(alphabet=st.sampled_from(list("/?#&=%+2009aAcdmnosh[]:@-. \t\r\n\x01\x7f") + ["é", "\u2028"]),
               max_size=40)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(["/", "//", "/api/v1/namespaces/ns/pods/p/exec", "", "x", " /", "\t/"]),
       _URI, st.lists(st.sampled_from(["sh", "-c", "a b", "%41", "+", "=&", "\t", "é"]), max_size=3))  # fmt: skip
def test_query_command_equals_parse_qs_on_hostile_uris(head: str, tail: str, args: list[str]) -> None:
    from urllib.parse import parse_qs, quote, urlsplit

    uri = head + "?" + "&".join("command=" + (quote(a) if len(a) % 2 else a) for a in args) + tail
    ev = AuditEvent(event("create", "pods", subresource="exec", uri=uri))
    try:
        want = parse_qs(urlsplit(uri).query, keep_blank_values=True).get("command") or []
    except ValueError:  # an authority urlsplit refuses: only of "//", where the query is read as before
        assert uri.startswith("//")
        return
    assert ev._query_command() == want
    # the query's commands remembered (event._QUERY_COMMANDS): read again, of another pod's URI too
    again = AuditEvent(event("create", "pods", subresource="exec", uri=uri))._query_command()
    assert again == want
    if uri.startswith("/") and "?" in uri and "#" not in uri.split("?", 1)[0]:
        other = "/api/v1/namespaces/other/pods/q/exec" + uri[uri.index("?") :]
        assert AuditEvent(event("create", "pods", subresource="exec", uri=other))._query_command() == (
            parse_qs(urlsplit(other).query, keep_blank_values=True).get("command") or []
        )


def test_a_remembered_query_gives_a_fresh_list_and_long_ones_are_not_kept() -> None:
    from kubestrata.detect import event as event_module

    def read(uri: str) -> list[str]:
        return AuditEvent(event("create", "pods", subresource="exec", uri=uri))._query_command()

    first, second = read("/p?command=sh&command=-c"), read("/q?command=sh&command=-c")
    assert first == second == ["sh", "-c"] and first is not second
    long = "command=x&" + "a" * 5000
    assert read("/p?" + long) == ["x"] and long not in event_module._QUERY_COMMANDS
    assert read("/p?command=a\tb") == ["ab"] and "command=a\tb" not in event_module._QUERY_COMMANDS


def test_query_command_reads_what_urlsplit_keeps() -> None:
    def command(uri: str) -> list[str]:
        return AuditEvent(event("create", "pods", subresource="exec", uri=uri))._query_command()

    assert command("/p?comm\tand=ls&command=a\nb") == ["ls", "ab"]  # (urlsplit deletes tabs and line breaks)
    assert command("/p\t?command=\x01ls\x7f") == ["\x01ls\x7f"]  # (and keeps other control characters)
    assert command("//h/p?command=id#command=x") == ["id"]
    assert command("//[x/p?command=id") == ["id"]  # (as before: urlsplit would refuse the authority)
