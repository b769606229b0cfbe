from __future__ import annotations

from pathlib import Path

import pytest

from kubestrata.image.model import ImageInventory, Package
from kubestrata.image.vulndb import VulnDB, build

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def fixture_db(tmp_path_factory: pytest.TempPathFactory) -> VulnDB:
    path = tmp_path_factory.mktemp("osvdb") / "osv.db"
    build([DATA / "osv"], path)
    return VulnDB(path)


def pkg(
    name: str, version: str, ecosystem: str, *, source: str | None = None, release: str | None = None
) -> Package:
    return Package(
        name, version, ecosystem, purl=f"pkg:generic/{name}@{version}", source_name=source, release=release
    )


def inventory(
    *packages: Package,
    ref: str = "registry.example/app:1",
    digest: str = "sha256:" + "a" * 64,
    os_release: dict[str, str] | None = None,
) -> ImageInventory:
    return ImageInventory(ref, digest, packages=list(packages), os_release=os_release or {})
