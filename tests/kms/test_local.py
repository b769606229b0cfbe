"""The local backend through a real Unix socket and a grpc client built from the same proto."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import grpc
import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.kms import keyring as kr
from kubestrata.kms.apis.v2 import api_pb2
from kubestrata.kms.backends import LocalBackend
from kubestrata.kms.service import KeyManagementService
from tests.kms.conftest import Plugin, rpc_error

runner = CliRunner()
SEED = os.urandom(32)  # what the API server wraps: a 32-byte DEK seed


def test_status_encrypt_decrypt(plugin):
    st = plugin.status()
    assert (st.version, st.healthz) == ("v2", "ok")
    assert st.key_id.startswith("local:") and len(st.key_id.encode()) < 1024
    enc = plugin.encrypt(SEED)
    assert enc.key_id == st.key_id  # an Encrypt key_id other than Status's makes the plugin unhealthy
    assert 0 < len(enc.ciphertext) < 1024
    assert SEED not in enc.ciphertext
    assert dict(enc.annotations) == {}
    assert plugin.decrypt(enc.ciphertext, enc.key_id) == SEED
    # a fresh nonce per call: the same plaintext never gives the same ciphertext
    assert plugin.encrypt(SEED).ciphertext != enc.ciphertext


def test_socket_is_private(plugin):
    assert stat.S_IMODE(os.stat(plugin.socket).st_mode) & 0o077 == 0


def test_key_id_is_stable_and_changes_exactly_with_the_key(keyring, sock_dir):
    first = LocalBackend(keyring).current_key_id()
    assert LocalBackend(keyring).current_key_id() == first  # restart: same key, same id
    _, key = kr.rotate(keyring)
    assert key.id != first and LocalBackend(keyring).current_key_id() == key.id
    ring = kr.retire(keyring, first)
    assert first in ring.retired and first not in ring.by_id


def test_running_plugin_follows_rotation(plugin, keyring):
    before = plugin.status().key_id
    old = plugin.encrypt(SEED)
    _, key = kr.rotate(keyring)
    st = plugin.status()
    assert st.key_id == key.id != before and st.healthz == "ok"
    new = plugin.encrypt(SEED)
    assert new.key_id == key.id
    assert plugin.decrypt(old.ciphertext, old.key_id) == SEED  # the old key still decrypts
    assert plugin.decrypt(new.ciphertext, new.key_id) == SEED


def test_unknown_key_id_is_refused(plugin):
    enc = plugin.encrypt(SEED)
    e = rpc_error(plugin.decrypt, enc.ciphertext, "local:00000000000000000000000000000000")
    assert e.code() == grpc.StatusCode.NOT_FOUND
    assert "unknown key_id" in e.details() and "refusing to decrypt" in e.details()


def test_ciphertext_of_another_key_never_decrypts(plugin, keyring):
    old = plugin.encrypt(SEED)
    kr.rotate(keyring)
    new = plugin.encrypt(SEED)
    # both keys are in the keyring: swapping the key_ids must fail authentication, not return data
    for ct, kid in ((old.ciphertext, new.key_id), (new.ciphertext, old.key_id)):
        e = rpc_error(plugin.decrypt, ct, kid)
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "failed authentication" in e.details()


@pytest.mark.parametrize(
    "mangle,message",
    [
        (lambda c: c[:20], "truncated or not ours"),
        (lambda c: c[:-1], "failed authentication"),
        (lambda c: c[:-1] + bytes([c[-1] ^ 1]), "failed authentication"),
        (lambda c: b"\x02" + c[1:], "format byte 0x02"),
        (lambda c: b"k8s:enc:aescbc:v1:key1:" + os.urandom(48), "format byte 0x6b"),
        (lambda c: b"\x01" + os.urandom(60), "failed authentication"),
    ],
    ids=["truncated-header", "truncated-tag", "bit-flip", "wrong-format", "foreign", "random"],
)
def test_bad_ciphertexts(plugin, mangle, message):
    enc = plugin.encrypt(SEED)
    e = rpc_error(plugin.decrypt, mangle(enc.ciphertext), enc.key_id)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in e.details()


def test_request_limits(plugin):
    enc = plugin.encrypt(SEED)
    cases = [
        (lambda: plugin.encrypt(b""), "plaintext is empty"),
        (lambda: plugin.encrypt(b"x" * 1025), "plaintext is 1025 bytes"),
        (lambda: plugin.encrypt(b"x" * 1000), "ciphertext; the API server accepts under 1024"),
        (lambda: plugin.decrypt(b"", enc.key_id), "ciphertext is empty"),
        (lambda: plugin.decrypt(b"\x01" * 1025, enc.key_id), "over the KMS v2 limit of 1024"),
        (lambda: plugin.decrypt(enc.ciphertext, ""), "key_id is empty"),
        (lambda: plugin.decrypt(enc.ciphertext, "k" * 1025), "key_id is 1025 bytes"),
        (lambda: plugin.decrypt(enc.ciphertext, enc.key_id, {"Not_A_Domain": b"x"}), "fully qualified"),
        (lambda: plugin.decrypt(enc.ciphertext, enc.key_id, {"singlelabel": b"x"}), "fully qualified"),
        (
            lambda: plugin.decrypt(enc.ciphertext, enc.key_id, {"a.example.com": b"x" * (32 * 1024 - 12)}),
            "32769 bytes (keys plus values), over the KMS v2 limit of 32768",
        ),
    ]
    for call, message in cases:
        e = rpc_error(call)
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert message in e.details()
    # what the API server itself accepts is accepted (the plugin ignores annotations it did not write):
    # FQDN keys (a trailing dot too), exactly 32 kB of annotations; a 1024-byte ciphertext or key_id
    # is judged as a ciphertext or key, not refused for its size
    assert plugin.decrypt(enc.ciphertext, enc.key_id, {"kms.example.com": b"v"}) == SEED
    assert plugin.decrypt(enc.ciphertext, enc.key_id, {"kms.example.com.": b"v"}) == SEED
    assert plugin.decrypt(enc.ciphertext, enc.key_id, {"a.example.com": b"x" * (32 * 1024 - 13)}) == SEED
    e = rpc_error(plugin.decrypt, b"\x01" * 1024, enc.key_id)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "failed authentication" in e.details()
    e = rpc_error(plugin.decrypt, enc.ciphertext, "k" * 1024)
    assert e.code() == grpc.StatusCode.NOT_FOUND


def test_oversize_message_is_refused_before_parsing(plugin):
    e = rpc_error(plugin.encrypt, b"x" * (1 << 20))
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert plugin.status().healthz == "ok"  # and the plugin keeps serving


def test_corrupt_keyring_on_reload_keeps_serving_old_keys_and_reports_it(plugin, keyring):
    enc = plugin.encrypt(SEED)
    plugin.service.health.ok_ttl = 0
    keyring.write_text(keyring.read_text()[:-20])
    st = plugin.status()
    assert st.healthz.startswith("keyring reload failed") and "corrupt" in st.healthz
    assert st.key_id == enc.key_id  # never a new key
    assert plugin.decrypt(enc.ciphertext, enc.key_id) == SEED


# --- the command line: keyring safety --------------------------------------------------------------


def _flat(text: str) -> str:
    """stderr without rich's line wrapping."""
    return " ".join(text.split())


class _Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _run(*args: str) -> _Result:
    """The command in-process (for commands that exit before serving)."""
    r = runner.invoke(app, ["kms", *args])
    return _Result(r.exit_code, r.stdout, r.stderr)


def _cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kubestrata", "kms", *args], capture_output=True, text=True, timeout=timeout
    )


def _corruptions(path):
    good = path.read_text()
    yield "truncated", good[: len(good) // 2], "not valid JSON"
    doc = __import__("json").loads(good)
    secret = doc["keys"][0]["secret"]
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    yield "bit-flip", good.replace(secret, flipped), "does not match the key material"
    yield "short-key", good.replace(secret, "AAAA"), "3 bytes, expected 32"
    yield "no-primary", good.replace(doc["primary"], "local:x", 1), "is not one of the keys"


def test_missing_or_corrupt_keyring_refuses_to_start(tmp_path, sock_dir):
    sock = f"unix://{sock_dir}/s.sock"
    r = _run("serve", "--socket", sock, "--keyring", str(tmp_path / "nope.json"))
    assert r.returncode == 2 and "kms init" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "nope.json").exists()  # never generated
    path = tmp_path / "k.json"
    kr.init(path)
    for name, text, message in _corruptions(path):
        bad = tmp_path / f"{name}.json"
        bad.write_text(text)
        bad.chmod(0o600)
        r = _run("serve", "--socket", sock, "--keyring", str(bad))
        assert r.returncode == 2, name
        assert message in _flat(r.stderr) and "refuses to start" in _flat(r.stderr), r.stderr
        assert bad.read_text() == text  # left as it was
    path.chmod(0o644)
    r = _run("serve", "--socket", sock, "--keyring", str(path))
    assert r.returncode == 2 and "chmod 600" in _flat(r.stderr)


def test_init_never_overwrites(keyring):
    before = keyring.read_bytes()
    r = _run("init", "--keyring", str(keyring))
    assert r.returncode == 2 and "never overwritten" in _flat(r.stderr)
    assert keyring.read_bytes() == before
    assert stat.S_IMODE(os.stat(keyring).st_mode) == 0o600


def test_serve_and_status_commands(keyring, sock_dir):
    sock = f"unix://{sock_dir}/kms.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubestrata", "kms", "serve", "--socket", sock, "--keyring", str(keyring)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (sock_dir / "kms.sock").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.1)
        r = _cli("status", "--socket", sock, "-o", "json")
        assert r.returncode == 0, r.stderr
        doc = __import__("json").loads(r.stdout)
        assert doc == {
            "version": "v2",
            "healthz": "ok",
            "keyId": kr.load(keyring).primary_id,
            "roundTrip": "ok",
        }
    finally:
        proc.terminate()
        proc.wait(15)
    assert proc.returncode == 0
    assert not (sock_dir / "kms.sock").exists()  # removed on SIGTERM


def test_status_request_message_is_empty():
    assert api_pb2.StatusRequest().SerializeToString() == b""


def test_second_plugin_instance_shares_keys(keyring, sock_dir):
    # two plugin replicas (one per control-plane node) with the same keyring decrypt each other's data
    with (
        Plugin(KeyManagementService(LocalBackend(keyring)), sock_dir / "a.sock") as a,
        Plugin(KeyManagementService(LocalBackend(keyring)), sock_dir / "b.sock") as b,
    ):
        enc = a.encrypt(SEED)
        assert b.decrypt(enc.ciphertext, enc.key_id) == SEED


def test_staged_rotation_across_two_nodes(tmp_path, sock_dir):
    # two control-plane nodes, each with its own copy of the keyring
    a_ring, b_ring = tmp_path / "a.json", tmp_path / "b.json"
    kr.init(a_ring)
    b_ring.write_bytes(a_ring.read_bytes())
    b_ring.chmod(0o600)
    a = LocalBackend(a_ring, recheck_seconds=0.0)
    b = LocalBackend(b_ring, recheck_seconds=0.0)
    with (
        Plugin(KeyManagementService(a), sock_dir / "a.sock") as pa,
        Plugin(KeyManagementService(b), sock_dir / "b.sock") as pb,
    ):
        old_id = pa.status().key_id
        r = _run("rotate", "--stage", "--keyring", str(a_ring))
        assert r.returncode == 0, r.stderr
        new_id = r.stdout.strip()
        assert pa.status().key_id == old_id  # staged: still encrypting with the old key
        b_ring.write_bytes(a_ring.read_bytes())  # "copy the keyring to every node"
        assert _run("promote", "--key-id", new_id, "--keyring", str(a_ring)).returncode == 0
        assert pa.status().key_id == new_id and pb.status().key_id == old_id
        enc = pa.encrypt(SEED)  # node A already writes with the new key ...
        assert pb.decrypt(enc.ciphertext, enc.key_id) == SEED  # ... and node B can read it
        assert _run("promote", "--key-id", new_id, "--keyring", str(b_ring)).returncode == 0
        assert pb.status().key_id == new_id
    r = _run("promote", "--key-id", "local:nope", "--keyring", str(a_ring))
    assert r.returncode == 2 and "no key local:nope" in _flat(r.stderr)


def test_status_of_nothing_is_a_clear_error(sock_dir):
    r = _run("status", "--socket", f"unix://{sock_dir}/none.sock", "--timeout", "2")
    assert r.returncode == 2 and "Status failed: UNAVAILABLE" in _flat(r.stderr)
    r = _run("status", "--socket", "tcp://127.0.0.1:1")
    assert r.returncode == 2 and "unix:///PATH" in _flat(r.stderr)


def test_abstract_socket(keyring):
    import asyncio

    from kubestrata.kms.service import start_server

    name = f"@kubestrata-test-{os.getpid()}"
    service = KeyManagementService(LocalBackend(keyring))
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(start_server(service, name))
    import threading

    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    try:
        with grpc.insecure_channel(f"unix-abstract:{name[1:]}") as ch:
            from kubestrata.kms.apis.v2 import api_pb2_grpc

            st = api_pb2_grpc.KeyManagementServiceStub(ch).Status(api_pb2.StatusRequest(), timeout=10)
        assert (st.version, st.healthz) == ("v2", "ok")
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)


def test_static_pod_args_are_what_serve_accepts(tmp_path):
    import yaml

    from tests.conftest import EXAMPLES

    manifest = EXAMPLES.parent / "deploy-host" / "kms" / "kms-plugin.yaml"
    pod = yaml.safe_load(manifest.read_text())
    args = pod["spec"]["containers"][0]["args"]
    assert args[:2] == ["kms", "serve"]
    keyring_arg = next(a for a in args if a.startswith("--keyring="))
    assert keyring_arg.split("=", 1)[1].startswith(
        pod["spec"]["containers"][0]["volumeMounts"][1]["mountPath"]
    )
    # the flags parse; the plugin stops only because this machine has no keyring at that path
    ring = tmp_path / "keyring.json"
    r = _run(*[f"--keyring={ring}" if a == keyring_arg else a for a in args[1:]])
    assert r.returncode == 2 and f"{ring}: no keyring" in _flat(r.stderr)
