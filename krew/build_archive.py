"""Build the krew plugin archive (kubectl-strata-<version>.tar.gz) reproducibly and print its sha256.

    python krew/build_archive.py --out dist/          # then upload it as a release asset

The archive holds a launcher, ``kubectl-strata``, that runs the installed kubestrata (``pip install
kubestrata``); krew installs the launcher on PATH, and kubectl finds it as the ``strata`` plugin.
The archive is byte-for-byte reproducible (fixed owner, mode and mtime, no compression timestamp),
so the sha256 in krew/strata.yaml can be checked by rebuilding it (tests/cli/test_kubectl_plugin.py).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import tarfile
from pathlib import Path

LAUNCHER = b"""#!/bin/sh
# kubectl plugin launcher for kubestrata (installed by krew); needs `pip install kubestrata`
if command -v kubestrata >/dev/null 2>&1; then exec kubestrata "$@"; fi
exec python3 -m kubestrata "$@"
"""
NOTICE = b"kubestrata kubectl plugin launcher. Licensed under the Apache License, Version 2.0.\n"


def build(version: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in (("kubectl-strata", LAUNCHER, 0o755), ("LICENSE", NOTICE, 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, 0, 0, 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", default="0.1.0")
    ap.add_argument("--out", type=Path, default=Path("dist"))
    args = ap.parse_args()
    data = build(args.version)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"kubectl-strata-v{args.version}.tar.gz"
    path.write_bytes(data)
    print(f"{hashlib.sha256(data).hexdigest()}  {path}")


if __name__ == "__main__":
    main()
