"""The one seam between image reading and everything that consumes an inventory.

``Inventorier`` turns a SOURCE (registry reference, OCI layout directory, ``docker save`` archive)
into an ImageInventory. The default is kubestrata.image.inventory's reader, one per run so each
digest is pulled once; tests and benchmarks pass their own.
"""

from __future__ import annotations

from collections.abc import Callable

from kubestrata.image.model import ImageInventory

Inventorier = Callable[[str], ImageInventory]


def default_inventorier() -> Inventorier:
    """A reader shared by every image of one run: layers and manifests are fetched once per digest."""
    from kubestrata.image.inventory import ImageReader
    from kubestrata.image.registry import docker_config_credentials

    # registries the user logged in to with `docker login`; ECR hosts get AWS credentials by themselves
    return ImageReader(credentials=docker_config_credentials() or None).inventory


def require_inventorier() -> Inventorier:
    return default_inventorier()
