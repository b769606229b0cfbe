"""Shared fixtures. ../shared (the conformance data) is located from the repository root."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"


def shared_dir() -> Path:
    """../shared beside the repository (or beside the main checkout, for git worktrees)."""
    for base in [REPO_ROOT, *REPO_ROOT.parents]:
        cand = base.parent / "shared"
        if (cand / "conformance").is_dir():
            return cand
    if os.environ.get("CI") == "true":
        raise RuntimeError("../shared/conformance is missing: conformance tests cannot run in CI without it")
    pytest.skip("../shared is not present (outside CI)")


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


@pytest.fixture(scope="session")
def conformance(shared: Path) -> Path:
    return shared / "conformance"


@contextmanager
def moto_endpoint() -> Iterator[str]:
    """moto's server on a free loopback port; its URL. Stopped and its state emptied afterwards."""
    from moto import server as moto_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        reset_moto()


def reset_moto() -> None:
    """moto's servers share one in-process state: a cluster one test creates would still exist in the
    next test's server (409 on create). Fixtures that stop a moto server call this, so the next one
    starts from an empty AWS (a module-scoped server keeps its state for its own tests)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
