"""Kyverno-style Pod Security exclusions for KS-PSS-004 (issue 11): per control (name or check id),
image, namespace and allowed values; control names next to PSA check ids."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.config import parse_scan_config
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_text
from kubestrata.pss.controls import check_ids, control_name
from kubestrata.scan import run_scan

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "net"},
    "spec": {
        "hostNetwork": True,
        "securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
        "containers": [
            {
                "name": "proxy",
                "image": "registry.example.com/envoy:1.30",
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
            },
            {
                "name": "debug",
                "image": "busybox:1.36",
                "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]}},
            },
        ],
    },
}


def _controls(exclusions):
    cfg = parse_scan_config({"pss_exclusions": exclusions})
    res = run_scan(Cluster(load_text(yaml.safe_dump(POD), "p.yaml").objects), config=cfg)
    out = {}
    for f in res.findings:
        if f.rule_id == "KS-PSS-004":
            cid = f.message.split("(", 1)[1].split(")", 1)[0]
            out.setdefault(cid, []).append(f.container)
    return out


def test_control_names_and_ids():
    assert control_name("capabilities_baseline") == "Capabilities"
    assert check_ids("host ports") == {"hostPorts"} and check_ids("hostPorts") == {"hostPorts"}
    assert check_ids("Capabilities") == {"capabilities_baseline", "capabilities_restricted"}


def test_no_exclusions():
    assert set(_controls([])) == {"hostNamespaces", "hostPorts", "sysctls", "capabilities_baseline"}


def test_exclude_a_control_by_name_or_id():
    assert "hostNamespaces" not in _controls([{"controlName": "Host Namespaces"}])
    assert "hostPorts" not in _controls([{"controlName": "hostPorts"}])


def test_exclude_by_image_only_touches_that_container():
    got = _controls([{"controlName": "Capabilities", "images": ["registry.example.com/*"]}])
    assert got["capabilities_baseline"] == ["debug"]
    # a pod-level control is not excluded by an image-scoped entry
    assert "hostNamespaces" in _controls([{"controlName": "Host Namespaces", "images": ["*"]}])


def test_allowed_values():
    # NET_ADMIN allowed: proxy passes, debug still has SYS_ADMIN
    got = _controls([{"controlName": "Capabilities", "values": ["NET_ADMIN"]}])
    assert got["capabilities_baseline"] == ["debug"]
    assert "hostPorts" not in _controls([{"controlName": "Host Ports", "values": ["80", "443"]}])
    assert "hostPorts" in _controls([{"controlName": "Host Ports", "values": ["443"]}])
    assert "sysctls" not in _controls([{"controlName": "Sysctls", "values": ["net.core.somaxconn"]}])


def test_namespaces():
    assert "hostNamespaces" in _controls([{"controlName": "Host Namespaces", "namespaces": ["kube-*"]}])
    assert "hostNamespaces" not in _controls([{"controlName": "Host Namespaces", "namespaces": ["n*"]}])


@pytest.mark.parametrize(
    "entry,msg",
    [
        ({"controlName": "Nope"}, "unknown Pod Security control"),
        ({"controlName": "SELinux", "values": ["x"]}, "values apply"),
    ],
)
def test_bad_exclusion_is_a_config_error(tmp_path, entry, msg):
    cfg = tmp_path / "k.yaml"
    cfg.write_text(yaml.safe_dump({"scan": {"pss_exclusions": [entry]}}))
    pod = tmp_path / "p.yaml"
    pod.write_text(yaml.safe_dump(POD))
    r = CliRunner().invoke(app, ["scan", str(pod), "-c", str(cfg)])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and msg in out and "pss_exclusions" in out
