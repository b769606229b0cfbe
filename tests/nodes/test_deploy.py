"""deploy-host/nodes manifests against our own Pod Security evaluation."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from kubestrata.cli.main import app
from tests.conftest import REPO_ROOT

runner = CliRunner()
DS = str(REPO_ROOT / "deploy-host/nodes/audit-daemonset.yaml")
CRON = str(REPO_ROOT / "deploy-host/nodes/audit-configz-cronjob.yaml")


def test_configz_cronjob_passes_restricted():
    r = runner.invoke(app, ["pss", "check", CRON, "--level", "restricted"])
    assert r.exit_code == 0, r.output


def test_daemonset_breaks_baseline_only_by_host_pid_and_read_only_host_paths():
    r = runner.invoke(app, ["pss", "check", DS, "--level", "baseline", "-o", "json"])
    (res,) = json.loads(r.stdout)
    assert {v["check"] for v in res["violations"]} == {"hostNamespaces", "hostPathVolumes"}
    assert [v["detail"] for v in res["violations"] if v["check"] == "hostNamespaces"] == ["hostPID=true"]
    # and its own namespace (labelled privileged) admits it
    r = runner.invoke(app, ["pss", "check", DS])
    assert r.exit_code == 0, r.output


def test_daemonset_mounts_are_read_only_and_it_runs_the_audit():
    import yaml

    docs = list(yaml.safe_load_all(open(DS)))
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    c = ds["spec"]["template"]["spec"]["containers"][0]
    assert all(m["readOnly"] for m in c["volumeMounts"])
    assert c["args"][:2] == ["nodes", "audit"] and "--root=/host" in c["args"]
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
