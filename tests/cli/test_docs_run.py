"""The commands the README and the guides show must run as written on a fresh clone.

A fenced block preceded by ``<!-- test: run -->`` has each `kubestrata ...` line run from the
repository root (in order: a later line may read what an earlier one wrote); it must exit 0 or 1 (1 is
"findings") with no traceback and no `error:` line. A block preceded by ``<!-- test: output -->`` is a
console transcript: each ``$ kubestrata ...`` line is run and its output must equal the lines shown
under it (trailing spaces aside).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"<!-- test: (run|output) -->\n```[a-z]*\n(.*?)```", re.S)
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "COLUMNS": "120"}


def _blocks() -> list[tuple[str, str, str]]:
    out = []
    for page in PAGES:
        for i, m in enumerate(BLOCK.finditer(page.read_text(encoding="utf-8"))):
            out.append((f"{page.name}#{i}", m.group(1), m.group(2)))
    return out


def _command(line: str) -> list[str] | None:
    line = line.split("&&")[-1].strip()
    line = re.split(r"\s{2,}#", line)[0].strip()
    if not line.startswith("kubestrata "):
        return None
    return shlex.split(line)[1:]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kubestrata", *args],
        cwd=REPO_ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_pages_have_runnable_blocks():
    names = {b[0].split("#")[0] for b in _blocks()}
    assert "README.md" in names


@pytest.mark.parametrize("name,mode,body", _blocks(), ids=[b[0] for b in _blocks()])
def test_documented_commands_run(name: str, mode: str, body: str):
    if mode == "run":
        cmds = [c for c in (_command(line) for line in body.splitlines()) if c]
        assert cmds, f"{name}: a run block with no kubestrata command"
        for args in cmds:
            r = _run(args)
            shown = " ".join(args)
            assert r.returncode in (0, 1), f"{name}: `kubestrata {shown}` exited {r.returncode}: {r.stderr}"
            assert "Traceback" not in r.stderr and "error:" not in r.stderr, (shown, r.stderr)
        return
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ kubestrata "):
            i += 1
            continue
        args = shlex.split(lines[i][2:].replace("\\\n", " "))[1:]
        j = i + 1
        while j < len(lines) and not lines[j].startswith("$ "):
            j += 1
        expected = [x.rstrip() for x in lines[i + 1 : j]]
        r = _run(args)
        got = [x.rstrip() for x in (r.stdout + r.stderr).splitlines()]
        if os.environ.get("UPDATE_DOCS") == "1" and got != expected:
            _rewrite(name, lines[i], expected, got)
            expected = got
        assert got == expected, (
            f"{name}: `kubestrata {' '.join(args)}` printed something else; rerun with UPDATE_DOCS=1 and "
            "review the diff if intended"
        )
        i = j


def _rewrite(name: str, command_line: str, old: list[str], new: list[str]) -> None:
    page = next(p for p in PAGES if p.name == name.split("#")[0])
    text = page.read_text(encoding="utf-8")
    before = "\n".join([command_line, *old]) + "\n"
    after = "\n".join([command_line, *new]) + "\n"
    assert before in text, (name, command_line)
    page.write_text(text.replace(before, after, 1), encoding="utf-8")


def test_examples_hold_what_the_readme_reads():
    for rel in ("examples/demo-cluster", "examples/access/eks", "examples/detect/real-audit.log"):
        assert Path(REPO_ROOT, rel).exists(), rel
    assert (
        "../shared"
        not in (REPO_ROOT / "README.md")
        .read_text(encoding="utf-8")
        .split("## Layout")[0]
        .split("Conformance tests")[0]
    )
