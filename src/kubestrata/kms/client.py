"""A KMS v2 client over the Unix socket, as the API server talks to a plugin (for `kms status`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import grpc

from kubestrata.errors import KubestrataError
from kubestrata.kms.apis.v2 import api_pb2, api_pb2_grpc
from kubestrata.kms.service import grpc_address, parse_socket


@dataclass
class Probe:
    version: str
    healthz: str
    key_id: str
    round_trip: str  # "ok" or the error


def probe(endpoint: str, timeout: float = 5.0) -> Probe:
    """Status, then an Encrypt/Decrypt round trip of a random 32-byte seed (what the API server wraps)."""
    import os

    addr = grpc_address(parse_socket(endpoint))
    with grpc.insecure_channel(addr) as channel:
        stub = api_pb2_grpc.KeyManagementServiceStub(channel)
        try:
            st = stub.Status(api_pb2.StatusRequest(), timeout=timeout)
        except grpc.RpcError as e:
            raise KubestrataError(f"{endpoint}: Status failed: {e.code().name}: {e.details()}") from None
        seed = os.urandom(32)
        try:
            enc = stub.Encrypt(api_pb2.EncryptRequest(plaintext=seed, uid=str(uuid.uuid4())), timeout=timeout)
            dec = stub.Decrypt(
                api_pb2.DecryptRequest(
                    ciphertext=enc.ciphertext,
                    uid=str(uuid.uuid4()),
                    key_id=enc.key_id,
                    annotations=dict(enc.annotations),
                ),
                timeout=timeout,
            )
            rt = "ok" if dec.plaintext == seed else "decrypt returned different data"
            if rt == "ok" and enc.key_id != st.key_id:
                rt = f"Encrypt key_id {enc.key_id} differs from Status key_id {st.key_id}"
        except grpc.RpcError as e:
            rt = f"{e.code().name}: {e.details()}"
    return Probe(st.version, st.healthz, st.key_id, rt)
