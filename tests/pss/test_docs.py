"""The example output in docs/pss.md is real: every `kubestrata pss ...` console block over
examples/pss is re-run and must match, exit code included."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "pss.md").read_text()
BLOCK = re.compile(
    r"```console\n\$ kubestrata (pss [^\n]*examples/pss/[^\n]*)\n(.*?)# exit code (\d+)\n```", re.S
)
CASES = BLOCK.findall(DOC)


def test_doc_has_examples():
    assert len(CASES) >= 6


@pytest.mark.parametrize("args,expected,code", CASES, ids=[c[0] for c in CASES])
def test_doc_example_is_current(args, expected, code):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"), COLUMNS="200")
    p = subprocess.run(
        [sys.executable, "-m", "kubestrata", *shlex.split(args)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == int(code), p.stderr
    assert p.stdout + p.stderr == expected


def test_doc_json_example_is_current():
    import json

    start = DOC.index("```json\n") + len("```json\n")
    shown = json.loads(DOC[start : DOC.index("```", start)])
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubestrata",
            "pss",
            "check",
            "examples/pss/cluster.yaml",
            "-o",
            "json",
            "--fixes",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    live = next(d for d in json.loads(p.stdout) if d["name"] == shown["name"])
    live["violations"] = live["violations"][: len(shown["violations"])]
    assert live == shown
