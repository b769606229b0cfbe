"""`scan --cluster --write-policy-reports`: server-side apply of the reports to a fake API server on
loopback HTTPS through the official kubernetes client, and deletion of stale reports kubestrata owns."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.kube.loader import load_paths
from tests.conftest import EXAMPLES
from tests.kube.fake_apiserver import FakeAPIServer, TLSFiles, write_kubeconfig
from tests.report.test_policyreport import _errors

DEMO = [o.raw for o in load_paths([EXAMPLES / "demo-cluster"]).objects]
runner = CliRunner()


def _report(kind: str, name: str, ns: str = "", managed_by: str = "kubestrata") -> dict:
    meta = {"name": name, "labels": {"app.kubernetes.io/managed-by": managed_by}}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": kind, "metadata": meta, "results": []}


@pytest.fixture(scope="module")
def tls():
    t = TLSFiles()
    yield t
    t.dir.cleanup()


def _scan(kc, *extra):
    return runner.invoke(
        app,
        ["scan", "--cluster", "--kubeconfig", str(kc), "--write-policy-reports", "-o", "json",
         "--output-file", "/dev/null", "--fail-on", "never", *extra],
    )  # fmt: skip


def test_applies_reports_and_deletes_only_its_own_stale_ones(tmp_path, tls):
    stale = _report("PolicyReport", "kubestrata", "gone")
    stale_cluster = _report("ClusterPolicyReport", "kubestrata-old")
    kyverno = _report("PolicyReport", "kubestrata", "other", managed_by="kyverno")
    with FakeAPIServer([*DEMO, stale, stale_cluster, kyverno], tls) as srv:
        kc = write_kubeconfig(tmp_path / "kubeconfig", srv.url, tls)
        res = _scan(kc)
        assert res.exit_code == 0, res.output
        reports = srv.store["PolicyReport"]
        clusters = srv.store["ClusterPolicyReport"]
        applies = [r for r in srv.requests if r.get("method") == "PATCH"]
        deletes = [r["path"] for r in srv.requests if r.get("method") == "DELETE"]
    assert "applied" in res.output and "deleted 2 stale" in res.output
    assert sorted(deletes) == [
        "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports/kubestrata-old",
        "/apis/wgpolicyk8s.io/v1alpha2/namespaces/gone/policyreports/kubestrata",
    ]
    assert kyverno in reports  # not ours: untouched
    ours = [r for r in reports if r["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubestrata"]
    demo_ns = {o["metadata"]["name"] for o in DEMO if o["kind"] == "Namespace"}
    assert {r["metadata"]["namespace"] for r in ours} <= demo_ns and len(ours) >= 2
    assert [c["metadata"]["name"] for c in clusters] == ["kubestrata-cluster"]
    assert len(applies) == len(ours) + 1
    for r in applies:
        assert r["ctype"] == "application/apply-patch+yaml"
        assert r["query"] == {"fieldManager": "kubestrata", "force": "true"}
    for r in [*ours, *clusters]:
        assert r["metadata"]["managedFields"] == [{"manager": "kubestrata", "operation": "Apply"}]
        r = {k: v for k, v in r.items()}
        r["metadata"] = {k: v for k, v in r["metadata"].items() if k != "managedFields"}
        assert _errors(r) == []
    fails = sum(r["summary"]["fail"] for r in [*ours, *clusters])
    assert fails > 0


def test_second_run_replaces_instead_of_adding(tmp_path, tls):
    with FakeAPIServer(DEMO, tls) as srv:
        kc = write_kubeconfig(tmp_path / "kubeconfig", srv.url, tls)
        assert _scan(kc).exit_code == 0
        first = [dict(r) for r in srv.store["PolicyReport"]]
        assert _scan(kc).exit_code == 0
        second = srv.store["PolicyReport"]
    assert len(second) == len(first)
    assert [r["metadata"]["namespace"] for r in second] == [r["metadata"]["namespace"] for r in first]


def test_missing_crd_and_missing_cluster_are_one_line_errors(tmp_path, tls):
    with FakeAPIServer(DEMO, tls, absent=("policyreports",)) as srv:
        kc = write_kubeconfig(tmp_path / "kubeconfig", srv.url, tls)
        res = _scan(kc)
    assert res.exit_code == 2
    assert "PolicyReport CRD (wgpolicyk8s.io/v1alpha2) is not installed" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["scan", str(EXAMPLES / "demo-cluster"), "--write-policy-reports"])
    assert res.exit_code == 2 and "needs --cluster" in res.output
