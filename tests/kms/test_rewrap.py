"""`kms rewrap --cluster` against the fake API server: every Secret read and replaced (PUT with its
resourceVersion), conflicts and deletions counted as done, refusals left over and listed."""

from __future__ import annotations

import base64
import json

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.kms.rewrap import rewrap_secrets
from kubestrata.kube.live import _api_client
from tests.kube.fake_apiserver import FakeAPIServer, TLSFiles, write_kubeconfig

runner = CliRunner()


def _secret(ns: str, name: str, rv: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": str(rv), "uid": f"uid-{ns}-{name}"},
        "type": "Opaque",
        "data": {"password": base64.b64encode(f"{ns}/{name}".encode()).decode()},
    }


SECRETS = [_secret(f"ns{i % 7}", f"s{i}", 100 + i) for i in range(1234)]  # 3 pages of 500


@pytest.fixture(scope="module")
def tls():
    t = TLSFiles()
    yield t
    t.dir.cleanup()


def _puts(srv):
    return [r for r in srv.requests if r.get("method") == "PUT"]


def test_every_secret_is_replaced_unchanged(tmp_path, tls):
    with FakeAPIServer([dict(s) for s in SECRETS], tls) as srv:
        api = _api_client(str(write_kubeconfig(tmp_path / "kc", srv.url, tls)), None)
        seen = []
        report = rewrap_secrets(api, progress=lambda d, t: seen.append((d, t)))
        assert (report.total, report.rewritten, report.left) == (1234, 1234, [])
        assert seen[-1] == (1234, 1234) and len(seen) == 1234
        lists = [r for r in srv.requests if r["path"] == "/api/v1/secrets"]
        assert len(lists) == 3 and all(r["query"]["limit"] == "500" for r in lists)
        assert sorted(r["path"] for r in _puts(srv)) == sorted(
            f"/api/v1/namespaces/{s['metadata']['namespace']}/secrets/{s['metadata']['name']}"
            for s in SECRETS
        )
        # content unchanged, only the resourceVersion moved on (the server rewrote each one)
        stored = {o["metadata"]["name"]: o for o in srv.store["Secret"]}
        for s in SECRETS:
            o = stored[s["metadata"]["name"]]
            assert o["data"] == s["data"] and o["metadata"]["uid"] == s["metadata"]["uid"]
            assert int(o["metadata"]["resourceVersion"]) > 5000


def test_conflicts_deletions_and_refusals(tmp_path, tls):
    objs = [_secret("app", f"s{i}", i + 1) for i in range(6)]
    with FakeAPIServer(objs, tls) as srv:

        def concurrent_writer(ns, name):
            if name == "s1":
                srv.bump("Secret", ns, name)  # someone replaced it after our list
            if name == "s2":
                srv.delete("Secret", ns, name)

        srv.put_hook = concurrent_writer
        srv.put_forbidden = {"app/s3"}
        kc = write_kubeconfig(tmp_path / "kc", srv.url, tls)
        r = runner.invoke(app, ["kms", "rewrap", "--cluster", "--kubeconfig", str(kc), "-o", "json", "-q"])
        assert r.exit_code == 1, r.output
        doc = json.loads(r.stdout)
        assert (doc["total"], doc["rewritten"], doc["changedMeanwhile"], doc["gone"]) == (6, 3, 1, 1)
        assert [x["secret"] for x in doc["left"]] == ["app/s3"]
        assert "403" in doc["left"][0]["reason"] and "forbidden" in doc["left"][0]["reason"]
        # what is left is retried by running again
        srv.put_forbidden = set()
        srv.put_hook = None
        r = runner.invoke(app, ["kms", "rewrap", "--cluster", "--kubeconfig", str(kc), "-n", "app"])
        assert r.exit_code == 0, r.output
        assert "Secrets: 5; rewritten 5" in r.stdout and "left 0" in r.stdout
        assert "rewrap: 5/5 Secrets, 0 to go" in " ".join(r.stderr.split())


def test_needs_cluster_and_credentials(tmp_path, tls):
    r = runner.invoke(app, ["kms", "rewrap"])
    assert r.exit_code == 2 and "--cluster" in r.stderr
    with FakeAPIServer([_secret("a", "b", 1)], tls) as srv:
        kc = write_kubeconfig(tmp_path / "kc", srv.url, tls)
        r = runner.invoke(
            app, ["kms", "rewrap", "--cluster", "--kubeconfig", str(kc), "--context", "fake-bad"]
        )
        assert r.exit_code == 2 and "401" in r.stderr and "Traceback" not in r.output
    with FakeAPIServer([], tls, forbidden=("secrets",)) as srv:
        kc = write_kubeconfig(tmp_path / "kc2", srv.url, tls)
        r = runner.invoke(app, ["kms", "rewrap", "--cluster", "--kubeconfig", str(kc)])
        assert r.exit_code == 2 and "cannot list secrets (HTTP 403)" in " ".join(r.stderr.split())
