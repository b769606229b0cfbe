"""Policy objects watched in a live cluster: the real server, the real kubernetes client, a fake API
server on loopback speaking the list and watch wire formats."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubestrata.server.assemble import build_state
from tests.conftest import REPO_ROOT
from tests.server.fake_policy_api import FakePolicyAPI, TLSFiles, policy, write_kubeconfig
from tests.server.fakes import config, free_port

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
FORBID_ALICE = '@id("no-alice")\nforbid (principal == k8s::User::"alice", action, resource);\n'
INVALID = "forbid (principal, action, resource) when { resource.nope };\n"
CM = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "u1",
        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "namespace": "team-a",
        "name": "x",
        "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["config-editors"]},
        "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "team-a"}},
        "dryRun": False,
    },
}


def wait_until(pred: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


@pytest.fixture(scope="module")
def tls() -> Iterator[TLSFiles]:
    t = TLSFiles()
    yield t
    t.dir.cleanup()


@pytest.fixture
def api(tls: TLSFiles) -> Iterator[FakePolicyAPI]:
    with FakePolicyAPI(tls) as a:
        yield a


def _state(api: FakePolicyAPI, tls: TLSFiles, tmp_path: Any, tier: str = "first", dirs: bool = True) -> Any:
    kc = write_kubeconfig(tmp_path / "kubeconfig", api.url, tls)
    pol = tmp_path / "policies"
    shutil.copytree(DEMO, pol)
    cfg = config(
        policies={
            "dirs": [str(pol)] if dirs else [],
            "cluster": {"enabled": True, "kubeconfig": str(kc), "tier": tier, "watch_timeout": 2},
        },
        admission={"pss": {"enabled": False}, "checks": {"enabled": False}},
    )
    state = build_state(cfg, pss=None, audit=None)
    state.cluster_policy_watcher.backoff = (0.05, 0.2)
    return state


def _status(c: Any) -> dict[str, Any]:
    return c.post("/authorize", json=SAR).json()["status"]


def _metric(srv: Any, line: str) -> float:
    for ln in srv.get("/metrics").text.splitlines():
        if ln.startswith(line + " "):
            return float(ln.rsplit(" ", 1)[1])
    return 0.0


def test_not_ready_until_first_list_then_forbids_apply_reject_and_delete(
    api, tls, tmp_path, live_server_factory
):
    api.fail_lists = 3  # the first lists fail: backoff, still not ready, admission fails closed
    api.put(policy("no-get", FORBID_GET))
    state = _state(api, tls, tmp_path)
    w = state.cluster_policy_watcher
    api.cond.acquire()  # hold the fake until we have seen the not-ready server
    srv = live_server_factory(state)
    with srv.client() as c:
        try:
            assert srv.get("/readyz").status_code == 503
            assert c.post("/authorize", json=SAR).status_code == 503
            adm = c.post("/admit", json=CM).json()["response"]
            assert adm["allowed"] is False  # Cedar forbids unknown yet: on_error deny
        finally:
            api.cond.release()
        wait_until(lambda: srv.get("/readyz").status_code == 200)
        assert w.ready and _metric(srv, 'kubestrata_policy_watch_restarts_total{reason="error"}') >= 3

        # initial load: the cluster tier (first) forbids get; the reason names object and index
        st = _status(c)
        assert st["denied"] is True and 'Policy/no-get#0 (@id "no-get")' in st["reason"]

        # deleting the object removes its policy: the demo files' permit decides again
        api.delete("no-get")
        wait_until(lambda: _status(c).get("allowed") is True)

        # an added forbid takes effect
        api.put(policy("no-alice", FORBID_ALICE))
        wait_until(lambda: _status(c).get("denied") is True)
        assert "Policy/no-alice#0" in _status(c)["reason"]
        applied = _metric(srv, 'kubestrata_policy_reloads_total{result="applied"}')

        # an edit that does not validate is rejected, naming object and index; the previous version
        # of the forbid keeps deciding (never fail open)
        api.put(policy("no-alice", FORBID_ALICE + INVALID))
        wait_until(lambda: "no-alice" in w.rejected)
        problems = "\n".join(w.rejected["no-alice"])
        assert (
            "Policy/no-alice (cluster, resourceVersion" in problems and "policy Policy/no-alice#1" in problems
        )
        st = _status(c)
        assert st["denied"] is True and "Policy/no-alice#0" in st["reason"]
        assert _metric(srv, 'kubestrata_policy_reloads_total{result="rejected"}') >= 1

        # a new object that does not parse is rejected and never served; other changes still apply
        api.put(policy("broken", "forbid (principal, action, resource"))
        wait_until(lambda: "broken" in w.rejected)
        assert "parse error" in w.rejected["broken"][0] and "Policy/broken" in w.rejected["broken"][0]
        api.delete("no-alice")
        wait_until(lambda: _status(c).get("allowed") is True)
        assert _metric(srv, 'kubestrata_policy_reloads_total{result="applied"}') > applied
        assert all(
            not p.id.startswith("Policy/broken")
            for t in state.authorizer._authz.store.snapshot.tiers
            for p in t.policies.values()
        )
        assert srv.get("/readyz").status_code == 200
        assert _metric(srv, 'kubestrata_policy_watch_events_total{type="DELETED"}') >= 1


def test_watch_recovers_from_dropped_connection_and_410(api, tls, tmp_path, live_server_factory):
    state = _state(api, tls, tmp_path)
    w = state.cluster_policy_watcher
    srv = live_server_factory(state)
    with srv.client() as c:
        wait_until(lambda: srv.get("/readyz").status_code == 200)
        assert _status(c)["allowed"] is True
        lists = api.count()  # every request so far

        # the connection drops mid-stream: the watcher re-watches from its resourceVersion
        wait_until(lambda: api.count(watch="true") >= 1)
        api.drop_watches()
        api.put(policy("no-get", FORBID_GET))
        wait_until(lambda: _status(c).get("denied") is True)
        assert _metric(srv, 'kubestrata_policy_watch_restarts_total{reason="error"}') >= 1
        # resumed from the list's resourceVersion, without listing again
        watches = [r for r in api.requests if r.get("watch") == "true"]
        assert len(watches) >= 2 and all(r["resourceVersion"] == "100" for r in watches[:2])
        assert sum(1 for r in api.requests if "watch" not in r) == 1

        # history compacted and the watch dropped: the re-watch gets ERROR 410, the watcher lists again
        before_lists = sum(1 for r in api.requests if "watch" not in r)
        api.compact()
        api.drop_watches()
        wait_until(lambda: _metric(srv, 'kubestrata_policy_watch_restarts_total{reason="gone"}') >= 1)
        wait_until(lambda: sum(1 for r in api.requests if "watch" not in r) > before_lists)
        api.delete("no-get")
        wait_until(lambda: _status(c).get("allowed") is True)
        assert api.count() > lists and w.ready


def test_tier_last_files_decide_first(api, tls, tmp_path, live_server_factory):
    api.put(policy("no-get", FORBID_GET))
    state = _state(api, tls, tmp_path, tier="last")
    srv = live_server_factory(state)
    with srv.client() as c:
        wait_until(lambda: srv.get("/readyz").status_code == 200)
        # the demo files' permit is an explicit decision in the earlier tier: it wins
        assert _status(c)["allowed"] is True
        # a request the files say nothing about reaches the cluster tier
        sar = {**SAR, "spec": {**SAR["spec"], "groups": []}}
        st = c.post("/authorize", json=sar).json()["status"]
        assert st["denied"] is True and "Policy/no-get#0" in st["reason"]


def test_cluster_only_and_stop(api, tls, tmp_path):
    api.put(policy("no-get", FORBID_GET))
    state = _state(api, tls, tmp_path, dirs=False)
    w = state.cluster_policy_watcher
    w.start()
    try:
        wait_until(lambda: w.ready)
        assert state.policies_loaded is True
        assert [p.id for t in w.store.snapshot.tiers for p in t.policies.values()] == ["Policy/no-get#0"]
    finally:
        w.stop()
    assert not w._thread.is_alive()


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubestrata", "serve", *args, "--insecure-no-client-auth", "--ops-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT / "src"), "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )


def test_cli_missing_kubeconfig_is_a_clear_error(certs, tmp_path):
    r = _serve(
        "--tls-cert", str(certs.cert), "--tls-key", str(certs.key),
        "--policies-from-cluster", "--kubeconfig", str(tmp_path / "nope"),
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    err = " ".join(r.stderr.split())  # the console wraps long lines
    assert f"kubeconfig {tmp_path / 'nope'} does not exist" in err and "Traceback" not in err


def test_serve_process_policies_from_cluster(api, tls, certs, tmp_path):
    """The real `kubestrata serve --policies-from-cluster` process against the fake API server:
    ready after the first list, a Policy object added later denies, SIGTERM ends the watch."""
    import json
    import signal
    import ssl

    import httpx

    api.put(policy("no-get", FORBID_GET))
    kc = write_kubeconfig(tmp_path / "kubeconfig", api.url, tls)
    port, ops_port = free_port(), free_port()
    err = tmp_path / "stderr.log"
    with err.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubestrata", "serve", "--tls-cert", str(certs.cert),
             "--tls-key", str(certs.key), "--host", "127.0.0.1", "--port", str(port),
             "--client-ca", str(certs.ca_cert), "--ops-port", str(ops_port),
             "--policies-from-cluster", "--kubeconfig", str(kc), "--context", "fake"],
            env={"PYTHONPATH": str(REPO_ROOT / "src"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )  # fmt: skip
        try:
            ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
            ctx.load_cert_chain(str(certs.client_cert), str(certs.client_key))
            with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=5) as c:

                def ready() -> bool:
                    assert proc.poll() is None, err.read_text()
                    try:
                        return httpx.get(f"http://127.0.0.1:{ops_port}/readyz").status_code == 200
                    except httpx.HTTPError:
                        return False

                wait_until(ready, 30)
                st = _status(c)
                assert st["denied"] is True and "Policy/no-get#0" in st["reason"]
                sar = {
                    **SAR,
                    "spec": {**SAR["spec"], "resourceAttributes": {"verb": "list", "resource": "pods"}},
                }
                assert c.post("/authorize", json=sar).json()["status"] == {"allowed": False}  # no opinion
                api.put(policy("no-alice", FORBID_ALICE))
                wait_until(
                    lambda: (
                        "Policy/no-alice#0"
                        in c.post("/authorize", json=sar).json()["status"].get("reason", "")
                    )
                )
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(30)
    assert rc in (0, -signal.SIGTERM)
    records = [json.loads(line) for line in err.read_text().splitlines()]
    assert any(r.get("event") == "policy_reloaded" for r in records)


def test_store_cluster_tier_survives_file_reloads_and_rejects_id_clashes(tmp_path):
    from kubestrata.authz.store import PolicySource, PolicyStore

    d = tmp_path / "p"
    d.mkdir()
    (d / "x.yaml").write_text(
        "apiVersion: cedar.k8s.aws/v1alpha1\nkind: Policy\nmetadata: {name: x}\nspec:\n  content: |\n"
        + "".join("    " + ln + "\n" for ln in FORBID_ALICE.splitlines())
    )
    store = PolicyStore([[d]], cluster_tier=1)
    store.load()
    assert not store.ready  # files loaded, cluster not listed yet
    clash = PolicySource("Policy/x", "Policy/x (cluster, resourceVersion 7)", FORBID_GET)
    assert store.check_cluster_source(clash) == [
        f"Policy/x (cluster, resourceVersion 7): duplicate policy source Policy/x (also {d / 'x.yaml'} document 0 (Policy/x))"
    ]
    store.set_cluster_sources([PolicySource("Policy/y", "Policy/y (cluster)", FORBID_GET)])
    assert store.ready
    ids = lambda: [[p for p in t.policies] for t in store.snapshot.tiers]  # noqa: E731
    assert ids() == [["Policy/x#0"], ["Policy/y#0"]]
    (d / "z.cedar").write_text(FORBID_GET)
    store.load()  # a file reload keeps the cluster tier where it is
    assert ids() == [["Policy/x#0", "z.cedar#0"], ["Policy/y#0"]]
