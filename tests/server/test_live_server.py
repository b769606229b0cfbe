"""The real server: uvicorn over HTTPS on 127.0.0.1 with generated certificates."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.server.assemble import build_state
from kubestrata.server.certs import generate_certs
from tests.server.fakes import RecordingAuthorizer, config

SAR = {
    "apiVersion": "authorization.k8s.io/v1",
    "kind": "SubjectAccessReview",
    "spec": {
        "user": "alice",
        "groups": ["dev"],
        "resourceAttributes": {"verb": "get", "resource": "configmaps", "namespace": "demo", "version": "v1"},
    },
}


def _sar(verb: str, **spec: object) -> dict:
    doc = json.loads(json.dumps(SAR))
    doc["spec"]["resourceAttributes"]["verb"] = verb
    doc["spec"].update(spec)
    return doc


@pytest.fixture
def server(live_server_factory):
    state = build_state(config(), cedar=None, pss=None, audit=None)
    state.authorizer = RecordingAuthorizer()
    return live_server_factory(state)


def test_health_ready_metrics_on_the_ops_port(server):
    with server.ops() as o:
        assert o.get("/healthz").text == "ok"
        assert o.get("/readyz").status_code == 200
        with server.client() as c:
            c.post("/authorize", json=_sar("get"))
            assert c.get("/healthz").status_code == 404  # not on the webhook port
        body = o.get("/metrics").text
        assert o.post("/metrics").status_code == 405 and o.get("/nope").status_code == 404
    assert 'kubestrata_http_requests_total{code="200",route="authorize"} 1.0' in body
    assert 'kubestrata_decisions_total{outcome="allowed",webhook="authorize"} 1.0' in body
    assert "kubestrata_http_request_duration_seconds_bucket" in body
    assert 'kubestrata_http_requests_total{code="404",route="other"} 1.0' in body


def test_plain_http_is_not_served(server):
    # HTTPS only: a plaintext request gets no HTTP response (the TLS layer rejects it)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{server.port}/authorize", timeout=3)


def test_authorize_decisions(server):
    with server.client() as c:
        allowed = c.post("/authorize", json=_sar("get")).json()
        denied = c.post("/authorize", json=_sar("delete")).json()
        err = c.post("/authorize", json=_sar("boom")).json()
        beta = c.post("/authorize", json={**_sar("get"), "apiVersion": "authorization.k8s.io/v1beta1"}).json()
    assert allowed == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "status": {"allowed": True, "reason": "permitted by fake.cedar#1"},
    }
    assert denied["status"] == {"allowed": False, "denied": True, "reason": "forbidden by fake.cedar#0"}
    # engine failure: no opinion (neither allowed nor denied) with evaluationError
    assert err["status"]["allowed"] is False and "denied" not in err["status"]
    assert "evaluation failed (RuntimeError)" in err["status"]["evaluationError"]
    assert beta["apiVersion"] == "authorization.k8s.io/v1beta1"


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty request body"),
        (b"[]", 400, "must be a JSON object"),
        (json.dumps({**SAR, "kind": "TokenReview"}).encode(), 400, "kind must be SubjectAccessReview"),
        (json.dumps({**SAR, "apiVersion": "v1"}).encode(), 400, "apiVersion must be one of"),
        (json.dumps({**SAR, "spec": {"user": "a"}}).encode(), 400, "exactly one of"),
        (json.dumps({**SAR, "spec": {**SAR["spec"], "groups": "dev"}}).encode(), 400, "spec.groups"),
    ],
)
def test_authorize_bad_input_is_400_and_server_keeps_serving(server, body, code, needle):
    with server.client() as c:
        r = c.post("/authorize", content=body, headers={"content-type": "application/json"})
        assert r.status_code == code
        assert needle in r.json()["message"]
        assert r.json()["kind"] == "Status"
        assert c.post("/authorize", json=_sar("get")).status_code == 200


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d["request"].pop("uid"), "request.uid is required"),
        (lambda d: d.update(apiVersion="admission.k8s.io/v1beta1"), "apiVersion must be admission.k8s.io/v1"),
        (lambda d: d.update(kind="Pod"), "kind must be AdmissionReview"),
        (lambda d: d["request"].update(operation="PATCH"), "request.operation must be one of"),
        (lambda d: d["request"].update(object=[1]), "request.object must be an object"),
        (lambda d: d["request"].update(dryRun="yes"), "request.dryRun must be a boolean"),
    ],
)
def test_admission_bad_input_is_400(server, mutate, needle):
    doc = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "operation": "CREATE",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "namespace": "demo",
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        },
    }
    mutate(doc)
    with server.client() as c:
        for route in ("/admit", "/mutate"):
            r = c.post(route, json=doc)
            assert r.status_code == 400, r.text
            assert needle in r.json()["message"]


def test_oversized_body_is_413(live_server_factory):
    state = build_state(config(limits={"max_body_bytes": 1000}), cedar=None, pss=None, audit=None)
    state.authorizer = RecordingAuthorizer()
    srv = live_server_factory(state)
    big = _sar("get", extra={"k": ["x" * 2000]})
    with srv.client() as c:
        assert c.post("/authorize", json=big).status_code == 413

        # chunked (no Content-Length): cut off while streaming
        def gen():
            yield json.dumps(big).encode()

        assert c.post("/authorize", content=gen()).status_code == 413
        assert c.post("/authorize", json=_sar("get")).status_code == 200


def _tls_socket(port: int, ca: Path, client_cert: bool = True) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(ca))
    if client_cert:  # `kubestrata certs` writes the client pair beside the CA
        ctx.load_cert_chain(str(ca.parent / "client.crt"), str(ca.parent / "client.key"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def test_slow_body_times_out_and_server_keeps_serving(live_server_factory, certs):
    state = build_state(config(limits={"body_timeout": 0.5}), cedar=None, pss=None, audit=None)
    state.authorizer = RecordingAuthorizer()
    srv = live_server_factory(state)
    s = _tls_socket(srv.port, certs.ca_cert)
    s.sendall(b"POST /authorize HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    t0 = time.monotonic()
    data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert time.monotonic() - t0 < 5
    s.close()
    with srv.client() as c:
        assert c.post("/authorize", json=_sar("get")).status_code == 200


def test_slow_headers_are_cut_off(live_server_factory, certs):
    state = build_state(config(), cedar=None, pss=None, audit=None)
    srv = live_server_factory(state, header_timeout=0.5)
    s = _tls_socket(srv.port, certs.ca_cert)
    s.sendall(b"POST /authorize HTTP/1.1\r\nHost: x\r\n")  # never finishes the headers
    t0 = time.monotonic()
    data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 5
    assert s.recv(4096) == b""  # closed
    s.close()
    with srv.client() as c:  # keep-alive connections that finish their headers in time are fine
        assert c.get("/authorize").status_code == 405
        time.sleep(0.8)
        assert c.get("/authorize").status_code == 405


def _peer_serial(port: int, ca: Path) -> int:
    s = _tls_socket(port, ca)
    der = s.getpeercert(binary_form=True)
    s.close()
    return x509.load_der_x509_certificate(der).serial_number


def test_certificate_rotation_without_dropping_requests(live_server_factory, certs, tmp_path):
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(certs.cert, cert)
    shutil.copy(certs.key, key)
    state = build_state(config(), cedar=None, pss=None, audit=None)
    state.authorizer = RecordingAuthorizer()
    srv = live_server_factory(state, cert=cert, key=key)
    before = _peer_serial(srv.port, certs.ca_cert)

    errors: list[BaseException] = []
    stop = threading.Event()

    def hammer() -> None:
        try:
            with srv.client() as c:
                while not stop.is_set():
                    assert c.post("/authorize", json=_sar("get")).status_code == 200
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    with srv.client() as keep:  # a keep-alive connection opened before the rotation
        assert keep.post("/authorize", json=_sar("get")).status_code == 200
        # rotate: same CA, new serving certificate (cert-manager style)
        fresh = generate_certs(certs.ca_cert.parent, ["localhost", "127.0.0.1"])
        shutil.copy(fresh.key, key)
        shutil.copy(fresh.cert, cert)
        assert srv.tls.check() is True
        after = _peer_serial(srv.port, certs.ca_cert)
        assert after != before
        assert after == x509.load_pem_x509_certificate(cert.read_bytes()).serial_number
        assert keep.post("/authorize", json=_sar("get")).status_code == 200  # old connection works

        # a broken rotation (a key that does not match) is rejected; the current cert keeps serving
        key.write_bytes(certs.ca_key.read_bytes())
        assert srv.tls.check() is False
        assert _peer_serial(srv.port, certs.ca_cert) == after
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    metrics = srv.get("/metrics").text
    assert 'kubestrata_tls_reloads_total{result="applied"} 1.0' in metrics
    assert 'kubestrata_tls_reloads_total{result="rejected"} 1.0' in metrics


def test_logs_carry_no_secrets(server, caplog):
    token = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.sig"
    caplog.set_level(logging.INFO, logger="kubestrata")
    with server.client() as c:
        c.post("/authorize", json=_sar("get", extra={"authentication.kubernetes.io/credential-id": [token]}))
        c.post(
            "/admit",
            json={
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "u2",
                    "operation": "CREATE",
                    "kind": {"group": "", "version": "v1", "kind": "Secret"},
                    "namespace": "demo",
                    "userInfo": {"username": "alice", "extra": {"token": [token]}},
                    "object": {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": "s"},
                        "data": {"password": token},
                    },
                },
            },
        )
    text = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert "authorize" in text and "u2" in text  # the decisions were logged ...
    assert token not in text  # ... without the token


def test_graceful_shutdown_finishes_in_flight_request(live_server_factory):
    from kubestrata.admission.registry import AdmissionRegistry

    reg = AdmissionRegistry()
    entered = threading.Event()

    @reg.validating("slow")
    def slow(ctx, out):
        entered.set()
        time.sleep(1.0)  # blocks the loop: shutdown must still let this response out

    state = build_state(config(), cedar=None, pss=None, audit=None, registry=reg)
    srv = live_server_factory(state)
    result: dict = {}

    def call() -> None:
        with srv.client() as c:
            result["r"] = c.post(
                "/admit",
                json={
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {
                        "uid": "slow-1",
                        "operation": "DELETE",
                        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                        "namespace": "demo",
                    },
                },
            )

    t = threading.Thread(target=call)
    t.start()
    assert entered.wait(5)
    srv.server.should_exit = True
    t.join(10)
    srv.thread.join(10)
    assert result["r"].status_code == 200 and result["r"].json()["response"]["uid"] == "slow-1"
    assert not srv.thread.is_alive()


EXEC_EVENT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Request",
    "auditID": "a1",
    "stage": "ResponseStarted",
    "requestURI": "/api/v1/namespaces/default/pods/web/exec?command=sh&container=app&stdin=true&tty=true",
    "verb": "create",
    "user": {"username": "alice", "groups": ["system:authenticated"]},
    "sourceIPs": ["10.0.0.1"],
    "objectRef": {
        "resource": "pods",
        "namespace": "default",
        "name": "web",
        "apiVersion": "v1",
        "subresource": "exec",
    },
    "responseStatus": {"code": 101},
    "requestReceivedTimestamp": "2026-01-01T00:00:00.000000Z",
    "stageTimestamp": "2026-01-01T00:00:00.100000Z",
}


def test_audit_webhook_backend_runs_detection(live_server_factory, tmp_path):
    findings = tmp_path / "findings.jsonl"
    state = build_state(config(audit={"findings_file": str(findings)}), cedar=None, pss=None)
    srv = live_server_factory(state)
    batch = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [EXEC_EVENT, {"kind": "Event"}]}
    with srv.client() as c:
        r = c.post("/audit", json=batch)
        assert r.status_code == 200
        assert r.json() == {"accepted": 1, "bad": 1, "duplicates": 0, "findings": r.json()["findings"]}
        assert r.json()["findings"] >= 1
        again = c.post("/audit", json=batch).json()  # (auditID, stage) dedup
        assert again["duplicates"] == 1 and again["findings"] == 0
        bad = c.post("/audit", json={"kind": "Pod"})
        assert bad.status_code == 400 and "EventList" in bad.json()["error"]
        metrics = srv.get("/metrics").text
    assert 'kubestrata_audit_events_total{result="duplicate"} 1.0' in metrics
    assert 'kubestrata_audit_events_total{result="bad"} 2.0' in metrics
    srv.stop()  # lifespan shutdown flushes the findings sink
    assert '"ruleId":"KS-AUD-F11"' in findings.read_text()


def test_audit_disabled_is_501(server):
    with server.client() as c:
        r = c.post("/audit", json={"kind": "EventList", "items": []})
    assert r.status_code == 501 and "not available" in r.json()["message"]


def test_selector_encoded_twice_is_400(live_server_factory):
    from kubestrata.server.engines import load_cedar
    from tests.conftest import REPO_ROOT

    state = build_state(
        config(), cedar=load_cedar([REPO_ROOT / "examples" / "cedar-demo" / "policies"]), pss=None, audit=None
    )
    srv = live_server_factory(state)
    sar = _sar("list")
    sar["spec"]["resourceAttributes"]["labelSelector"] = {
        "rawSelector": "owner=alice",
        "requirements": [{"key": "owner", "operator": "In", "values": ["bob"]}],
    }
    with srv.client() as c:
        r = c.post("/authorize", json=sar)
    # two encodings of one selector invite parser disagreement (CVE-2022-2880): refused, not guessed
    assert r.status_code == 400 and "both rawSelector and requirements" in r.json()["message"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=200) | st.just(b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}')
)
def test_real_server_survives_garbage(server, body):
    with server.client() as c:
        for route in ("/authorize", "/admit", "/mutate"):
            r = c.post(route, content=body)
            assert r.status_code in (400, 413) and r.json()["message"]
        assert server.get("/healthz").status_code == 200


def test_not_ready_until_policies_are_loaded(live_server_factory):
    state = build_state(config(), cedar=None, pss=None, audit=None)
    state.authorizer = RecordingAuthorizer()
    state.policies_loaded = False
    srv = live_server_factory(state)
    with srv.client() as c:
        assert srv.get("/readyz").status_code == 503 and srv.get("/healthz").status_code == 200
        r = c.post("/authorize", json=_sar("get"))
        # 503, not a guess: the AuthorizationConfiguration's failurePolicy decides meanwhile
        assert r.status_code == 503 and "not loaded" in r.json()["message"]
        state.policies_loaded = True
        assert srv.get("/readyz").status_code == 200
        assert c.post("/authorize", json=_sar("get")).status_code == 200


# --- caller authentication (mutual TLS) -------------------------------------------------------


def test_callers_without_a_valid_client_certificate_are_refused(server, certs, tmp_path):
    # no certificate: the handshake fails before any route is reached
    with server.client(client_cert=False) as c, pytest.raises(httpx.HTTPError):
        c.post("/authorize", json=_sar("get"))
    # a certificate from another CA: refused the same way
    other = generate_certs(tmp_path / "other", ["localhost"])
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    ctx.load_cert_chain(str(other.client_cert), str(other.client_key))
    with httpx.Client(base_url=server.url, verify=ctx, timeout=10) as c, pytest.raises(httpx.HTTPError):
        c.post("/authorize", json=_sar("get"))
    # the serving certificate (same CA, but serverAuth only) is not a client certificate
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    ctx.load_cert_chain(str(certs.cert), str(certs.key))
    with httpx.Client(base_url=server.url, verify=ctx, timeout=10) as c, pytest.raises(httpx.HTTPError):
        c.post("/authorize", json=_sar("get"))
    with server.client() as c:
        assert c.post("/authorize", json=_sar("get")).status_code == 200
    assert server.state.authorizer.seen and len(server.state.authorizer.seen) == 1


def test_client_names_restrict_which_certificates_may_call(live_server_factory, certs, tmp_path):
    state = build_state(config(), cedar=None, pss=None, audit=None)
    state.authorizer = RecordingAuthorizer()
    srv = live_server_factory(state, client_names=["kube-apiserver"])
    with srv.client() as c:
        assert c.post("/authorize", json=_sar("get")).status_code == 200
    # a certificate the same CA signed for someone else
    intruder = tmp_path / "intruder"
    intruder.mkdir()
    shutil.copy(certs.ca_cert, intruder / "ca.crt")
    shutil.copy(certs.ca_key, intruder / "ca.key")
    other = generate_certs(intruder, ["localhost"], client_name="some-pod")
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    ctx.load_cert_chain(str(other.client_cert), str(other.client_key))
    with httpx.Client(base_url=srv.url, verify=ctx, timeout=10) as c:
        for route in ("/authorize", "/admit", "/mutate", "/audit"):
            r = c.post(route, json=_sar("get"))
            assert r.status_code == 403 and "not allowed" in r.json()["message"], route
    assert len(state.authorizer.seen) == 1
    metrics = srv.get("/metrics").text
    assert 'kubestrata_http_requests_total{code="403",route="authorize"} 1.0' in metrics
    assert 'kubestrata_bad_requests_total{reason="unauthenticated",route="audit"} 1.0' in metrics


def test_forged_audit_events_change_no_state(live_server_factory, tmp_path, certs):
    findings = tmp_path / "findings.jsonl"
    state = build_state(config(audit={"findings_file": str(findings)}), cedar=None, pss=None)
    srv = live_server_factory(state)
    batch = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [EXEC_EVENT]}
    # an unauthenticated forger cannot even complete the handshake
    with srv.client(client_cert=False) as c, pytest.raises(httpx.HTTPError):
        c.post("/audit", json=batch)
    # the authenticated API server's copy of the same event is new: the forgery seeded nothing
    with srv.client() as c:
        r = c.post("/audit", json=batch).json()
    assert r["accepted"] == 1 and r["duplicates"] == 0 and r["findings"] >= 1

    # without client authentication (--insecure-no-client-auth) /audit refuses everyone
    findings2 = tmp_path / "findings2.jsonl"
    state2 = build_state(config(audit={"findings_file": str(findings2)}), cedar=None, pss=None)
    srv2 = live_server_factory(state2, mtls=False)
    with srv2.client(client_cert=False) as c:
        r = c.post("/audit", json=batch)
        assert r.status_code == 403 and "authenticated caller" in r.json()["message"]
    assert 'kubestrata_audit_events_total{result="accepted"}' not in srv2.get("/metrics").text
    srv2.stop()
    assert not findings2.exists() or findings2.read_text() == ""


def test_deny_on_error_makes_an_erroring_forbid_deny(live_server_factory, tmp_path):
    from kubestrata.server.engines import load_cedar

    pol = tmp_path / "p"
    pol.mkdir()
    # valid against the schema, but it reads an entity the request does not carry (a group the
    # caller is not in): an evaluation error whenever the resource has a name
    (pol / "guard.cedar").write_text(
        '@id("no-loopback-names")\nforbid (principal, action, resource is k8s::Resource)\n'
        'when { resource has name && k8s::Group::"ghosts".name == resource.name };\n'
        'permit (principal, action == k8s::Action::"get", resource);\n'
    )
    sar = _sar("get")
    sar["spec"]["resourceAttributes"]["name"] = "not-an-ip"
    default = build_state(config(), cedar=load_cedar([pol]), pss=None, audit=None)
    strict = build_state(
        config(policies={"deny_on_error": True}),
        cedar=load_cedar([pol], deny_on_error=True),
        pss=None,
        audit=None,
    )
    with live_server_factory(default).client() as c:
        st = c.post("/authorize", json=sar).json()["status"]
    # default: no opinion with the error (RBAC decides): an erroring forbid never allows
    assert st["allowed"] is False and "denied" not in st and "no-loopback-names" not in st.get("reason", "")
    assert st["evaluationError"]
    with live_server_factory(strict).client() as c:
        st = c.post("/authorize", json=sar).json()["status"]
        ok = c.post("/authorize", json=_sar("get")).json()["status"]  # no name: the forbid does not error
    assert st["denied"] is True and 'guard.cedar#0 (@id "no-loopback-names")' in st["reason"]
    assert "could not be evaluated" in st["reason"] and ok["allowed"] is True
