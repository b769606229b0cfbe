"""Sliced and whole-set evaluation give the same decision, reasons and errors."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.authz import AdmissionPolicyEvaluator, Authorizer, PolicyStore
from kubestrata.authz.authorizer import request_entities
from kubestrata.authz.entities import sar_to_request
from kubestrata.authz.slicing import constraints_of
from kubestrata.authz.synthetic import policy_set, review

HAND_WRITTEN = """
permit (principal, action, resource);
forbid (principal == k8s::User::"mallory", action, resource);
forbid (principal is k8s::Node, action in [k8s::Action::"delete"], resource is k8s::Resource)
  when { resource.resource == "nodes" };
permit (principal in k8s::Group::"team-1", action == k8s::Action::"get", resource is k8s::NonResourceURL);
permit (principal, action, resource is k8s::Resource) when { resource has name && resource.name == "obj-1" };
forbid (principal, action in k8s::admission::Action::"all", resource is core::v1::ConfigMap)
  when { principal.name == "user-3" };
permit (principal, action, resource == k8s::Resource::"/api/v1/namespaces/ns1/pods/obj-2");
permit (principal, action == k8s::Action::"impersonate", resource in k8s::Group::"team-2");
"""

STORE = PolicyStore.from_text(policy_set(600, seed=7) + HAND_WRITTEN, "synthetic.cedar")
SLICED = Authorizer(STORE, system_users_no_opinion=False)
WHOLE = Authorizer(STORE, system_users_no_opinion=False, sliced=False)


def outcome(req) -> tuple:
    tier = STORE.snapshot.tiers[0]
    ents = request_entities(req)
    a = tier.evaluate(req, ents, sliced=True)
    b = tier.evaluate(req, ents, sliced=False)
    return (a.decision, sorted(a.reasons), sorted(a.errors)), (
        b.decision,
        sorted(b.reasons),
        sorted(b.errors),
    )


def test_index_extracts_constraints() -> None:
    tier = STORE.snapshot.tiers[0]
    constrained = [c for c in tier.index.constraints.values() if c.actions is not None]
    assert len(constrained) > 500
    assert sum(c.principal_name is not None for c in tier.index.constraints.values()) > 100
    assert sum(c.k8s_resources is not None for c in tier.index.constraints.values()) > 400


def test_slices_are_small() -> None:
    rnd = random.Random(3)
    tier = STORE.snapshot.tiers[0]
    sizes = [len(tier.index.slice(sar_to_request(review(rnd)))) for _ in range(200)]
    assert max(sizes) < 40, max(sizes)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.integers(0, 2**32), st.sampled_from(["mallory", "user-3", "user-5", "system:node:n1"]), st.booleans()
)
def test_sliced_equals_whole_set(seed: int, user: str, override: bool) -> None:
    rnd = random.Random(seed)
    sar = review(rnd)
    if override:
        sar["spec"]["user"] = user
    if rnd.random() < 0.2:  # impersonating, sometimes oneself (then the resource has the user's groups)
        target = sar["spec"]["user"] if rnd.random() < 0.5 else "user-9"
        sar["spec"]["groups"].append("team-2")
        sar["spec"]["resourceAttributes"] = {
            "verb": "impersonate",
            "group": "authentication.k8s.io",
            "resource": "users",
            "name": target,
        }
        sar["spec"].pop("nonResourceAttributes", None)
    a, b = outcome(sar_to_request(sar))
    assert a == b
    assert SLICED.decide(sar) == WHOLE.decide(sar)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["CREATE", "UPDATE", "DELETE"]), st.sampled_from(["user-3", "user-4"]), st.booleans())
def test_sliced_equals_whole_set_admission(op: str, user: str, owner: bool) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"owner": user} if owner else {}},
    }
    req = {
        "uid": "u",
        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "operation": op,
        "namespace": "ns1",
        "name": "c",
        "userInfo": {"username": user, "groups": ["team-1", "team-2", "team-3"]},
        "object": None if op == "DELETE" else obj,
        "oldObject": None if op == "CREATE" else obj,
    }
    assert AdmissionPolicyEvaluator(STORE).evaluate(req) == AdmissionPolicyEvaluator(
        STORE, sliced=False
    ).evaluate(req)


def test_unrecognised_condition_stops_indexing() -> None:
    """A conjunct after an unrecognised one is not used: the unrecognised one might error first."""
    import json

    import cedarpy

    est = json.loads(
        cedarpy.policies_to_json_str(
            "permit (principal, action, resource is k8s::Resource) when { resource has name && "
            'resource.name like "a*" && resource.resource == "pods" };'
        )
    )["staticPolicies"]["policy0"]
    c = constraints_of(est)
    assert c.k8s_resources is None and c.resource_types == frozenset(["k8s::Resource"])


def test_two_level_slice_equals_filtering_every_policy() -> None:
    """The slice of a request (its principal-independent candidates, shared by every principal, then
    filtered by principal) is exactly the policies whose action and constraints admit it, for principals seen
    before and never seen, impersonation of one's own group included."""
    from kubestrata.authz.slicing import SliceIndex, ekey

    tier = STORE.snapshot.tiers[0]
    fresh = SliceIndex(tier.index.constraints.items())
    rnd = random.Random(11)
    reqs = []
    for i in range(400):
        sar = review(rnd)
        if i % 3 == 0:
            sar["spec"]["user"] = f"never-seen-{i}"
        if i % 50 == 0:
            sar["spec"] = {
                "user": "user-1",
                "groups": ["team-2"],
                "resourceAttributes": {"verb": "impersonate", "resource": "groups", "name": "team-2"},
            }
        reqs.append(sar_to_request(sar))
    for req in reqs + reqs:  # the second pass hits the memos
        want = tuple(
            p
            for p, c in fresh.constraints.items()
            if (c.actions is None or ekey(req.action) in c.actions) and c.admits(req, ekey(req.resource))
        )
        assert fresh.slice(req) == want
