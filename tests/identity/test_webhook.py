"""The Pod Identity mutation on serve's /mutate: pods of associated service accounts get what the EKS
webhook injects; others are untouched."""

from __future__ import annotations

import base64
import copy
import json
import warnings

import jsonpatch
import pytest
import yaml

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from kubestrata.server.app import create_app
from kubestrata.server.assemble import build_state
from kubestrata.server.config import FileConfig, ServeConfig

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "checkout", "namespace": "shop"},
    "spec": {
        "serviceAccountName": "billing",
        "initContainers": [{"name": "migrate", "image": "app:1"}],
        "containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "MODE", "value": "prod"}]},
            {
                "name": "own-creds",
                "image": "tool:1",
                "env": [{"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://127.0.0.1:9/creds"}],
            },
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
    },
}


def review(pod, ns="shop", op="CREATE"):
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": ns,
            "name": pod["metadata"]["name"],
            "operation": op,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
        },
    }


@pytest.fixture
def client(tmp_path):
    (tmp_path / "assoc.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubestrata.io/v1alpha1",
                "kind": "PodIdentityAssociation",
                "metadata": {"name": "billing", "namespace": "shop"},
                "spec": {"serviceAccount": "billing", "roleArn": "arn:aws:iam::123456789012:role/billing"},
            }
        )
    )
    cfg = FileConfig(
        serve=ServeConfig.model_validate(
            {
                "admission": {"pss": {"enabled": False}, "checks": {"enabled": False}},
                "identity": {"pod_identity": {"associations": [str(tmp_path / "assoc.yaml")]}},
            }
        )
    )
    state = build_state(cfg, cedar=None, pss=None, audit=None)
    with TestClient(create_app(state)) as c:
        yield c


def mutate(client, pod, **kw):
    r = client.post("/mutate", json=review(pod, **kw))
    assert r.status_code == 200
    resp = r.json()["response"]
    if "patch" not in resp:
        return None, resp
    ops = json.loads(base64.b64decode(resp["patch"]))
    return jsonpatch.apply_patch(copy.deepcopy(pod), ops), resp


def test_associated_pod_gets_the_eks_injection(client):
    out, resp = mutate(client, POD)
    spec = out["spec"]
    assert spec["volumes"][-1] == {
        "name": "eks-pod-identity-token",
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": "pods.eks.amazonaws.com",
                        "expirationSeconds": 86400,
                        "path": "eks-pod-identity-token",
                    }
                }
            ]
        },
    }
    for c in (spec["initContainers"][0], spec["containers"][0]):
        env = {e["name"]: e["value"] for e in c["env"]}
        assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://169.254.170.23/v1/credentials"
        assert (
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
            == "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
        )
        assert c["volumeMounts"] == [
            {
                "name": "eks-pod-identity-token",
                "mountPath": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount",
                "readOnly": True,
            }
        ]
    assert spec["containers"][0]["env"][0] == {"name": "MODE", "value": "prod"}
    assert spec["containers"][1] == POD["spec"]["containers"][1]  # it chose its own credentials
    assert resp["auditAnnotations"]["identity.kubestrata.io/pod-identity-role"].endswith("role/billing")


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["spec"].update(serviceAccountName="other"),
        lambda p: p["spec"].pop("serviceAccountName"),  # "default" has no association
    ],
)
def test_pods_of_other_service_accounts_are_untouched(client, change):
    pod = copy.deepcopy(POD)
    change(pod)
    out, _ = mutate(client, pod)
    assert out is None


def test_other_namespace_and_already_mutated_are_untouched(client):
    assert mutate(client, POD, ns="other")[0] is None
    once, _ = mutate(client, POD)
    assert mutate(client, once)[0] is None  # idempotent
