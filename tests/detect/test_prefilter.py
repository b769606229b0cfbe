"""The rules' declared event facts (rules.facts, ``rule(..., when=...)``) are sound: a rule never
fires on an event lacking every fact it declares, so the pipeline may skip it there."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.detect.catalogue import CATALOGUE
from kubestrata.detect.event import AuditEvent
from kubestrata.detect.pipeline import DetectConfig, IPList, IPLists, Pipeline
from kubestrata.detect.rules import DETECTORS, Detector
from kubestrata.detect.rules.facts import Fact, event_facts
from kubestrata.detect.rules.falco_k8saudit import disallowed_user
from tests.detect.helpers import event

GUARDED = [d for d in DETECTORS if d.when is not None]

USERS = [
    "system:anonymous", "system:unauthenticated", "system:node:ip-10-0-1-2.ec2.internal",
    "system:serviceaccount:kube-system:aws-node", "system:serviceaccount:default:app",
    "system:kube-controller-manager", "system:kube-scheduler", "system:admin", "eks:node-manager",
    "aks:x", "alice@example.com", "kubernetes-admin", "admin", "arn:aws:iam::1:role/ci", "",
]  # fmt: skip
IPS = [
    "10.0.1.30", "192.168.1.1", "127.0.0.1", "100.64.0.1", "172.16.0.9", "fd00::1", "::1",
    "8.8.8.8", "1.2.3.4", "5.6.7.8", "52.95.110.1", "2606:4700::1111", "2001:db8::1", "not-an-ip", "",
]  # fmt: skip
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", ""]
RESOURCES = ["pods", "secrets", "configmaps", "nodes", "namespaces", "clusterrolebindings", "deployments",
             "serviceaccounts", "selfsubjectaccessreviews", "leases", ""]  # fmt: skip
URIS = ["/healthz", "/livez?verbose", "/readyz", "/version", "/api", "/apis", "/metrics",
        "/api/v1/secrets", "/api/v1/namespaces/default/pods", "/.well-known/openid-configuration"]  # fmt: skip


def _config(lists: bool) -> DetectConfig:
    """Every rule on, every count rule at threshold 1 (a single event can fire it)."""
    return DetectConfig(
        allowed_images=frozenset({"nginx"}),
        full_admin_users=frozenset({"admin", "kubernetes-admin", "alice@example.com"}),
        allowed_nodes=frozenset({"node-1"}),
        thresholds={rid: 1 for rid in CATALOGUE},
        ip_lists=IPLists(
            malicious=IPList(["1.2.3.4", "10.0.1.30"]), tor=IPList(["5.6.7.8"]), custom=IPList(["8.8.0.0/16"])
        )
        if lists
        else IPLists(cloud=IPList(["52.95.0.0/16"])),
    )


events = st.builds(
    lambda verb, resource, user, ips, code, decision, uri, stage, groups: event(
        verb,
        resource,
        user=user,
        ips=ips,
        code=code,
        decision=decision,
        uri=uri,
        stage=stage,
        groups=groups,
        name="x",
    ),  # fmt: skip
    st.sampled_from(VERBS),
    st.sampled_from(RESOURCES),
    st.sampled_from(USERS) | st.text(max_size=12),
    st.lists(st.sampled_from(IPS) | st.ip_addresses().map(str), max_size=3),
    st.sampled_from([200, 201, 101, 204, 301, 401, 403, 404, 409, 500]),
    st.sampled_from(["allow", "forbid", ""]),
    st.sampled_from(URIS) | st.none(),
    st.sampled_from(["ResponseComplete", "ResponseStarted"]),
    st.sampled_from(
        [None, ["system:authenticated"], ["system:nodes", "system:authenticated"], ["system:masters"]]
    ),
)


def _fires_without_its_facts(d: Detector, raw: dict[str, Any], lists: bool) -> list[str]:
    """The rule ids d raises on the event when it has none of d's declared facts (else [])."""
    pipe = Pipeline(_config(lists))
    ev = AuditEvent(raw)
    if d.when is None or d.when & event_facts(ev, pipe.ip_lists.any_loaded):
        return []
    return [h.rule_id for h in d.fn(ev, pipe) or ()]


def test_the_rules_for_every_event_declare_their_facts() -> None:
    # what the prefilter is for: no rule registered for every verb and resource runs on every event
    unguarded = [d.name for d in DETECTORS if d.verbs is None and d.resources is None and d.subresources is None
                 and d.when is None]  # fmt: skip
    assert not unguarded
    assert {d.name for d in GUARDED} >= {"disallowed_user", "anonymous_allowed", "gd_tactic_source"}


@pytest.mark.parametrize("lists", [False, True])
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=events)
def test_no_rule_fires_on_an_event_without_its_declared_facts(lists: bool, raw: dict[str, Any]) -> None:
    for d in GUARDED:
        assert not _fires_without_its_facts(d, raw, lists), (d.name, raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=events)
def test_the_pipeline_skips_only_what_cannot_fire(raw: dict[str, Any]) -> None:
    # the pipeline's findings equal those of every registered rule run on the event (the dispatch
    # key of verb, resource and stage applied, the facts not)
    pipe = Pipeline(_config(True))
    got = sorted(f.rule_id for f in pipe.process_obj(raw, "prefilter"))
    ev = AuditEvent(raw)
    ref = Pipeline(_config(True))
    want = sorted(
        h.rule_id
        for d in ref.detectors
        if d.accepts(ev.stage, ev.verb, ev.resource, ev.subresource)
        for h in d.fn(ev, ref) or ()
        if h.rule_id in ref.specs
    )
    assert got == want


def test_a_wrong_declaration_is_caught() -> None:
    # the check can fail: F01 declared as if it needed an anonymous user fires on alice's request
    wrong = Detector("wrong", ("KS-AUD-F01",), None, None, None, None, disallowed_user, int(Fact.ANONYMOUS))
    assert _fires_without_its_facts(wrong, event("get", "pods", user="alice@example.com"), False) == [
        "KS-AUD-F01"
    ]


def test_facts_of_events() -> None:
    def facts(**kw: Any) -> Fact:
        return Fact(event_facts(AuditEvent(event("get", "pods", **kw)), False))

    assert facts(user="system:node:n1", ips=["10.0.0.1"]) == Fact(0)
    assert facts(user="system:anonymous", ips=["10.0.0.1"]) == Fact.ANONYMOUS
    assert facts(user="alice", ips=["10.0.0.1", "8.8.8.8"]) == Fact.NON_SYSTEM_USER | Fact.PUBLIC_SOURCE
    assert facts(user="eks:node-manager", ips=[]) == Fact.NON_SYSTEM_USER
    assert Fact(event_facts(AuditEvent(event("get", "pods", user="system:x")), True)) == Fact.IP_LISTS
