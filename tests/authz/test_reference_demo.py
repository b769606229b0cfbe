"""The reference project's demo authorization policies (../shared/conformance/cedar/demo), evaluated
on the SubjectAccessReviews its walkthrough's kubectl commands produce: the entity model must give
those policies the meaning their authors wrote them for."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubestrata.authz import Authorizer, PolicyStore
from tests.authz.conftest import sar


@pytest.fixture(scope="module")
def authz(conformance: Path) -> Authorizer:
    store = PolicyStore([conformance / "cedar" / "demo" / "authorization-policy.yaml"])
    store.load()  # every policy in this file validates against our schema
    return Authorizer(store)


def nonresource(user: str, groups: list[str], path: str) -> dict:
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "nonResourceAttributes": {"verb": "get", "path": path}},
    }


OWNER_IS = [{"key": "owner", "operator": "In", "values": ["test-user"]}]

CASES = [
    # kubectl get pods -A as test-user
    (
        "test-user get pods",
        sar("test-user", "list", "pods", namespace=""),
        "allowed",
        "Policy/first-policy#0",
    ),
    # kubectl get nodes as test-user: the explicit forbid
    (
        "test-user get nodes",
        sar("test-user", "list", "nodes", namespace=""),
        "denied",
        "Policy/first-policy#1",
    ),
    (
        "viewer reads configmaps",
        sar("v", "get", "configmaps", groups=["viewers"]),
        "allowed",
        "Policy/viewer-group#0",
    ),
    ("viewer reads secrets", sar("v", "get", "secrets", groups=["viewers"]), "no_opinion", None),
    (
        "viewer reads apps secrets",
        sar("v", "get", "secrets", group="apps", groups=["viewers"]),
        "allowed",
        None,
    ),
    ("viewer deletes configmaps", sar("v", "delete", "configmaps", groups=["viewers"]), "no_opinion", None),
    (
        "/healthz authenticated",
        nonresource("x", ["system:authenticated"], "/healthz"),
        "allowed",
        "Policy/system-public-viewer#0",
    ),
    (
        "/healthz anonymous",
        nonresource("system:anonymous", ["system:unauthenticated"], "/healthz"),
        "no_opinion",
        None,
    ),
    ("/metrics authenticated", nonresource("x", ["system:authenticated"], "/metrics"), "no_opinion", None),
    # kubectl get secrets -l owner=test-user
    (
        "list own secrets",
        sar("test-user", "list", "secrets", labels=OWNER_IS),
        "allowed",
        "Policy/secrets-label-selector-example#0",
    ),
    ("list secrets, no selector", sar("test-user", "list", "secrets"), "no_opinion", None),
    (
        "list someone else's secrets",
        sar(
            "test-user",
            "list",
            "secrets",
            labels=[{"key": "owner", "operator": "In", "values": ["prod-user"]}],
        ),
        "no_opinion",
        None,
    ),
    # kubectl --as=system:serviceaccount:default:service-manager ...
    (
        "test-user impersonates service-manager",
        sar("test-user", "impersonate", "serviceaccounts", name="service-manager"),
        "allowed",
        "Policy/service-account-impersonate-example#0",
    ),
    (
        "test-user impersonates another SA",
        sar("test-user", "impersonate", "serviceaccounts", name="other"),
        "no_opinion",
        None,
    ),
    (
        "service-manager manages services at home",
        sar("system:serviceaccount:default:service-manager", "create", "services"),
        "allowed",
        "Policy/service-account-impersonate-example#1",
    ),
    (
        "service-manager elsewhere",
        sar("system:serviceaccount:default:service-manager", "create", "services", namespace="prod"),
        "no_opinion",
        None,
    ),
]


@pytest.mark.parametrize("review,outcome,policy", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_demo_scenario(authz: Authorizer, review: dict, outcome: str, policy: str | None) -> None:
    v = authz.decide(review)
    # "/healthz anonymous" is a system: user, left to the other authorizers before any policy is read
    assert v.outcome == outcome, v
    if policy:
        assert policy in v.policies
