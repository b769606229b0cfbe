"""Writes examples/images/demo: a small OCI image layout (one Debian 12 layer with a dpkg status and
a Python package, a config that runs as root, fetches a script into a shell and sets a password in
ENV) for the docs/images.md examples.

Run from the repository root: python examples/images/make_demo.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.image.imagebuild import DEBIAN_OS_RELEASE, DPKG_STATUS, F, Image, layer, write_layout  # noqa: E402

METADATA = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n"

if __name__ == "__main__":
    out = ROOT / "examples" / "images" / "demo"
    shutil.rmtree(out, ignore_errors=True)
    img = Image(
        [
            layer(
                [
                    F("etc/os-release", DEBIAN_OS_RELEASE),
                    F("var/lib/dpkg/status", DPKG_STATUS),
                    F("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", METADATA),
                ]
            )
        ],
        config={
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "DB_PASSWORD=example-only-not-a-real-password"],
            "ExposedPorts": {"8080/tcp": {}},
            "Cmd": ["/app/server"],
        },
        history=[
            "/bin/sh -c #(nop) ADD file:4d1b0c5e in / ",
            "RUN /bin/sh -c curl -fsSL https://install.example.com/setup.sh | sh",
        ],
    )
    write_layout(out, {"1.0": img})
    print(f"wrote {out} ({img.digest})")
