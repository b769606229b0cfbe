"""`kubestrata identity agent` and `token` as a user runs them: subprocesses, real ports, boto3 as the pod's
SDK in its own process, and bad input as one line with exit 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from tests.identity.agentkit import ISSUER, sa_token, signing_key
from tests.identity.conftest import ACCOUNT

REPO = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e["PYTHONPATH"] = str(REPO / "src") + os.pathsep + str(REPO)
    e.update(extra)
    return e


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kubestrata", *args], capture_output=True, text=True, timeout=120, **kw
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def agent_proc(tmp_path_factory, moto):
    d = tmp_path_factory.mktemp("agent")
    key = signing_key()
    (d / "sa.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (d / "assoc.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubestrata.io/v1alpha1",
                "kind": "PodIdentityAssociation",
                "metadata": {"name": "reports", "namespace": "shop"},
                "spec": {"serviceAccount": "reports", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/reports"},
            }
        )
    )
    boto3.client(
        "iam",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id="a",
        aws_secret_access_key="b",
    ).create_role(RoleName="reports", AssumeRolePolicyDocument="{}")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "kubestrata", "identity", "agent", "--cluster-name", "demo",
            "--associations", str(d / "assoc.yaml"), "--signing-key", str(d / "sa.pub"), "--issuer", ISSUER,
            "--host", "127.0.0.1", "--port", str(port), "--allowed-host", "127.0.0.1",
            "--sts-endpoint", moto.url, "--region", "us-east-1",
        ],
        env=env(AWS_ACCESS_KEY_ID="node", AWS_SECRET_ACCESS_KEY="node"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(proc.stdout.read().decode()[-2000:])
        time.sleep(0.2)
    yield url, key, d
    proc.terminate()
    proc.wait(20)


POD_SDK = """
import boto3, json, sys
s = boto3.Session(region_name="us-east-1")
sts = s.client("sts", endpoint_url=sys.argv[1])
s3 = s.client("s3", endpoint_url=sys.argv[1])
s3.create_bucket(Bucket="reports-cli")
print(json.dumps({"method": s.get_credentials().method, "arn": sts.get_caller_identity()["Arn"],
                  "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"]]}))
"""


def test_pod_sdk_in_its_own_process_gets_credentials_from_the_agent(agent_proc, moto, tmp_path):
    url, key, _ = agent_proc
    tok = tmp_path / "token"
    tok.write_text(sa_token(key, "shop", "reports", "reports-5b7c"))
    out = subprocess.run(
        [sys.executable, "-c", POD_SDK, moto.url],
        env=env(
            AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{url}/v1/credentials",
            AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(tok),
            AWS_CONFIG_FILE=str(tmp_path / "none"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["method"] == "container-role"
    assert got["arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/reports/eks-demo-reports-5b7c-")
    assert "reports-cli" in got["buckets"]


@pytest.mark.parametrize(
    "args,msg",
    [
        (["identity", "agent", "--cluster-name", "x"], "give --associations PATH"),
        (["identity", "agent", "--cluster-name", "x", "--associations", "/nope.yaml"], "/nope.yaml"),
        (["identity", "token"], "Missing option '--cluster-id'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, msg):
    r = run(*args, env=env())
    assert r.returncode == 2
    assert msg in r.stderr and "Traceback" not in r.stderr


def test_agent_without_keys_and_bad_key_file(tmp_path, agent_proc):
    _, _, d = agent_proc
    r = run("identity", "agent", "--cluster-name", "x", "--associations", str(d / "assoc.yaml"), env=env())
    assert r.returncode == 2 and "give --jwks or --signing-key" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"keys": [{"kty": "RSA"}]}')
    r = run(
        "identity", "agent", "--cluster-name", "x", "--associations", str(d / "assoc.yaml"), "--jwks", str(bad),
        env=env(),
    )  # fmt: skip
    assert r.returncode == 2 and "keys[0]" in r.stderr and "Traceback" not in r.stderr


def test_token_without_credentials_is_an_error(tmp_path):
    r = run(
        "identity", "token", "--cluster-id", "demo",
        env=env(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
                AWS_EC2_METADATA_DISABLED="true"),
    )  # fmt: skip
    assert r.returncode == 2 and "no AWS credentials found" in r.stderr


def test_token_bare_output(tmp_path):
    r = run(
        "identity", "token", "--cluster-id", "demo", "-o", "token", "--output-file", str(tmp_path / "t"),
        env=env(AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="eu-central-1"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    from kubestrata.identity.token import parse_token

    assert parse_token((tmp_path / "t").read_text().strip()).host == "sts.eu-central-1.amazonaws.com"
