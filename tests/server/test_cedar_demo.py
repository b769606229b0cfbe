"""examples/cedar-demo through the real HTTPS server: every step decides as documented, every denial
names its policy, and the README shows exactly what the server answers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

from kubestrata.server.assemble import build_state
from kubestrata.server.engines import load_cedar
from tests.conftest import REPO_ROOT
from tests.server.fakes import config

DEMO = REPO_ROOT / "examples" / "cedar-demo"


def _walkthrough():
    spec = importlib.util.spec_from_file_location("cedar_demo_walkthrough", DEMO / "walkthrough.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the file executes
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture
def results(live_server_factory):
    wt = _walkthrough()
    state = build_state(config(), cedar=load_cedar([DEMO / "policies"]), audit=None)
    srv = live_server_factory(state)
    with httpx.Client(base_url=srv.url, verify=srv.ssl_context(), timeout=10) as c:
        return wt, wt.run(c), srv


def test_each_step_decides_as_documented(results):
    wt, res, _ = results
    assert [wt.outcome(s.route, r) for s, r in res] == [s.expect for s, _ in res]
    assert [s.expect for s, _ in res].count("denied") == 5


def test_each_denial_names_its_policy(results):
    wt, res, _ = results
    expected_ids = {
        "alice lists ConfigMaps without a selector": "list-requires-owner.cedar#0",
        "alice watches bob's ConfigMaps": "list-requires-owner.cedar#0",
        "alice creates a ConfigMap labelled as bob's": "owner-only.cedar#2",
        "alice updates bob's ConfigMap": "owner-only.cedar#0",
        "alice deletes bob's ConfigMap": "owner-only.cedar#1",
    }
    for step, resp in res:
        if step.expect != "denied":
            continue
        text = (
            resp["status"]["reason"] if step.route == "/authorize" else resp["response"]["status"]["message"]
        )
        assert expected_ids[step.title] in text and '(@id "' in text


def test_readme_shows_the_real_responses(results):
    wt, res, _ = results
    readme = (DEMO / "README.md").read_text()
    assert wt.MARK in readme
    assert wt.MARK + readme.split(wt.MARK, 1)[1] == wt.render(res)


def test_walkthrough_cli_check_mode(results):
    wt, _, srv = results
    certs = srv.certs
    args = [
        "--url",
        srv.url,
        "--ca",
        str(srv.ca),
        "--cert",
        str(certs.client_cert),
        "--key",
        str(certs.client_key),
    ]
    assert wt.main([*args, "--check"]) == 0


def test_policy_files_load_with_our_schema():
    engines = load_cedar([Path(DEMO / "policies")])
    assert engines.count == 5
