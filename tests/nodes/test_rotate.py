"""Rotation against the fake API server extended into a simulated 3-zone cluster (tests/nodes/fake_cluster.py):
real HTTPS, the official client, the Eviction subresource with PDB-driven 429s, node deletion and
replacement. The fake checks after every mutating request that every PDB is still satisfied."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.errors import KubestrataError
from kubestrata.nodes.rotate.execute import api_requester
from kubestrata.nodes.rotate.model import ANNOTATION
from kubestrata.nodes.rotate.planning import parse_age
from tests.kube.fake_apiserver import TLSFiles, write_kubeconfig
from tests.nodes.fake_cluster import FakeCluster, node, pdb, pod, three_zone_cluster

runner = CliRunner()
NOW = dt.datetime.now(dt.UTC)
OLD = (NOW - dt.timedelta(days=60)).isoformat().replace("+00:00", "Z")
OLDEST = (NOW - dt.timedelta(days=90)).isoformat().replace("+00:00", "Z")
YOUNG = (NOW - dt.timedelta(days=2)).isoformat().replace("+00:00", "Z")
FAST = ["--poll", "0.03", "--eviction-timeout", "8", "--replacement-timeout", "8"]


def cluster_objects():
    objs = three_zone_cluster(OLD, YOUNG)
    for o in objs:
        if o["kind"] == "Node" and o["metadata"]["creationTimestamp"] == "2026-09-01T00:00:00Z":
            o["metadata"]["creationTimestamp"] = OLDEST
    return objs


@pytest.fixture(scope="module")
def tls():
    t = TLSFiles()
    yield t
    t.dir.cleanup()


def _run(tmp_path, srv, tls, *args):
    kc = write_kubeconfig(tmp_path / "kc", srv.url, tls)
    return runner.invoke(app, ["nodes", "rotate", "--cluster", "--kubeconfig", str(kc), *args])


def mutations(srv):
    return [r for r in srv.requests if r.get("method", "GET") != "GET"]


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path, tls):
    with FakeCluster(cluster_objects(), tls) as srv:
        r = _run(tmp_path, srv, tls, "--max-age", "21d", "--dry-run", "-o", "json")
        assert r.exit_code == 0, r.output
        assert mutations(srv) == []
    plan = json.loads(r.output)
    order = [s["node"] for s in plan["steps"]]
    assert order[0] == "workers-b1"  # the oldest node's batch first
    assert "batch-c0" not in order and len(order) == 8  # the young node stays
    # one (group, zone) batch at a time: batches are contiguous
    batches = [(s["group"], s["zone"]) for s in plan["steps"]]
    assert all(batches.index(b) == i or batches[i - 1] == b for i, b in enumerate(batches))
    first = plan["steps"][0]
    assert all(not p.startswith("kube-system/agent") for p in first["evict"])  # DaemonSet pods stay
    assert plan["groups"]["eks:workers"] == {"ready": 6, "minHealthy": 5}


def test_rotation_of_a_three_zone_cluster_keeps_every_pdb_satisfied(tmp_path, tls):
    with FakeCluster(cluster_objects(), tls) as srv:
        r = _run(tmp_path, srv, tls, "--max-age", "21d", *FAST)
        assert r.exit_code == 0, r.output
        assert srv.violations == []
        assert srv.evictions_429 > 0  # budgets made evictions wait, and they were retried
        assert all(v <= 1 for v in srv.max_unavailable_seen.values()), srv.max_unavailable_seen
        names = set(srv.nodes)
        assert "batch-c0" in names  # young
        assert not any(
            n.startswith(("workers-a", "workers-b", "workers-c", "batch-a", "batch-b")) for n in names
        )
        assert len(names) == 9  # every deleted node was replaced
        evicted = [e for e in srv.events if e.startswith("evict")]
        assert evicted and not any("agent-" in e for e in evicted)
        deletes = [e.split()[-1] for e in srv.events if e.startswith("delete node")]
        assert deletes[0] == "workers-b1" and len(deletes) == 8
        # never two nodes in flight: each node is deleted before the next is cordoned
        cordons = [e.split()[1] for e in srv.events if e.startswith("patch") and '"unschedulable": true' in e]
        seq = [
            e
            for e in srv.events
            if e.startswith(("delete node", "patch")) and ("delete" in e or "unschedulable" in e)
        ]
        assert cordons == deletes
        assert all(seq[i].startswith("patch") == (i % 2 == 0) for i in range(len(seq)))


def test_resumes_a_node_left_cordoned_by_an_interrupted_run(tmp_path, tls):
    objs = cluster_objects()
    for o in objs:
        if o["kind"] == "Node" and o["metadata"]["name"] == "batch-a0":
            o["metadata"]["annotations"] = {ANNOTATION: '{"phase":"cordoned","run":"earlier"}'}
            o["spec"]["unschedulable"] = True
    with FakeCluster(objs, tls) as srv:
        r = _run(tmp_path, srv, tls, "--max-age", "21d", "--dry-run")
        assert (
            r.exit_code == 0 and "1. node batch-a0" in r.output and "resuming: already cordoned" in r.output
        )
        r = _run(tmp_path, srv, tls, "--max-age", "21d", *FAST)
        assert r.exit_code == 0, r.output
        assert srv.violations == []
        # resumed first: its pods are evicted before anything else, and it is not cordoned again
        assert srv.events[0] == "evict shop/api-0"  # the pod on batch-a0
        assert not any(e.startswith("patch batch-a0") and "unschedulable" in e for e in srv.events)
        assert next(e for e in srv.events if e.startswith("delete")) == "delete node batch-a0"
        assert "batch-a0" not in srv.nodes


def test_refuses_to_start_when_pdbs_cannot_be_read(tmp_path, tls):
    with FakeCluster(cluster_objects(), tls, pdb_forbidden=True) as srv:
        r = _run(tmp_path, srv, tls, "--max-age", "21d", *FAST)
        assert r.exit_code == 2
        flat = " ".join(r.output.split())
        assert "cannot list PodDisruptionBudgets (HTTP 403" in flat and "refusing to rotate" in flat
        assert mutations(srv) == []


def test_stops_when_an_eviction_keeps_failing_and_does_not_skip_ahead(tmp_path, tls):
    with FakeCluster(cluster_objects(), tls) as srv:
        victim = next(
            k for k, p in srv.pods.items() if p["spec"]["nodeName"] == "workers-b1" and k[0] == "shop"
        )
        srv.block_evictions.add(victim)
        r = _run(tmp_path, srv, tls, "--max-age", "21d", "--poll", "0.03", "--eviction-timeout", "0.5")
        assert r.exit_code == 2
        flat = " ".join(r.output.split())
        assert f"stopped at node workers-b1: pod {victim[0]}/{victim[1]} could not be evicted" in flat
        touched = {e.split()[1] if e.startswith("patch") else e.split()[-1] for e in srv.events}
        assert not any(t.startswith(("workers-a", "workers-c", "batch")) for t in touched)
        assert srv.nodes["workers-b1"]["spec"]["unschedulable"] is True  # left cordoned, annotated
        assert "cordoned" in srv.nodes["workers-b1"]["metadata"]["annotations"][ANNOTATION]
        assert srv.violations == []


def test_a_budget_that_never_allows_an_eviction_blocks_before_touching_the_node(tmp_path, tls):
    objs = [
        node("w-a0", "w", "a", OLD),
        node("w-b0", "w", "b", OLD),
        pod("db-0", "data", "db", "w-a0"),
        pod("db-1", "data", "db", "w-b0"),
        pdb("db", "data", "db", minAvailable=2),
    ]
    with FakeCluster(objs, tls) as srv:
        r = _run(tmp_path, srv, tls, "--max-age", "21d", "--dry-run")
        assert "BLOCKED: PodDisruptionBudget data/db needs 2 of its 2 pods healthy" in r.output
        r = _run(tmp_path, srv, tls, "--max-age", "21d", *FAST)
        assert r.exit_code == 2 and "stopped at node w-a0" in " ".join(r.output.split())
        assert mutations(srv) == []


def test_karpenter_expire_after_and_auto_mode_nodes_are_left_to_them(tmp_path, tls):
    k = node("kp-0", "x", "a", OLD)
    k["metadata"]["labels"] = {"karpenter.sh/nodepool": "general", "topology.kubernetes.io/zone": "a"}
    auto = node("auto-0", "x", "a", OLD)
    auto["metadata"]["labels"]["eks.amazonaws.com/compute-type"] = "auto"
    np = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "general"},
        "spec": {"template": {"spec": {"expireAfter": "720h"}}},
    }
    with FakeCluster([k, auto, np, node("w-a0", "w", "a", YOUNG)], tls) as srv:
        r = _run(tmp_path, srv, tls, "--max-age", "21d", "--dry-run", "-o", "json")
    plan = json.loads(r.output)
    assert plan["steps"] == []
    reasons = {s["node"]: s["reason"] for s in plan["skipped"]}
    assert reasons == {
        "kp-0": "Karpenter NodePool general expires nodes (expireAfter 720h)",
        "auto-0": "EKS Auto Mode rotates its nodes (21 days at most)",
    }


def test_nodes_without_a_group_label_are_refused(tmp_path, tls):
    n = node("lonely", "w", "a", OLD)
    del n["metadata"]["labels"]["eks.amazonaws.com/nodegroup"]
    with FakeCluster([n, node("w-a0", "w", "a", OLD)], tls) as srv:
        r = _run(tmp_path, srv, tls, "--max-age", "21d", "--dry-run")
        assert r.exit_code == 2 and "cannot tell the node group of 1 node(s) (lonely)" in " ".join(
            r.output.split()
        )


@pytest.mark.parametrize("text,days", [("21d", 21), ("36h", 1.5), ("1d12h", 1.5), ("2w", 14)])
def test_parse_age(text, days):
    assert parse_age(text).total_seconds() / 86400 == days


@pytest.mark.parametrize("bad", ["", "21", "d", "-3d", "0d"])
def test_parse_age_rejects(bad):
    with pytest.raises(KubestrataError):
        parse_age(bad)


def test_plan_offline_from_manifests(tmp_path):
    import yaml

    f = tmp_path / "cluster.yaml"
    f.write_text(yaml.safe_dump_all(cluster_objects()))
    r = runner.invoke(app, ["nodes", "rotate", str(f), "--max-age", "30d"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("rotation plan: 8 node(s) older than 30 days")
    assert "1. node workers-b1" in r.output and "evict pod shop/" in r.output
    r = runner.invoke(app, ["nodes", "rotate", "--max-age", "soon"])
    assert r.exit_code == 2 and "expected a duration" in " ".join(r.output.split())


def test_offline_plan_refuses_broken_input(tmp_path):
    f = tmp_path / "cluster.yaml"
    f.write_text("kind: Node\nmetadata: {name: a}\n---\nkind: [broken\n")
    r = runner.invoke(app, ["nodes", "rotate", str(f)])
    assert r.exit_code == 2 and "cluster.yaml" in " ".join(r.output.split()) and "Traceback" not in r.output
    r = runner.invoke(app, ["nodes", "rotate", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "no such file" in " ".join(r.output.split())


def test_a_budget_that_stays_exhausted_stops_the_run_on_429s(tmp_path, tls):
    # replacement pods never become Ready: the second web pod's eviction is refused (429) until the timeout
    objs = [
        node("w-a0", "w", "a", OLDEST),
        node("w-b0", "w", "b", OLD),
        node("w-c0", "w", "c", YOUNG),
        pod("web-0", "shop", "web", "w-a0"),
        pod("web-1", "shop", "web", "w-a0"),
        pod("web-2", "shop", "web", "w-b0"),
        pdb("web", "shop", "web", maxUnavailable=1),
    ]
    with FakeCluster(objs, tls, pod_ready_after=3600) as srv:
        r = _run(tmp_path, srv, tls, "--max-age", "21d", "--poll", "0.03", "--eviction-timeout", "0.5")
        flat = " ".join(r.output.split())
        assert r.exit_code == 2 and "stopped at node w-a0: pod shop/web-1 could not be evicted" in flat
        assert "HTTP 429" in flat and srv.evictions_429 >= 2
        assert "w-b0" in srv.nodes and not any("w-b0" in e for e in srv.events)  # never skipped ahead
        assert srv.violations == []


def test_the_fake_catches_a_rotation_that_breaks_a_budget(tmp_path, tls):
    """The invariant check is not vacuous: deleting a node with its pods (no drain) is caught."""
    objs = [node("w-a0", "w", "a", OLD), node("w-b0", "w", "b", OLD)]
    objs += [pod(f"web-{i}", "shop", "web", "w-a0") for i in range(2)] + [pod("web-2", "shop", "web", "w-b0")]
    objs.append(pdb("web", "shop", "web", minAvailable=2))
    with FakeCluster(objs, tls) as srv:
        req, api = api_requester(str(write_kubeconfig(tmp_path / "kc", srv.url, tls)), None)
        try:
            assert req("DELETE", "/api/v1/nodes/w-a0", None, None).status == 200
            assert req("DELETE", "/api/v1/namespaces/shop/pods/web-2", None, None).status == 403
        finally:
            api.close()
    assert any("PDB shop/web has 1 healthy, wants 2" in v for v in srv.violations)
    assert "pod shop/web-2 deleted directly" in srv.violations
