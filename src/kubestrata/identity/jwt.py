"""Compact JWS (JWT) with the algorithms Kubernetes signs service-account tokens with (RS256, ES256 and
their larger siblings), JWKs for their public keys, and the checks a relying party makes.

Kubernetes service-account token claims (§3.1): ``iss``, ``sub=system:serviceaccount:<ns>:<sa>``, ``aud``,
``exp``, ``iat``, ``nbf``, ``kubernetes.io: {namespace, pod: {name, uid}, serviceaccount: {name, uid}}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVES = {
    "ES256": (ec.SECP256R1, "P-256", 32),
    "ES384": (ec.SECP384R1, "P-384", 48),
    "ES512": (ec.SECP521R1, "P-521", 66),
}
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
MAX_TOKEN_BYTES = 16 * 1024


class JWTError(ValueError):
    """A token that cannot be trusted; ``reason`` says why in one line."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def unb64url(s: str) -> bytes:
    if not _B64URL.fullmatch(s) or len(s) % 4 == 1:
        raise JWTError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# -- keys ----------------------------------------------------------------------------------------------


def load_private_key(pem: bytes) -> Any:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise JWTError("only RSA and EC signing keys are supported")
    return key


def load_public_key(pem: bytes) -> Any:
    """A PEM public key, or the public half of a PEM private key (the apiserver's signing key file)."""
    if b"PRIVATE KEY" in pem:
        return load_private_key(pem).public_key()
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise JWTError("only RSA and EC keys are supported")
    return key


def key_id(public_key: Any) -> str:
    """The kid the kube-apiserver gives a key: base64url(SHA-256(DER of the public key))."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha256(der).digest())


def algorithm_for(key: Any) -> str:
    pub = key.public_key() if hasattr(key, "private_bytes") else key
    if isinstance(pub, rsa.RSAPublicKey):
        return "RS256"
    for alg, (curve, _, _) in _CURVES.items():
        if isinstance(pub.curve, curve):
            return alg
    raise JWTError(f"unsupported curve {pub.curve.name}")


def _int_b64(n: int, size: int | None = None) -> str:
    return b64url(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


def public_jwk(public_key: Any, kid: str | None = None) -> dict[str, str]:
    kid = kid or key_id(public_key)
    alg = algorithm_for(public_key)
    if isinstance(public_key, rsa.RSAPublicKey):
        nums = public_key.public_numbers()
        return {
            "use": "sig",
            "kty": "RSA",
            "kid": kid,
            "alg": alg,
            "n": _int_b64(nums.n),
            "e": _int_b64(nums.e),
        }
    _, crv, size = _CURVES[alg]
    enc = public_key.public_numbers()
    return {
        "use": "sig",
        "kty": "EC",
        "kid": kid,
        "alg": alg,
        "crv": crv,
        "x": _int_b64(enc.x, size),
        "y": _int_b64(enc.y, size),
    }


def _key_from_jwk(jwk: dict[str, Any]) -> Any:
    def num(field: str) -> int:
        return int.from_bytes(unb64url(str(jwk[field])), "big")

    if jwk.get("kty") == "RSA":
        return rsa.RSAPublicNumbers(num("e"), num("n")).public_key()
    if jwk.get("kty") == "EC":
        curve = {c: cls for cls, c, _ in _CURVES.values()}.get(str(jwk.get("crv")))
        if curve is None:
            raise JWTError(f"unsupported curve {jwk.get('crv')!r}")
        return ec.EllipticCurvePublicNumbers(num("x"), num("y"), curve()).public_key()
    raise JWTError(f"unsupported key type {jwk.get('kty')!r}")


@dataclass
class KeySet:
    """Verification keys by kid (a JWKS document, PEM files, or both)."""

    keys: dict[str, Any]

    @classmethod
    def from_jwks(cls, doc: Any) -> KeySet:
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise JWTError('a JWKS must be an object with a "keys" list')
        keys: dict[str, Any] = {}
        for i, jwk in enumerate(doc["keys"]):
            if not isinstance(jwk, dict):
                raise JWTError(f"keys[{i}] must be an object")
            if jwk.get("use", "sig") != "sig":
                continue
            try:
                key = _key_from_jwk(jwk)
            except (KeyError, ValueError) as e:
                raise JWTError(f"keys[{i}]: {e}") from None
            keys[str(jwk.get("kid") or key_id(key))] = key
        return cls(keys)

    @classmethod
    def from_public_keys(cls, keys: Iterable[Any]) -> KeySet:
        return cls({key_id(k): k for k in keys})

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(k, kid) for kid, k in self.keys.items()]}


# -- signing and verifying -----------------------------------------------------------------------------


def sign(claims: dict[str, Any], private_key: Any, kid: str | None = None) -> str:
    alg = algorithm_for(private_key)
    header = {"alg": alg, "kid": kid or key_id(private_key.public_key())}
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    ).encode()
    h = _HASHES[alg[2:]]()
    if alg.startswith("RS"):
        sig = private_key.sign(signing_input, padding.PKCS1v15(), h)
    else:
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(h)))
        size = _CURVES[alg][2]
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return signing_input.decode() + "." + b64url(sig)


def parse_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) without checking anything but the shape."""
    if not isinstance(token, str) or not token:
        raise JWTError("token is empty")
    if len(token) > MAX_TOKEN_BYTES:
        raise JWTError("token is too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise JWTError("token is malformed: a JWT has three dot-separated parts")
    try:
        header = json.loads(unb64url(parts[0]))
        claims = json.loads(unb64url(parts[1]))
        sig = unb64url(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise JWTError("token is malformed: not base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JWTError("token is malformed: header and claims must be JSON objects")
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), sig


def check_time(claims: dict[str, Any], now: float | None = None, leeway: float = 0.0) -> None:
    now = time.time() if now is None else now
    for field in ("exp", "nbf", "iat"):
        if field in claims and not isinstance(claims[field], int | float):
            raise JWTError(f"token has an invalid {field} claim")
    if "exp" not in claims:
        raise JWTError("token has no exp claim")
    if now > claims["exp"] + leeway:
        raise JWTError("token is expired")
    if "nbf" in claims and now + leeway < claims["nbf"]:
        raise JWTError("token is not valid yet")


def verify(
    token: str,
    keys: KeySet,
    *,
    audience: str | None = None,
    issuer: str | None = None,
    now: float | None = None,
    leeway: float = 0.0,
) -> dict[str, Any]:
    """The claims of a token signed by one of ``keys``, unexpired, for ``audience`` from ``issuer``."""
    header, claims, signing_input, sig = parse_unverified(token)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise JWTError(f"token algorithm {alg!r} is not accepted")
    kid = header.get("kid")
    candidates = [keys.keys[kid]] if isinstance(kid, str) and kid in keys.keys else []
    if not candidates:
        if kid:
            raise JWTError(f"token is signed by an unknown key (kid {str(kid)[:64]!r})")
        candidates = list(keys.keys.values())
    if not any(_verify_sig(k, alg, signing_input, sig) for k in candidates):
        raise JWTError("token signature is invalid")
    check_time(claims, now, leeway)
    if issuer is not None and claims.get("iss") != issuer:
        raise JWTError(f"token issuer {str(claims.get('iss'))[:200]!r} is not {issuer!r}")
    if audience is not None:
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if audience not in auds:
            raise JWTError(f"token audience is not {audience}")
    return claims


def _verify_sig(key: Any, alg: str, signing_input: bytes, sig: bytes) -> bool:
    h = _HASHES[alg[2:]]()
    try:
        if alg.startswith("RS"):
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(sig, signing_input, padding.PKCS1v15(), h)
        else:
            if not isinstance(key, ec.EllipticCurvePublicKey) or algorithm_for(key) != alg:
                return False
            size = _CURVES[alg][2]
            if len(sig) != 2 * size:
                return False
            r, s = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(h))
        return True
    except InvalidSignature:
        return False
