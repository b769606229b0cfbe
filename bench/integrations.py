"""Time writing every file format (SARIF, JUnit, PolicyReport, ASFF) against `-o json` on the same
scan result.

    python bench/integrations.py                    # 50,000 generated objects, best of 3
    python bench/integrations.py --objects 5000 --repeat 5

The manifests come from bench/gen_manifests.py. One scan in this process, then each format is written
``--repeat`` times to a file the way `scan --output-file` writes it (``report.render.write_report``,
the cyclic collector off as in the command); the figure is CPU time (time.process_time) of the
writing alone, best of the runs, because the benchmark machine is shared (wall time would measure
the neighbours). Output sizes are printed too. Exits 1 if PolicyReport or ASFF takes more than 1.2
times the JSON time (issue 20's budget).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

from kubestrata.kube.cluster import Cluster  # noqa: E402
from kubestrata.kube.loader import load_paths  # noqa: E402
from kubestrata.report.asff import AwsTarget  # noqa: E402
from kubestrata.report.render import Format, write_report  # noqa: E402
from kubestrata.scan import run_scan  # noqa: E402

BUDGET = 1.2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--manifests", type=Path, help="an existing manifests directory (else generated)")
    args = ap.parse_args()
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
    gc.disable()
    t0 = time.process_time()
    loaded = load_paths([str(manifests)])
    result = run_scan(Cluster(loaded.objects))
    print(
        f"input: {len(loaded.objects)} objects, {len(result.findings)} findings, "
        f"{len(result.coverage.gaps)} gaps; load + scan {time.process_time() - t0:.1f} s CPU"
    )
    target = AwsTarget.from_arn("arn:aws:eks:eu-west-1:123456789012:cluster/bench")
    now = dt.datetime.now(dt.UTC)
    fmts = (Format.JSON, Format.SARIF, Format.JUNIT, Format.POLICYREPORT, Format.ASFF)
    times: dict[Format, list[float]] = {f: [] for f in fmts}
    size: dict[Format, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(
            args.repeat
        ):  # formats interleaved, so a change in the machine's load hits all of them
            for fmt in fmts:
                out = Path(tmp) / f"report.{fmt.value}"
                t = time.process_time()
                with out.open("wb") as fh:
                    write_report(result, fmt, fh, target=str(manifests), aws_target=target, now=now)
                times[fmt].append(time.process_time() - t)
                size[fmt] = out.stat().st_size
    best = {f: min(v) for f, v in times.items()}
    for fmt in fmts:
        print(
            f"{fmt.value:13s} best {best[fmt]:.2f} s CPU (runs {', '.join(f'{x:.2f}' for x in times[fmt])}), "
            f"{size[fmt] / 2**20:.1f} MiB"
        )
    over = False
    for fmt in fmts[1:]:
        ratio = best[fmt] / best[Format.JSON]
        budgeted = fmt in (Format.POLICYREPORT, Format.ASFF)  # issue 20's budget, for its formats
        over |= budgeted and ratio > BUDGET
        print(f"{fmt.value} / json = {ratio:.2f}" + (f" (budget {BUDGET})" if budgeted else ""))
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
