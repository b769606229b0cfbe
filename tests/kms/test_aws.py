"""The AWS backend against moto's KMS on loopback, through the plugin's Unix socket."""

from __future__ import annotations

import os

import boto3
import grpc
import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.errors import KubestrataError
from kubestrata.kms.backends import AWSBackend, aws_key_id
from kubestrata.kms.service import KeyManagementService
from tests.kms.conftest import Plugin, rpc_error

SEED = os.urandom(32)
REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def kms(moto_endpoint):
    return boto3.client("kms", endpoint_url=moto_endpoint, region_name=REGION)


@pytest.fixture
def keys(kms):
    a = kms.create_key(Description="k8s secrets A")["KeyMetadata"]
    b = kms.create_key(Description="k8s secrets B")["KeyMetadata"]
    alias = f"alias/k8s-secrets-{a['KeyId'][:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=a["KeyId"])
    return {"a": a["Arn"], "b": b["Arn"], "alias": alias, "a_id": a["KeyId"]}


def _backend(moto_endpoint, keys_, **kw):
    return AWSBackend(keys_, region=REGION, endpoint_url=moto_endpoint, **kw)


def test_alias_resolves_to_the_key_arn_never_the_alias(moto_endpoint, keys, kms):
    be = _backend(moto_endpoint, [keys["alias"]])
    assert be.arns == [keys["a"]]
    assert be.current_key_id() == aws_key_id(keys["a"])
    assert _backend(moto_endpoint, [keys["a_id"]]).current_key_id() == be.current_key_id()
    # re-pointing the alias is a different key, hence a different key_id
    kms.update_alias(AliasName=keys["alias"], TargetKeyId=keys["b"])
    assert _backend(moto_endpoint, [keys["alias"]]).current_key_id() == aws_key_id(keys["b"])
    assert "alias" not in be.current_key_id() and keys["a"] not in be.current_key_id()


def test_status_encrypt_decrypt_over_the_socket(moto_endpoint, keys, sock_dir):
    be = _backend(moto_endpoint, [keys["a"]], encryption_context={"kubernetes.io/cluster": "prod"})
    with Plugin(KeyManagementService(be), sock_dir / "aws.sock") as p:
        st = p.status()
        assert (st.version, st.healthz, st.key_id) == ("v2", "ok", aws_key_id(keys["a"]))
        enc = p.encrypt(SEED)
        assert enc.key_id == st.key_id and 0 < len(enc.ciphertext) < 1024 and SEED not in enc.ciphertext
        assert enc.ciphertext[:1] == b"\x01"
        assert p.decrypt(enc.ciphertext, enc.key_id) == SEED
        e = rpc_error(p.decrypt, enc.ciphertext, "aws:unknown")
        assert e.code() == grpc.StatusCode.NOT_FOUND and "unknown key_id" in e.details()
        e = rpc_error(p.decrypt, enc.ciphertext[:40], enc.key_id)
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "InvalidCiphertextException" in e.details()
        e = rpc_error(p.decrypt, b"k8s:enc:" + enc.ciphertext[1:], enc.key_id)
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "format byte" in e.details()


def test_encryption_context_is_bound(moto_endpoint, keys, sock_dir):
    prod = _backend(moto_endpoint, [keys["a"]], encryption_context={"cluster": "prod"})
    dev = _backend(moto_endpoint, [keys["a"]], encryption_context={"cluster": "dev"})
    enc = prod.encrypt(SEED)
    with Plugin(KeyManagementService(dev), sock_dir / "dev.sock") as p:
        e = rpc_error(p.decrypt, enc.ciphertext, enc.key_id)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "InvalidCiphertextException" in e.details()


def test_switching_keys_keeps_old_data_readable_and_pins_the_key(moto_endpoint, keys, sock_dir):
    old = _backend(moto_endpoint, [keys["a"]]).encrypt(SEED)
    be = _backend(moto_endpoint, [keys["b"], keys["a"]])  # B encrypts, A still decrypts
    with Plugin(KeyManagementService(be), sock_dir / "rot.sock") as p:
        assert p.status().key_id == aws_key_id(keys["b"]) != old.key_id
        assert p.decrypt(old.ciphertext, old.key_id) == SEED
        new = p.encrypt(SEED)
        assert new.key_id == aws_key_id(keys["b"])
        # B's ciphertext presented as A's: KMS refuses (KeyId is pinned), never returns the data
        e = rpc_error(p.decrypt, new.ciphertext, old.key_id)
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "AccessDeniedException" in e.details() and keys["a"] in e.details()


def test_kms_outage_is_unavailable_and_health_rides_it_out(sock_dir):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    arn = boto3.client("kms", endpoint_url=endpoint, region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    be = _backend(endpoint, [arn])
    with Plugin(KeyManagementService(be), sock_dir / "out.sock") as p:
        assert p.status().healthz == "ok"
        server.stop()  # AWS KMS unreachable
        e = rpc_error(p.encrypt, SEED)
        assert e.code() == grpc.StatusCode.UNAVAILABLE and "AWS KMS unreachable" in e.details()
        p.service.health.ok_ttl = 0
        assert p.status().healthz == "ok"  # transient, within the grace period: no flapping
        p.service.health.grace = 0
        st = p.status()
        assert st.healthz.startswith("encrypt/decrypt round trip failed") and "unreachable" in st.healthz


def test_unknown_key_refuses_to_start(moto_endpoint):
    with pytest.raises(KubestrataError, match="NotFoundException"):
        _backend(moto_endpoint, ["alias/does-not-exist"])
    r = CliRunner().invoke(
        app,
        ["kms", "serve", "--backend", "aws", "--socket", "unix:///tmp/x.sock", "--region", REGION]
        + ["--endpoint-url", moto_endpoint, "--key-id", "alias/does-not-exist"],
    )
    assert r.exit_code == 2 and "NotFoundException" in " ".join(r.stderr.split())
    r = CliRunner().invoke(app, ["kms", "serve", "--backend", "aws", "--socket", "unix:///tmp/x.sock"])
    assert r.exit_code == 2 and "--key-id" in r.stderr


def test_asymmetric_key_is_refused(moto_endpoint, kms):
    arn = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"]
    with pytest.raises(KubestrataError, match="not a symmetric"):
        _backend(moto_endpoint, [arn])


def test_no_region_is_a_clear_error(monkeypatch):
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(KubestrataError, match="--region"):
        AWSBackend(["alias/x"])
