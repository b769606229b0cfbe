from __future__ import annotations

import io

import orjson
from rich.console import Console

from kubestrata.detect.escape import clean
from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.sinks import StreamSink
from kubestrata.report.detect import summary_table
from tests.detect.helpers import event, rule_ids

EVIL_UA = "kubectl\x1b[2J\x1b]0;pwned\x07\r\nFAKE LOG LINE\u202etxt.exe\x9b31m [bold red]x[/]"


def test_clean_makes_controls_visible() -> None:
    out = clean(EVIL_UA)
    assert (
        "\x1b" not in out
        and "\r" not in out
        and "\n" not in out
        and "\u202e" not in out
        and "\x9b" not in out
    )
    assert "\\x1b[2J" in out and "\\u202e" in out and "\\x9b" in out


def test_findings_escape_attacker_fields_in_json_and_table() -> None:
    uri = "/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c&command=echo%20%1B%5B31mhi%0Aok"
    ev = event(
        "create", "pods", subresource="exec", name="p\x1b[1m", uri=uri, stage="ResponseStarted", code=101,
        user="eve\u202e", user_agent=EVIL_UA, ips=["1.2.3.4\x1b[0m", "10.0.0.1"],
    )  # fmt: skip
    buf = io.BytesIO()
    sink = StreamSink(buf, block=True)
    pipe = Pipeline(sinks=[sink])
    findings = pipe.process_obj(ev)
    pipe.close()
    raw = buf.getvalue()
    assert findings and b"\x1b" not in raw and b"\\u001b" not in raw  # no raw ESC, not even JSON-escaped
    text = raw.decode()
    assert "\u202e" not in text and "\\n" not in text.replace("\\\\n", "")
    f = [x.to_dict() for x in findings if x.rule_id == "KS-AUD-F11"][0]
    assert f["evidence"][1]["value"] == ["sh", "-c", "echo \\x1b[31mhi\\x0aok"]
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    console.print(summary_table(findings))
    shown = console.file.getvalue()
    assert "pwned" not in shown or "\x1b]0;" not in shown
    assert "\u202e" not in shown


def test_first_seen_state_persists(state_url: str) -> None:
    db = state_url
    ev = lambda: event("get", "secrets", name="db", user="mallory@example.com", ips=["192.0.2.10"])  # noqa: E731
    p1 = Pipeline(DetectConfig(cluster="c1", state_url=db))
    assert "KS-AUD-G40" in rule_ids(p1.process_obj(ev()))
    assert "KS-AUD-G40" not in rule_ids(p1.process_obj(ev()))
    p1.close()
    p2 = Pipeline(DetectConfig(cluster="c1", state_url=db, dedup_window=0))
    assert "KS-AUD-G40" not in rule_ids(p2.process_obj(ev()))  # remembered across restarts
    p3 = Pipeline(DetectConfig(cluster="c2", state_url=db))
    assert "KS-AUD-G40" in rule_ids(p3.process_obj(ev()))  # state is per cluster
    p2.close()
    p3.close()


def test_learning_mode_records_without_alerting(state_url: str) -> None:
    db = state_url
    learn = Pipeline(DetectConfig(state_url=db, learning=True))
    assert "KS-AUD-G42" not in rule_ids(
        learn.process_obj(
            event("create", "pods", subresource="exec", name="p", stage="ResponseStarted", code=101)
        )
    )
    learn.close()
    live = Pipeline(DetectConfig(state_url=db))
    again = event("create", "pods", subresource="exec", name="p", stage="ResponseStarted", code=101)
    assert "KS-AUD-G42" not in rule_ids(live.process_obj(again))
    other = event(
        "create", "pods", subresource="exec", name="p", stage="ResponseStarted", code=101, user="new@x.io"
    )
    assert "KS-AUD-G42" in rule_ids(live.process_obj(other))
    live.close()


def test_findings_store_dedup_window(state_url: str) -> None:
    db = state_url
    pipe = Pipeline(DetectConfig(state_url=db, dedup_window=600))
    mk = lambda ts: event("delete", "secrets", name="s", stageTimestamp=ts)  # noqa: E731
    assert "KS-AUD-F49" in rule_ids(pipe.process_obj(mk("2026-11-27T10:00:00Z")))
    assert "KS-AUD-F49" not in rule_ids(pipe.process_obj(mk("2026-11-27T10:05:00Z")))  # inside the window
    assert "KS-AUD-F49" in rule_ids(pipe.process_obj(mk("2026-11-27T10:20:00Z")))  # after it
    stored = [f for f in pipe.store.all() if f["ruleId"] == "KS-AUD-F49"]
    assert len(stored) == 1 and stored[0]["count"] == 3
    pipe.close()
    assert orjson.dumps(stored)


def test_state_statements_compile_for_postgresql() -> None:
    """The upserts render as ON CONFLICT statements for PostgreSQL (test_state.py runs them on a
    real server)."""
    from sqlalchemy.dialects import postgresql

    from kubestrata.detect.statedb import findings_upsert, first_seen_table, insert_for

    dialect = postgresql.dialect()
    fs = str(insert_for("postgresql", first_seen_table).on_conflict_do_nothing().compile(dialect=dialect))
    assert "ON CONFLICT DO NOTHING" in fs
    up = str(findings_upsert("postgresql").compile(dialect=dialect))
    assert "ON CONFLICT (fingerprint) DO UPDATE SET" in up and "excluded.count" in up
