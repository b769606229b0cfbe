"""The first hour of a new user: one flag vocabulary, output that reads right in a terminal and in a pipe,
CI-friendly exits, fast start-up, a config file that is found, and a reference page that is true."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import COMMANDS, app
from kubestrata.cli.reference import flag_spellings, render, walk
from tests.conftest import REPO_ROOT

runner = CliRunner()
DEMO = str(REPO_ROOT / "examples" / "demo-cluster")
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
ENV.pop("COLUMNS", None)
ENV.pop("FORCE_COLOR", None)
ENV.pop("NO_COLOR", None)
REGEN = "python -m kubestrata.cli.reference > docs/cli.md"


def _run(
    *args: str, env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kubestrata", *args],
        env=env or ENV,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- one vocabulary --------------------------------------------------------------------------


def test_docs_cli_md_is_current():
    doc = REPO_ROOT / "docs" / "cli.md"
    assert doc.is_file(), f"docs/cli.md is missing; generate it: {REGEN}"
    assert doc.read_text(encoding="utf-8") == render(), f"docs/cli.md is stale; regenerate it: {REGEN}"


def test_no_flag_has_two_meanings():
    # a flag's meaning: all its spellings together (-o always with --output), whether it takes a value
    meanings: dict[str, set[tuple[tuple[str, ...], bool]]] = defaultdict(set)
    where: dict[str, list[str]] = defaultdict(list)
    for path, cmd in walk():
        for p in cmd.params:
            if getattr(p, "param_type_name", "") != "option":
                continue
            spell = tuple(sorted(flag_spellings(p)))
            for s in spell:
                meanings[s].add((spell, bool(p.is_flag)))
                where[s].append(path)
    clashes = {s: (m, where[s]) for s, m in meanings.items() if len(m) > 1}
    assert not clashes, clashes
    # the shared ones are spelled as cli/options.py says
    assert meanings["-o"] == {(("--output", "-o"), False)}
    assert meanings["-c"] == {(("--config", "-c"), False)}
    assert meanings["--cluster"] == {(("--cluster",), True)}
    assert "-f" not in meanings and "--format" not in meanings and "--json" not in meanings


def test_shared_flags_read_the_same_everywhere():
    helps: dict[str, set[str]] = defaultdict(set)
    for _path, cmd in walk():
        for p in cmd.params:
            if getattr(p, "param_type_name", "") == "option":
                for s in ("--output-file", "--config", "--quiet", "--fail-on", "--strict", "--context"):
                    if s in p.opts:
                        helps[s].add((p.help or "").split(" (")[0].split(".")[0].lower())
    assert all("kubestrata config file" in h for h in helps["--config"]), helps["--config"]
    assert len(helps["--fail-on"]) == 1 and len(helps["--strict"]) == 1, helps


@pytest.mark.parametrize(
    "args,old,new",
    [
        (["scan", DEMO, "-o", "json", "-f", "{out}"], "-f", "--output-file"),
        (["detect", "rules", "--format", "json"], "--format", "-o"),
        (["checks", "list", "--markdown"], "--markdown", "-o markdown"),
        (["netpol", "coverage", str(REPO_ROOT / "examples/netpol/demo"), "--json"], "--json", "-o json"),
        (["pss", "checks", "-V", "v1.22"], "-V", "--policy-version"),
    ],
)
def test_old_spellings_still_work_for_one_release(tmp_path, args, old, new):
    out = tmp_path / "out.json"
    r = runner.invoke(app, [a.replace("{out}", str(out)) for a in args])
    assert r.exit_code in (0, 1), r.output
    assert f"{old}` is deprecated" in r.stderr and f"use {new}" in r.stderr
    if old == "-f":
        assert json.loads(out.read_text())["findings"]


def test_cedar_from_rbac_dash_o_path_becomes_output_file(tmp_path):
    out = tmp_path / "rbac.cedar"
    r = runner.invoke(app, ["cedar", "from-rbac", DEMO, "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert "permit" in out.read_text() and "deprecated" in r.stderr


def test_invalid_values_list_the_valid_ones():
    r = runner.invoke(app, ["scan", DEMO, "-o", "xml"])
    assert r.exit_code == 2
    assert all(f in r.output for f in ("table", "json", "sarif", "junit", "html"))
    r = runner.invoke(app, ["scan", DEMO, "--fail-on", "urgent"])
    assert r.exit_code == 2 and "never" in r.output


# -- CI-friendly -----------------------------------------------------------------------------


def test_version_flag_and_command():
    r = _run("--version")
    assert r.returncode == 0 and r.stdout.startswith("kubestrata ")
    assert runner.invoke(app, ["--version"]).stdout == r.stdout
    assert runner.invoke(app, ["version"]).stdout == r.stdout


def test_every_non_zero_exit_says_why(tmp_path):
    r = runner.invoke(app, ["scan", DEMO, "-q"])  # --fail-on high by default: the demo has highs
    assert r.exit_code == 1 and "at or above high (--fail-on high)" in r.stderr
    assert runner.invoke(app, ["scan", DEMO, "-q", "--fail-on", "never"]).exit_code == 0
    r = runner.invoke(app, ["pss", "check", DEMO, "--level", "restricted"])
    assert r.exit_code == 1 and "denied" in r.stderr.splitlines()[-1]
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    (tmp_path / "ok.yaml").write_text(Path(DEMO, "shop.yaml").read_text())
    r = runner.invoke(app, ["scan", str(tmp_path), "--strict", "--fail-on", "never", "-q", "-o", "json"])
    assert r.exit_code == 2
    assert "--strict: 1 inputs not evaluated" in r.stderr and "bad.yaml" in r.stderr


def test_junit_not_evaluated_is_skipped_never_passed():
    r = runner.invoke(app, ["scan", DEMO, "-o", "junit", "--fail-on", "never", "-q"])
    import xml.etree.ElementTree as ET

    root = ET.fromstring(r.stdout)
    # the demo has no EKS snapshot: the access-entry checks cannot judge
    suite = next(s for s in root if s.get("name") == "KS-ACC-007")
    (case,) = list(suite)
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("not evaluated:")
    assert suite.get("skipped") == "1" and suite.get("failures") == "0"


# -- terminal output -------------------------------------------------------------------------


def _pty_run(args: list[str], env: dict[str, str]) -> str:
    """The output of a command run under a pseudo-terminal, as a person at a terminal sees it."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubestrata", *args], stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def test_readme_command_in_a_terminal_shows_colour_not_escape_text():
    out = _pty_run(["scan", DEMO], {**ENV, "COLUMNS": "120", "TERM": "xterm-256color"})
    assert "\\x1b" not in out and "x1b[" not in out, out[:500]
    assert "\x1b[" in out  # real colour codes
    assert "Cluster layer" in out


def test_no_color_and_force_color_are_honoured():
    import re

    colour = re.compile(r"\x1b\[[0-9;]*?(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")
    out = _pty_run(["scan", DEMO], {**ENV, "NO_COLOR": "1", "TERM": "xterm"})
    assert "Cluster layer" in out and not colour.search(out)
    assert colour.search(_pty_run(["scan", DEMO], {**ENV, "TERM": "xterm"}))
    piped = _run("scan", DEMO, env={**ENV, "FORCE_COLOR": "1"})
    assert "\x1b[" in piped.stdout and "\\x1b" not in piped.stdout


@pytest.mark.parametrize("columns", [None, "40", "300"])
def test_error_lines_are_never_wrapped_in_a_pipe(tmp_path, columns):
    deep = tmp_path.joinpath(*(["a-rather-long-directory-name-for-paths"] * 6))
    deep.mkdir(parents=True)
    cfg = deep / "broken-config-file-with-a-long-name.yaml"
    cfg.write_bytes(b"scan: \xff\xfe\n")
    env = dict(ENV)
    if columns:
        env["COLUMNS"] = columns
    r = _run("scan", DEMO, "-c", str(cfg), env=env)
    assert r.returncode == 2
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert str(cfg) in line and "not UTF-8" in line


def test_progress_stays_off_in_a_pipe(tmp_path):
    r = _run("scan", DEMO, "-o", "json", "--fail-on", "never")
    assert "\r" not in r.stderr and "\x1b" not in r.stderr


def test_progress_appears_after_the_delay_on_a_terminal(monkeypatch):
    import io
    import time

    from rich.console import Console

    from kubestrata.cli import progress

    buf = io.StringIO()
    monkeypatch.setattr(progress, "err_console", Console(file=buf, force_terminal=True))
    with progress.stage("loading", delay=0.05):
        time.sleep(0.4)
    assert "loading" in buf.getvalue()
    buf.truncate(0)
    with progress.stage("quick", delay=5):
        pass
    assert "quick" not in buf.getvalue()


# -- start-up --------------------------------------------------------------------------------

HEAVY = (
    "sqlalchemy",
    "boto3",
    "botocore",
    "kubernetes",
    "cedarpy",
    "starlette",
    "uvicorn",
    "numpy",
    "pydantic",
)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(out.stdout.split())


def test_help_version_and_completion_import_no_engine():
    mods = _modules_after("import kubestrata.cli.main")
    assert not {m.split(".")[0] for m in mods} & set(HEAVY)
    kube = {m for m in mods if m.startswith("kubestrata.")}
    assert kube <= {
        "kubestrata.cli",
        "kubestrata.cli.main",
        "kubestrata.cli.clickapi",
        "kubestrata.cli.deprecations",
    }, kube
    assert len(mods) < 400, len(mods)  # typer + click + the standard library


def test_scan_imports_only_what_scanning_needs():
    mods = _modules_after("from kubestrata.cli.main import load_command; load_command('scan')")
    assert not {m.split(".")[0] for m in mods} & {"sqlalchemy", "boto3", "kubernetes", "cedarpy", "uvicorn"}


def test_scan_of_one_file_without_config_imports_no_pydantic_nor_aws_clients(tmp_path):
    # issue 13: a scan without a config file reads no schema; the EKS readers load, boto3 does not
    target = REPO_ROOT / "examples" / "demo-cluster" / "shop.yaml"
    mods = _modules_after(
        # cli.main, not the console script's entry, which ends a scan with os._exit (no module list)
        "import sys\nfrom kubestrata.cli.main import main\n"
        f"sys.argv = ['kubestrata', 'scan', {str(target)!r}, '-o', 'json', '-q', "
        f"'--output-file', {str(tmp_path / 'r.json')!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert "kubestrata.checks.awsauth" in mods  # the scan did run its checks
    assert not {m.split(".")[0] for m in mods} & {"pydantic", "boto3", "botocore", "kubernetes", "sqlalchemy"}
    # nothing was printed on stderr (not a terminal here): rich's console was never needed
    assert not {m for m in mods if m.split(".")[0] == "rich"}


def test_the_stderr_console_answers_is_terminal_as_rich_does(monkeypatch):
    from rich.console import Console

    from kubestrata.cli.common import _StderrConsole

    for env in (
        {},
        {"FORCE_COLOR": "1"},
        {"FORCE_COLOR": ""},
        {"TTY_COMPATIBLE": "1"},
        {"TTY_COMPATIBLE": "0"},
    ):
        for k in ("FORCE_COLOR", "TTY_COMPATIBLE"):
            monkeypatch.delenv(k, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        for tty in (False, True):
            monkeypatch.setattr(sys.stderr, "isatty", lambda tty=tty: tty, raising=False)
            expected = Console(stderr=True).is_terminal
            assert _StderrConsole().is_terminal is expected, (env, tty)


# -- config ----------------------------------------------------------------------------------


def test_config_is_discovered_in_the_working_directory_and_xdg(tmp_path):
    cwd = tmp_path / "project"
    cwd.mkdir()
    (cwd / "kubestrata.yaml").write_text("scan:\n  extra_allowed_registries: ['*']\n")
    env = {**ENV, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    found = _run("scan", DEMO, "-o", "json", "--fail-on", "never", "-q", env=env, cwd=str(cwd))
    plain = _run("scan", DEMO, "-o", "json", "--fail-on", "never", "-q", env=env, cwd=str(tmp_path))

    def ids(r: subprocess.CompletedProcess) -> list[str]:
        assert r.returncode == 0 and r.stdout, r.stderr
        return [f["ruleId"] for f in json.loads(r.stdout)["findings"]]

    assert "KS-IMG-003" in ids(plain) and "KS-IMG-003" not in ids(found)
    xdg = tmp_path / "xdg" / "kubestrata"
    xdg.mkdir(parents=True)
    (xdg / "kubestrata.yaml").write_text("scan:\n  extra_allowed_registries: ['*']\n")
    assert "KS-IMG-003" not in ids(
        _run("scan", DEMO, "-o", "json", "--fail-on", "never", "-q", env=env, cwd=str(tmp_path))
    )


def test_unknown_config_keys_are_rejected_with_the_valid_ones(tmp_path):
    cfg = tmp_path / "k.yaml"
    cfg.write_text("scna:\n  max_node_age_days: 3\n")
    r = runner.invoke(app, ["scan", DEMO, "-c", str(cfg)])
    assert r.exit_code == 2 and "unknown key 'scna'" in r.output and "scan, serve" in r.output
    cfg.write_text("scan:\n  max_node_age: 3\n")
    r = runner.invoke(app, ["scan", DEMO, "-c", str(cfg)])
    assert r.exit_code == 2 and "unknown key 'max_node_age'" in r.output and "max_node_age_days" in r.output


def test_every_flag_has_an_environment_variable():
    r = _run("scan", DEMO, "-q", env={**ENV, "KUBESTRATA_SCAN_FAIL_ON": "never"})
    assert r.returncode == 0, r.stderr
    r = _run("detect", "rules", env={**ENV, "KUBESTRATA_DETECT_RULES_OUTPUT": "json"})
    assert json.loads(r.stdout)[0]["id"]


def test_top_level_table_lists_every_command():
    r = runner.invoke(app, ["--help"])
    assert all(name in r.stdout for name in COMMANDS)
    assert "<bool>" not in r.stdout and "<list[str]>" not in runner.invoke(app, ["scan", "--help"]).stdout


def test_every_command_help_shows_an_example():
    bare = [p for p, c in walk() if "Example" not in (c.help or "") and p not in ("version", "cedar schema")]
    assert not bare, bare


def test_detect_replay_without_state_imports_no_sqlalchemy(tmp_path):
    # issue 13: the state database (SQLAlchemy, ~0.18 s of imports) loads only for --state
    target = REPO_ROOT / "examples" / "detect" / "attack.log"
    mods = _modules_after(
        "import sys\nfrom kubestrata.cli.main import main\n"
        f"sys.argv = ['kubestrata', 'detect', 'replay', {str(target)!r}, '-o', 'none']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert "kubestrata.detect.rules.native_access" in mods  # the replay did run
    assert "sqlalchemy" not in {m.split(".")[0] for m in mods}
    with_state = _modules_after(
        "import sys\nfrom kubestrata.cli.main import main\n"
        f"sys.argv = ['kubestrata', 'detect', 'replay', {str(target)!r}, '-o', 'none', "
        f"'--state', {str(tmp_path / 's.db')!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert "sqlalchemy" in {m.split(".")[0] for m in with_state}  # the test can fail
