"""The one seam between image reading and everything that consumes an inventory.

``Inventorier`` turns a SOURCE (registry reference, OCI layout directory, ``docker save`` archive)
into an ImageInventory. Reading images lives in another module (``inventory_of``); until it is
present, commands that need it say so instead of guessing. Tests and benchmarks pass their own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from kubestrata.errors import KubestrataError
from kubestrata.image.model import ImageInventory

Inventorier = Callable[[str], ImageInventory]

# where image reading's ``inventory_of(source) -> ImageInventory`` lives (first one importable wins)
READER_MODULES = ("kubestrata.image.inventory", "kubestrata.image.reader", "kubestrata.image.read")


def default_inventorier() -> Inventorier | None:
    for name in READER_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        fn = getattr(mod, "inventory_of", None)
        if callable(fn):
            return fn
    return None


def require_inventorier() -> Inventorier:
    fn = default_inventorier()
    if fn is None:
        raise KubestrataError(
            "reading images is not available in this build (no kubestrata.image inventory_of); give an SBOM "
            "(CycloneDX or SPDX JSON) as SOURCE, or import scanner results with --image-results"
        )
    return fn
