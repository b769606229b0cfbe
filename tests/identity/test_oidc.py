"""`kubestrata identity oidc`: discovery document and JWKS over HTTP and as static files; tokens signed
with the key verify against the served JWKS (ours, and an independent JOSE library when installed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kubestrata.identity import jwt
from kubestrata.identity.agent import JWKSVerifier
from kubestrata.identity.oidc import create_oidc_app
from tests.identity.agentkit import run_app, sa_token, signing_key

REPO = Path(__file__).resolve().parents[2]
ISSUER = "https://example.test/clusters/prod"


@pytest.fixture(scope="module")
def keys():
    return signing_key(), ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def served(keys):
    ks = jwt.KeySet.from_public_keys(k.public_key() for k in keys)
    srv = run_app(create_oidc_app(ISSUER, ks))
    yield srv
    srv.stop()


def test_discovery_and_jwks(served, keys):
    d = httpx.get(f"{served.url}/clusters/prod/.well-known/openid-configuration")
    assert d.status_code == 200 and d.headers["cache-control"] == "public, max-age=3600"
    doc = d.json()
    assert doc["issuer"] == ISSUER and doc["jwks_uri"] == ISSUER + "/keys"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert doc["response_types_supported"] == ["id_token"] and doc["subject_types_supported"] == ["public"]
    jwks = httpx.get(f"{served.url}/clusters/prod/keys").json()
    assert httpx.get(f"{served.url}/clusters/prod/openid/v1/jwks").json() == jwks
    assert sorted(k["kty"] for k in jwks["keys"]) == ["EC", "RSA"]
    assert {k["kid"] for k in jwks["keys"]} == {jwt.key_id(k.public_key()) for k in keys}
    assert httpx.get(f"{served.url}/.well-known/openid-configuration").status_code == 404


@pytest.mark.parametrize("which", [0, 1])
def test_tokens_verify_against_the_served_jwks(served, keys, which):
    jwks = httpx.get(f"{served.url}/clusters/prod/keys").json()
    token = sa_token(keys[which], "shop", "uploader", issuer=ISSUER, audience="sts.amazonaws.com")
    claims = jwt.verify(token, jwt.KeySet.from_jwks(jwks), audience="sts.amazonaws.com", issuer=ISSUER)
    assert claims["sub"] == "system:serviceaccount:shop:uploader"
    v = JWKSVerifier(jwt.KeySet.from_jwks(jwks), issuer=ISSUER, audience="sts.amazonaws.com")
    assert v.verify(token).service_account == "uploader"
    joserfc = pytest.importorskip("joserfc", reason="an independent JOSE implementation, when installed")
    from joserfc import jwt as jjwt
    from joserfc.jwk import KeySet as JKeySet

    decoded = jjwt.decode(token, JKeySet.import_key_set(jwks), algorithms=["RS256", "ES256"])
    assert decoded.claims["iss"] == ISSUER and joserfc


def test_tampered_token_is_rejected(keys):
    ks = jwt.KeySet.from_public_keys([keys[0].public_key()])
    token = sa_token(keys[0], "shop", "uploader")
    head, body, sig = token.split(".")
    forged = json.loads(jwt.unb64url(body))
    forged["kubernetes.io"]["namespace"] = "kube-system"
    bad = ".".join([head, jwt.b64url(json.dumps(forged).encode()), sig])
    with pytest.raises(jwt.JWTError, match="signature is invalid"):
        jwt.verify(bad, ks)
    none_alg = jwt.b64url(b'{"alg":"none"}') + "." + body + "."
    with pytest.raises(jwt.JWTError, match="not accepted"):
        jwt.verify(none_alg, ks)


def test_write_static_from_the_apiserver_key_file(tmp_path, keys):
    (tmp_path / "sa.key").write_bytes(
        keys[0].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    r = subprocess.run(
        [sys.executable, "-m", "kubestrata", "identity", "oidc", "--issuer", ISSUER,
         "--signing-key", str(tmp_path / "sa.key"), "--write", str(tmp_path / "site")],
        capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "site/.well-known/openid-configuration").read_text())
    jwks = json.loads((tmp_path / "site/keys").read_text())
    assert doc["jwks_uri"] == ISSUER + "/keys"
    assert jwks["keys"][0]["kid"] == jwt.key_id(keys[0].public_key())
    assert "d" not in jwks["keys"][0]  # never the private part


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--issuer", "http://plain.example", "--signing-key", "x"], "must be an https URL"),
        (["--issuer", ISSUER, "--signing-key", "/nope.pem"], "cannot read /nope.pem"),
    ],
)
def test_oidc_bad_input(args, msg):
    r = subprocess.run(
        [sys.executable, "-m", "kubestrata", "identity", "oidc", *args, "--write", "/tmp/x"],
        capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
