"""Every upstream fixture in ../shared/conformance/pss: pass pods allowed, fail pods denied at that
level and version with the expected substring in PSA's message. Nothing is skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kubestrata.pss import evaluate_pod
from tests.conftest import shared_dir

ROOT = shared_dir() / "conformance" / "pss"
EXPECTED = json.loads((ROOT / "EXPECTED_SUBSTRINGS.json").read_text())
FILES = sorted(ROOT.glob("*/v1.*/*/*.yaml"))


def _check_id(stem: str) -> str:
    return stem.rstrip("0123456789")


def test_fixture_set_is_complete():
    # every file in the folder is a fixture we run; the layout is <level>/v1.<minor>/{pass,fail}
    all_yaml = sorted(ROOT.rglob("*.yaml"))
    assert all_yaml == FILES
    assert len(FILES) >= 3365
    for f in FILES:
        assert f.parts[-4] in ("baseline", "restricted") and f.parts[-2] in ("pass", "fail"), f


def _run(files: list[Path]) -> list[str]:
    problems = []
    for f in files:
        level, version, expect = f.parts[-4], f.parts[-3], f.parts[-2]
        pod = yaml.safe_load(f.read_text())
        r = evaluate_pod(pod, level, version)
        where = f"{level}/{version}/{expect}/{f.name}"
        if r.error is not None:
            problems.append(f"{where}: invalid pod spec: {r.error}")
        elif expect == "pass" and not r.allowed:
            problems.append(f"{where}: denied: {r.message}")
        elif expect == "fail":
            if r.allowed:
                problems.append(f"{where}: allowed")
                continue
            cid = _check_id(f.stem)
            assert cid in EXPECTED, f"{where}: no expected substring for {cid}"
            sub = EXPECTED[cid]
            assert r.message.startswith(f'violates PodSecurity "{level}:{version}": ')
            if sub not in r.message:
                problems.append(f"{where}: {sub!r} not in {r.message!r}")
    return problems


@pytest.mark.parametrize("level", ["baseline", "restricted"])
@pytest.mark.parametrize("expect", ["pass", "fail"])
def test_fixtures(level, expect):
    files = [f for f in FILES if f.parts[-4] == level and f.parts[-2] == expect]
    assert files
    problems = _run(files)
    assert not problems, f"{len(problems)} of {len(files)} fixtures wrong:\n" + "\n".join(problems[:40])
