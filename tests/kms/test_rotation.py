"""Rotation keeps every old Secret readable: 10,000 wrapped seeds across three keys, all decrypted
through the socket after two rotations."""

from __future__ import annotations

import os
import uuid

from kubestrata.kms import keyring as kr
from kubestrata.kms.apis.v2 import api_pb2

N = 10_000
BATCH = 200  # calls in flight at once, as at API server start-up


def _encrypt_all(stub, payloads):
    out = []
    for i in range(0, len(payloads), BATCH):
        futs = [
            stub.Encrypt.future(api_pb2.EncryptRequest(plaintext=p, uid=str(uuid.uuid4())), timeout=60)
            for p in payloads[i : i + BATCH]
        ]
        out += [f.result() for f in futs]
    return out


def _decrypt_all(stub, encrypted):
    out = []
    for i in range(0, len(encrypted), BATCH):
        futs = [
            stub.Decrypt.future(
                api_pb2.DecryptRequest(ciphertext=e.ciphertext, key_id=e.key_id, uid=str(uuid.uuid4())),
                timeout=60,
            )
            for e in encrypted[i : i + BATCH]
        ]
        out += [f.result().plaintext for f in futs]
    return out


def test_ten_thousand_payloads_survive_two_rotations(plugin, keyring):
    payloads = [os.urandom(32) for _ in range(N)]
    thirds = [payloads[:4000], payloads[4000:7000], payloads[7000:]]
    encrypted = []
    key_ids = []
    for round_, chunk in enumerate(thirds):
        if round_:
            kr.rotate(keyring)
        st = plugin.status()
        assert st.healthz == "ok"
        key_ids.append(st.key_id)
        enc = _encrypt_all(plugin.stub, chunk)
        assert {e.key_id for e in enc} == {st.key_id}
        encrypted += enc
    assert len(set(key_ids)) == 3  # every rotation a new key_id, never a reused one
    assert kr.load(keyring).primary_id == key_ids[-1]
    assert _decrypt_all(plugin.stub, encrypted) == payloads
