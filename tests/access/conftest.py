from __future__ import annotations

import pytest

from kubestrata.access.model import AccessModel
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_objects


@pytest.fixture
def model_of():
    def make(text: str, **kw) -> AccessModel:
        return AccessModel(Cluster(load_objects(text)), **kw)

    return make
