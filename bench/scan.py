"""Time a full `kubestrata scan` of generated manifests: wall time, CPU time and peak RSS.

    python bench/scan.py                          # 50,000 objects, 3 runs, JSON report to a file
    python bench/scan.py --objects 5000 --repeat 5
    python bench/scan.py --checkov /tmp/checkov-venv/bin/checkov   # also time Checkov on the same files
    python bench/scan.py --engine                 # the engine figure: load + checks + JSON report in-process

Each run is a fresh process (``python -m kubestrata scan DIR -o json --output-file OUT -q``), so start-up, loading,
checks and the report are all counted. Peak RSS is the child's ``ru_maxrss`` from wait4. CPU time
(user + system) is printed next to wall time because the benchmark machine may be shared: when the
load average is above the core count, wall time overstates what the scan needs.

``--engine`` times what the command's engine does, in-process and phase by phase (CPU seconds of
load_input, run_scan and the JSON report's render, with the cyclic collector off as the command has
it), each repeat in a fresh interpreter; start-up, option parsing and writing the file are left out.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, int]:
    """(wall seconds, cpu seconds, peak RSS MiB, exit code) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0, 1):
        sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def engine_once(manifests: Path) -> dict[str, float]:
    """CPU seconds of each phase of one scan, in this process (see --engine)."""
    import datetime as dt
    import gc

    sys.path.insert(0, str(REPO / "src"))
    from kubestrata.cli.inputs import load_input
    from kubestrata.config import load_config
    from kubestrata.report.render import Format, render
    from kubestrata.scan import run_scan, select_checks

    gc.disable()  # as `kubestrata scan` runs
    cfg = load_config(None)
    checks = select_checks()
    t0 = time.process_time()
    inp = load_input([str(manifests)], quiet=True)
    t1 = time.process_time()
    result = run_scan(inp.cluster, config=cfg.scan, checks=checks)
    result.coverage.merge(inp.coverage)
    t2 = time.process_time()
    text = render(result, Format.JSON, target=str(manifests), now=dt.datetime.now(dt.UTC))
    t3 = time.process_time()
    assert text
    return {
        "objects": len(inp.cluster),
        "load": t1 - t0,
        "checks": t2 - t1,
        "report": t3 - t2,
        "total": t3 - t0,
    }


def engine(manifests: Path, repeat: int) -> None:
    rows = []
    for i in range(repeat):
        load = os.getloadavg()[0]
        out = subprocess.run(
            [sys.executable, __file__, "--engine-once", str(manifests)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = {k: float(v) for k, v in (x.split("=") for x in out.split())}
        rows.append(r)
        print(
            f"  engine run {i + 1}: load {r['load']:.2f} s + checks {r['checks']:.2f} s + JSON report "
            f"{r['report']:.2f} s = {r['total']:.2f} s CPU (load average before {load:.1f})"
        )
    med = {k: statistics.median(r[k] for r in rows) for k in ("load", "checks", "report", "total")}
    print(
        f"engine: {int(rows[0]['objects']):,} objects in {med['total']:.2f} s CPU (median: load {med['load']:.2f}, "
        f"checks {med['checks']:.2f}, JSON report {med['report']:.2f})"
    )


def count_objects(path: Path) -> int:
    return sum(
        t.count("\nkind: ") + t.startswith("kind: ") for t in (p.read_text() for p in path.glob("*.yaml"))
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=50_000)
    ap.add_argument("--manifests", type=Path, default=None, help="default: bench/out/manifests-N")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--format", default="json", choices=["json", "sarif", "junit", "html", "table"])
    ap.add_argument("--checkov", default=None, help="path of a checkov executable to compare with")
    ap.add_argument("--checkov-repeat", type=int, default=1)
    ap.add_argument("--engine", action="store_true", help="time the engine in-process instead (see above)")
    ap.add_argument("--engine-once", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.engine_once:
        print(" ".join(f"{k}={v}" for k, v in engine_once(args.engine_once).items()))
        sys.stdout.flush()
        os._exit(0)  # as the console script ends: the results are not freed one by one

    manifests = args.manifests or BENCH / "out" / f"manifests-{args.objects}"
    if not manifests.is_dir():
        subprocess.run(
            [
                sys.executable,
                str(BENCH / "gen_manifests.py"),
                "--objects",
                str(args.objects),
                "--out",
                str(manifests),
            ],
            check=True,
        )
    n = count_objects(manifests)
    size = sum(p.stat().st_size for p in manifests.glob("*.yaml")) / 2**20
    if args.engine:
        print(
            f"input: {n} objects, {len(list(manifests.glob('*.yaml')))} files, {size:.1f} MiB ({manifests})"
        )
        engine(manifests, args.repeat)
        return
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = Path(tempfile.mkdtemp(prefix="kubestrata-bench-")) / f"report.{args.format}"
    cmd = [
        sys.executable,
        "-m",
        "kubestrata",
        "scan",
        str(manifests),
        "-o",
        args.format,
        "--output-file",
        str(out),
        "-q",
    ]

    print(
        f"machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}"
    )
    print(f"input: {n} objects, {len(list(manifests.glob('*.yaml')))} files, {size:.1f} MiB ({manifests})")
    print(f"command: {' '.join(cmd)}")
    rows = []
    for i in range(args.repeat):
        load = os.getloadavg()[0]
        wall, cpu, rss, code = run(cmd, env)
        rows.append((wall, cpu, rss))
        print(
            f"  kubestrata run {i + 1}: wall {wall:.2f} s, cpu {cpu:.2f} s, peak RSS {rss:.0f} MiB "
            f"(exit {code}, load average before {load:.1f})"
        )
    best_wall = min(r[0] for r in rows)
    med_wall = statistics.median(r[0] for r in rows)
    med_cpu = statistics.median(r[1] for r in rows)
    peak = max(r[2] for r in rows)
    print(
        f"kubestrata: wall best {best_wall:.2f} s / median {med_wall:.2f} s, cpu median {med_cpu:.2f} s, "
        f"peak RSS {peak:.0f} MiB; report {out.stat().st_size / 2**20:.1f} MiB"
    )
    print(
        f"targets: < 10 s wall -> {'met' if best_wall < 10 else 'MISSED'}; < 1 GiB RSS -> "
        f"{'met' if peak < 1024 else 'MISSED'}"
    )

    if args.checkov:
        ck_cmd = [
            args.checkov,
            "-d",
            str(manifests),
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ]
        print(f"command: {' '.join(ck_cmd)}")
        ck = []
        for i in range(args.checkov_repeat):
            load = os.getloadavg()[0]
            wall, cpu, rss, code = run(ck_cmd)
            ck.append((wall, cpu, rss))
            print(
                f"  checkov run {i + 1}: wall {wall:.2f} s, cpu {cpu:.2f} s, peak RSS {rss:.0f} MiB "
                f"(exit {code}, load average before {load:.1f})"
            )
        ck_wall = min(r[0] for r in ck)
        ck_cpu = min(r[1] for r in ck)
        print(f"checkov: wall {ck_wall:.2f} s, cpu {ck_cpu:.2f} s")
        print(f"speed-up: {ck_wall / best_wall:.1f}x wall, {ck_cpu / med_cpu:.1f}x cpu (target >= 10x)")


if __name__ == "__main__":
    main()
