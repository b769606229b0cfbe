"""`kubestrata serve` answers TokenReviews on /authenticate: the real CLI in a subprocess over HTTPS, tokens
made by `kubestrata identity token` (boto3), moto as STS, mapping through an access-entry snapshot and
aws-auth."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from kubestrata.server.certs import generate_certs
from tests.identity.conftest import ACCOUNT, assume

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + str(REPO)}
    env.update(extra or {})
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory, moto):
    d = tmp_path_factory.mktemp("authn")
    certs = generate_certs(d / "certs", ["127.0.0.1"])
    (d / "aws-auth.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "aws-auth", "namespace": "kube-system"},
                "data": {
                    "mapRoles": yaml.safe_dump(
                        [
                            {
                                "rolearn": f"arn:aws:iam::{ACCOUNT}:role/ops",
                                "username": "ops:{{SessionName}}",
                                "groups": ["system:masters"],
                            },
                            {
                                # shadowed by the access entry below (API_AND_CONFIG_MAP precedence)
                                "rolearn": f"arn:aws:iam::{ACCOUNT}:role/dev",
                                "username": "old-dev",
                                "groups": ["old"],
                            },
                        ]
                    )
                },
            }
        )
    )
    (d / "eks.json").write_text(
        json.dumps(
            {
                "apiVersion": "kubestrata.io/v1alpha1",
                "kind": "EKSClusterAccess",
                "metadata": {"name": "demo", "namespace": "kube-system"},
                "cluster": {
                    "name": "demo",
                    "arn": f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/demo",
                    "version": "1.31",
                    "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
                },
                "accessEntries": [
                    {
                        "principalArn": f"arn:aws:iam::{ACCOUNT}:role/team/dev",
                        "type": "STANDARD",
                        "kubernetesGroups": ["developers"],
                    }
                ],
            }
        )
    )
    port, ops_port = _free_port(), _free_port()
    cfg = {
        "serve": {
            "host": "127.0.0.1",
            "port": port,
            # the API server authenticates with the client certificate `kubestrata certs` made
            "tls": {"cert": str(certs.cert), "key": str(certs.key), "client_ca": str(certs.ca_cert)},
            "ops": {"host": "127.0.0.1", "port": ops_port},
            "identity": {
                "authenticate": {
                    "cluster_id": "demo",
                    "sts_endpoint": moto.url,
                    "manifests": [str(d / "aws-auth.yaml"), str(d / "eks.json")],
                }
            },
        }
    }
    (d / "kubestrata.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubestrata", "serve", "--config", str(d / "kubestrata.yaml")],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(
        base_url=f"https://127.0.0.1:{port}",
        verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
        cert=(str(certs.client_cert), str(certs.client_key)),
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{ops_port}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("serve did not start: " + proc.stdout.read().decode()[-2000:])
        time.sleep(0.2)
    yield client
    client.close()
    proc.terminate()
    proc.wait(20)


def cli_token(session, cluster_id: str = "demo") -> str:
    c = session.get_credentials()
    out = subprocess.run(
        [sys.executable, "-m", "kubestrata", "identity", "token", "--cluster-id", cluster_id, "-o", "json"],
        env=_env(
            {
                "AWS_ACCESS_KEY_ID": c.access_key,
                "AWS_SECRET_ACCESS_KEY": c.secret_key,
                "AWS_SESSION_TOKEN": c.token,
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(out.stdout)
    assert doc["kind"] == "ExecCredential" and doc["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    return doc["status"]["token"]


def review(token: str, version: str = "authentication.k8s.io/v1") -> dict:
    return {"apiVersion": version, "kind": "TokenReview", "spec": {"token": token}}


def test_access_entry_wins_over_aws_auth(served, moto):
    token = cli_token(assume(moto, "dev", "carol"))
    r = served.post("/authenticate", json=review(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["apiVersion"] == "authentication.k8s.io/v1" and body["kind"] == "TokenReview"
    user = body["status"]["user"]
    assert body["status"]["authenticated"] is True
    # the entry's generated username: the session ARN without the role's path
    assert user["username"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/dev/carol"
    assert user["groups"] == ["developers"]
    assert user["extra"]["sessionName"] == ["carol"]


def test_aws_auth_mapping_and_v1beta1(served, moto):
    token = cli_token(assume(moto, "ops", "dave"))
    r = served.post("/authenticate", json=review(token, "authentication.k8s.io/v1beta1"))
    assert r.status_code == 200
    assert r.json()["apiVersion"] == "authentication.k8s.io/v1beta1"
    assert r.json()["status"]["user"]["username"] == "ops:dave"
    assert r.json()["status"]["user"]["groups"] == ["system:masters"]


def test_foreign_cluster_token_is_refused(served, moto):
    token = cli_token(assume(moto, "ops", "eve"), cluster_id="prod")
    r = served.post("/authenticate", json=review(token))
    assert r.status_code == 403
    status = r.json()["status"]
    assert status["authenticated"] is False and "not signed for cluster id 'demo'" in status["error"]


@pytest.mark.parametrize(
    "body,code",
    [
        (b"not json", 400),
        (json.dumps({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1"}).encode(), 400),
        (json.dumps({"kind": "SubjectAccessReview", "apiVersion": "v1", "spec": {}}).encode(), 400),
        (json.dumps(review("k8s-aws-v1.garbage!")).encode(), 403),
    ],
)
def test_malformed_reviews(served, body, code):
    r = served.post("/authenticate", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == code
    if code == 403:
        assert "illegal base64" in r.json()["status"]["error"]
