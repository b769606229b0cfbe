"""Policy hot reload through the server (applied / rejected, previous set keeps serving) and the
`serve` / `certs` commands' user-facing errors."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys

from cryptography import x509
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.server.assemble import build_state
from kubestrata.server.engines import load_cedar
from tests.conftest import REPO_ROOT
from tests.server.fakes import config

DEMO = REPO_ROOT / "examples" / "cedar-demo" / "policies"
SAR = {
    "apiVersion": "authorization.k8s.io/v1",
    "kind": "SubjectAccessReview",
    "spec": {
        "user": "alice",
        "groups": ["config-editors"],
        "resourceAttributes": {
            "verb": "get",
            "version": "v1",
            "resource": "configmaps",
            "namespace": "team-a",
            "name": "x",
        },
    },
}
FORBID_GET = '@id("no-get")\nforbid (principal, action == k8s::Action::"get", resource);\n'


def test_policy_reload_applied_and_rejected(live_server_factory, tmp_path):
    pol = tmp_path / "policies"
    shutil.copytree(DEMO, pol)
    state = build_state(
        config(policies={"dirs": [str(pol)], "settle_seconds": 0}),
        cedar=load_cedar([pol]),
        pss=None,
        audit=None,
    )
    srv = live_server_factory(state)
    with srv.client() as c:
        assert c.post("/authorize", json=SAR).json()["status"]["allowed"] is True

        (pol / "zz-no-get.cedar").write_text(FORBID_GET)
        assert state.policy_watcher.check() is True
        st = c.post("/authorize", json=SAR).json()["status"]
        assert st["denied"] is True and 'zz-no-get.cedar#0 (@id "no-get")' in st["reason"]

        # a forbid that does not validate (unknown attribute) is rejected as a whole set:
        # the previous set, including no-get, keeps serving
        (pol / "zz-no-get.cedar").write_text(
            FORBID_GET + "forbid (principal, action, resource) when { resource.nope };\n"
        )
        assert state.policy_watcher.check() is False
        assert c.post("/authorize", json=SAR).json()["status"]["denied"] is True
        assert srv.get("/readyz").status_code == 200

        (pol / "zz-no-get.cedar").unlink()
        assert state.policy_watcher.check() is True
        assert c.post("/authorize", json=SAR).json()["status"]["allowed"] is True
        metrics = srv.get("/metrics").text
    assert 'kubestrata_policy_reloads_total{result="applied"} 2.0' in metrics
    assert 'kubestrata_policy_reloads_total{result="rejected"} 1.0' in metrics
    assert "kubestrata_policies_loaded 5.0" in metrics


def test_certs_command_prints_ca_bundle(tmp_path):
    r = CliRunner().invoke(
        app, ["certs", "--dns-name", "kubestrata.kubestrata-system.svc", "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    bundle = r.stdout.strip().splitlines()[-1]
    ca = x509.load_pem_x509_certificate(base64.b64decode(bundle))
    assert ca.subject == x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes()).subject
    cert = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["kubestrata.kubestrata-system.svc"]
    assert cert.issuer == ca.subject
    assert (tmp_path / "tls.key").stat().st_mode & 0o077 == 0
    # a second run keeps the CA (the caBundle in the cluster stays valid) and issues a new cert
    r2 = CliRunner().invoke(app, ["certs", "--dns-name", "x", "--out", str(tmp_path)])
    assert r2.stdout.strip().splitlines()[-1] == bundle


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubestrata", "serve", *args, "--insecure-no-client-auth", "--ops-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO_ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )


def test_serve_requires_tls():
    r = _serve("--policies", str(DEMO))
    assert r.returncode == 2 and "HTTPS only" in r.stderr and "Traceback" not in r.stderr


def test_serve_rejects_invalid_policies_before_listening(tmp_path, certs):
    (tmp_path / "bad.cedar").write_text("forbid (principal, action, resource) when { resource.nope };")
    r = _serve("--tls-cert", str(certs.cert), "--tls-key", str(certs.key), "--policies", str(tmp_path))
    assert r.returncode == 2 and "bad.cedar" in r.stderr and "Traceback" not in r.stderr


def test_serve_rejects_unreadable_certificate(tmp_path):
    (tmp_path / "c.pem").write_text("not a cert")
    r = _serve(
        "--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "c.pem"), "--policies", str(DEMO)
    )
    assert r.returncode == 2 and "cannot load TLS certificate" in r.stderr


def test_serve_bad_config_names_field(tmp_path, certs):
    cfg = tmp_path / "k.yaml"
    cfg.write_text("serve:\n  limits:\n    max_body_bytes: -1\n")
    r = _serve("--config", str(cfg), "--tls-cert", str(certs.cert), "--tls-key", str(certs.key))
    assert r.returncode == 2 and "serve.limits.max_body_bytes" in r.stderr


def test_serve_process_end_to_end_mtls_and_draining_sigterm(certs, tmp_path):
    """The real `kubestrata serve` process: ready on the ops port, answers the demo over mutual TLS
    only, refuses callers without a client certificate, and on SIGTERM answers /readyz 503 while it
    drains, says Connection: close, then exits; every stderr line is a JSON log record."""
    import json
    import signal
    import ssl
    import time

    import httpx

    from tests.server.fakes import free_port

    port, ops = free_port(), free_port()
    cfg = tmp_path / "k.yaml"
    cfg.write_text("serve:\n  drain_seconds: 2\n")
    err = tmp_path / "stderr.log"
    with err.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubestrata", "serve", "-c", str(cfg),
             "--tls-cert", str(certs.cert), "--tls-key", str(certs.key), "--client-ca", str(certs.ca_cert),
             "--client-name", "kube-apiserver", "--policies", str(DEMO),
             "--host", "127.0.0.1", "--port", str(port), "--ops-port", str(ops)],
            env={"PYTHONPATH": str(REPO_ROOT / "src"), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )  # fmt: skip
        try:
            anon = ssl.create_default_context(cafile=str(certs.ca_cert))
            ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
            ctx.load_cert_chain(str(certs.client_cert), str(certs.client_key))
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{ops}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
                time.sleep(0.1)
            with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=anon, timeout=5) as c:
                try:
                    r = c.post("/authorize", json=SAR)
                    raise AssertionError(f"served without a client certificate: {r.status_code}")
                except httpx.HTTPError:
                    pass  # the TLS handshake fails: no certificate
            with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=5) as c:
                st = c.post("/authorize", json=SAR).json()["status"]
                assert st["allowed"] is True and "configmaps.cedar#0" in st["reason"]
                proc.send_signal(signal.SIGTERM)
                time.sleep(0.5)
                assert httpx.get(f"http://127.0.0.1:{ops}/readyz").status_code == 503
                r = c.post("/authorize", json=SAR)  # still served while draining, but no keep-alive
                assert r.status_code == 200 and r.headers["connection"] == "close"
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            rc = proc.wait(30)
    # uvicorn re-raises the signal after its graceful shutdown, as a process manager expects
    assert rc in (0, -signal.SIGTERM)
    lines = err.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert any(r.get("event") == "authorize" and r.get("decision") == "allowed" for r in records)
    assert any("Finished server process" in r["msg"] for r in records)


def test_serve_refuses_to_start_without_client_auth(certs):
    r = subprocess.run(
        [sys.executable, "-m", "kubestrata", "serve", "--tls-cert", str(certs.cert), "--tls-key",
         str(certs.key), "--policies", str(DEMO)],
        capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(REPO_ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    err = " ".join(r.stderr.split())
    assert r.returncode == 2 and "refusing to serve without client authentication" in err
    assert "--client-ca" in err and "--insecure-no-client-auth" in err and "Traceback" not in err


def test_half_written_policy_file_is_not_applied_until_it_settles(live_server_factory, tmp_path):
    """A file written in place in two steps: the first half parses (it ends at a policy boundary)
    but must not be served until the writer is done."""
    import os
    import time

    pol = tmp_path / "policies"
    shutil.copytree(DEMO, pol)
    state = build_state(
        config(policies={"dirs": [str(pol)], "settle_seconds": 1.0}),
        cedar=load_cedar([pol]),
        pss=None,
        audit=None,
    )
    srv = live_server_factory(state)
    w = state.policy_watcher
    forbid_list = '@id("no-list")\nforbid (principal, action == k8s::Action::"list", resource);\n'
    target = pol / "zz-guards.cedar"
    with srv.client() as c:
        target.write_text(FORBID_GET)  # half: only the first of two forbids so far
        assert w.check() is None  # still settling: nothing applied
        assert c.post("/authorize", json=SAR).json()["status"]["allowed"] is True
        time.sleep(0.5)
        target.write_text(FORBID_GET + forbid_list)  # the writer finishes
        assert w.check() is None  # changed again: the clock restarts
        time.sleep(1.1)
        assert w.check() is True  # quiet for settle seconds: the complete file is loaded
        assert 'zz-guards.cedar#0 (@id "no-get")' in c.post("/authorize", json=SAR).json()["status"]["reason"]
        assert state.metrics.policies_loaded._value.get() == 7

        # rename into place: complete at once, and loaded as soon as its (old) mtime says so
        staged = tmp_path / "staged.cedar"
        staged.write_text(FORBID_GET)
        old = time.time() - 60
        os.utime(staged, (old, old))
        os.replace(staged, pol / "zz-guards.cedar")
        assert w.check() is True and state.metrics.policies_loaded._value.get() == 6
