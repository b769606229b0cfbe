"""`nodes audit` on a real directory tree (modes and owners set here, as root) and a real kubelet
process found through /proc."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.nodes import benchmarks
from kubestrata.nodes.audit import audit_configz, audit_host
from tests.nodes.hostfixture import CONFIG, GOOD_CONFIG, KUBECONFIG, FakeNode

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sets file owners with chown (needs root)")
runner = CliRunner()


@pytest.fixture
def node(tmp_path):
    n = FakeNode(tmp_path / "host")
    yield n
    n.stop()


def states(report) -> dict[str, str]:
    return {r.check.id: r.state for res in report.results for g in res.groups for r in g.results}


def result(report, cid):
    return next(r for res in report.results for g in res.groups for r in g.results if r.check.id == cid)


def test_hardened_node_passes_every_check_of_the_version_kube_bench_would_pick(node):
    node.start()
    rep = audit_host(root=node.root)
    assert rep.benchmark == "eks-1.8.0" and "v1.33.1" in rep.benchmark_reason
    assert set(states(rep).values()) == {"PASS"}, states(rep)
    assert len(states(rep)) == 13 and rep.findings == []
    assert result(rep, "3.1.1").actual_value == "permissions=600"
    assert result(rep, "3.1.2").actual_value == "root:root"
    # 3.2.1 decided from the config file: the flag is absent from the command line
    assert result(rep, "3.2.1").used == ["path"]


def test_modes_and_owners_made_on_disk(node):
    os.chmod(node.path(KUBECONFIG), 0o666)
    os.chown(node.path(CONFIG), 1000, 1000)
    os.chmod(node.path(CONFIG), 0o640)
    node.start()
    rep = audit_host(root=node.root)
    s = states(rep)
    assert (s["3.1.1"], s["3.1.2"], s["3.1.3"], s["3.1.4"]) == ("FAIL", "PASS", "PASS", "FAIL")
    assert result(rep, "3.1.1").expected_result == (
        "permissions has permissions 666, expected 644 or more restrictive"
    )
    assert result(rep, "3.1.4").actual_value == "ec2-user:ec2-user"
    ids = sorted(f.rule_id for f in rep.findings)
    assert ids == ["CIS-EKS-3.1.1", "CIS-EKS-3.1.4"]
    assert all(f.object.name == rep.node and f.object.kind == "Node" for f in rep.findings)


def test_command_line_flags_take_precedence_over_the_config_file(node):
    node.write_config({**GOOD_CONFIG, "readOnlyPort": 10255})
    node.start(
        "--anonymous-auth=true", "--read-only-port=0", "--feature-gates=RotateKubeletServerCertificate=false"
    )
    rep = audit_host(root=node.root)
    s = states(rep)
    assert s["3.2.1"] == "FAIL" and result(rep, "3.2.1").used == ["flag"]  # config says false
    assert s["3.2.4"] == "PASS" and result(rep, "3.2.4").used == ["flag"]  # config says 10255
    assert s["3.2.9"] == "FAIL"  # feature gate flag overrides the config's true
    msg = next(f.message for f in rep.findings if f.rule_id == "CIS-EKS-3.2.1")
    assert "command line" in msg and "--anonymous-auth=true" in msg


def test_a_flag_given_twice_with_different_values_fails_never_passes(node):
    node.start("--read-only-port=0", "--read-only-port=10255")
    rep = audit_host(root=node.root)
    r = result(rep, "3.2.4")
    assert r.state == "FAIL" and "given 2 times" in r.reason and "10255" in r.reason


def test_missing_config_file_named_by_the_kubelet_fails_with_its_name(node):
    node.path(CONFIG).unlink()
    node.start()
    rep = audit_host(root=node.root)
    s = states(rep)
    assert s["3.1.3"] == "FAIL" and "does not exist" in result(rep, "3.1.3").reason
    # every kubelet check reading the config fails, including the "or unset" ones
    assert all(s[f"3.2.{i}"] == "FAIL" for i in range(1, 10))
    assert CONFIG in result(rep, "3.2.5").reason


def test_config_in_the_wrong_format_is_a_named_failure(node):
    node.write(CONFIG, "{ this is: [not json", 0o644)
    node.start()
    rep = audit_host(root=node.root)
    r = result(rep, "3.2.6")
    assert r.state == "FAIL" and "neither JSON nor YAML" in r.reason and CONFIG in r.reason
    node.write(CONFIG, "- a list\n- not a config\n", 0o644)
    rep = audit_host(root=node.root)
    assert "not a KubeletConfiguration mapping" in result(rep, "3.2.6").reason


def test_unreadable_config_is_a_failure_not_a_pass(node):
    node.start()
    os.chmod(node.path(CONFIG), 0o000)
    if os.access(node.path(CONFIG), os.R_OK):  # root reads anyway: make it a directory instead
        node.path(CONFIG).unlink()
        node.path(CONFIG).mkdir()
    rep = audit_host(root=node.root)
    assert result(rep, "3.2.5").state == "FAIL" and "cannot read" in result(rep, "3.2.5").reason


def test_no_kubelet_process_fails_the_kubelet_checks_and_records_a_gap(node, tmp_path):
    empty_proc = tmp_path / "proc"
    empty_proc.mkdir()
    rep = audit_host(root=node.root, proc=empty_proc, kube_version="1.31")
    s = states(rep)
    assert rep.benchmark == "eks-1.7.0"
    assert all(s[f"3.2.{i}"] == "FAIL" for i in range(1, 10))
    assert "no kubelet process" in result(rep, "3.2.1").reason
    assert [g.subject for g in rep.coverage.gaps] == ["kubelet"]
    # the files are still found from kube-bench's candidate paths
    assert s["3.1.1"] == "PASS" and s["3.1.3"] == "PASS"


@pytest.mark.parametrize(
    "version,bench",
    [
        ("v1.17.9", "eks-1.0.1"),
        ("1.19", "eks-1.0.1"),
        ("v1.20.0", "eks-1.5.0"),
        ("v1.28.3", "eks-1.5.0"),
        ("v1.29.0", "eks-1.7.0"),
        ("v1.31.4-eks-1", "eks-1.7.0"),
        ("v1.32.0", "eks-1.8.0"),
        ("v1.34.1", "eks-1.8.0"),
        ("v1.35.0", "eks-1.5.0"),
        ("garbage", "eks-1.5.0"),
    ],
)
def test_version_mapping_is_kube_bench_eksBenchmark(version, bench):  # noqa: N802
    assert benchmarks.eks_benchmark(version) == bench


@pytest.mark.parametrize("bench", benchmarks.VERSIONS)
def test_every_benchmark_version_runs_on_a_node(node, bench):
    node.start()
    rep = audit_host(root=node.root, benchmark=bench)
    s = states(rep)
    old = bench in ("eks-1.0.1", "eks-1.1.0", "eks-1.2.0")
    assert len(s) == (15 if bench == "eks-1.0.1" else 16 if old else 13)
    if old:
        assert s["3.2.6"] == "FAIL"  # protectKernelDefaults unset
        assert s["3.2.8"] == "PASS"  # no --hostname-override
        assert s["3.2.9"] == "WARN"  # eventRecordQPS unset, unscored
    if bench == "eks-1.5.0":
        assert s["3.2.7"] == "FAIL"  # 1.5.0 has no "or unset" item for eventRecordQPS
    if bench in ("eks-1.1.0", "eks-1.2.0"):
        assert s["3.3.1"] == "WARN"  # manual


def test_kube_bench_json_shape(node):
    node.start()
    r = runner.invoke(app, ["nodes", "audit", "--root", str(node.root), "-o", "kube-bench-json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert set(doc) == {"Controls", "Totals"}
    assert set(doc["Totals"]) == {"total_pass", "total_fail", "total_warn", "total_info"}
    (ctl,) = doc["Controls"]
    # check/controls.go Controls, Group and check.go Check JSON tags
    assert set(ctl) == {
        "id",
        "version",
        "detected_version",
        "text",
        "node_type",
        "tests",
        "total_pass",
        "total_fail",
        "total_warn",
        "total_info",
    }
    assert (ctl["id"], ctl["version"], ctl["node_type"]) == ("3", "eks-1.8.0", "node")
    assert [g["section"] for g in ctl["tests"]] == ["3.1", "3.2"]
    g = ctl["tests"][1]
    assert set(g) == {"section", "type", "pass", "fail", "warn", "info", "desc", "results"}
    res = g["results"][0]
    assert set(res) == {
        "test_number",
        "test_desc",
        "audit",
        "AuditEnv",
        "AuditConfig",
        "type",
        "remediation",
        "test_info",
        "status",
        "actual_value",
        "scored",
        "IsMultiple",
        "expected_result",
    }
    assert res["audit"] == "/bin/ps -fC kubelet" and res["AuditConfig"] == f"/bin/cat {CONFIG}"
    assert res["expected_result"] == "'{.authentication.anonymous.enabled}' is equal to 'false'"
    assert [r["test_number"] for r in g["results"]] == [f"3.2.{i}" for i in range(1, 10)]


def test_cli_exit_codes_and_bad_input(node, tmp_path):
    node.start("--anonymous-auth=true")
    r = runner.invoke(app, ["nodes", "audit", "--root", str(node.root)])
    assert r.exit_code == 1 and "[FAIL] 3.2.1" in r.output
    r = runner.invoke(app, ["nodes", "audit", "--root", str(node.root), "--fail-on", "never", "-o", "json"])
    assert r.exit_code == 0 and json.loads(r.output)["findings"][0]["ruleId"] == "CIS-EKS-3.2.1"
    r = runner.invoke(app, ["nodes", "audit", "--root", str(node.root), "--benchmark", "eks-9"])
    assert (
        r.exit_code == 2
        and "unknown benchmark 'eks-9'" in " ".join(r.output.split())
        and "Traceback" not in r.output
    )
    r = runner.invoke(app, ["nodes", "audit", "--root", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "nope: not a directory" in " ".join(r.output.split())


@pytest.mark.parametrize("example", ["fail.yaml", "pass.yaml", "pass-configz.yaml"])
def test_ks_node_002_and_the_audit_engine_agree(example):
    import yaml

    from kubestrata.checks import CheckContext
    from kubestrata.checks.nodes import kubelet_cis, kubelet_config
    from kubestrata.kube.cluster import Cluster
    from kubestrata.kube.objects import KubeObject
    from tests.conftest import REPO_ROOT as ROOT

    raw = yaml.safe_load((ROOT / "src/kubestrata/checks/examples/KS-NODE-002" / example).read_text())
    found = {
        f.message.split(":")[0].removeprefix("CIS EKS ")
        for f in kubelet_cis(KubeObject(raw), CheckContext(Cluster([])))
    }
    body = {k: v for k, v in kubelet_config(raw).items() if k not in ("apiVersion", "kind", "metadata")}
    res = audit_configz(body)
    failed = {r.check.id for g in res.groups for r in g.results if r.state != "PASS"}
    assert found == failed
    assert bool(failed) == example.startswith("fail")


def test_zero_duration_spelled_0s_fails_streaming_timeout():
    # kube-bench's `noteq 0` would pass "0s"; the built-in test asks for a non-zero digit
    res = audit_configz({**GOOD_CONFIG, "streamingConnectionIdleTimeout": "0s"})
    assert {r.check.id for g in res.groups for r in g.results if r.state != "PASS"} == {"3.2.5"}
    res = audit_configz({**GOOD_CONFIG, "streamingConnectionIdleTimeout": "4h0m0s"})
    assert all(r.state == "PASS" for g in res.groups for r in g.results)


def test_every_repeats_with_one_json_line_per_run(node):
    import subprocess
    import sys

    node.start()
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubestrata",
            "nodes",
            "audit",
            "--root",
            str(node.root),
            "-o",
            "json",
            "--every",
            "0.2",
            "--fail-on",
            "never",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [p.stdout.readline() for _ in range(2)]
    finally:
        p.terminate()
        p.wait(timeout=10)
    docs = [json.loads(line) for line in lines]
    assert [d["benchmark"] for d in docs] == ["eks-1.8.0", "eks-1.8.0"]


def test_asff_output_as_kube_bench_builds_it(node):
    node.start("--anonymous-auth=true")
    base = ["nodes", "audit", "--root", str(node.root), "--node-name", "ip-10-0-1-5", "-o", "asff"]
    r = runner.invoke(app, base)
    assert r.exit_code == 2 and "-o asff needs --aws-account, --aws-region, --cluster-arn" in " ".join(
        r.output.split()
    )
    arn = "arn:aws:eks:us-east-1:111122223333:cluster/prod"
    r = runner.invoke(
        app, [*base, "--aws-account", "111122223333", "--aws-region", "us-east-1", "--cluster-arn", arn]
    )
    assert r.exit_code == 1, r.output
    (f,) = json.loads(r.output)["Findings"]
    product = "arn:aws:securityhub:us-east-1::product/aqua-security/kube-bench"
    assert f["Id"] == f"{product}111122223333EKSnodeID+3.2.1+{arn}+ip-10-0-1-5"
    assert f["GeneratorId"] == f"{product}/cis-kubernetes-benchmark/eks-1.8.0/3.2.1"
    assert f["SchemaVersion"] == "2018-10-08" and f["Severity"] == {"Label": "HIGH"}
    assert f["Resources"] == [{"Id": arn, "Type": f["Types"][0]}]
    assert set(f["ProductFields"]) == {"Reason", "Actual result", "Expected result", "Section", "Subsection"}


def test_config_dir_drop_ins_override_the_config_file(node):
    # EKS AL2023 (nodeadm) runs the kubelet with --config-dir; drop-ins win over the main file
    d = "/etc/kubernetes/kubelet/config.json.d"
    node.write(f"{d}/00-nodeadm.conf", json.dumps({"readOnlyPort": 10255, "featureGates": {"Other": True}}))
    node.write(f"{d}/10-fix.conf", "readOnlyPort: 0\nauthentication:\n  anonymous:\n    enabled: true\n")
    node.write(f"{d}/ignored.json", json.dumps({"authorization": {"mode": "AlwaysAllow"}}))
    node.start(f"--config-dir={d}")
    s = states(audit_host(root=node.root))
    assert s["3.2.4"] == "PASS"  # 10255 from 00-, then 0 from 10-
    assert s["3.2.1"] == "FAIL"  # the drop-in enables anonymous auth
    assert s["3.2.2"] == "PASS"  # only *.conf files count
    assert s["3.2.9"] == "PASS"  # featureGates merged key by key, the file's gate kept
    node.write(f"{d}/20-bad.conf", "- not\n- a mapping\n")
    r = result(audit_host(root=node.root), "3.2.4")
    assert r.state == "FAIL" and "20-bad.conf" in r.reason
