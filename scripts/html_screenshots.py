"""Regenerate the HTML report screenshots in docs/images/ (headless Chromium, 1280 px wide).

    PYTHONPATH=src python scripts/html_screenshots.py [--out docs/images]

The report is the demo cluster's, scanned by the real CLI against a baseline (an earlier scan that
had one more pod and did not run the image checks), so the page shows new, fixed and unchanged
findings. Chromium is driven over the DevTools pipe by tests/report/browser.py (no extra packages).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.report.browser import Browser, find_chromium  # noqa: E402

EXTRA_POD = """apiVersion: v1
kind: Pod
metadata: {name: debug-shell, namespace: shop}
spec:
  containers:
  - name: shell
    image: busybox:1.36
    securityContext: {privileged: true}
"""

SHOTS = [
    # (file, element to scroll to, height in CSS pixels, script to run first)
    ("scan-report-overview.png", "body", 1000, ""),
    (
        "scan-report-findings.png",
        "findings",
        900,
        "var g=document.getElementById('f-group'); g.value='rule'; g.dispatchEvent(new Event('change'));"
        "document.querySelector('article.finding details').open=true;",
    ),
    ("scan-report-network.png", "network", 760, ""),
]


def scan(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run(
        [sys.executable, "-m", "kubestrata", "scan", *args, "-q", "--fail-on", "never"], env=env
    )
    if r.returncode != 0:
        raise SystemExit(f"kubestrata scan {' '.join(args)} exited {r.returncode}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "images"))
    args = ap.parse_args()
    exe = find_chromium()
    if exe is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    demo = "examples/demo-cluster"
    os.chdir(ROOT)  # the report names its inputs and baseline as given: keep them repository-relative
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shots-", dir=ROOT / "bench" / "out") as tmp:
        rel = Path(tmp).relative_to(ROOT)
        extra = rel / "debug-pod.yaml"
        extra.write_text(EXTRA_POD)
        base, page = rel / "baseline.json", Path(tmp) / "report.html"
        scan(demo, str(extra), "--exclude", "KS-IMG-*", "-o", "json", "--output-file", str(base))
        scan(demo, "--baseline", str(base), "-o", "html", "--output-file", str(page))
        b = Browser(exe)
        try:
            for name, anchor, height, script in SHOTS:
                b.open(page)
                b.set_viewport(1280, height)
                if script:
                    b.evaluate(script)
                y = b.evaluate(
                    f"(() => {{ const e = document.getElementById({anchor!r}) || document.body; "
                    "return e.getBoundingClientRect().top + scrollY; })()"
                )
                png = b.screenshot({"x": 0, "y": max(0, y - 8), "width": 1280, "height": height})
                (out / name).write_bytes(png)
                print(f"{out / name}: {len(png) // 1024} KiB")
            if b.problems():
                raise SystemExit(f"the page reported problems: {b.problems()}")
        finally:
            b.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
