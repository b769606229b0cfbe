"""The CI performance guard of bench/e2e.py: CPU per item against the committed baseline, in units of
the calibration loop, fails at more than 2x."""

from __future__ import annotations

import importlib.util
import json
import sys

from tests.conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location("kubestrata_bench_e2e", REPO_ROOT / "bench" / "e2e.py")
assert _spec and _spec.loader
e2e = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = e2e  # dataclasses look their module up
_spec.loader.exec_module(e2e)

BASE = {
    "calibration_cpu_s": 0.2,
    "rows": [{"case": "scan -o json", "size": "small", "items": 1000, "cpu_s": 2.0, "rss_mib": 80}],
}


def _row(cpu: float, items: int = 1000, code: int = 1) -> dict:
    return {
        "case": "scan -o json",
        "size": "small",
        "items": items,
        "cpu_s": cpu,
        "exit": code,
        "stderr_tail": "",
    }


def test_guard_normalises_by_the_calibration_loop() -> None:
    assert e2e.guard([_row(3.9)], 0.2, BASE, 2.0) == []  # 1.95x
    fails = e2e.guard([_row(4.2)], 0.2, BASE, 2.0)  # 2.1x
    assert len(fails) == 1 and "2.10x the baseline" in fails[0]
    # a machine twice as slow (calibration 0.4 s) may take twice the CPU
    assert e2e.guard([_row(7.8)], 0.4, BASE, 2.0) == []
    # other sizes of input are not compared; a crash always fails
    assert e2e.guard([_row(9.0, items=500)], 0.2, BASE, 2.0) == []
    assert e2e.guard([_row(1.0, code=2)], 0.2, BASE, 2.0)


def test_committed_baseline_covers_every_case_at_the_small_size() -> None:
    base = json.loads((REPO_ROOT / "bench" / "e2e-baseline.json").read_text())
    have = {(r["case"], r["size"]) for r in base["rows"]}
    assert {(c.name, "small") for c in e2e.CASES} <= have
    assert all(
        r["items"] == e2e.SIZES["small"][c.family]
        for c in e2e.CASES
        for r in base["rows"]
        if r["case"] == c.name
    )
    assert base["calibration_cpu_s"] > 0


def test_guard_runs_a_command_over_the_line_again_and_keeps_its_lowest_ratio() -> None:
    calls: list[str] = []

    def drift(results: list[tuple[float, float, int]]):  # (CPU s, calibration s, exit) of each run again
        def remeasure(row: dict) -> tuple[dict, float]:
            calls.append(row["case"])
            cpu, calib, code = results[len(calls) - 1]
            return _row(cpu, code=code), calib

        return remeasure

    # the machine slowed down after the calibration: the run again, with its own calibration, passes
    row = _row(4.6)
    assert e2e.guard([row], 0.2, BASE, 2.0, drift([(4.4, 0.3, 1)])) == []
    assert calls == ["scan -o json"] and row["baseline_ratio"] == 1.47
    assert row["baseline_ratio_runs"] == [2.3, 1.47]
    # a real regression is there in every run: two more runs, then it fails with all three ratios
    calls.clear()
    fails = e2e.guard([_row(5.0)], 0.2, BASE, 2.0, drift([(5.2, 0.2, 0), (4.8, 0.2, 1)]))
    assert len(calls) == 2 and len(fails) == 1
    assert "2.40x the baseline" in fails[0] and "[2.5, 2.6, 2.4]" in fails[0]
    # within the line: never run again
    calls.clear()
    assert e2e.guard([_row(3.0)], 0.2, BASE, 2.0, drift([])) == [] and calls == []
    # a crash in a run again ends the retries; the first run's ratio stands
    calls.clear()
    fails = e2e.guard([_row(5.0)], 0.2, BASE, 2.0, drift([(1.0, 0.2, 2)]))
    assert calls == ["scan -o json"] and len(fails) == 1


def test_a_commands_peak_rss_is_its_own_not_the_harness_s() -> None:
    """Linux keeps in ru_maxrss the peak of the image a process replaced at exec: a child started from
    a harness holding large inputs reported the harness's memory as its own (bench/e2e.py's launcher)."""
    held = bytearray(300 * 2**20)
    for i in range(0, len(held), 4096):  # resident, not only reserved
        held[i] = 1
    r = e2e.run_child([sys.executable, "-c", "pass"], None, {})
    assert r["exit"] == 0
    assert r["rss_mib"] < 100, r
    del held
