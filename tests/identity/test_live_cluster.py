"""The agent's live-cluster paths through the official kubernetes client: tokens checked by TokenReview and
associations listed as PodIdentityAssociation objects, against a fake API server on loopback HTTPS that
speaks the real wire formats (authentication.k8s.io/v1 TokenReview; a custom-resource list)."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

import boto3
import pytest
import yaml

from kubestrata.identity import jwt
from kubestrata.identity.agent import Agent, AgentError, STSAssumer, TokenReviewVerifier
from kubestrata.identity.associations import load_cluster
from kubestrata.kube.live import _api_client
from tests.identity.agentkit import sa_token, signing_key
from tests.identity.conftest import ACCOUNT
from tests.kube.fake_apiserver import TLSFiles, _QuietServer, write_kubeconfig

ASSOC = {
    "apiVersion": "kubestrata.io/v1alpha1",
    "kind": "PodIdentityAssociation",
    "metadata": {"name": "billing", "namespace": "shop", "uid": "8d6f-uid"},
    "spec": {"serviceAccount": "billing", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/billing"},
}


class FakeAuthAPI:
    """TokenReview as the kube-apiserver answers it for a bound service-account token."""

    def __init__(self, tls: TLSFiles, key: Any) -> None:
        self.keys = jwt.KeySet.from_public_keys([key.public_key()])
        self.reviews: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, code: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.headers.get("Authorization") != "Bearer test-token":
                    return self._send(401, {"kind": "Status", "code": 401})
                if self.path.startswith("/apis/kubestrata.io/v1alpha1/podidentityassociations"):
                    return self._send(
                        200,
                        {
                            "apiVersion": "kubestrata.io/v1alpha1",
                            "kind": "PodIdentityAssociationList",
                            "metadata": {"resourceVersion": "7"},
                            "items": [ASSOC],
                        },
                    )
                self._send(404, {"kind": "Status", "code": 404})

            def do_POST(self) -> None:  # noqa: N802
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.reviews.append(review)
                spec = review["spec"]
                status: dict[str, Any] = {"authenticated": False}
                try:
                    claims = jwt.verify(spec["token"], api.keys)
                    auds = claims["aud"]
                    wanted = spec.get("audiences") or auds
                    if not set(wanted) & set(auds):
                        raise jwt.JWTError("token audiences do not match")
                    k8s = claims["kubernetes.io"]
                    status = {
                        "authenticated": True,
                        "user": {
                            "username": claims["sub"],
                            "uid": k8s["serviceaccount"]["uid"],
                            "groups": [
                                "system:serviceaccounts",
                                f"system:serviceaccounts:{k8s['namespace']}",
                            ],
                            "extra": {
                                "authentication.kubernetes.io/pod-name": [k8s["pod"]["name"]],
                                "authentication.kubernetes.io/pod-uid": [k8s["pod"]["uid"]],
                            },
                        },
                        "audiences": sorted(set(wanted) & set(auds)),
                    }
                except jwt.JWTError as e:
                    status["error"] = f"invalid bearer token, {e}"
                self._send(201, {**review, "status": status})

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls.cert, tls.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    key = signing_key()
    tls = TLSFiles()
    api = FakeAuthAPI(tls, key)
    kubeconfig = write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", api.url, tls)
    yield api, key, str(kubeconfig)
    api.httpd.shutdown()


def test_associations_from_the_cluster(cluster):
    _, _, kubeconfig = cluster
    assoc = load_cluster(kubeconfig, "fake")
    a = assoc.get("shop", "billing")
    assert a is not None and a.role_arn.endswith("role/billing") and a.association_id == "8d6f-uid"


def test_token_review_verifier_end_to_end(cluster, moto):
    api, key, kubeconfig = cluster
    admin = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    agent = Agent(
        load_cluster(kubeconfig, "fake"),
        TokenReviewVerifier(_api_client(kubeconfig, "fake")),
        STSAssumer(
            "demo", f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/demo", session=admin, endpoint_url=moto.url
        ),
        allowed_hosts=("127.0.0.1",),
        rate_limit=None,
    )
    token = sa_token(key, "shop", "billing", "checkout-1")

    async def ask(t: str):
        return await agent.credentials("127.0.0.1", t)

    creds = asyncio.run(ask(token))
    assert creds.assumed_role_arn.startswith(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/billing/eks-demo-checkout-1-"
    )
    assert api.reviews[-1]["spec"]["audiences"] == ["pods.eks.amazonaws.com"]
    n = len(api.reviews)
    asyncio.run(ask(token))
    assert len(api.reviews) == n  # the verified token is cached until it expires

    for bad, text in (
        (sa_token(signing_key(), "shop", "billing"), "invalid bearer token"),
        (sa_token(key, "shop", "billing", audience="sts.amazonaws.com"), "audiences do not match"),
    ):
        with pytest.raises(AgentError) as e:
            asyncio.run(ask(bad))
        assert e.value.status == 400 and e.value.code == "InvalidTokenException" and text in e.value.message


def test_crd_schema_accepts_the_examples(tmp_path):
    import jsonschema

    from tests.conftest import REPO_ROOT

    crd = yaml.safe_load((REPO_ROOT / "deploy" / "identity" / "crd.yaml").read_text())
    assert (
        crd["spec"]["group"] == "kubestrata.io" and crd["spec"]["names"]["kind"] == "PodIdentityAssociation"
    )
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for doc in yaml.safe_load_all((REPO_ROOT / "examples" / "identity" / "associations.yaml").read_text()):
        jsonschema.validate(doc, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**ASSOC, "spec": {"serviceAccount": "x"}}, schema)
