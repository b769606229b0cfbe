"""Key encryption backends of the KMS v2 plugin: a local AES-256-GCM keyring and AWS KMS.

A backend wraps (encrypts) the small secret the API server hands over (its DEK seed) under a key
encryption key and names that key with a stable ``key_id``. Backends are plain Python, with no gRPC:
they raise KMSError with the gRPC status code name to answer with, and the service maps it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubestrata.kms import keyring as kr

log = logging.getLogger("kubestrata.kms")

FORMAT_V1 = b"\x01"  # first byte of every ciphertext this plugin writes (storage format version)
NONCE_BYTES = 12
TAG_BYTES = 16
_AAD_TAG = b"kubestrata kms v2 local\x00"


class KMSError(Exception):
    """A failed operation: ``code`` is the gRPC status code name (INVALID_ARGUMENT, NOT_FOUND, ...);
    ``transient`` marks throttling and outages that must not flip the plugin's health."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class Encrypted:
    ciphertext: bytes
    key_id: str
    annotations: dict[str, bytes] = field(default_factory=dict)


class Backend(Protocol):
    name: str

    def current_key_id(self) -> str: ...

    def encrypt(self, plaintext: bytes) -> Encrypted: ...

    def decrypt(self, ciphertext: bytes, key_id: str, annotations: dict[str, bytes]) -> bytes: ...

    def health_problem(self) -> str | None:
        """A reason the backend cannot work besides the round trip (e.g. a bad keyring reload)."""
        ...


def unknown_key(key_id: str, where: str) -> KMSError:
    return KMSError(
        "NOT_FOUND",
        f"unknown key_id {key_id!r}: no such key in {where} (retired, or never made by this plugin); "
        "refusing to decrypt",
    )


class LocalBackend:
    """AES-256-GCM under the keyring's keys. Ciphertext: 0x01 | 12-byte random nonce | GCM output,
    with the key id bound as associated data. The keyring file is re-read when it changes on disk
    (``kms rotate`` in another process); a reload that fails keeps the keys in memory and reports
    unhealthy, it never drops to a new key."""

    name = "local"

    def __init__(self, path: str | Path, recheck_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self._ring = kr.load(self.path)
        self._stamp = kr.fingerprint(self.path)
        # (ciphers by key id, primary key id), replaced as one value so a reload is atomic
        self._keys = self._cipher_map(self._ring)
        self._recheck = recheck_seconds
        self._next_check = 0.0
        self._reload_error: str | None = None
        self._lock = threading.Lock()

    # -- keyring reloading ---------------------------------------------------------------------
    def _maybe_reload(self) -> None:
        import time

        now = time.monotonic()
        if now < self._next_check:
            return
        with self._lock:
            if now < self._next_check:
                return
            self._next_check = now + self._recheck
            stamp = kr.fingerprint(self.path)
            if stamp == self._stamp:
                return
            try:
                ring = kr.load(self.path)
            except kr.KeyringError as e:
                if self._reload_error is None:
                    log.error("keyring reload failed, still serving the previous keys: %s", e)
                self._reload_error = f"keyring reload failed, still serving the previous keys: {e}"
                return
            before = self._keys[1]
            self._ring, self._stamp, self._reload_error = ring, stamp, None
            self._keys = self._cipher_map(ring)
            log.warning(
                "keyring reloaded: %d keys, primary %s%s",
                len(ring.keys),
                ring.primary_id,
                f" (was {before})" if before != ring.primary_id else "",
            )

    @staticmethod
    def _cipher_map(ring: kr.Keyring) -> tuple[dict[str, AESGCM], str]:
        return {k.id: AESGCM(k.material) for k in ring.keys}, ring.primary_id

    def reload_now(self) -> None:
        self._next_check = 0.0
        self._maybe_reload()

    def health_problem(self) -> str | None:
        self._maybe_reload()
        return self._reload_error

    def current_key_id(self) -> str:
        self._maybe_reload()
        return self._keys[1]

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys[0])

    @staticmethod
    def _aad(key_id: str) -> bytes:
        return _AAD_TAG + key_id.encode()

    def encrypt(self, plaintext: bytes) -> Encrypted:
        self._maybe_reload()
        ciphers, kid = self._keys
        nonce = os.urandom(NONCE_BYTES)
        ct = ciphers[kid].encrypt(nonce, plaintext, self._aad(kid))
        return Encrypted(FORMAT_V1 + nonce + ct, kid)

    def decrypt(self, ciphertext: bytes, key_id: str, annotations: dict[str, bytes]) -> bytes:
        self._maybe_reload()
        cipher = self._keys[0].get(key_id)
        if cipher is None:
            raise unknown_key(key_id, f"keyring {self.path}")
        if len(ciphertext) < 1 + NONCE_BYTES + TAG_BYTES:
            raise KMSError(
                "INVALID_ARGUMENT",
                f"ciphertext is {len(ciphertext)} bytes, shorter than any ciphertext of this plugin "
                f"({1 + NONCE_BYTES + TAG_BYTES}); truncated or not ours",
            )
        if ciphertext[:1] != FORMAT_V1:
            raise KMSError(
                "INVALID_ARGUMENT",
                f"ciphertext format byte 0x{ciphertext[0]:02x} is not 0x01: not written by the kubestrata "
                "local backend",
            )
        nonce, body = ciphertext[1 : 1 + NONCE_BYTES], ciphertext[1 + NONCE_BYTES :]
        try:
            return cipher.decrypt(nonce, body, self._aad(key_id))
        except InvalidTag:
            raise KMSError(
                "INVALID_ARGUMENT",
                f"ciphertext failed authentication under key_id {key_id}: truncated, corrupted, or "
                "encrypted under another key",
            ) from None


# --- AWS KMS ----------------------------------------------------------------------------------

# error codes of the KMS API -> (gRPC code, transient)
_AWS_ERRORS: dict[str, tuple[str, bool]] = {
    "AccessDeniedException": ("PERMISSION_DENIED", False),
    "InvalidCiphertextException": ("INVALID_ARGUMENT", False),
    "IncorrectKeyException": ("INVALID_ARGUMENT", False),
    "InvalidKeyUsageException": ("FAILED_PRECONDITION", False),
    "DisabledException": ("FAILED_PRECONDITION", False),
    "KMSInvalidStateException": ("FAILED_PRECONDITION", False),
    "NotFoundException": ("FAILED_PRECONDITION", False),
    "InvalidGrantTokenException": ("PERMISSION_DENIED", False),
    "UnrecognizedClientException": ("UNAUTHENTICATED", False),
    "ExpiredTokenException": ("UNAUTHENTICATED", False),
    "ThrottlingException": ("UNAVAILABLE", True),
    "LimitExceededException": ("UNAVAILABLE", True),
    "KMSInternalException": ("UNAVAILABLE", True),
    "DependencyTimeoutException": ("UNAVAILABLE", True),
    "KeyUnavailableException": ("UNAVAILABLE", True),
}


def aws_key_id(arn: str) -> str:
    """The key_id for a KMS key: a hash of its key ARN (automatic rotation keeps the ARN, so the id)."""
    return "aws:" + hashlib.sha256(b"kubestrata kms v2 aws key\x00" + arn.encode()).hexdigest()[:32]


class AWSBackend:
    """AWS KMS Encrypt/Decrypt with an encryption context. Keys are given as key ids, key ARNs,
    aliases or alias ARNs and resolved once, at start, to key ARNs with DescribeKey: an alias is
    never the identity (re-pointing it would make old data unreadable). The first key encrypts;
    every listed key decrypts (to switch keys, list the new one first and keep the old one until
    ``kms rewrap`` has run). Ciphertext: 0x01 | KMS CiphertextBlob."""

    name = "aws"

    def __init__(
        self,
        keys: list[str],
        *,
        region: str | None = None,
        encryption_context: dict[str, str] | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        import boto3
        import botocore.config
        from botocore.exceptions import BotoCoreError, ClientError

        from kubestrata.errors import KubestrataError

        if not keys:
            raise KubestrataError("the aws backend needs at least one --key-id (a KMS key ARN or alias)")
        try:
            self._client = client or boto3.client(
                "kms",
                region_name=region,
                endpoint_url=endpoint_url,
                config=botocore.config.Config(
                    retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=32
                ),
            )
        except BotoCoreError as e:  # no region, bad endpoint URL
            raise KubestrataError(f"AWS KMS client: {e} (give --region or set AWS_REGION)") from None
        self.context = dict(encryption_context or {})
        self.arns: list[str] = []
        for given in keys:
            try:
                meta = self._client.describe_key(KeyId=given)["KeyMetadata"]
            except ClientError as e:
                err = e.response.get("Error", {})
                raise KubestrataError(
                    f"KMS key {given}: {err.get('Code', 'error')}: {err.get('Message', e)}"
                ) from None
            except BotoCoreError as e:
                raise KubestrataError(f"KMS key {given}: {e}") from None
            if (
                meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT"
                or meta.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT"
            ):
                raise KubestrataError(f"KMS key {given} is not a symmetric ENCRYPT_DECRYPT key")
            self.arns.append(meta["Arn"])
        self.by_id = {aws_key_id(a): a for a in self.arns}
        self._primary = aws_key_id(self.arns[0])

    def health_problem(self) -> str | None:
        return None

    def current_key_id(self) -> str:
        return self._primary

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, op)(**kwargs)
        except ClientError as e:
            err = e.response.get("Error", {})
            code = err.get("Code", "")
            grpc_code, transient = _AWS_ERRORS.get(code, ("INTERNAL", False))
            what = "encrypt" if op == "encrypt" else "decrypt"
            raise KMSError(
                grpc_code,
                f"AWS KMS {code or 'error'} on {what} with key {kwargs.get('KeyId')}: {err.get('Message', '')}".rstrip(
                    ": "
                ),
                transient=transient,
            ) from None
        except BotoCoreError as e:
            raise KMSError("UNAVAILABLE", f"AWS KMS unreachable: {e}", transient=True) from None

    def encrypt(self, plaintext: bytes) -> Encrypted:
        arn = self.arns[0]
        out = self._call("encrypt", KeyId=arn, Plaintext=plaintext, EncryptionContext=self.context)
        return Encrypted(FORMAT_V1 + out["CiphertextBlob"], self._primary)

    def decrypt(self, ciphertext: bytes, key_id: str, annotations: dict[str, bytes]) -> bytes:
        arn = self.by_id.get(key_id)
        if arn is None:
            raise unknown_key(key_id, "the configured KMS keys")
        if len(ciphertext) < 2 or ciphertext[:1] != FORMAT_V1:
            raise KMSError(
                "INVALID_ARGUMENT",
                "ciphertext does not start with the format byte 0x01: not written by the kubestrata aws backend",
            )
        # KeyId pins the key: a blob of another key the role can use is refused, not decrypted
        out = self._call("decrypt", CiphertextBlob=ciphertext[1:], KeyId=arn, EncryptionContext=self.context)
        return out["Plaintext"]
