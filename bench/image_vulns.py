"""Benchmark: image vulnerability matching and the workload scan with images.

1. A synthetic OSV database with the record counts and range shapes of the full Debian, Alpine, PyPI,
   npm and Go exports (about 50k, 10k, 15k, 20k and 5k records; the real exports cannot be downloaded
   here). Names are Zipf-distributed (a few source packages carry hundreds of records, as linux, openssl,
   glibc do in Debian), ranges are introduced/fixed pairs, some with several ranges, last_affected or
   only a versions list.
2. Matching 2,000 packages (Debian, Alpine, PyPI, npm, Go; every name has records) against it. Target: < 1 s.
3. `run_scan` over 2,000 workloads using 300 distinct images, each read by a fake inventorier that counts
   its calls (each image: 150 packages drawn from the same names), with the image checks only and then
   with every check.

CPU seconds (process time) are reported, since wall time is noisy on a shared machine.
Run: PYTHONPATH=src python bench/image_vulns.py [--scale 1.0]   (writes bench/out/image_vulns.json)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import tempfile
import time
import zipfile
from pathlib import Path

from kubestrata.config import ImagesConfig, ScanConfig
from kubestrata.image import seam
from kubestrata.image.matching import match
from kubestrata.image.model import ImageConfig, ImageInventory, Package
from kubestrata.image.vulndb import VulnDB, build
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.scan import run_scan, select_checks

COUNTS = {"Debian": 50_000, "Alpine": 10_000, "PyPI": 15_000, "npm": 20_000, "Go": 5_000}
NAMES = {"Debian": 3_000, "Alpine": 1_500, "PyPI": 4_000, "npm": 8_000, "Go": 2_000}
RELEASES = {"Debian": ["11", "12", "13"], "Alpine": ["3.18", "3.19", "3.20"]}


def _zipf_names(rnd: random.Random, eco: str, n: int) -> list[str]:
    names = [f"{eco.lower()}-pkg-{i}" for i in range(NAMES[eco])]
    weights = [1 / (i + 1) ** 0.9 for i in range(len(names))]
    return rnd.choices(names, weights, k=n)


def _ver(rnd: random.Random, eco: str, major: int, minor: int, patch: int) -> str:
    if eco == "Debian":
        return f"{major}.{minor}.{patch}-{rnd.randint(1, 4)}+deb12u{rnd.randint(1, 9)}"
    if eco == "Alpine":
        return f"{major}.{minor}.{patch}-r{rnd.randint(0, 9)}"
    if eco == "Go":
        return f"{major}.{minor}.{patch}"
    return f"{major}.{minor}.{patch}"


def synth_records(scale: float, seed: int = 11) -> dict[str, list[dict]]:
    rnd = random.Random(seed)
    out: dict[str, list[dict]] = {}
    for eco, n in COUNTS.items():
        recs = []
        n = int(n * scale)
        for i, name in enumerate(_zipf_names(rnd, eco, n)):
            affected = []
            releases = RELEASES.get(eco, [""])
            for rel in rnd.sample(releases, rnd.randint(1, len(releases))):
                major, minor = rnd.randint(0, 5), rnd.randint(0, 20)
                events: list[dict] = [
                    {"introduced": "0" if rnd.random() < 0.6 else _ver(rnd, eco, major, 0, 0)}
                ]
                shape = rnd.random()
                if shape < 0.75:
                    events.append({"fixed": _ver(rnd, eco, major, minor, rnd.randint(1, 30))})
                elif shape < 0.85:
                    events.append({"last_affected": _ver(rnd, eco, major, minor, rnd.randint(1, 30))})
                if rnd.random() < 0.15:  # a second introduced/fixed pair (a later branch)
                    events += [
                        {"introduced": _ver(rnd, eco, major + 1, 0, 0)},
                        {"fixed": _ver(rnd, eco, major + 1, minor, rnd.randint(1, 9))},
                    ]
                typ = "SEMVER" if eco in ("Go",) else "ECOSYSTEM"
                entry = {
                    "package": {
                        "ecosystem": f"{eco}:{'v' if eco == 'Alpine' else ''}{rel}" if rel else eco,
                        "name": name,
                    },
                    "ranges": [{"type": typ, "events": events}],
                }
                if eco in ("PyPI", "npm") and rnd.random() < 0.5:  # GHSA/PYSEC carry the version list too
                    entry["versions"] = [_ver(rnd, eco, major, m, p) for m in range(3) for p in range(5)]
                affected.append(entry)
            rec = {
                "id": f"{eco.upper()}-SYN-{i}",
                "modified": "2026-01-01T00:00:00Z",
                "affected": affected,
                "aliases": [f"CVE-2026-{i:05d}"],
            }
            if rnd.random() < 0.5:
                rec["severity"] = [
                    {
                        "type": "CVSS_V3",
                        "score": rnd.choice(
                            [
                                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N",
                                "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
                            ]
                        ),
                    }
                ]
            recs.append(rec)
        out[eco] = recs
    return out


def packages(rnd: random.Random, n: int, heavy: bool = False) -> list[Package]:
    """``n`` distinct packages, as in one large image set: names drawn uniformly without replacement
    (``heavy``: drawn Zipf-weighted with replacement, so the most-advised names recur: the worst case),
    installed versions mostly recent (most fixes are older, as in a maintained image)."""
    mix = {"Debian": 0.3, "Alpine": 0.1, "PyPI": 0.2, "npm": 0.3, "Go": 0.1}
    out = []
    for eco, share in mix.items():
        k = int(n * share)
        if heavy:
            names = _zipf_names(rnd, eco, k)
        else:
            names = rnd.sample([f"{eco.lower()}-pkg-{i}" for i in range(NAMES[eco])], k)
        for name in names:
            v = _ver(rnd, eco, rnd.choice([4, 5, 5, 5]), rnd.randint(10, 20), rnd.randint(0, 30))
            rel = rnd.choice(RELEASES[eco]) if eco in RELEASES else None
            os_pkg = eco in ("Debian", "Alpine")
            out.append(
                Package(
                    f"lib{name}" if os_pkg else name,
                    v,
                    eco,
                    f"pkg:generic/{name}@{v}",
                    source_name=name if os_pkg else None,
                    release=rel,
                )
            )
    return out


def cold_keys() -> None:
    """Forget every parsed version (the per-ecosystem key caches)."""
    from kubestrata.image import versions

    for eco in versions.UNIVERS_CLASS:
        versions.key_function(eco).cache_clear()  # type: ignore[attr-defined]
    versions.key_function.cache_clear()


def cpu() -> float:
    return time.process_time()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full record counts")
    ap.add_argument("--workloads", type=int, default=2000)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--only-match", action="store_true", help="skip the workload scan")
    args = ap.parse_args()
    out: dict = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    }
    with tempfile.TemporaryDirectory() as tmp:
        recs = synth_records(args.scale)
        for eco, rs in recs.items():
            with zipfile.ZipFile(Path(tmp) / f"{eco}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
                for r in rs:
                    zf.writestr(f"{r['id']}.json", json.dumps(r))
        t = cpu()
        stats = build([tmp], Path(tmp) / "osv.db")
        out["build"] = {
            "records": stats.records,
            "affected_rows": stats.affected,
            "cpu_s": round(cpu() - t, 2),
            "db_mb": round((Path(tmp) / "osv.db").stat().st_size / 2**20, 1),
        }
        db = VulnDB(Path(tmp) / "osv.db")
        for label, heavy in (("match_2000", False), ("match_2000_heavy_names", True)):
            runs = []
            for _ in range(3):  # best of three: CPU time on a loaded 2-core machine varies by 30-50%
                db = VulnDB(Path(tmp) / "osv.db")  # a fresh handle: no rows or verdicts cached
                cold_keys()  # and no parsed versions: every run is a first run
                pk = packages(random.Random(5), 2000, heavy)
                match(ImageInventory("warm", "", packages=pk[:5]), db)  # import univers, open the index
                gc.collect()
                gc.disable()  # as the CLI does around scans and matching
                t0, t = time.perf_counter(), cpu()
                rep = match(ImageInventory("bench/image:1", "sha256:" + "e" * 64, packages=pk), db)
                runs.append((round(cpu() - t, 3), round(time.perf_counter() - t0, 3)))
                gc.enable()
            out[label] = {
                "packages": len(pk),
                "vulnerabilities": len(rep.vulns),
                "gaps": len(rep.gaps),
                "cpu_s": min(r[0] for r in runs),
                "cpu_s_runs": [r[0] for r in runs],
                "wall_s_runs": [r[1] for r in runs],
            }
        pk = packages(random.Random(5), 2000)
        if args.only_match:
            print(json.dumps(out, indent=2))
            return
        # the workload scan
        images = [
            f"123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app-{i}:1.{i}" for i in range(args.images)
        ]
        calls: list[str] = []

        def inventorier(source: str) -> ImageInventory:
            calls.append(source)
            r = random.Random(source)
            return ImageInventory(
                source,
                "sha256:%064x" % (hash(source) & (2**256 - 1)),
                packages=r.sample(pk, 150),
                config=ImageConfig(user="10001"),
            )

        objs = []
        for i in range(args.workloads):
            ns = f"team-{i % 50}"
            objs.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": f"w{i}", "namespace": ns},
                    "spec": {
                        "selector": {"matchLabels": {"app": f"w{i}"}},
                        "template": {
                            "metadata": {"labels": {"app": f"w{i}"}},
                            "spec": {
                                "containers": [
                                    {
                                        "name": "app",
                                        "image": images[i % len(images)],
                                        "securityContext": {"runAsNonRoot": True},
                                    }
                                ]
                            },
                        },
                    },
                }
            )
            if i % 10 == 0:
                objs.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {"name": f"w{i}", "namespace": ns},
                        "spec": {
                            "type": "LoadBalancer",
                            "selector": {"app": f"w{i}"},
                            "ports": [{"port": 80}],
                        },
                    }
                )
        cluster = Cluster([KubeObject(o) for o in objs])
        seam.default_inventorier = lambda: inventorier  # type: ignore[assignment]
        cfg = ScanConfig(images=ImagesConfig(enabled=True, db=str(Path(tmp) / "osv.db")))
        for label, checks in (
            ("image checks", select_checks(["KS-IMG-00[4-6]", "KS-IMG-010"])),
            ("all checks", None),
        ):
            calls.clear()
            t0, t = time.perf_counter(), cpu()
            res = run_scan(cluster, config=cfg, checks=checks)
            out[f"scan_{label.replace(' ', '_')}"] = {
                "workloads": args.workloads,
                "images": args.images,
                "inventorier_calls": len(calls),
                "findings": len(res.findings),
                "cpu_s": round(cpu() - t, 2),
                "wall_s": round(time.perf_counter() - t0, 2),
            }
    Path("bench/out").mkdir(parents=True, exist_ok=True)
    Path("bench/out/image_vulns.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
