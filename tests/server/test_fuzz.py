"""Property tests: whatever arrives, every endpoint answers 200 (a review it could evaluate) or a 4xx
with a message, never a 500, and keeps serving. The real Cedar engine (demo policies), PSS engine and
checks are behind the endpoints."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from kubestrata.admission.namespaces import StaticNamespaces
from kubestrata.server.app import create_app
from kubestrata.server.assemble import build_state
from kubestrata.server.engines import load_cedar
from tests.conftest import REPO_ROOT
from tests.server.fakes import config

DEMO = REPO_ROOT / "examples" / "cedar-demo" / "policies"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

SAR = {
    "apiVersion": "authorization.k8s.io/v1",
    "kind": "SubjectAccessReview",
    "spec": {
        "user": "alice",
        "groups": ["config-editors"],
        "extra": {"k": ["v"]},
        "resourceAttributes": {
            "verb": "list",
            "version": "v1",
            "resource": "configmaps",
            "namespace": "team-a",
            "labelSelector": {"requirements": [{"key": "owner", "operator": "In", "values": ["alice"]}]},
        },
    },
}
ADMISSION = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "u",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "team-a",
        "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["config-editors"]},
        "object": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "labels": {"owner": "alice"}},
            "spec": {
                "containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": True}}]
            },
        },
    },
}


# every path to a field of the two reviews, so a strategy can replace any one of them
def _paths(doc, prefix=()):
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc, path, value):
    doc = copy.deepcopy(doc)
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return doc


@pytest.fixture(scope="module")
def client():
    cedar = load_cedar([Path(DEMO)])
    state = build_state(
        config(admission={"mutations": {"fixes": ["KS-WL-004", "KS-WL-005"], "pss_level": "restricted"}}),
        cedar=cedar,
        audit=None,
        namespaces=StaticNamespaces({"team-a": {"pod-security.kubernetes.io/enforce": "restricted"}}),
    )
    with TestClient(create_app(state), raise_server_exceptions=True) as c:
        yield c


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _ok(r) -> None:
    assert r.status_code in (200, 400, 413), (r.status_code, r.text)
    if r.status_code != 200:
        assert r.json()["message"]


@FUZZ
@given(body=st.binary(max_size=300), route=st.sampled_from(["/authorize", "/admit", "/mutate"]))
def test_arbitrary_bytes(client, body, route):
    _ok(client.post(route, content=body))


@FUZZ
@given(value=json_values, route=st.sampled_from(["/authorize", "/admit", "/mutate"]))
def test_arbitrary_json(client, value, route):
    _ok(client.post(route, json=value))


@FUZZ
@given(path=st.sampled_from(_paths(SAR)), value=json_values)
def test_sar_with_one_field_replaced(client, path, value):
    r = client.post("/authorize", json=_replace(SAR, path, value))
    _ok(r)
    if r.status_code == 200:
        status = r.json()["status"]
        assert isinstance(status["allowed"], bool)
        assert not (status["allowed"] and status.get("denied"))


@FUZZ
@given(
    path=st.sampled_from(_paths(ADMISSION)), value=json_values, route=st.sampled_from(["/admit", "/mutate"])
)
def test_admission_with_one_field_replaced(client, path, value, route):
    r = client.post(route, json=_replace(ADMISSION, path, value))
    _ok(r)
    if r.status_code == 200:
        resp = r.json()["response"]
        assert isinstance(resp["allowed"], bool) and resp["uid"]


def test_still_serving_after_fuzz(client):
    r = client.post("/authorize", json=SAR).json()
    assert r["status"]["allowed"] is True
