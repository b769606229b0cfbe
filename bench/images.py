"""Benchmark: image reading and inventory against a local docker-registry (CNCF distribution 2.8).

1. A ~500 MB image (gzip layers of incompressible random filler plus dpkg, Python, npm, Go and jar
   metadata) and a ~100 MB one: inventory time, CPU seconds and peak RSS, each in a fresh process,
   so peak RSS can be compared across image sizes (it should not grow with the image).
2. 300 distinct images (a shared base layer plus one layer of their own) and 2,000 references to them
   (tags and digests, repeated as workloads repeat them), read 4 at a time: every blob digest is
   pulled once; counted by the client and in the registry's access log.

Generated data lives in a temporary directory (never in git). Run:
    PYTHONPATH=src:. python bench/images.py [--big-mb 500] [--images 300] [--refs 2000]
Writes bench/out/images.json.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.image import images as test_images  # noqa: E402
from tests.image.conftest import _start, _stop  # noqa: E402
from tests.image.imagebuild import (  # noqa: E402
    DEBIAN_OS_RELEASE,
    DPKG_STATUS,
    OCI_CONFIG,
    OCI_MANIFEST,
    F,
    Image,
    Pusher,
    layer,
    sha,
)


class _Random(io.RawIOBase):
    """n bytes of incompressible data without holding them."""

    def __init__(self, n: int, rng: random.Random) -> None:
        self.left, self.rng = n, rng

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self.left)
        if n <= 0:
            return 0
        b[:n] = self.rng.randbytes(n)
        self.left -= n
        return n


def filler_layer(path: Path, mb: int, seed: int, extra: list[F]) -> tuple[str, str, int]:
    """A gzip tar layer written to path: random files of 1-8 MB adding up to mb MB, plus extra
    files. Returns (blob digest, diff_id, size) computed while writing."""
    import hashlib

    rng = random.Random(seed)
    blob_hash, diff_hash = hashlib.sha256(), hashlib.sha256()

    class _Tee(io.RawIOBase):
        def __init__(self, fh: io.BufferedWriter) -> None:
            self.fh = fh

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            blob_hash.update(b)
            return self.fh.write(b)

    class _DiffTee(io.RawIOBase):
        def __init__(self, gz: gzip.GzipFile) -> None:
            self.gz = gz

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            diff_hash.update(b)
            return self.gz.write(b)

    with open(path, "wb") as fh:
        tee = _Tee(fh)
        with gzip.GzipFile(fileobj=tee, mode="wb", compresslevel=1, mtime=0) as gz:  # type: ignore[arg-type]
            with tarfile.open(fileobj=_DiffTee(gz), mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
                left, i = mb * 1024 * 1024, 0
                while left > 0:
                    size = min(left, rng.randint(1, 8) * 1024 * 1024)
                    info = tarfile.TarInfo(f"opt/data/{seed}/blob-{i:04d}.bin")
                    info.size = size
                    tar.addfile(info, io.BufferedReader(_Random(size, rng)))
                    left -= size
                    i += 1
                for e in extra:
                    info = tarfile.TarInfo(e.path)
                    info.size, info.mode = len(e.data), e.mode
                    tar.addfile(info, io.BytesIO(e.data))
    return "sha256:" + blob_hash.hexdigest(), "sha256:" + diff_hash.hexdigest(), path.stat().st_size


def push_big(base: str, repo: str, tmp: Path, total_mb: int) -> str:
    """A total_mb image of 5 filler layers, the package metadata spread across them."""
    full = test_images.full_image()  # its metadata files, re-packed into big layers
    meta_tar = tarfile.open(fileobj=io.BytesIO(gzip.decompress(full.layers[1].blob)))
    app_files = [F(m.name, meta_tar.extractfile(m).read(), mode=m.mode) for m in meta_tar if m.isfile()]  # type: ignore[union-attr]
    extras = [
        [F("etc/os-release", DEBIAN_OS_RELEASE), F("var/lib/dpkg/status", DPKG_STATUS)],
        app_files,
        [],
        [],
        [],
    ]
    pusher = Pusher(base)
    layers = []
    for i, extra in enumerate(extras):
        p = tmp / f"{repo.replace('/', '_')}-{i}.tar.gz"
        digest, diff_id, size = filler_layer(p, total_mb // len(extras), hash((repo, i)) & 0xFFFF, extra)
        r = pusher._do("POST", f"{base}/v2/{repo}/blobs/uploads/")
        loc = httpx.URL(base).join(r.headers["location"]).copy_merge_params({"digest": digest})
        with open(p, "rb") as fh:
            r = pusher.http.put(str(loc), content=fh, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        p.unlink()
        layers.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest,
                "size": size,
                "diff_id": diff_id,
            }
        )
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"User": "1000"},
            "rootfs": {"type": "layers", "diff_ids": [x["diff_id"] for x in layers]},
        }
    ).encode()
    pusher.blob(repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
            "layers": [{k: v for k, v in x.items() if k != "diff_id"} for x in layers],
        }
    ).encode()
    pusher.manifest(repo, "big", manifest, OCI_MANIFEST)
    return sha(manifest)


def child(ref: str) -> None:
    """One inventory in this process; prints its figures as JSON."""
    from kubestrata.image.inventory import ImageReader

    start = time.perf_counter()
    with ImageReader(insecure=True) as reader:
        inv = reader.inventory(ref)
        stats = reader.registry.stats
    wall = time.perf_counter() - start
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "ref": ref,
                "wall_s": round(wall, 2),
                "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
                "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
                "packages": len(inv.packages),
                "gaps": len(inv.gaps),
                "blob_gets": stats.blob_gets,
            }
        )
    )


def measure(ref: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", ref],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def many(base: str, host: str, n_images: int, n_refs: int, log: Path) -> dict:
    pusher = Pusher(base)
    shared = layer([F("etc/os-release", DEBIAN_OS_RELEASE), F("var/lib/dpkg/status", DPKG_STATUS)])
    refs_by_image = []
    t0 = time.perf_counter()
    for i in range(n_images):
        own = layer(
            [
                F(
                    f"usr/lib/python3/site-packages/pkg{i}-1.{i}.dist-info/METADATA",
                    f"Name: pkg{i}\nVersion: 1.{i}\n".encode(),
                )
            ]
        )
        img = Image([shared, own], config={"User": str(1000 + i)})
        digest = pusher.image(f"many/app{i % 50}", f"v{i}", img)
        refs_by_image.append((f"{host}/many/app{i % 50}:v{i}", f"{host}/many/app{i % 50}@{digest}"))
    push_s = time.perf_counter() - t0
    rng = random.Random(7)
    refs = [rng.choice(refs_by_image)[rng.randrange(2)] for _ in range(n_refs)]
    before = sum(
        1
        for line in log.read_text(errors="replace").splitlines()
        if '"GET /v2/' in line and "/blobs/sha256:" in line
    )
    from kubestrata.image.inventory import ImageReader

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    with ImageReader(insecure=True) as reader:
        digests = {inv.digest for inv in reader.inventories(refs, workers=4)}
        stats = reader.registry.stats
        rstats = reader.stats
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(0.5)  # the access log is written after the response
    after = sum(
        1
        for line in log.read_text(errors="replace").splitlines()
        if '"GET /v2/' in line and "/blobs/sha256:" in line
    )
    distinct_refs = len(set(refs))
    return {
        "images": n_images,
        "references": n_refs,
        "distinct_references": distinct_refs,
        "distinct_digests": len(digests),
        # blobs of the images the references reach: a config and an own layer each, one shared layer
        "distinct_blobs_referenced": 2 * len(digests) + 1,
        "client_blob_gets": stats.blob_gets,
        "registry_log_blob_gets": after - before,
        "manifest_gets": stats.manifest_gets,
        "layers_read": rstats.layers_read,
        "layer_cache_hits": rstats.layer_cache_hits,
        "wall_s": round(wall, 2),
        "cpu_s": round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 2),
        "push_s": round(push_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mb", type=int, default=500)
    ap.add_argument("--small-mb", type=int, default=100)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--refs", type=int, default=2000)
    ap.add_argument("--skip-many", action="store_true", help="only the single-image figures")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    }
    with tempfile.TemporaryDirectory(prefix="kubestrata-bench-images-") as d:
        tmp = Path(d)
        (tmp / "reg").mkdir()
        proc, host, log = _start(tmp / "reg", None)
        base = f"http://{host}"
        try:
            sizes = {}
            for mb in (args.small_mb, args.big_mb):
                t0 = time.perf_counter()
                push_big(base, f"big/img{mb}", tmp, mb)
                print(f"pushed a {mb} MB image in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
                sizes[f"{mb}MB"] = measure(f"{host}/big/img{mb}:big")
                print(json.dumps(sizes[f"{mb}MB"]), file=sys.stderr)
            results["single_image"] = sizes
            if not args.skip_many:
                results["many"] = many(base, host, args.images, args.refs, log)
                print(json.dumps(results["many"]), file=sys.stderr)
        finally:
            _stop(proc)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "images.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
