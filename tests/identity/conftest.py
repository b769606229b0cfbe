"""moto on loopback as STS/IAM/S3, with credentials that never reach a real account."""

from __future__ import annotations

import boto3
import pytest

from tests.identity.motosts import QueryAuthMotoServer

ACCOUNT = "123456789012"


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch):
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    for k in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(k, raising=False)


@pytest.fixture(scope="session")
def moto():
    server = QueryAuthMotoServer()
    server.start()
    yield server
    server.stop()


def assume(moto, role_name: str, session_name: str) -> boto3.Session:
    """A boto3 session for ``role_name`` assumed in moto (the role is created if missing)."""
    admin = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    iam = admin.client("iam", endpoint_url=moto.url)
    try:
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument="{}")
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    sts = admin.client("sts", endpoint_url=moto.url)
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role_name}", RoleSessionName=session_name)[
        "Credentials"
    ]
    return boto3.Session(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        region_name="us-east-1",
    )
