"""Cedar admission forbids: the reference demo's label enforcement, Action::"all", fail closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.authz import (
    AdmissionPolicyEvaluator,
    InvalidReview,
    PolicySource,
    PolicyStore,
    admission_response,
)


def demo_store(conformance: Path) -> PolicyStore:
    """label-enforcement-policy from the reference demo (the policy set that validates)."""
    docs = yaml.safe_load_all((conformance / "cedar" / "demo" / "admission-policy.yaml").read_text())
    (doc,) = [d for d in docs if d["metadata"]["name"] == "label-enforcement-policy"]
    store = PolicyStore()
    store.load_sources([[PolicySource("Policy/label-enforcement-policy", "demo", doc["spec"]["content"])]])
    return store


def request(
    op: str, user: str, new_owner: str | None, old_owner: str | None, groups=("requires-labels",)
) -> dict:
    def cm(owner: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": "cm", "namespace": "default"}
        if owner is not None:
            meta["labels"] = {"owner": owner}
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}

    return {
        "uid": "0b7f",
        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "namespace": "default",
        "name": "cm",
        "operation": op,
        "userInfo": {"username": user, "groups": list(groups)},
        "object": None if op == "DELETE" else cm(new_owner),
        "oldObject": None if op == "CREATE" else cm(old_owner),
    }


@pytest.mark.parametrize(
    "op,new,old,denied_by",
    [
        ("CREATE", "sample-user", None, []),
        ("CREATE", None, None, ["#2"]),
        ("CREATE", "someone", None, ["#2"]),
        ("UPDATE", "sample-user", "sample-user", []),
        ("UPDATE", "sample-user", "someone", ["#3"]),  # ownership: old object's owner label decides
        ("UPDATE", None, "someone", ["#2", "#3"]),
        ("DELETE", None, "sample-user", []),
        ("DELETE", None, "someone", ["#2"]),
    ],
)
def test_reference_demo_label_enforcement(conformance: Path, op: str, new, old, denied_by: list[str]) -> None:
    d = AdmissionPolicyEvaluator(demo_store(conformance)).evaluate(request(op, "sample-user", new, old))
    assert d.allowed is (not denied_by)
    assert [pid.rsplit("#", 1)[1][:1] for pid, _ in d.denials] == [x[1:] for x in denied_by]
    assert all(pid.startswith("Policy/label-enforcement-policy#") for pid, _ in d.denials)


def test_users_outside_the_group_are_not_affected(conformance: Path) -> None:
    d = AdmissionPolicyEvaluator(demo_store(conformance)).evaluate(
        request("CREATE", "other", None, None, groups=("devs",))
    )
    assert d.allowed and not d.denials


def test_action_all_parent_and_messages() -> None:
    store = PolicyStore.from_text(
        '@id("no-prod") @message("names starting with prod are reserved")\n'
        'forbid (principal, action in k8s::admission::Action::"all", resource is core::v1::ConfigMap)\n'
        'when { resource has metadata && resource.metadata has name && resource.metadata.name like "prod*" };',
        "adm.cedar",
    )
    ev = AdmissionPolicyEvaluator(store)
    req = request("CREATE", "u", "u", None)
    req["object"]["metadata"]["name"] = "prod-db"
    d = ev.evaluate(req)
    assert d.denials == [('adm.cedar#0 (@id "no-prod")', "names starting with prod are reserved")]
    for op in ("UPDATE", "DELETE"):
        r = request(op, "u", "u", "u")
        for k in ("object", "oldObject"):
            if r[k]:
                r[k]["metadata"]["name"] = "prod-db"
        assert ev.evaluate(r).allowed is False
    assert ev.evaluate(request("CREATE", "u", "u", None)).allowed is True


def test_erroring_forbid_fails_closed(conformance: Path) -> None:
    ev = AdmissionPolicyEvaluator(demo_store(conformance))
    req = request("UPDATE", "sample-user", "sample-user", "sample-user")
    req["oldObject"]["metadata"]["labels"] = {"owner": 5}  # not a string map: the forbid errors
    d = ev.evaluate(req)
    assert d.allowed is False and d.errors
    assert "could not be evaluated" in d.denials[0][1]


def test_admission_review_response_and_bad_input(conformance: Path) -> None:
    ev = AdmissionPolicyEvaluator(demo_store(conformance))
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request("CREATE", "sample-user", None, None),
    }
    out = admission_response(review, ev)
    assert out["response"]["uid"] == "0b7f" and out["response"]["allowed"] is False
    assert out["response"]["status"]["code"] == 403
    assert "Policy/label-enforcement-policy#2" in out["response"]["status"]["message"]
    del review["request"]["uid"]
    with pytest.raises(InvalidReview, match="uid"):
        admission_response(review, ev)
    with pytest.raises(InvalidReview, match="operation"):
        ev.evaluate({**request("CREATE", "u", None, None), "operation": "PATCH"})
    with pytest.raises(InvalidReview, match="object must be an object"):
        ev.evaluate({**request("CREATE", "u", None, None), "object": None})


def test_object_maps_become_key_value_sets_and_escapes_are_dropped() -> None:
    from kubestrata.authz.entities import admission_to_request

    req = request("CREATE", "u", "me", None)
    req["object"]["spec"] = {"__entity": {"type": "k8s::Group", "id": "x"}, "ratio": 0.5, "n": 3}
    ent = admission_to_request(req).entities[-2]
    assert ent["uid"]["type"] == "core::v1::ConfigMap"
    assert ent["attrs"]["metadata"]["labels"] == [{"key": "owner", "value": "me"}]
    assert ent["attrs"]["data"] == [{"key": "k", "value": "v"}]
    assert ent["attrs"]["spec"] == {"n": 3}


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(
            st.sampled_from(["a", "labels", "data", "__entity", "spec", "metadata"]), c, max_size=4
        )
    ),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(JSONISH, st.sampled_from(["object", "metadata", "labels", "userInfo", "kind", "root"]))
def test_fuzzed_admission_requests_decide_or_raise_invalid_review(junk, where: str) -> None:
    store = PolicyStore.from_text(
        'forbid (principal, action in k8s::admission::Action::"all", resource is core::v1::ConfigMap) '
        "unless { resource has metadata && resource.metadata has labels && "
        'resource.metadata.labels.contains({"key": "owner", "value": principal.name}) };',
        "f.cedar",
    )
    req = request("UPDATE", "u", "u", "u")
    if where == "root":
        req = junk
    elif where == "object":
        req["object"] = junk
    elif where == "metadata":
        req["object"]["metadata"] = junk
    elif where == "labels":
        req["oldObject"]["metadata"]["labels"] = junk
    else:
        req[where] = junk
    try:
        d = AdmissionPolicyEvaluator(store).evaluate(req)
    except InvalidReview:
        return
    assert isinstance(d.allowed, bool)
    if where == "object" and not isinstance(junk, dict):
        raise AssertionError("a non-object `object` must be rejected")
