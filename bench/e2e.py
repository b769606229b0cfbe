"""End-to-end benchmark: every user-facing command run as a process, on generated inputs at three sizes.

    python bench/e2e.py                         # small, medium and large; table + bench/out/e2e.json
    python bench/e2e.py --sizes small medium --only scan pss
    python bench/e2e.py --sizes small --guard bench/e2e-baseline.json    # the CI guard
    python bench/e2e.py --sizes small --write-baseline bench/e2e-baseline.json
    python bench/e2e.py --checkov /tmp/checkov-venv/bin/checkov          # also Checkov on the scan inputs

Each measurement is one fresh ``python -m kubestrata ...`` process (PYTHONPATH = this checkout's src),
so interpreter start-up, imports, loading, the engine, rendering and writing the output are all counted.
The package's bytecode is compiled first, as installing it compiles it. CPU is the child's user +
system time and peak RSS its ``ru_maxrss``, both from ``wait4`` in a small launcher process (a child
started from this one would count this process's memory in its peak); wall time is recorded too, but on a
shared machine CPU seconds are the figure to compare. "per item" divides CPU by the input's items
(objects, pods or events); across sizes it shows the growth (flat = linear).

The guard compares CPU per item against a committed baseline after dividing both by a calibration
loop's CPU time (a fixed pure-Python workload), so a slower or faster machine does not move the
ratio; it fails when any command's normalised CPU per item grows more than ``--max-ratio`` (2x) in
each of three runs (a command over the line is run again, twice at most, after a new calibration).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
INPUTS = OUT / "e2e"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "src"))

# items per size, by input family
SIZES: dict[str, dict[str, int]] = {
    "small": {"manifests": 1_000, "pods": 2_000, "netpol": 500, "audit": 10_000, "heavy": 5_000},
    "medium": {"manifests": 10_000, "pods": 20_000, "netpol": 2_000, "audit": 100_000, "heavy": 50_000},
    "large": {"manifests": 50_000, "pods": 100_000, "netpol": 10_000, "audit": 300_000, "heavy": 200_000},
}


# ---------------------------------------------------------------- inputs (generated once, cached)


def manifests(n: int) -> Path:
    """bench/gen_manifests.py's cluster of teams (seed 42), 500 objects a file."""
    out = INPUTS / f"manifests-{n}"
    if not (out / ".done").exists():
        import gen_manifests

        gen_manifests.write(gen_manifests.generate(n, 42), out, 500)
        (out / ".done").write_text("")
    return out


def pods(n: int) -> Path:
    """`kubectl get pods -A -o json` of n pods, 10,000 pods a file (the loader caps a file at 64 MiB):
    bench/pss.py's typical application pods, 20 replicas per ReplicaSet in 50 namespaces (replicas differ
    in name, uid and pod IP, as real ones do)."""
    out = INPUTS / f"pods-{n}"
    if not (out / ".done").exists():
        import pss as pss_bench

        out.mkdir(parents=True, exist_ok=True)
        replicas, per_file = 20, 10_000
        for start in range(0, n, per_file):
            items = []
            for i in range(start, min(n, start + per_file)):
                ns = f"team-{i // replicas % 50}"
                owner = f"app-{i // replicas}-5d8f"
                pod = pss_bench.typical_pod(i, ns, owner, variant=i // replicas)
                pod["metadata"]["name"] = f"{owner}-{i:06d}"
                pod["metadata"]["uid"] = str(uuid.UUID(int=i + 1))
                pod["status"] = {"phase": "Running", "podIP": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"}
                items.append(pod)
            doc = {"apiVersion": "v1", "kind": "List", "items": items}
            (out / f"pods-{start // per_file:03d}.json").write_bytes(orjson.dumps(doc))
        (out / ".done").write_text("")
    return out


def netpol_snapshot(n: int) -> Path:
    """bench/netpol.py's snapshot: n pods in n/20 namespaces, n/5 policies plus admin tiers."""
    out = INPUTS / f"netpol-{n}"
    if not (out / "snapshot.yaml").exists():
        import netpol as netpol_bench

        netpol_bench.generate(n, max(5, n // 20), max(8, n // 5), out)
    return out / "snapshot.yaml"


def audit_real(n: int) -> Path:
    """bench/detect.py's real-shaped audit log: 95% reads, 5% writes, ~840-byte events."""
    out = INPUTS / f"audit-{n}.jsonl"
    if not out.exists():
        import detect as detect_bench

        out.parent.mkdir(parents=True, exist_ok=True)
        detect_bench.generate(out, n)
    return out


def audit_heavy(n: int) -> Path:
    """A finding-heavy audit log: every event an interactive exec by a person into a distinct pod (1% with
    a terminal escape in the user agent), so every event gives a finding the dedup window keeps."""
    out = INPUTS / f"audit-heavy-{n}.jsonl"
    if not out.exists():
        import detect as detect_bench

        rng = random.Random(11)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as fh:
            for i in range(n):
                ns = rng.choice(detect_bench.NAMESPACES)
                user = rng.choice(detect_bench.HUMANS)
                ev = detect_bench.base(rng, "create", user, "pods", "", ns, f"api-{i:07d}")
                ev["objectRef"]["subresource"] = "exec"
                ev["stage"] = "ResponseStarted"
                ev["responseStatus"]["code"] = 101
                ev["requestURI"] += (
                    "/exec?command=sh&command=-c&command=id%0A&container=app&stdin=true&tty=true"
                )
                if i % 100 == 0:  # now and then a hostile user agent: escaping work
                    ev["userAgent"] = "kubectl/v1.29.2 (linux/amd64) \x1b[31mred\x1b[0m"
                ev["auditID"] = str(uuid.UUID(int=rng.getrandbits(128)))
                fh.write(orjson.dumps(ev) + b"\n")
    return out


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    name: str  # the command as a user types it (for the table)
    family: str  # key of SIZES
    unit: str
    make_input: Callable[[int], Path]
    argv: Callable[[Path, Path], list[str]]  # (input, output file) -> arguments after `kubestrata`
    stdout_to_output: bool = False  # the command writes its report to stdout


CASES = [
    Case("scan -o json", "manifests", "objects", manifests,
         lambda i, o: ["scan", str(i), "-o", "json", "--output-file", str(o), "-q"]),
    Case("scan -o html", "manifests", "objects", manifests,
         lambda i, o: ["scan", str(i), "-o", "html", "--output-file", str(o), "-q"]),
    Case("scan (table)", "manifests", "objects", manifests,
         lambda i, o: ["scan", str(i), "-q"], stdout_to_output=True),
    Case("pss check --level restricted -o json", "pods", "pods", pods,
         lambda i, o: ["pss", "check", str(i), "--level", "restricted", "-o", "json", "--output-file", str(o)]),
    Case("pss check --level restricted (table)", "pods", "pods", pods,
         lambda i, o: ["pss", "check", str(i), "--level", "restricted", "--output-file", str(o)]),
    Case("netpol list", "netpol", "pods", netpol_snapshot,
         lambda i, o: ["netpol", "list", str(i), "--output-file", str(o)]),
    Case("detect replay (real-shaped)", "audit", "events", audit_real,
         lambda i, o: ["detect", "replay", str(i)], stdout_to_output=True),
    Case("detect replay (finding-heavy)", "heavy", "events", audit_heavy,
         lambda i, o: ["detect", "replay", str(i)], stdout_to_output=True),
]  # fmt: skip


def calibrate(rounds: int = 3) -> float:
    """CPU seconds of a fixed pure-Python workload (dicts, strings, ints: what the commands do), best of
    `rounds`. Dividing CPU per item by it makes figures from different machines comparable."""
    best = float("inf")
    for _ in range(rounds):
        c0 = time.process_time()
        d: dict[str, int] = {}
        acc = 0
        for i in range(400_000):
            k = f"k{i % 5000}"
            d[k] = d.get(k, 0) + i
            acc += len(k) * (i & 7)
        s = sorted(d.values())
        acc += s[len(s) // 2]
        best = min(best, time.process_time() - c0)
    return best


# The children are started by a small launcher process, not by this one. Linux keeps, in a process's
# peak RSS (ru_maxrss), the peak of the memory image it replaced at exec: a child forked or vforked
# from this process starts from this process's image (its resident pages included), so the inputs
# held here (e.g. 100,000 generated pods) set a floor under every child's figure. The launcher is a
# bare interpreter (~10 MiB, below any command's own peak), started before any input is generated.
_LAUNCHER_CODE = r"""
import json, os, subprocess, sys, tempfile, time
for req in sys.stdin:
    req = json.loads(req)
    start = time.perf_counter()
    with open(req["stdout"] or os.devnull, "wb") as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(req["argv"], stdout=out, stderr=err, env=req["env"])
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err.seek(0)
        tail = err.read()[-1500:].decode(errors="replace")
    print(json.dumps({
        "exit": os.waitstatus_to_exitcode(status), "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_kib": usage.ru_maxrss, "stderr_tail": tail,
    }), flush=True)
"""
_launcher: subprocess.Popen[str] | None = None


def start_launcher() -> subprocess.Popen[str]:
    """The process that starts every measured command (see _LAUNCHER_CODE); started on first use."""
    global _launcher
    if _launcher is None or _launcher.poll() is not None:
        _launcher = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
    return _launcher


def run_child(argv: list[str], stdout_path: Path | None, env: dict[str, str]) -> dict[str, Any]:
    """One command run to its end by the launcher: exit code, wall and CPU seconds, its own peak RSS."""
    launcher = start_launcher()
    assert launcher.stdin is not None and launcher.stdout is not None
    request = {"argv": argv, "stdout": str(stdout_path) if stdout_path else None, "env": env}
    launcher.stdin.write(json.dumps(request) + "\n")
    r = json.loads(launcher.stdout.readline())
    code = r["exit"]
    return {
        "exit": code,
        "wall_s": round(r["wall_s"], 3),
        "cpu_s": round(r["cpu_s"], 3),
        "rss_mib": round(r["maxrss_kib"] / 1024, 1),
        "stderr_tail": r["stderr_tail"] if code not in (0, 1) else "",
    }


def measure(case: Case, size: str, repeat: int, env: dict[str, str], tmp: Path) -> dict[str, Any]:
    n = SIZES[size][case.family]
    inp = case.make_input(n)
    out = tmp / "out"
    argv = [sys.executable, "-m", "kubestrata", *case.argv(inp, out)]
    runs = []
    for _ in range(repeat):
        if out.exists():
            out.unlink()
        load = os.getloadavg()[0]
        r = run_child(argv, out if case.stdout_to_output else None, env)
        r["load"] = round(load, 2)
        r["output_mib"] = round(out.stat().st_size / 2**20, 2) if out.exists() else 0.0
        runs.append(r)
        if r["exit"] not in (0, 1):
            break
    best = min(runs, key=lambda r: r["cpu_s"])
    return {
        "case": case.name,
        "size": size,
        "items": n,
        "unit": case.unit,
        "command": "kubestrata " + " ".join(case.argv(Path(inp.name), Path("OUT"))),
        **best,
        "rss_mib": max(r["rss_mib"] for r in runs),
        "cpu_runs": [r["cpu_s"] for r in runs],
        "cpu_per_item_us": round(best["cpu_s"] / n * 1e6, 2),
        "items_per_cpu_s": round(n / best["cpu_s"]) if best["cpu_s"] else None,
    }


def checkov_row(exe: str, size: str, env: dict[str, str]) -> dict[str, Any]:
    n = SIZES[size]["manifests"]
    inp = manifests(n)
    argv = [exe, "-d", str(inp), "--framework", "kubernetes", "--quiet", "--compact", "--skip-download"]
    r = run_child([*argv, "-o", "json"], None, {k: v for k, v in env.items() if k != "PYTHONPATH"})
    return {
        "case": "checkov -d DIR --framework kubernetes -o json",
        "size": size,
        "items": n,
        "unit": "objects",
        "command": " ".join(argv[1:]),
        **r,
        "cpu_per_item_us": round(r["cpu_s"] / n * 1e6, 2),
        "items_per_cpu_s": round(n / r["cpu_s"]) if r["cpu_s"] else None,
    }


def table(rows: list[dict[str, Any]]) -> str:
    hdr = (
        "command",
        "size",
        "items",
        "CPU s",
        "wall s",
        "peak RSS MiB",
        "µs CPU/item",
        "items/CPU-s",
        "exit",
    )
    lines = [hdr] + [
        (
            r["case"],
            r["size"],
            f"{r['items']:,} {r['unit']}",
            f"{r['cpu_s']:.2f}",
            f"{r['wall_s']:.2f}",
            f"{r['rss_mib']:.0f}",
            f"{r['cpu_per_item_us']:.1f}",
            f"{r['items_per_cpu_s'] or 0:,}",
            str(r["exit"]),
        )
        for r in rows
    ]
    w = [max(len(x[i]) for x in lines) for i in range(len(hdr))]
    return "\n".join("  ".join(c.ljust(w[i]) for i, c in enumerate(x)).rstrip() for x in lines)


# what the engine alone does on the same kind of input (the other sections of docs/performance.md), to
# set beside each command's end-to-end figure
ENGINE = {
    "scan": "engine (in-process load + 51 checks + JSON report, GC off as the command has it; "
    "bench/scan.py --engine): 50,000 objects in 7.6 s CPU (load 1.8 + checks 4.8 + report 1.0)",
    "pss check": "evaluate_pod: 67,300 distinct pods/s on one core (bench/pss.py)",
    "netpol list": "class map of 10,000 pods: build 0.98 s + full map 0.73 s after a 3.07 s YAML load "
    "(bench/netpol.py)",
    "detect replay": "Pipeline over a JSONL file in-process: 76,095-81,578 events/s per core on 842-byte "
    "synthetic events with 7% findings; rules alone on decoded events 149,818-160,109 real-shaped and "
    "28,615-30,321 finding-heavy events per CPU-second, one finding built in 8.8-10.6 µs "
    "(bench/detect.py --engine, 2026-12-03)",
}


def engine_figure(case: str) -> str:
    return next((v for k, v in ENGINE.items() if case.startswith(k)), "")


def markdown(doc: dict[str, Any]) -> str:
    """docs/performance.md's end-to-end tables, from a results JSON."""
    rows = doc["rows"]
    m = doc["machine"]
    out = [
        f"Measured {doc['date']} with `python bench/e2e.py` on {m['cores']} cores, {m['mem_mib'] // 1024} GiB, "
        f"{m['python']}, {m['platform']}; calibration loop {doc['calibration_cpu_s']:.3f} s CPU; load average "
        f"{doc.get('load_average_start', '?')} at the start and {doc['load_average_end']} at the end (the "
        "machine was shared: CPU seconds are the figures to compare, wall time mostly measures waiting).",
        "",
        "| command | input | CPU s | µs CPU per item | items per CPU-s | peak RSS MiB | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    cases: list[str] = []
    for r in rows:
        if r["case"] not in cases:
            cases.append(r["case"])
    for case in cases:
        for r in (x for x in rows if x["case"] == case):
            failed = "" if r["exit"] in (0, 1) else f" (exit {r['exit']})"
            out.append(
                f"| `{case}` | {r['size']}: {r['items']:,} {r['unit']} | {r['cpu_s']:.2f}{failed} | "
                f"{r['cpu_per_item_us']:.1f} | {r['items_per_cpu_s'] or 0:,} | {r['rss_mib']:.0f} | {r['wall_s']:.1f} |"
            )
    out += ["", "Engine figures beside them, and the growth from the smallest to the largest input:", ""]
    out += ["| command | engine alone | µs per item, small -> large |", "|---|---|---|"]
    for case in cases:
        rs = [x for x in rows if x["case"] == case]
        growth = " -> ".join(f"{x['cpu_per_item_us']:.0f}" for x in rs)
        out.append(f"| `{case}` | {engine_figure(case)} | {growth} |")
    return "\n".join(out) + "\n"


def machine() -> dict[str, Any]:
    mem = 0
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) // 1024
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "mem_mib": mem,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{platform.system()} {platform.machine()}",
    }


def guard(
    rows: list[dict[str, Any]],
    calib: float,
    baseline: dict[str, Any],
    max_ratio: float,
    remeasure: Callable[[dict[str, Any]], tuple[dict[str, Any], float]] | None = None,
    retries: int = 2,
) -> list[str]:
    """Failures: a command whose CPU per item, in calibration units, grew more than max_ratio.

    A command over the line is measured again, up to ``retries`` times, each time with a calibration
    taken just before it (``remeasure`` gives the new row and calibration), and its lowest ratio
    counts: this machine's speed drifts up to 2x within minutes, which one calibration at the start
    does not follow, while a real regression is there in every run."""
    base = {(r["case"], r["size"]): r for r in baseline["rows"]}
    failures = []
    for r in rows:
        b = base.get((r["case"], r["size"]))
        if r["exit"] not in (0, 1):
            failures.append(f"{r['case']} [{r['size']}]: exit {r['exit']}: {r['stderr_tail'][-300:]}")
            continue
        if b is None or b["items"] != r["items"]:
            continue
        then = b["cpu_s"] / b["items"] / baseline["calibration_cpu_s"]
        ratio = r["cpu_s"] / r["items"] / calib / then
        runs = [round(ratio, 2)]
        cpu, cal = r["cpu_s"], calib
        while ratio > max_ratio and remeasure is not None and len(runs) <= retries:
            again, again_calib = remeasure(r)
            if again["exit"] not in (0, 1):
                break
            again_ratio = again["cpu_s"] / again["items"] / again_calib / then
            runs.append(round(again_ratio, 2))
            if again_ratio < ratio:
                ratio, cpu, cal = again_ratio, again["cpu_s"], again_calib
        r["baseline_ratio"] = round(ratio, 2)
        if len(runs) > 1:
            r["baseline_ratio_runs"] = runs
        if ratio > max_ratio:
            failures.append(
                f"{r['case']} [{r['size']}]: CPU per item {ratio:.2f}x the baseline "
                f"({cpu:.2f} s now, {b['cpu_s']:.2f} s then, calibration {cal:.3f} s / "
                f"{baseline['calibration_cpu_s']:.3f} s; ratios of the runs: {runs})"
            )
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["small", "medium", "large"], choices=list(SIZES))
    ap.add_argument("--only", nargs="*", default=[], help="cases whose name contains one of these words")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case and size (best CPU is kept)")
    ap.add_argument("--json", type=Path, default=OUT / "e2e.json", help="where to write the results")
    ap.add_argument("--checkov", default=None, help="a checkov executable to run on the scan inputs")
    ap.add_argument(
        "--checkov-sizes",
        nargs="+",
        default=["small", "medium"],
        choices=list(SIZES),
        help="sizes to run Checkov at (it took > 40 CPU-minutes at 50,000 objects)",
    )
    ap.add_argument("--guard", type=Path, default=None, help="baseline JSON: fail on > --max-ratio growth")
    ap.add_argument("--max-ratio", type=float, default=2.0)
    ap.add_argument("--write-baseline", type=Path, default=None, help="write these results as the baseline")
    ap.add_argument("--markdown", type=Path, default=None, help="only print the tables of this results JSON")
    args = ap.parse_args()
    if args.markdown:
        if not args.markdown.is_file():
            ap.error(f"--markdown: no results file at {args.markdown} (bench/e2e.py --json writes one)")
        print(markdown(json.loads(args.markdown.read_text())), end="")
        return 0

    start_launcher()  # before any input is generated (see _LAUNCHER_CODE)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    # the bytecode an installed package has (pip compiles a wheel's modules when it installs them):
    # without it each process compiles every module it imports, about 0.15 s of a start-up here,
    # where PYTHONDONTWRITEBYTECODE is set and cached bytecode goes stale at each change
    compileall.compile_dir(REPO / "src", quiet=1)
    load_start = round(os.getloadavg()[0], 2)
    calib = calibrate()
    info = machine()
    print(
        f"machine: {info['cores']} cores, {info['mem_mib']} MiB, {info['python']}, {info['platform']}; "
        f"load average {os.getloadavg()[0]:.2f}; calibration loop {calib:.3f} s CPU"
    )
    cases = [c for c in CASES if not args.only or any(w in c.name for w in args.only)]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kubestrata-e2e-") as tmp:
        for size in args.sizes:
            for case in cases:
                row = measure(case, size, args.repeat, env, Path(tmp))
                rows.append(row)
                print(
                    f"  {case.name} [{size}, {row['items']:,} {case.unit}]: CPU {row['cpu_s']:.2f} s, "
                    f"wall {row['wall_s']:.2f} s, RSS {row['rss_mib']:.0f} MiB, exit {row['exit']}",
                    flush=True,
                )
                if row["stderr_tail"]:
                    print("    " + row["stderr_tail"].strip().replace("\n", "\n    "))
            if args.checkov and size in args.checkov_sizes:
                rows.append(checkov_row(args.checkov, size, env))
                r = rows[-1]
                print(
                    f"  checkov [{size}]: CPU {r['cpu_s']:.2f} s, RSS {r['rss_mib']:.0f} MiB, exit {r['exit']}"
                )
    print()
    print(table(rows))
    doc = {
        "machine": info,
        "load_average_start": load_start,
        "load_average_end": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "calibration_cpu_s": round(calib, 4),
        "rows": rows,
    }
    status = 0
    if args.guard:
        cases_by_name = {c.name: c for c in CASES}

        def remeasure(row: dict[str, Any]) -> tuple[dict[str, Any], float]:
            if row["case"] not in cases_by_name:  # (a peer's row: not ours to run again)
                return row, calib
            again_calib = calibrate()
            with tempfile.TemporaryDirectory(prefix="kubestrata-e2e-") as tmp2:
                again = measure(cases_by_name[row["case"]], row["size"], 1, env, Path(tmp2))
            print(
                f"  again: {row['case']} [{row['size']}]: CPU {again['cpu_s']:.2f} s, calibration {again_calib:.3f} s",
                flush=True,
            )
            return again, again_calib

        failures = guard(rows, calib, json.loads(args.guard.read_text()), args.max_ratio, remeasure)
        ratios = ", ".join(f"{r['case']} {r.get('baseline_ratio', '-')}x" for r in rows)
        print(f"\nagainst {args.guard} (normalised CPU per item): {ratios}")
        for f in failures:
            print(f"FAIL: {f}", file=sys.stderr)
        status = 1 if failures else 0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    if args.write_baseline:
        slim = {
            **doc,
            "rows": [{k: r[k] for k in ("case", "size", "items", "cpu_s", "rss_mib")} for r in rows],
        }
        args.write_baseline.write_text(json.dumps(slim, indent=1) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
