"""The SubjectAccessReview decision mapping, principals, selectors, impersonation and bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestrata.authz import Authorizer, InvalidReview, PolicyStore
from kubestrata.authz.entities import sar_to_request
from tests.authz.conftest import sar

POLICIES = """
@id("cm-readers")
permit (principal in k8s::Group::"readers", action in [k8s::Action::"get", k8s::Action::"list"],
        resource is k8s::Resource) when { resource.resource == "configmaps" };
@id("no-secrets")
forbid (principal in k8s::Group::"readers", action, resource is k8s::Resource)
  when { resource.resource == "secrets" };
permit (principal in k8s::Group::"readers", action, resource is k8s::Resource)
  when { resource.resource == "secrets" };
forbid (principal is k8s::User, action == k8s::Action::"delete", resource is k8s::Resource)
  when { principal.name == "bob" };
permit (principal is k8s::ServiceAccount, action == k8s::Action::"get", resource is k8s::Resource)
  when { principal.namespace == "ci" && principal.name == "builder" && resource.resource == "pods" };
permit (principal is k8s::Node, action == k8s::Action::"get", resource is k8s::Resource)
  when { principal.name == "n1" && resource.resource == "nodes" };
permit (principal is k8s::User, action == k8s::Action::"list", resource is k8s::Resource)
  when { resource.resource == "pods" && resource has labelSelector &&
         resource.labelSelector.contains({"key": "owner", "operator": "in", "values": [principal.name]}) };
permit (principal is k8s::User, action == k8s::Action::"list", resource is k8s::Resource)
  when { resource.resource == "events" && resource has fieldSelector &&
         resource.fieldSelector.contains({"field": "involvedObject.name", "operator": "=", "value": "x"}) };
permit (principal, action == k8s::Action::"get", resource is k8s::NonResourceURL)
  when { resource.path like "/healthz*" };
permit (principal is k8s::User, action == k8s::Action::"impersonate", resource is k8s::ServiceAccount)
  when { principal.name == "alice" && resource.namespace == "default" && resource.name == "deployer" };
permit (principal is k8s::User, action == k8s::Action::"impersonate", resource is k8s::Group)
  when { principal.name == "alice" && resource.name == "devs" };
permit (principal is k8s::User, action == k8s::Action::"impersonate", resource is k8s::Extra)
  when { principal.name == "alice" && resource.key == "scopes" && resource has value && resource.value == "view" };
permit (principal is k8s::User, action == k8s::Action::"impersonate", resource is k8s::Node)
  when { principal.name == "alice" && resource.name == "n2" };
permit (principal is k8s::User, action == k8s::Action::"get", resource is k8s::Resource)
  when { principal.name == "system:kube-scheduler" };
"""

STORE = PolicyStore.from_text(POLICIES, "test.cedar")
A = Authorizer(STORE)


def status(review: dict) -> dict:
    return A.review(review)["status"]


def test_allow_names_the_permit() -> None:
    st_ = status(sar("u", "get", groups=["readers"]))
    assert st_ == {"allowed": True, "reason": 'allowed by Cedar policy test.cedar#0 (@id "cm-readers")'}


def test_deny_names_each_forbid_and_beats_permit() -> None:
    st_ = status(sar("bob", "delete", "secrets", groups=["readers"]))
    assert st_["allowed"] is False and st_["denied"] is True
    assert st_["reason"] == 'denied by Cedar policy test.cedar#1 (@id "no-secrets"), test.cedar#3'


def test_nothing_matched_is_no_opinion() -> None:
    assert status(sar("u", "create", "configmaps", groups=["readers"])) == {"allowed": False}


def test_response_echoes_version_and_kind() -> None:
    out = A.review(sar("u", groups=["readers"], version="v1beta1"))
    assert out["apiVersion"] == "authorization.k8s.io/v1beta1" and out["kind"] == "SubjectAccessReview"
    assert out["status"]["allowed"] is True  # v1beta1's "group" field is read


def test_system_users_get_no_opinion_but_service_accounts_and_nodes_do_not() -> None:
    assert status(sar("system:kube-scheduler", "get")) == {
        "allowed": False,
        "reason": "system users are left to the other authorizers",
    }
    assert status(sar("system:serviceaccount:ci:builder", "get", "pods"))["allowed"] is True
    assert status(sar("system:node:n1", "get", "nodes", namespace=""))["allowed"] is True
    # a malformed service account name is a plain system user
    assert "denied" not in status(sar("system:serviceaccount:ci:builder:x", "get", "pods"))


def test_label_selector_operators_are_normalised() -> None:
    ok = sar("carol", "list", "pods", labels=[{"key": "owner", "operator": "In", "values": ["carol"]}])
    assert status(ok)["allowed"] is True
    other = sar("carol", "list", "pods", labels=[{"key": "owner", "operator": "NotIn", "values": ["carol"]}])
    assert status(other)["allowed"] is False
    assert status(sar("carol", "list", "pods"))["allowed"] is False
    req = sar_to_request(
        sar(
            "carol",
            "list",
            "pods",
            labels=[
                {"key": "a", "operator": "Exists"},
                {"key": "b", "operator": "DoesNotExist"},
                {"key": "c", "operator": "Gt", "values": ["1"]},
            ],
        )
    )
    ops = sorted(r["operator"] for r in req.entities[-1]["attrs"]["labelSelector"])
    assert ops == ["!", "exists"]  # unknown operators are dropped (requirements only narrow)


def test_field_selector_single_value_in_becomes_equals() -> None:
    ok = sar(
        "u", "list", "events", fields=[{"key": "involvedObject.name", "operator": "In", "values": ["x"]}]
    )
    assert status(ok)["allowed"] is True
    multi = sar(
        "u", "list", "events", fields=[{"key": "involvedObject.name", "operator": "In", "values": ["x", "y"]}]
    )
    assert status(multi)["allowed"] is False


def test_raw_selector_with_requirements_is_rejected() -> None:
    review = sar("u", "list", "pods", labels=[{"key": "a", "operator": "Exists"}])
    review["spec"]["resourceAttributes"]["labelSelector"]["rawSelector"] = "a"
    with pytest.raises(InvalidReview, match="both rawSelector and requirements"):
        A.review(review)


def test_non_resource_url() -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": "u", "nonResourceAttributes": {"path": "/healthz/etcd", "verb": "get"}},
    }
    assert status(review)["allowed"] is True
    review["spec"]["nonResourceAttributes"]["path"] = "/metrics"
    assert status(review)["allowed"] is False


@pytest.mark.parametrize(
    "resource,group,namespace,name,sub,want",
    [
        ("serviceaccounts", "", "default", "deployer", "", True),
        ("serviceaccounts", "", "other", "deployer", "", False),
        ("groups", "authentication.k8s.io", "", "devs", "", True),
        ("groups", "authentication.k8s.io", "", "admins", "", False),
        ("userextras", "authentication.k8s.io", "", "view", "scopes", True),
        ("userextras", "authentication.k8s.io", "", "edit", "scopes", False),
        ("users", "authentication.k8s.io", "", "system:node:n2", "", True),
        ("users", "authentication.k8s.io", "", "system:node:n3", "", False),
    ],
)
def test_impersonation_targets(
    resource: str, group: str, namespace: str, name: str, sub: str, want: bool
) -> None:
    review = sar(
        "alice", "impersonate", resource, group=group, namespace=namespace, name=name, subresource=sub
    )
    assert status(review)["allowed"] is want


def test_resource_entity_shape() -> None:
    """As the reference webhook's TestRecordToCedarResource: URL path id, optional attributes omitted."""
    req = sar_to_request(
        sar("u", "get", "deployments", group="apps", name="web", subresource="scale", namespace="prod")
    )
    ent = req.entities[-1]
    assert ent["uid"] == {
        "type": "k8s::Resource",
        "id": "/apis/apps/v1/namespaces/prod/deployments/web/scale",
    }
    assert ent["attrs"] == {
        "apiGroup": "apps",
        "resource": "deployments",
        "name": "web",
        "subresource": "scale",
        "namespace": "prod",
    }
    cluster = sar_to_request(sar("u", "list", "nodes", namespace=""))
    assert cluster.entities[-1]["attrs"] == {"apiGroup": "", "resource": "nodes"}
    sa = sar_to_request(sar("system:serviceaccount:ns:sa", groups=["g"]))
    assert sa.entities[0] == {
        "uid": {"type": "k8s::ServiceAccount", "id": "system:serviceaccount:ns:sa"},
        "attrs": {"namespace": "ns", "name": "sa"},
        "parents": [{"type": "k8s::Group", "id": "g"}],
    }


def test_extra_keys_are_lower_cased_sets() -> None:
    review = sar("u")
    review["spec"]["extra"] = {"Scopes": ["b", "a", "a"]}
    assert sar_to_request(review).entities[0]["attrs"]["extra"] == [{"key": "scopes", "values": ["a", "b"]}]


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda r: r.update(apiVersion="v1"), "apiVersion"),
        (lambda r: r.update(kind="Pod"), "kind"),
        (lambda r: r.update(spec=[]), "spec must be a mapping"),
        (lambda r: r["spec"].update(user=5), "spec.user must be a string"),
        (lambda r: r["spec"].update(groups="g"), "spec.groups"),
        (lambda r: r["spec"].pop("resourceAttributes"), "resourceAttributes or nonResourceAttributes"),
        (lambda r: r["spec"].update(nonResourceAttributes={"path": "/"}), "both"),
        (
            lambda r: r["spec"]["resourceAttributes"].update(labelSelector=[]),
            "labelSelector must be a mapping",
        ),
        (lambda r: r["spec"].update(extra={"k": "v"}), "spec.extra.k"),
        (lambda r: r["spec"]["resourceAttributes"].update(resource="pods/log"), "must not contain '/'"),
    ],
)
def test_malformed_reviews_raise_invalid_review(mutate, message: str) -> None:
    review = sar("u")
    mutate(review)
    with pytest.raises(InvalidReview, match=message):
        A.review(review)


def test_not_loaded_is_no_opinion_with_error() -> None:
    st_ = Authorizer(PolicyStore(["/nonexistent"])).review(sar("u"))["status"]
    assert st_ == {"allowed": False, "evaluationError": "Cedar policies are not loaded yet"}


def test_erroring_forbid_never_fails_open() -> None:
    # validation cannot see integer overflow: this forbid passes validation and errors at run time
    store = PolicyStore.from_text(
        "permit (principal, action, resource);\n"
        "forbid (principal, action, resource) when { 9223372036854775807 + 1 > 0 };",
        "overflow.cedar",
    )
    authz = Authorizer(store)
    st_ = authz.review(sar("u"))["status"]
    assert st_["allowed"] is False and "denied" not in st_
    assert "overflow.cedar#1" in st_["evaluationError"]
    assert authz.stats.evaluation_errors == 1


def test_stats_count_outcomes() -> None:
    a = Authorizer(STORE)
    a.review(sar("u", groups=["readers"]))
    a.review(sar("bob", "delete", "secrets", groups=["readers"]))
    a.review(sar("u", "create"))
    assert (a.stats.allowed, a.stats.denied, a.stats.no_opinion) == (1, 1, 1)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSONISH, st.sampled_from(["spec", "resourceAttributes", "labelSelector", "root"]))
def test_fuzzed_reviews_either_decide_or_raise_invalid_review(junk, where: str) -> None:
    review = sar("u", "list", "pods", labels=[])
    if where == "root":
        review = junk
    elif where == "spec":
        review["spec"] = junk
    elif where == "resourceAttributes":
        review["spec"]["resourceAttributes"] = junk
    else:
        review["spec"]["resourceAttributes"]["labelSelector"] = junk
    try:
        out = A.review(review)
    except InvalidReview:
        return
    assert isinstance(out["status"]["allowed"], bool)


def test_erroring_forbid_in_a_file_whose_name_has_backticks_is_still_found(tmp_path) -> None:
    (tmp_path / "we`ird`.cedar").write_text(
        "permit (principal, action, resource);\n"
        "forbid (principal, action, resource) when { 9223372036854775807 + 1 > 0 };"
    )
    store = PolicyStore([tmp_path])
    store.load()
    st_ = Authorizer(store).review(sar("u"))["status"]
    assert st_["allowed"] is False and "we`ird`.cedar#1" in st_["evaluationError"]


def test_erroring_permit_does_not_block_another_permit() -> None:
    store = PolicyStore.from_text(
        "permit (principal, action, resource) when { 9223372036854775807 + 1 > 0 };\n"
        "permit (principal, action, resource);",
        "p.cedar",
    )
    st_ = Authorizer(store).review(sar("u"))["status"]
    assert st_["allowed"] is True and st_["reason"] == "allowed by Cedar policy p.cedar#1"
    assert "p.cedar#0" in st_["evaluationError"]
