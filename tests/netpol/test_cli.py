"""`kubestrata netpol` end to end through the real CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from kubestrata.cli.main import app
from tests.conftest import EXAMPLES, shared_dir

runner = CliRunner()
DEMO = str(EXAMPLES / "netpol" / "demo")
CHANGE = str(EXAMPLES / "netpol" / "demo-change")


def run(*args: str):
    return runner.invoke(app, ["netpol", *args])


def test_list_compat_matches_a_golden_exactly() -> None:
    case = shared_dir() / "conformance" / "netpol" / "cases" / "netpol_named_port_test"
    r = run("list", str(case / "input"), "--compat", "np-guard", "-q")
    assert r.exit_code == 0, r.output
    assert r.stdout == (case / "expected_connlist.txt").read_text()


def test_list_formats() -> None:
    r = run("list", DEMO, "-o", "json", "-q")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert {"src": "shop/web[Deployment]", "dst": "shop/cart[Deployment]", "conn": "TCP 9000"} in doc
    csv_out = run("list", DEMO, "-o", "csv", "-q").stdout
    assert csv_out.splitlines()[0] == "src,dst,conn"
    assert (
        "| shop/web[Deployment] | shop/cart[Deployment] | TCP 9000 |"
        in run("list", DEMO, "-o", "md", "-q").stdout
    )
    dot = run("list", DEMO, "-o", "dot", "-q").stdout
    assert dot.startswith("digraph {") and 'label="shop"' in dot and 'label="TCP 9000"' in dot


def test_invalid_policy_is_a_warning_naming_policy_and_field_and_analysis_goes_on() -> None:
    r = run("list", DEMO)
    assert r.exit_code == 0
    assert "NetworkPolicy payments/api-from-partner" in r.stderr
    assert "spec.ingress[0].from[0].ipBlock.except[0]" in r.stderr
    assert "shop/web[Deployment] => payments/api[StatefulSet] : TCP 7443" in r.stdout


def test_eval_and_fail_flag() -> None:
    r = run("eval", DEMO, "-s", "shop/web", "-d", "payments/api", "-p", "7443", "-q")
    assert (
        r.exit_code == 0
        and r.stdout == "shop/web[Deployment] => payments/api[StatefulSet] over tcp/7443: true\n"
    )
    r = run("eval", DEMO, "-s", "shop/cart", "-d", "payments/api", "-p", "7443", "--fail", "-q")
    assert r.exit_code == 1 and r.stdout.endswith(": false\n")
    r = run("eval", DEMO, "--source-ip", "203.0.113.9", "-d", "shop/web", "-p", "8080", "-o", "json", "-q")
    assert json.loads(r.stdout)["allowed"] is False


def test_explain_names_tiers_and_rules() -> None:
    r = run("explain", DEMO, "-s", "monitoring/prometheus", "-d", "payments/api", "-q")
    assert r.exit_code == 0
    assert "AdminNetworkPolicy 'platform' allows TCP 9102 by Ingress rule #2 'scrape-metrics'" in r.stdout
    assert "NetworkPolicy 'payments/api-from-shop' selects the pod, but the peer is not allowed" in r.stdout
    assert "sg-0a1b2c3d4e5f60718" in r.stdout


def test_diff_grammar_and_fail() -> None:
    r = run("diff", DEMO, CHANGE, "--fail", "-q")
    assert r.exit_code == 1
    assert r.stdout.splitlines() == [
        "Connectivity diff:",
        "diff-type: changed, source: monitoring/prometheus[Deployment], destination: payments/api[StatefulSet], "
        "dir1:  TCP 9102, dir2: TCP 7443,9102",
    ]
    assert run("diff", DEMO, DEMO, "--fail", "-q").exit_code == 0


def test_coverage_json() -> None:
    r = run("coverage", DEMO, "-o", "json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["unrestricted"] == ["monitoring/node-exporter[DaemonSet]"]
    assert doc["namespacesWithoutDefaultDeny"]["payments"] == ["ingress", "egress"]
    assert "shop" not in doc["namespacesWithoutDefaultDeny"]
    assert doc["invalidPolicies"] and "api-from-partner" in doc["invalidPolicies"][0]["error"]


def test_bad_usage_exits_2_without_traceback(tmp_path) -> None:
    r = run("eval", DEMO, "-s", "shop/nope", "-d", "shop/web", "-q")
    assert r.exit_code == 2 and "no workload or pod named" in r.stderr and "Traceback" not in r.output
    r = run("list")
    assert r.exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    r = run("list", str(bad))
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = run("eval", DEMO, "-s", "shop/web", "-d", "shop/cart", "--protocol", "ICMP", "-q")
    assert r.exit_code == 2


def test_html_view_escapes_names() -> None:
    from kubestrata.netpol.engine import Network
    from kubestrata.netpol.graph import connectivity_html
    from tests.netpol.helpers import network_from_docs

    docs = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "<script>x</script>", "namespace": "a"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }
    ]
    net: Network = network_from_docs(docs)
    html_out = connectivity_html(net)
    assert "<script>" not in html_out and "&lt;script&gt;" in html_out
    assert html_out.startswith('<section class="netpol-connectivity">') and "<svg" in html_out
