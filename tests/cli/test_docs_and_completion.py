"""docs/checks.md is generated from check metadata and must not go stale; shell completion works."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from kubestrata.checks import load_builtin_checks
from kubestrata.cli.main import app
from kubestrata.report.checks_doc import render_checks_markdown
from tests.conftest import REPO_ROOT

REGEN = "PYTHONPATH=src python -m kubestrata checks list -o markdown > docs/checks.md"


def test_docs_checks_md_is_current():
    doc = REPO_ROOT / "docs" / "checks.md"
    assert doc.is_file(), f"docs/checks.md is missing; generate it: {REGEN}"
    assert doc.read_text(encoding="utf-8") == render_checks_markdown(load_builtin_checks()), (
        f"docs/checks.md is stale; regenerate it: {REGEN}"
    )


def test_checks_list_markdown_is_the_doc():
    r = CliRunner().invoke(app, ["checks", "list", "-o", "markdown"])
    assert r.exit_code == 0
    assert r.stdout == render_checks_markdown(load_builtin_checks())
    for chk in load_builtin_checks():
        assert f"## {chk.meta.id}" in r.stdout


def _complete(words: str) -> list[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT / "src"),
        "_KUBESTRATA_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    code = "import sys; from kubestrata.cli.main import app; sys.argv = ['kubestrata']; app(prog_name='kubestrata')"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return out.stdout.split()


@pytest.mark.parametrize(
    "words,expected",
    [
        ("kubestrata sc", {"scan"}),
        ("kubestrata checks l", {"list"}),
        ("kubestrata scan --fail-o", {"--fail-on"}),
        ("kubestrata scan -o ", {"table", "json", "sarif", "junit", "html"}),
    ],
)
def test_shell_completion(words, expected):
    assert expected <= set(_complete(words))


def test_show_completion_script():
    r = CliRunner().invoke(app, ["--show-completion", "bash"])
    assert r.exit_code == 0 and "complete" in r.stdout
