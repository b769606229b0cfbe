"""Live collection against a fake API server on loopback HTTPS, through a real kubeconfig and the
official kubernetes client (no mock of the client)."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.errors import KubestrataError
from kubestrata.findings import Coverage, GapReason
from kubestrata.kube import live
from kubestrata.kube.loader import load_paths
from tests.conftest import EXAMPLES
from tests.kube.fake_apiserver import FakeAPIServer, TLSFiles, write_kubeconfig

# the fake API server serves the demo's kubelet config through its node's proxy (configz)
DEMO = [o.raw for o in load_paths([EXAMPLES / "demo-cluster"]).objects]
runner = CliRunner()


@pytest.fixture(scope="module")
def tls():
    t = TLSFiles()
    yield t
    t.dir.cleanup()


@pytest.fixture
def no_ambient_kubeconfig(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _kubeconfig(tmp_path, server, tls, exec_token=None):
    script = None
    if exec_token:
        script = tmp_path / "get-token.py"
        script.write_text(
            "import json\nprint(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1',"
            f" 'kind': 'ExecCredential', 'status': {{'token': {exec_token!r}}}}}))\n"
        )
    return write_kubeconfig(tmp_path / "kubeconfig", server.url, tls, script)


def test_lists_every_kind_paginated_in_wire_format(tmp_path, tls, monkeypatch):
    monkeypatch.setattr(live, "PAGE_SIZE", 2)  # force several pages for most kinds
    with FakeAPIServer(DEMO, tls) as srv:
        cov = Coverage()
        snap = live.collect_cluster(
            kubeconfig=str(_kubeconfig(tmp_path, srv, tls)), coverage=cov, progress=None
        )
    assert cov.gaps == []
    assert Counter(o.kind for o in snap.real_objects()) == Counter(o["kind"] for o in DEMO)
    # items are the manifests as the API returned them, kind and apiVersion restored, plain dicts
    by_ref = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in DEMO}
    for obj in snap.real_objects():
        assert type(obj.raw) is dict
        got = json.loads(json.dumps(obj.raw))
        if obj.kind == "Namespace":  # Cluster adds the label the API server would have set
            got["metadata"]["labels"].pop("kubernetes.io/metadata.name")
            if not got["metadata"]["labels"]:
                del got["metadata"]["labels"]
        assert got == by_ref[(obj.kind, obj.raw["metadata"].get("namespace"), obj.name)]
        assert obj.source.file == srv.url
    pages = [r for r in srv.requests if "continue" in r["query"]]
    assert pages, "no request followed a continue token"
    assert all(r["query"].get("limit") == "2" for r in srv.requests if not r["path"].endswith("/configz"))
    assert {r["path"] for r in srv.requests} >= {
        "/api/v1/pods",
        "/apis/apps/v1/deployments",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "/apis/networking.k8s.io/v1/networkpolicies",
    }
    assert all(r["auth"].lower() == "bearer test-token" for r in srv.requests)


def test_live_scan_finds_what_the_manifest_scan_finds(tmp_path, tls):
    def key(doc):
        return sorted(
            (
                f["ruleId"],
                f["object"]["kind"],
                f["object"]["namespace"] or "",
                f["object"]["name"],
                f["container"] or "",
                f["severity"],
            )
            for f in doc["findings"]
        )

    offline = runner.invoke(app, ["scan", str(EXAMPLES / "demo-cluster"), "-o", "json", "-q"])
    with FakeAPIServer(DEMO, tls) as srv:
        kc = _kubeconfig(tmp_path, srv, tls)
        r = runner.invoke(app, ["scan", "--cluster", "--kubeconfig", str(kc), "-o", "json", "-q"])
    assert r.exit_code == offline.exit_code == 1, r.output
    online = json.loads(r.stdout)
    # the same coverage as the manifest scan: the collector itself adds no gap
    assert online["target"] == "cluster"
    assert online["coverage"]["notEvaluated"] == json.loads(offline.stdout)["coverage"]["notEvaluated"]
    assert key(online) == key(json.loads(offline.stdout)) != []


def test_forbidden_and_absent_kinds_are_coverage_gaps_not_passes(tmp_path, tls):
    with FakeAPIServer(DEMO, tls, forbidden=("rolebindings",), absent=("networkpolicies",)) as srv:
        kc = _kubeconfig(tmp_path, srv, tls)
        cov = Coverage()
        snap = live.collect_cluster(kubeconfig=str(kc), coverage=cov, progress=None)
        r = runner.invoke(app, ["scan", "--cluster", "--kubeconfig", str(kc), "-o", "json", "-q"])
        strict = runner.invoke(app, ["scan", "--cluster", "--kubeconfig", str(kc), "--strict", "-q"])
    gaps = {g.subject: g for g in cov.gaps}
    assert gaps["RoleBinding"].reason is GapReason.FORBIDDEN
    assert "cannot list resource" in gaps["RoleBinding"].detail
    assert gaps["NetworkPolicy"].reason is GapReason.NOT_FOUND
    assert snap.missing_kinds == {"RoleBinding", "NetworkPolicy"}
    assert not snap.of_kind("RoleBinding") and snap.of_kind("ClusterRoleBinding")
    doc = json.loads(r.stdout)
    reasons = {g["subject"]: g["reason"] for g in doc["coverage"]["notEvaluated"]}
    assert reasons["RoleBinding"] == "forbidden" and reasons["NetworkPolicy"] == "not-found"
    # with RoleBindings unreadable, "this ServiceAccount has no binding" cannot be claimed
    assert not any("no RBAC binding" in f["message"] for f in doc["findings"])
    assert strict.exit_code == 2


def test_namespace_lists_namespaced_kinds_in_that_namespace_only(tmp_path, tls):
    with FakeAPIServer(DEMO, tls) as srv:
        snap = live.collect_cluster(
            kubeconfig=str(_kubeconfig(tmp_path, srv, tls)), namespace="shop", progress=None
        )
    assert {o.namespace for o in snap.real_objects()} <= {"shop", ""}
    assert snap.get("Deployment", "shop", "web") is not None
    paths = {r["path"] for r in srv.requests}
    assert "/apis/apps/v1/namespaces/shop/deployments" in paths
    assert "/api/v1/namespaces" in paths  # cluster-scoped kinds are still listed


def test_exec_credential_plugin(tmp_path, tls):
    with FakeAPIServer(DEMO, tls, tokens=("exec-issued-token",)) as srv:
        kc = _kubeconfig(tmp_path, srv, tls, exec_token="exec-issued-token")
        snap = live.collect_cluster(kubeconfig=str(kc), context="fake-exec", progress=None)
    assert len(snap) > 0
    assert {r["auth"].lower() for r in srv.requests} == {"bearer exec-issued-token"}


def test_in_cluster_service_account(tmp_path, tls, monkeypatch, no_ambient_kubeconfig):
    from kubernetes.config import incluster_config

    token = tmp_path / "token"
    token.write_text("test-token")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tls.cert))
    with FakeAPIServer(DEMO, tls) as srv:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", srv.url.rsplit(":", 1)[1])
        snap = live.collect_cluster(progress=None)
    assert snap.get("DaemonSet", "kube-system", "aws-node") is not None


def test_rejected_credentials_are_a_clear_error(tmp_path, tls):
    with FakeAPIServer(DEMO, tls) as srv:
        kc = _kubeconfig(tmp_path, srv, tls)
        with pytest.raises(KubestrataError, match="401 Unauthorized"):
            live.collect_cluster(kubeconfig=str(kc), context="fake-bad", progress=None)
        r = runner.invoke(app, ["scan", "--cluster", "--kubeconfig", str(kc), "--context", "fake-bad"])
    assert r.exit_code == 2 and "401" in r.output and "Traceback" not in r.output


def test_timeout_is_a_clear_error(tmp_path, tls):
    with FakeAPIServer(DEMO, tls, delay=3.0) as srv:
        kc = _kubeconfig(tmp_path, srv, tls)
        start = time.monotonic()
        with pytest.raises(KubestrataError, match=r"timed out after 0.5s .*raise --timeout"):
            live.collect_cluster(kubeconfig=str(kc), timeout=0.5, progress=None)
        assert time.monotonic() - start < 5  # not the 3 s the server would have taken per page


def test_unreachable_server(tmp_path, tls):
    class Closed:
        url = "https://127.0.0.1:9"  # discard port: nothing listens

    kc = _kubeconfig(tmp_path, Closed, tls)
    with pytest.raises(KubestrataError, match="cannot (reach|talk to) the API server"):
        live.collect_cluster(kubeconfig=str(kc), timeout=5, progress=None)


def test_missing_kubeconfig_and_unknown_context(tmp_path, tls, no_ambient_kubeconfig):
    with pytest.raises(KubestrataError, match="does not exist"):
        live.collect_cluster(kubeconfig=str(tmp_path / "nope"), progress=None)
    with pytest.raises(KubestrataError, match="no kubeconfig found"):
        live.collect_cluster(progress=None)
    with FakeAPIServer(DEMO, tls) as srv:
        kc = _kubeconfig(tmp_path, srv, tls)
        with pytest.raises(KubestrataError, match="cannot load Kubernetes credentials"):
            live.collect_cluster(kubeconfig=str(kc), context="no-such-context", progress=None)


def test_progress_is_a_callback_and_the_collector_prints_nothing(tmp_path, tls, capsys):
    seen: list[tuple[int, int, str]] = []
    with FakeAPIServer(DEMO, tls) as srv:
        live.collect_cluster(
            kubeconfig=str(_kubeconfig(tmp_path, srv, tls)), progress=lambda *a: seen.append(a)
        )
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert seen and seen[-1][0] == seen[-1][1] == len(live.RESOURCES)


def test_kubelet_configs_come_from_configz_and_forbidden_is_a_gap(tmp_path, tls):
    with FakeAPIServer(DEMO, tls) as srv:
        snap = live.collect_cluster(kubeconfig=str(_kubeconfig(tmp_path, srv, tls)), progress=None)
    (cfg,) = snap.of_kind("KubeletConfiguration")
    assert cfg.name == snap.of_kind("Node")[0].name and cfg.raw["readOnlyPort"] == 10255
    assert any(r["path"].endswith("/proxy/configz") for r in srv.requests)
    with FakeAPIServer(DEMO, tls, forbidden=("nodes/proxy",)) as srv:
        cov = Coverage()
        snap = live.collect_cluster(
            kubeconfig=str(_kubeconfig(tmp_path, srv, tls)), coverage=cov, progress=None
        )
    assert not snap.of_kind("KubeletConfiguration")
    (gap,) = [g for g in cov.gaps if g.subject == "KubeletConfiguration"]
    assert gap.reason is GapReason.FORBIDDEN and "1 of 1 nodes" in gap.detail and "nodes/proxy" in gap.detail
