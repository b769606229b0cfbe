"""Regenerate the KMS v2 gRPC stubs from the vendored upstream proto.

    PYTHONPATH=src python -m kubestrata.kms.apis.regenerate

apis/v2/api.proto is k8s.io/kms/apis/v2/api.proto, unchanged (kubernetes/kms commit
7dc88c042aa2916629d29cb4744e5e76ce418b77, file last changed in bff5d3e8, Apache-2.0, header kept).
The generated api_pb2.py / api_pb2_grpc.py and the type stub api_pb2.pyi (what mypy reads for the
messages, which api_pb2.py builds at run time) are committed; tests/kms/test_proto.py regenerates them
into a temporary directory and fails if they differ, so a proto or grpcio-tools change cannot go
unnoticed. The grpcio-tools version is pinned in pyproject.toml (test extra).
"""

from __future__ import annotations

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[3]  # .../src
PROTO = "kubestrata/kms/apis/v2/api.proto"
OUTPUTS = (
    "kubestrata/kms/apis/v2/api_pb2.py",
    "kubestrata/kms/apis/v2/api_pb2.pyi",
    "kubestrata/kms/apis/v2/api_pb2_grpc.py",
)


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (grpcio-tools) over the proto; return the generated files under out_dir."""
    from grpc_tools import protoc  # a development dependency only

    out_dir.mkdir(parents=True, exist_ok=True)
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{SRC}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            PROTO,
        ]
    )
    if rc != 0:
        raise RuntimeError(f"protoc failed with exit code {rc}")
    return [out_dir / p for p in OUTPUTS]


def main() -> int:
    generate(SRC)
    for p in OUTPUTS:
        print(f"wrote src/{p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
