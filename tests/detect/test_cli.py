from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kubestrata.cli.main import app
from tests.detect.helpers import event

runner = CliRunner()


def _log(tmp_path, *evs, extra: bytes = b"") -> str:
    p = tmp_path / "audit.log"
    p.write_bytes(b"\n".join(orjson.dumps(e) for e in evs) + b"\n" + extra)
    return str(p)


def test_replay_jsonl_and_exit_codes(tmp_path) -> None:
    path = _log(
        tmp_path,
        event("create", "clusterrolebindings", namespace=None, code=201,
              request_object={"roleRef": {"name": "cluster-admin"}, "subjects": [{"kind": "User", "name": "x"}]}),
        extra=b"{truncated\n",
    )  # fmt: skip
    r = runner.invoke(app, ["detect", "replay", path, "--fail-on", "never"])
    assert r.exit_code == 0, r.output
    lines = [orjson.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert "KS-AUD-F18" in {f["ruleId"] for f in lines}
    assert "1 bad" in r.stderr
    r = runner.invoke(app, ["detect", "replay", path, "-o", "none"])  # --fail-on high is the default
    assert r.exit_code == 1 and "at or above high" in r.stderr
    r = runner.invoke(app, ["detect", "replay", path, "--fail-on", "critical", "-o", "json"])
    assert r.exit_code == 0 and "KS-AUD-F18" in {f["ruleId"] for f in orjson.loads(r.stdout)}


def test_replay_table_escapes_markup(tmp_path) -> None:
    path = _log(
        tmp_path, event("delete", "secrets", name="[bold red]boom[/]", user="[link=http://x]u[/link]")
    )
    r = runner.invoke(app, ["detect", "replay", path, "-o", "table"], env={"COLUMNS": "250"})
    assert r.exit_code == 0
    assert "[bold red]boom[/]" in r.stdout and "KS-AUD-F49" in r.stdout


def test_replay_errors_exit_2_without_traceback(tmp_path) -> None:
    r = runner.invoke(app, ["detect", "replay", str(tmp_path / "missing.log")])
    assert r.exit_code == 2 and "Traceback" not in r.output and "cannot read" in r.output
    r = runner.invoke(app, ["detect", "replay", _log(tmp_path, event()), "--disable", "NOPE"])
    assert r.exit_code == 2 and "unknown rule id" in r.output
    bad = tmp_path / "tor.txt"
    bad.write_text("999.1.1.1\n")
    r = runner.invoke(app, ["detect", "replay", _log(tmp_path, event()), "--tor-exit-list", str(bad)])
    assert r.exit_code == 2 and "tor.txt:1" in r.output


def test_replay_stdin_with_state_and_alert_file(tmp_path) -> None:
    data = orjson.dumps(event("get", "secrets", name="db", user="eve@example.com")) + b"\n"
    alerts = tmp_path / "alerts.jsonl"
    r = runner.invoke(
        app,
        [
            "detect",
            "replay",
            "-",
            "--state",
            str(tmp_path / "s.db"),
            "--alert-file",
            str(alerts),
            "-o",
            "none",
            "--fail-on",
            "never",
        ],
        input=data,
    )
    assert r.exit_code == 0, r.output
    assert "KS-AUD-G40" in {orjson.loads(x)["ruleId"] for x in alerts.read_bytes().splitlines()}


def test_watch_follows_a_file_once(tmp_path) -> None:
    path = _log(tmp_path, event("delete", "secrets", name="s"))
    r = runner.invoke(
        app, ["detect", "watch", path, "--from-start", "--once"], env={"XDG_STATE_HOME": str(tmp_path)}
    )
    assert r.exit_code == 0, r.output
    assert "KS-AUD-F49" in r.stdout
    assert (tmp_path / "kubestrata" / "detect.db").exists()  # watch keeps state in SQLite by default


def test_rules_listing() -> None:
    r = runner.invoke(app, ["detect", "rules", "-o", "json"])
    assert r.exit_code == 0
    rules = orjson.loads(r.stdout)
    assert any(
        x["references"].get("guardduty") == ["Execution:Kubernetes/ExecInKubeSystemPod"] for x in rules
    )


def test_allowed_user_extends_falco_list(tmp_path) -> None:
    path = _log(tmp_path, event("get", "pods", name="p", user="ci-bot"))
    r = runner.invoke(app, ["detect", "replay", path, "--only", "KS-AUD-F01"])
    assert "KS-AUD-F01" in r.stdout
    r = runner.invoke(app, ["detect", "replay", path, "--only", "KS-AUD-F01", "--allowed-user", "ci-bot"])
    assert r.exit_code == 0 and "KS-AUD-F01" not in r.stdout


def test_findings_command_reads_the_store(tmp_path, state_url: str) -> None:
    db = state_url
    path = _log(tmp_path, event("delete", "secrets", name="s"), event("delete", "secrets", name="s"))
    assert (
        runner.invoke(
            app, ["detect", "replay", path, "--state", db, "-o", "none", "--fail-on", "never"]
        ).exit_code
        == 0
    )
    r = runner.invoke(app, ["detect", "findings", "--state", db, "-o", "jsonl"])
    assert r.exit_code == 0
    rows = [orjson.loads(x) for x in r.stdout.splitlines()]
    f49 = [x for x in rows if x["ruleId"] == "KS-AUD-F49"]
    assert len(f49) == 1 and f49[0]["count"] == 2  # once, recurring twice
    assert runner.invoke(app, ["detect", "findings", "--state", str(tmp_path / "nope.db")]).exit_code == 2


def test_user_guide_example_output_is_real() -> None:
    """docs/detect.md shows the table for examples/detect/attack.log; keep it true."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    doc = (repo / "docs/detect.md").read_text(encoding="utf-8")
    args = ["detect", "replay", str(repo / "examples/detect/attack.log"), "--tor-exit-list",
            str(repo / "examples/detect/tor-exits.txt"), "--cluster-name", "prod", "--min-severity", "high", "-o", "table"]  # fmt: skip
    r = runner.invoke(app, args, env={"COLUMNS": "120"})
    assert r.exit_code == 1  # high findings: --fail-on high is the default
    table = [line.rstrip() for line in r.stdout.splitlines() if line.strip()]
    start = doc.index("kubestrata detect: findings by rule")
    shown = [line.rstrip() for line in doc[start:].splitlines()[: len(table)]]
    assert [t.strip() for t in table] == [s.strip() for s in shown]


# -- the statistics lines written without rich agree with rich's output --

_STAT_TEXT = st.text(alphabet=st.sampled_from(list("ab09 ,;():[]/\\\x1b\té")), max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(_STAT_TEXT, st.sampled_from(["3 lines, 3 events, 0 bad", "2 attack sequences; 1 duplicate"]))
)
def test_plain_stats_line_written_as_rich_writes_it(text: str) -> None:
    import io
    import sys

    from rich.console import Console

    from kubestrata.cli.common import escape
    from kubestrata.cli.detect_options import print_err

    saved = sys.stderr
    try:
        sys.stderr = ours = io.StringIO()
        print_err(text)
        sys.stderr = theirs = io.StringIO()
        Console(stderr=True, highlight=False, soft_wrap=True).print(escape(text))  # (err_console's settings)
    finally:
        sys.stderr = saved
    assert ours.getvalue() == theirs.getvalue()


def test_replay_statistics_line_takes_the_plain_path(tmp_path) -> None:
    from kubestrata.cli.detect_options import _PLAIN
    from kubestrata.detect.pipeline import Stats
    from kubestrata.detect.router import ExtraStats
    from kubestrata.report.detect import stats_line

    st_ = Stats(lines=12, events=10, duplicates=1, findings=3, suppressed=2)
    st_.bad["invalid-json"] += 1
    extra = ExtraStats(duplicates=2, sequences=4, cloudtrail_records=1)
    assert _PLAIN.issuperset(stats_line(st_)) and _PLAIN.issuperset(
        extra.line()
    )  # (else the test above proves little)
