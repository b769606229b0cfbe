"""Runtime rules (KS-RUN-*) on Tetragon and Falco events: every rule has a passing and a near-miss
case built from real upstream events (data/runtime/README.md), both sensors' adapters are checked
field by field, and bad or unknown events are counted, never fatal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.router import DetectRouter, InputFormat
from kubestrata.detect.runtime import falco_input, tetragon
from kubestrata.detect.runtime.catalogue import RUNTIME_CATALOGUE
from kubestrata.detect.runtime.events import CONNECT, EXEC, EXIT, FILE
from tests.detect.runtime_cases import DATA, base_event, build, cases

CASES = cases()


def _router(**kw: Any) -> DetectRouter:
    return DetectRouter(Pipeline(DetectConfig(cluster="prod", **kw)), sequences=False)


def _feed(router: DetectRouter, ev: dict[str, Any]) -> list[dict[str, Any]]:
    return [f.to_dict() for f in router.process_line(json.dumps(ev).encode(), "case")]


def _case_id(c: dict[str, Any]) -> str:
    return f"{c['rule']}-{c['expect']}-{c['base'].split('.')[0]}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_rule_case(case: dict[str, Any]) -> None:
    r = _router()
    for step in case.get("before") or []:
        _feed(r, build(step))
    found = _feed(r, build(case))
    assert r.stats.bad_total == 0, r.stats.samples
    hits = [f for f in found if f["ruleId"] == case["rule"]]
    if case["expect"] == "pass":
        assert hits, (case, [f["ruleId"] for f in found])
        f = hits[0]
        assert f["references"].get("mitre")
        if case.get("severity"):
            assert f["severity"] == case["severity"]
    else:
        assert not hits, (case, hits)


def test_every_rule_has_a_pass_and_a_near_miss() -> None:
    for rid in RUNTIME_CATALOGUE:
        assert {c["expect"] for c in CASES if c["rule"] == rid} == {"pass", "fail"}, rid
    assert {c["rule"] for c in CASES} == set(RUNTIME_CATALOGUE)
    sensors = {c["base"].split("-")[0] for c in CASES}
    assert sensors == {"tetragon", "falco"}


def test_tetragon_exec_fields_from_upstream_testdata() -> None:
    ev = tetragon.parse(base_event("tetragon-events.jsonl:1"))
    assert ev.kind == EXEC and ev.source == "tetragon"
    assert (ev.namespace, ev.pod, ev.container) == ("default", "tiefighter", "spaceship")
    assert ev.image == "docker.io/tgraf/netperf:latest"
    assert ev.container_id.startswith("containerd://19a02291e106")
    assert (ev.process.binary, ev.process.args, ev.process.uid, ev.process.pid) == (
        "/usr/bin/netserver",
        "-D",
        0,
        68790,
    )
    assert ev.parent is not None and ev.parent.binary == "/usr/bin/containerd-shim-runc-v2"
    assert ev.node == "my-node" and ev.exe_from_memfd is False


def test_tetragon_kprobe_and_exit() -> None:
    ev = tetragon.parse(base_event("tetragon-file_permission.jsonl:1"))
    assert (ev.kind, ev.file_path, ev.access, ev.syscall) == (
        FILE,
        "/etc/passwd",
        "write",
        "security_file_permission",
    )
    assert ev.time == "2024-04-14T02:18:14.376304204Z" and ev.node == "tetragon-dev-control-plane"
    old = tetragon.parse(base_event("tetragon-process_kprobe.jsonl:1"))
    assert (old.kind, old.file_path, old.access) == (FILE, "/etc/passwd", "write")  # "etc/passwd" upstream
    assert tetragon.parse(base_event("tetragon-cat_process_exit.jsonl:1")).kind == EXIT


def test_falco_alert_fields_from_upstream_output() -> None:
    ev = falco_input.parse(base_event("falco-terminal-shell.jsonl:1"))
    assert (ev.source, ev.sensor_rule, ev.namespace, ev.pod, ev.container_id) == (
        "falco", "Terminal shell in container", "default", "alpine", "5892b41bcf46")  # fmt: skip
    assert ev.process.binary == "sh" and ev.process.user == "root" and ev.parent is None
    assert ev.time == "2021-01-14T23:39:44.834631763Z"
    conn = falco_input.parse(build({"base": "falco-terminal-shell.jsonl:1",
                                    "fields": {"evt.type": "connect", "fd.name": "10.0.0.1:5->169.254.169.254:80"}}))  # fmt: skip
    assert (conn.kind, conn.daddr, conn.dport) == (CONNECT, "169.254.169.254", 80)


def test_unknown_types_are_counted_and_skipped() -> None:
    r = _router()
    # the 2022 book's process_connect is not in today's proto; a process_loader and a Falco k8s_audit alert
    _feed(r, base_event("tetragon-process_connect.jsonl:1"))
    _feed(
        r, {"process_loader": {"process": {"binary": "/x"}}, "node_name": "n", "time": "2024-01-01T00:00:00Z"}
    )
    _feed(r, {**base_event("falco-terminal-shell.jsonl:1"), "source": "k8s_audit"})
    assert r.extra.unknown == {
        "tetragon:process_connect": 1,
        "tetragon:process_loader": 1,
        "falco:k8s_audit": 1,
    }
    assert r.stats.bad_total == 0
    assert "3 of unknown types skipped" in r.extra.line()


def test_malformed_runtime_events_are_bad_not_fatal() -> None:
    r = _router()
    good = base_event("tetragon-events.jsonl:1")
    bad_lines = [
        b'{"process_exec": {"process": {"binary": "/bin/sh"',  # truncated
        json.dumps({"process_exec": "oops", "node_name": "n"}).encode(),
        json.dumps({"process_exec": {"process": {"binary": 7}}}).encode(),
        json.dumps({"process_exec": {}}).encode(),
        json.dumps({"process_kprobe": {"process": {"binary": "/x"}, "args": "nope"}}).encode(),
        json.dumps({"rule": "x", "priority": "Notice", "output_fields": [1, 2]}).encode(),
        json.dumps({"rule": "", "priority": "Notice", "output_fields": {}}).encode(),
        json.dumps({"rule": "x", "priority": "Notice", "output_fields": {"proc.cmdline": {"a": 1}}}).encode(),
        b"\xff\xfe garbage",
    ]
    for line in bad_lines:
        assert r.process_line(line, "t") == []
    r.process_line(json.dumps(good).encode(), "t")
    assert r.stats.bad_total == len(bad_lines), r.stats.bad
    assert r.extra.runtime_events["tetragon"] == 1


def test_attacker_controlled_fields_are_escaped() -> None:
    ev = build({"base": "tetragon-events.jsonl:1",
                "set": {"process_exec.process.binary": "/tmp/\x1b]0;owned\x07x",
                        "process_exec.process.arguments": "\u202e[bold red]hi[/] \x9b2J"}})  # fmt: skip
    found = _feed(_router(), ev)
    f = next(f for f in found if f["ruleId"] == "KS-RUN-01")
    text = json.dumps(f, ensure_ascii=False)
    for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert raw not in text
    assert "\\x1b]0;owned\\x07x" in f["process"]["binary"] and "\\u202e" in f["process"]["arguments"]


def test_duplicate_runtime_events_are_dropped_and_findings_deduplicated() -> None:
    r = _router()
    line = json.dumps(
        build({"base": "tetragon-events.jsonl:1", "set": {"process_exec.process.binary": "/tmp/x"}})
    )
    assert len(r.process_line(line, "a")) == 1
    assert r.process_line(line, "b") == [] and r.extra.duplicates == 1
    again = json.loads(line)
    again["time"] = "2022-10-18T03:16:30Z"  # a second exec of the same binary: same finding, suppressed
    assert r.process_line(json.dumps(again), "c") == [] and r.stats.suppressed == 1


def test_input_format_forces_the_parser() -> None:
    r = DetectRouter(Pipeline(DetectConfig()), InputFormat.FALCO, sequences=False)
    r.process_line(json.dumps(base_event("tetragon-events.jsonl:1")), "t")
    assert r.stats.bad_total == 1  # a Tetragon line read as a Falco alert: no "rule"


def test_only_and_disable_apply_to_runtime_rules() -> None:
    ev = build(
        {
            "base": "tetragon-nc_process_exec.jsonl:1",
            "set": {"process_exec.process.arguments": "-e /bin/sh h 1"},
        }
    )
    assert {f["ruleId"] for f in _feed(_router(), ev)} == {"KS-RUN-02", "KS-RUN-17"}
    assert {f["ruleId"] for f in _feed(_router(disabled=frozenset({"KS-RUN-17"})), ev)} == {"KS-RUN-02"}
    assert {f["ruleId"] for f in _feed(_router(only=frozenset({"KS-RUN-17"})), ev)} == {"KS-RUN-17"}


def test_readme_cites_every_data_file() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for p in DATA.iterdir():
        if p.suffix == ".jsonl":
            assert p.name in readme, p.name


def test_cli_mixed_file_with_garbage_counts_everything(tmp_path) -> None:
    from typer.testing import CliRunner

    from kubestrata.cli.main import app

    trail = json.loads((DATA.parent / "cloudtrail" / "eks-records.json").read_text())["Records"][0]
    lines = [
        json.dumps(base_event("tetragon-nc_process_exec.jsonl:1")),
        json.dumps(base_event("falco-terminal-shell.jsonl:1")),
        json.dumps(trail),
        json.dumps(base_event("tetragon-process_connect.jsonl:1")),
        '{"process_exec": {"process": {"binary": ["x"]}}}',
        "not json at all \x1b[2J",
        '{"rule": "Drop and execute new binary in container", "priority": "Critical", "output_fields": "x"}',
        "",
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["detect", "replay", str(path), "-o", "json", "--fail-on", "never",
                                 "--stats", str(tmp_path / "s.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["badByReason"] == {"bad-runtime-event": 2, "invalid-json": 1}
    assert stats["unknownEventTypes"] == {"tetragon:process_connect": 1}
    assert stats["runtimeEvents"] == {"tetragon": 1, "falco": 1} and stats["cloudtrailRecords"] == 1
    assert {f["ruleId"] for f in json.loads(r.stdout)} == {"KS-RUN-17", "KS-CT-05"}


def test_falco_output_of_runtime_and_cloudtrail_findings() -> None:
    from kubestrata.detect.falco_output import to_falco
    from tests.detect.test_falco_output import falcosidekick_rejects

    trail = json.loads((DATA.parent / "cloudtrail" / "eks-records.json").read_text())["Records"][0]
    ev = build({"base": "tetragon-events.jsonl:1", "set": {"process_exec.process.binary": "/tmp/x"}})
    r = _router()
    found = [*_feed(r, ev), *(f.to_dict() for f in r.process_obj(trail, "t"))]
    assert {f["source"] for f in found} == {"tetragon", "cloudtrail"}
    for f in found:
        alert = to_falco(f, hostname="node-1")
        assert falcosidekick_rejects(json.dumps(alert).encode()) is None
        assert not any(k.startswith("ka.") for k in alert["output_fields"])
        assert alert["output_fields"]["kubestrata.rule_id"] == f["ruleId"]
    runtime = to_falco(found[0], hostname="n")
    assert runtime["source"] == "syscall" and runtime["output_fields"]["k8s.pod.name"] == "tiefighter"
    assert runtime["output_fields"]["proc.exepath"] == "/tmp/x"
    trail_alert = to_falco(found[1], hostname="n")
    assert (
        trail_alert["source"] == "aws_cloudtrail"
        and trail_alert["output_fields"]["ct.name"] == "CreateAccessEntry"
    )
