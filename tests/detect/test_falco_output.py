"""Falco JSON alerts from `detect`, posted to a falcosidekick-compatible receiver on loopback.

The receiver applies falcosidekick's own acceptance rules (falcosecurity/falcosidekick at 8807ab7,
handlers.go mainHandler + types/types.go FalcoPayload.Check + types/priority.go): POST only, a JSON
body that decodes into FalcoPayload (string output/rule/source/hostname, a time Go parses as RFC 3339,
an object output_fields, a list of string tags), a known priority, a non-empty rule, a non-zero time
and non-empty output_fields; anything else is answered 400."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.detect.falco_output import to_falco
from tests.conftest import EXAMPLES

ATTACK = str(EXAMPLES / "detect" / "attack.log")
PRIORITIES = {
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "info",
    "debug",
}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
runner = CliRunner()


def falcosidekick_rejects(body: bytes) -> str | None:
    """Why falcosidekick's main handler would answer 400, or None when it accepts the payload."""
    try:
        p = json.loads(body)
    except ValueError:
        return "not JSON"
    if not isinstance(p, dict):
        return "not an object"
    for key in ("output", "rule", "source", "hostname", "priority", "time"):
        if key in p and not isinstance(p[key], str):
            return f"{key} is not a string"
    if "output_fields" in p and not isinstance(p["output_fields"], dict):
        return "output_fields is not an object"
    if "tags" in p and not (isinstance(p["tags"], list) and all(isinstance(t, str) for t in p["tags"])):
        return "tags is not a list of strings"
    if str(p.get("priority", "")).lower() not in PRIORITIES:
        return "unknown priority"
    if not p.get("rule"):
        return "empty rule"
    t = p.get("time", "")
    if not RFC3339.match(t) or t.startswith("0001-01-01"):
        return "time is zero or not RFC 3339"
    if not p.get("output_fields"):
        return "empty output_fields"
    return None


class Receiver:
    def __init__(self) -> None:
        self.accepted: list[dict] = []
        self.rejected: list[str] = []
        me = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _reply(self, code: int, text: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def do_GET(self):  # noqa: N802
                self._reply(400, b"Please send with post http method\n")

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                why = falcosidekick_rejects(body)
                if why or self.headers.get("Content-Type") != "application/json":
                    me.rejected.append(why or "content type")
                    self._reply(400, b"Please send a valid request body\n")
                    return
                me.accepted.append(json.loads(body))
                self._reply(200, b"")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_the_receiver_rejects_what_falcosidekick_rejects():
    good = {"output": "x", "priority": "Warning", "rule": "r", "time": "2026-01-01T00:00:00Z",
            "output_fields": {"a": 1}, "source": "k8saudit"}  # fmt: skip
    assert falcosidekick_rejects(json.dumps(good).encode()) is None
    for change in [{"priority": "Severe"}, {"rule": ""}, {"time": "yesterday"}, {"output_fields": {}},
                   {"tags": "k8s"}, {"time": "0001-01-01T00:00:00Z"}]:  # fmt: skip
        assert falcosidekick_rejects(json.dumps({**good, **change}).encode()), change


def test_replay_falco_output_and_falcosidekick(receiver):
    plain = runner.invoke(app, ["detect", "replay", ATTACK, "-o", "json", "--fail-on", "never"])
    findings = json.loads(plain.stdout)
    res = runner.invoke(
        app,
        ["detect", "replay", ATTACK, "-o", "falco", "--falcosidekick", receiver.url, "--fail-on", "never"],
    )
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert len(lines) == len(findings) > 0
    assert receiver.rejected == [] and len(receiver.accepted) == len(findings)
    for alert, f in zip(lines, findings, strict=True):
        assert falcosidekick_rejects(json.dumps(alert).encode()) is None
        assert alert["source"] == "k8saudit" and alert["hostname"]
        assert alert["output_fields"]["kubestrata.rule_id"] == f["ruleId"]
        assert alert["output_fields"]["ka.verb"] == f["verb"]
        assert alert["output_fields"]["ka.user.name"] == f["user"]
        assert f["message"] in alert["output"]
        assert dt.datetime.fromisoformat(alert["time"]) == dt.datetime.fromisoformat(f["time"])
        assert f["ruleId"] in alert["tags"]
    assert {a["output_fields"]["kubestrata.fingerprint"] for a in receiver.accepted} == {
        f["fingerprint"] for f in findings
    }
    # a rule that ports a Falco rule carries the Falco rule's name; others their title
    pairs = list(zip(lines, findings, strict=True))
    assert any(f["references"].get("falco") for _a, f in pairs)
    for a, f in pairs:
        assert a["rule"] == (f["references"].get("falco") or [f["title"]])[0]


def test_priority_follows_severity():
    base = {"ruleId": "KS-X", "title": "t", "message": "m", "time": "2026-01-01T00:00:00.5Z", "verb": "get"}
    got = {
        s: to_falco({**base, "severity": s}, "h")["priority"]
        for s in ("critical", "high", "medium", "low", "info")
    }
    assert got == {"critical": "Critical", "high": "Error", "medium": "Warning", "low": "Notice",
                   "info": "Informational"}  # fmt: skip


def test_watch_once_posts_to_falcosidekick(receiver, tmp_path):
    res = runner.invoke(
        app,
        ["detect", "watch", ATTACK, "--from-start", "--once", "--state", ":memory:", "-o", "falco",
         "--falcosidekick", receiver.url],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert lines and receiver.rejected == []
    assert sorted(a["output_fields"]["kubestrata.fingerprint"] for a in receiver.accepted) == sorted(
        a["output_fields"]["kubestrata.fingerprint"] for a in lines
    )


def test_bad_url_is_a_one_line_error():
    res = runner.invoke(app, ["detect", "replay", ATTACK, "--falcosidekick", "ftp://x"])
    assert res.exit_code == 2 and "--falcosidekick" in res.output and "Traceback" not in res.output
