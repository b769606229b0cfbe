"""The committed stubs are what grpcio-tools makes of the vendored upstream proto, and the proto is
KMS v2 as the API server speaks it (service name, methods, field numbers of the reference §5.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubestrata.kms.apis import regenerate
from kubestrata.kms.apis.v2 import api_pb2

SRC = Path(regenerate.__file__).resolve().parents[3]


def test_committed_stubs_match_the_proto(tmp_path):
    pytest.importorskip("grpc_tools")
    for generated in regenerate.generate(tmp_path):
        committed = SRC / generated.relative_to(tmp_path)
        assert committed.read_bytes() == generated.read_bytes(), (
            f"{committed} is stale: PYTHONPATH=src python -m kubestrata.kms.apis.regenerate"
        )


def test_proto_keeps_the_upstream_licence_header():
    text = (SRC / regenerate.PROTO).read_text()
    assert "Copyright 2022 The Kubernetes Authors." in text
    assert "Licensed under the Apache License, Version 2.0" in text
    assert 'option go_package = "k8s.io/kms/apis/v2";' in text


def _fields(message) -> dict[str, tuple[int, str]]:
    return {f.name: (f.number, f.type) for f in message.DESCRIPTOR.fields}


def test_wire_contract():
    service = api_pb2.DESCRIPTOR.services_by_name["KeyManagementService"]
    assert service.full_name == "v2.KeyManagementService"
    assert sorted(m.name for m in service.methods) == ["Decrypt", "Encrypt", "Status"]
    fd = api_pb2.StatusResponse.DESCRIPTOR.fields_by_name
    assert [(n, fd[n].number) for n in ("version", "healthz", "key_id")] == [
        ("version", 1),
        ("healthz", 2),
        ("key_id", 3),
    ]
    assert {n: f[0] for n, f in _fields(api_pb2.EncryptRequest).items()} == {"plaintext": 1, "uid": 2}
    assert {n: f[0] for n, f in _fields(api_pb2.EncryptResponse).items()} == {
        "ciphertext": 1,
        "key_id": 2,
        "annotations": 3,
    }
    assert {n: f[0] for n, f in _fields(api_pb2.DecryptRequest).items()} == {
        "ciphertext": 1,
        "uid": 2,
        "key_id": 3,
        "annotations": 4,
    }
    assert {n: f[0] for n, f in _fields(api_pb2.DecryptResponse).items()} == {"plaintext": 1}
