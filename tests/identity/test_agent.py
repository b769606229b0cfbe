"""The Pod Identity agent over real HTTP: boto3's own container credential provider is the client, moto is
STS and S3, tokens are pod-bound service-account JWTs verified offline against a JWKS."""

from __future__ import annotations

import asyncio
import json
import time

import boto3
import httpx
import pytest
import yaml

from kubestrata.errors import InputError
from kubestrata.identity import associations as assoc_mod
from kubestrata.identity.agent import (
    SESSION_TAGS,
    Agent,
    CredentialCache,
    JWKSVerifier,
    STSAssumer,
)
from kubestrata.identity.jwt import KeySet
from tests.identity.agentkit import ISSUER, run_agent, sa_token, signing_key
from tests.identity.conftest import ACCOUNT

CLUSTER = "demo"
CLUSTER_ARN = f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/demo"

ASSOCIATIONS = [
    {
        "apiVersion": "kubestrata.io/v1alpha1",
        "kind": "PodIdentityAssociation",
        "metadata": {"name": "billing", "namespace": "shop"},
        "spec": {"serviceAccount": "billing", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/billing"},
    },
    {  # the EKS API's shape (describe-pod-identity-association), chained to a target role
        "association": {
            "clusterName": CLUSTER,
            "namespace": "ops",
            "serviceAccount": "deployer",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/hop",
            "targetRoleArn": f"arn:aws:iam::{ACCOUNT}:role/deploy-target",
            "associationId": "a-123",
        }
    },
    {
        "associations": [
            {
                "namespace": "batch",
                "serviceAccount": "untagged",
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/untagged",
                "disableSessionTags": True,
            }
        ]
    },
]


@pytest.fixture(scope="module")
def key():
    return signing_key()


@pytest.fixture(scope="module")
def assoc_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("assoc") / "associations.yaml"
    p.write_text(yaml.safe_dump_all(ASSOCIATIONS))
    return p


@pytest.fixture(scope="module")
def roles(moto):
    iam = boto3.client(
        "iam",
        endpoint_url=moto.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    for r in ("billing", "hop", "deploy-target", "untagged"):
        try:
            iam.create_role(RoleName=r, AssumeRolePolicyDocument="{}")
        except iam.exceptions.EntityAlreadyExistsException:
            pass


def make_agent(moto, key, assoc_file, **kw):
    admin = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    assumer = STSAssumer(CLUSTER, CLUSTER_ARN, session=admin, endpoint_url=moto.url)
    verifier = JWKSVerifier(
        KeySet.from_jwks(KeySet.from_public_keys([key.public_key()]).jwks()), issuer=ISSUER
    )
    return Agent(
        assoc_mod.load_files([assoc_file]), verifier, assumer, allowed_hosts=("127.0.0.1", "localhost"), **kw
    )


@pytest.fixture
def agent(moto, key, assoc_file, roles):
    a = make_agent(moto, key, assoc_file)
    srv = run_agent(a)
    yield a, srv
    srv.stop()


def test_boto3_container_provider_gets_tagged_credentials(agent, key, moto, tmp_path, monkeypatch):
    a, srv = agent
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text(sa_token(key, "shop", "billing", "checkout-7d9f"))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{srv.url}/v1/credentials")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    session = boto3.Session(region_name="us-east-1")
    creds = session.get_credentials()
    assert creds.method == "container-role"
    who = session.client("sts", endpoint_url=moto.url).get_caller_identity()
    assert who["Arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/billing/eks-demo-checkout-7d9f-")
    s3 = session.client("s3", endpoint_url=moto.url)
    s3.create_bucket(Bucket="billing-reports")
    s3.put_object(Bucket="billing-reports", Key="q4.csv", Body=b"1,2,3")
    assert s3.get_object(Bucket="billing-reports", Key="q4.csv")["Body"].read() == b"1,2,3"
    sent = [
        p for p in moto.sts.posts if p.get("Action") == "AssumeRole" and p["RoleArn"].endswith("role/billing")
    ]
    tags = {sent[-1][f"Tags.member.{i}.Key"]: sent[-1][f"Tags.member.{i}.Value"] for i in range(1, 7)}
    assert tags == {
        "eks-cluster-arn": CLUSTER_ARN,
        "eks-cluster-name": CLUSTER,
        "kubernetes-namespace": "shop",
        "kubernetes-service-account": "billing",
        "kubernetes-pod-name": "checkout-7d9f",
        "kubernetes-pod-uid": json.loads(
            __import__("base64").urlsafe_b64decode(token_file.read_text().split(".")[1] + "==")
        )["kubernetes.io"]["pod"]["uid"],
    }
    assert sorted(v for k, v in sent[-1].items() if k.startswith("TransitiveTagKeys")) == sorted(SESSION_TAGS)


def test_reply_fields_and_chained_target_role(agent, key):
    _, srv = agent
    r = httpx.get(
        f"{srv.url}/v1/credentials", headers={"Authorization": sa_token(key, "ops", "deployer", "ci-1")}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "AccountId", "Expiration"}
    assert body["AccountId"] == ACCOUNT and body["Expiration"].endswith("Z")
    who = boto3.client(
        "sts",
        endpoint_url=f"http://127.0.0.1:{agent[0].assumer.client.meta.endpoint_url.rsplit(':', 1)[1]}",
        aws_access_key_id=body["AccessKeyId"],
        aws_secret_access_key=body["SecretAccessKey"],
        aws_session_token=body["Token"],
        region_name="us-east-1",
    ).get_caller_identity()
    assert "assumed-role/deploy-target/" in who["Arn"]


def test_disable_session_tags_sends_none(agent, key, moto):
    _, srv = agent
    r = httpx.get(f"{srv.url}/v1/credentials", headers={"Authorization": sa_token(key, "batch", "untagged")})
    assert r.status_code == 200
    sent = [p for p in moto.sts.posts if p.get("RoleArn", "").endswith("role/untagged")][-1]
    assert not any(k.startswith("Tags.") for k in sent)


def _expired(key):
    return sa_token(key, "shop", "billing", issued=time.time() - 7200, lifetime=3600)


@pytest.mark.parametrize(
    "case,status,text",
    [
        ("wrong-host", 403, "Access Denied. Called agent through invalid address"),
        ("no-token", 400, "Service account token cannot be empty"),
        ("garbage", 400, "Service account token cannot be parsed"),
        ("expired", 400, "failed basic claim validations: token is expired"),
        ("wrong-audience", 400, "(InvalidTokenException): token audience is not pods.eks.amazonaws.com"),
        ("foreign-key", 400, "(InvalidTokenException): token is signed by an unknown key"),
        ("foreign-issuer", 400, "(InvalidTokenException): token issuer"),
        (
            "unknown-association",
            404,
            "(ResourceNotFoundException): no Pod Identity association for service account shop/other",
        ),
    ],
)
def test_upstream_status_codes(agent, key, case, status, text):
    _, srv = agent
    headers = {"Authorization": sa_token(key, "shop", "billing")}
    if case == "wrong-host":
        headers["Host"] = "169.254.170.2"
    elif case == "no-token":
        headers = {}
    elif case == "garbage":
        headers["Authorization"] = "not-a-jwt"
    elif case == "expired":
        headers["Authorization"] = _expired(key)
    elif case == "wrong-audience":
        headers["Authorization"] = sa_token(key, "shop", "billing", audience="sts.amazonaws.com")
    elif case == "foreign-key":
        headers["Authorization"] = sa_token(signing_key(), "shop", "billing")
    elif case == "foreign-issuer":
        headers["Authorization"] = sa_token(key, "shop", "billing", issuer="https://evil.example")
    elif case == "unknown-association":
        headers["Authorization"] = sa_token(key, "shop", "other")
    r = httpx.get(f"{srv.url}/v1/credentials", headers=headers)
    assert r.status_code == status, r.text
    assert text in r.text
    assert "AccessKeyId" not in r.text and "Secret" not in r.text


@pytest.mark.parametrize(
    "fail,status,text",
    [
        (("400 Bad Request", "Throttling", "Rate exceeded"), 429, "(ThrottlingException): Rate exceeded"),
        (
            ("403 Forbidden", "AccessDenied", "not authorized to perform sts:TagSession"),
            400,
            "(AccessDeniedException)",
        ),
        (("503 Service Unavailable", "ServiceUnavailable", "down"), 503, "(ServiceUnavailableException)"),
    ],
)
def test_sts_failures_map_to_upstream_codes(agent, key, moto, fail, status, text):
    _, srv = agent
    moto.sts.fail_actions["AssumeRole"] = fail
    try:
        r = httpx.get(
            f"{srv.url}/v1/credentials", headers={"Authorization": sa_token(key, "shop", "billing", "x1")}
        )
    finally:
        moto.sts.fail_actions.clear()
    assert r.status_code == status and text in r.text


def test_concurrent_pods_coalesce_into_one_sts_call_per_association(moto, key, assoc_file, roles):
    # pod-level session tags off: one session serves every pod of the association
    a = make_agent(moto, key, assoc_file, pod_tags=False, rate_limit=None)
    srv = run_agent(a)
    try:
        tokens = [sa_token(key, "shop", "billing", f"web-{i}") for i in range(150)]
        tokens += [sa_token(key, "ops", "deployer", f"ci-{i}") for i in range(150)]

        async def burst():
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
                return await asyncio.gather(
                    *(c.get("/v1/credentials", headers={"Authorization": t}) for t in tokens)
                )

        replies = asyncio.run(burst())
    finally:
        srv.stop()
    assert all(r.status_code == 200 for r in replies)
    assert a.assumer.calls == 2  # one per association, not one per pod
    assert len({r.json()["AccessKeyId"] for r in replies}) == 2


def test_same_pod_requests_coalesce_with_pod_tags(moto, key, assoc_file, roles):
    a = make_agent(moto, key, assoc_file, rate_limit=None)

    async def burst():
        t = sa_token(key, "shop", "billing", "only-pod")
        return await asyncio.gather(*(a.credentials("127.0.0.1", t) for _ in range(200)))

    out = asyncio.run(burst())
    assert a.assumer.calls == 1 and len({c.access_key_id for c in out}) == 1


def test_refreshed_before_expiry_and_stale_kept_through_transient_errors(moto, key, assoc_file, roles):
    offset = [0.0]
    cache = CredentialCache(refresh_before=300, clock=lambda: time.time() + offset[0])
    a = make_agent(moto, key, assoc_file, cache=cache, rate_limit=None)
    t = sa_token(key, "shop", "billing", "p")

    async def get():
        return await a.credentials("127.0.0.1", t)

    first = asyncio.run(get())
    assert asyncio.run(get()) == first and a.assumer.calls == 1
    offset[0] = 3600 - 200  # inside the refresh window: a new session
    second = asyncio.run(get())
    assert a.assumer.calls == 2 and second.access_key_id != first.access_key_id
    offset[0] = 3600 - 250  # the new one (issued for 3600 s) is due again, but STS is down: 250 s left
    moto.sts.fail_actions["AssumeRole"] = ("503 Service Unavailable", "ServiceUnavailable", "down")
    try:
        assert asyncio.run(get()) == second
        moto.sts.fail_actions["AssumeRole"] = ("403 Forbidden", "AccessDenied", "revoked")
        with pytest.raises(Exception) as e:
            asyncio.run(get())
        assert getattr(e.value, "status", None) == 400
        assert not cache.entries  # AccessDenied drops the cached credential
    finally:
        moto.sts.fail_actions.clear()


def test_rate_limit_answers_429(moto, key, assoc_file, roles):
    a = make_agent(moto, key, assoc_file, rate_limit=10)
    t = sa_token(key, "shop", "billing", "p")

    async def burst():
        codes = []
        for _ in range(20):
            try:
                await a.credentials("127.0.0.1", t)
                codes.append(200)
            except Exception as e:  # noqa: BLE001
                codes.append(e.status)
        return codes

    codes = asyncio.run(burst())
    assert codes.count(429) >= 10 and codes[0] == 200


@pytest.mark.parametrize(
    "doc,msg",
    [
        ({"kind": "PodIdentityAssociation", "metadata": {"name": "x"}, "spec": {}}, "metadata.namespace"),
        (
            {"kind": "PodIdentityAssociation", "metadata": {"namespace": "a"}, "spec": {"serviceAccount": "s"}},
            "spec.roleArn: required",
        ),
        (
            {"kind": "PodIdentityAssociation", "metadata": {"namespace": "a"},
             "spec": {"serviceAccount": "s", "roleArn": "role/x"}},
            "spec.roleArn: arn",
        ),
        ({"associations": [{"namespace": "a", "serviceAccount": "s", "associationId": "x"}]}, "roleArn missing"),
        ({"something": 1}, "not a recognised AWS CLI output"),
    ],
)  # fmt: skip
def test_bad_association_files_name_the_field(tmp_path, doc, msg):
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as e:
        assoc_mod.load_files([p])
    assert msg in str(e.value) and str(p) in str(e.value)


def test_two_associations_for_one_service_account_is_an_error(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump_all([ASSOCIATIONS[0], ASSOCIATIONS[0]]))
    with pytest.raises(InputError, match="has two associations"):
        assoc_mod.load_files([p])


def _raw(port: int, data: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize(
    "request_bytes,status",
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
        (b"POST /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"405"),
        (b"GET /v2/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"404"),
        (b"GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello", b"400"),
        (b"GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n\r\n", b"400"),
        (b"GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\n folded\r\n\r\n", b"400"),
    ],
)
def test_malformed_http_is_answered_never_crashes(agent, request_bytes, status):
    _, srv = agent
    out = _raw(srv.port, request_bytes)
    assert out.split(b" ", 2)[1] == status, out[:200]
    assert b"AccessKeyId" not in out
    assert httpx.get(f"{srv.url}/healthz").text == "ok"  # still serving


def test_keep_alive_pipelining_and_http10(agent, key):
    _, srv = agent
    t = sa_token(key, "shop", "billing", "pipelined").encode()
    req = b"GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + t + b"\r\n\r\n"
    out = _raw(srv.port, req + req + b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    assert out.count(b"HTTP/1.1 200 OK") == 3 and out.count(b'"AccessKeyId"') == 2
    assert out.endswith(b"ok")  # HTTP/1.0 without keep-alive: answered, then closed


def test_token_review_without_a_user_is_an_invalid_token(monkeypatch):
    """An authenticated TokenReview status that names no user (a broken API server) names no pod: the
    agent answers 400 as for any token that is not pod-bound, instead of failing on the missing user."""
    from types import SimpleNamespace

    from kubernetes import client

    from kubestrata.identity.agent import AgentError, TokenReviewVerifier

    status = client.V1TokenReviewStatus(authenticated=True, audiences=["pods.eks.amazonaws.com"], user=None)

    class FakeAuthAPI:
        def __init__(self, api_client: object) -> None:
            pass

        def create_token_review(self, body: object) -> SimpleNamespace:
            return SimpleNamespace(status=status)

    monkeypatch.setattr(client, "AuthenticationV1Api", FakeAuthAPI)
    with pytest.raises(AgentError) as e:
        TokenReviewVerifier(object()).verify("token")
    assert e.value.status == 400 and "not a pod-bound" in e.value.message
