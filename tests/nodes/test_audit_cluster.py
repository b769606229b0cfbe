"""`nodes audit --cluster`: the kubelet checks over each node's configz, through the fake API server."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from tests.kube.fake_apiserver import FakeAPIServer, TLSFiles, write_kubeconfig
from tests.nodes.hostfixture import GOOD_CONFIG

runner = CliRunner()


def _node(name: str, version: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"nodeInfo": {"kubeletVersion": version}},
    }


def _cfg(name: str, **over) -> dict:
    body = {k: v for k, v in GOOD_CONFIG.items() if k not in ("kind", "apiVersion")}
    return {"kind": "KubeletConfiguration", "apiVersion": "v1", "metadata": {"name": name}, **body, **over}


@pytest.fixture(scope="module")
def tls():
    t = TLSFiles()
    yield t
    t.dir.cleanup()


def test_configz_audit_per_node_with_the_nodes_benchmark(tmp_path, tls):
    objs = [
        _node("a", "v1.33.2-eks-1"),
        _node("b", "v1.28.5-eks-1"),
        _node("c", "v1.31.0"),
        _cfg("a"),
        _cfg("b", readOnlyPort=10255),
        # c: configz unreachable (the fake answers 503 for nodes without a config)
    ]
    with FakeAPIServer(objs, tls) as srv:
        kc = write_kubeconfig(tmp_path / "kc", srv.url, tls)
        r = runner.invoke(app, ["nodes", "audit", "--cluster", "--kubeconfig", str(kc), "-o", "json"])
    assert r.exit_code == 1, r.output
    doc = json.loads(r.output)
    by_node = {n["node"]: n for n in doc["nodes"]}
    assert set(by_node) == {"a", "b"}
    assert by_node["a"]["benchmark"] == "eks-1.8.0" and by_node["a"]["findings"] == []
    assert by_node["b"]["benchmark"] == "eks-1.5.0"
    assert [f["ruleId"] for f in by_node["b"]["findings"]] == ["CIS-EKS-3.2.4", "CIS-EKS-3.2.7"]
    gaps = [g for n in doc["nodes"] for g in n["coverage"]["notEvaluated"]]
    assert any("c:" in g["detail"] for g in gaps)
    # only the kubelet group: files cannot be judged from outside
    sections = [t["section"] for t in by_node["a"]["kubeBench"]["Controls"][0]["tests"]]
    assert sections == ["3.2"]
