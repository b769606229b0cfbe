"""The EKS snapshot among loaded Kubernetes objects (EKSClusterAccess documents, merged). Kept apart from
the readers so that input without a snapshot never loads them."""

from __future__ import annotations

from collections.abc import Iterable

from kubestrata.eks.model import SNAPSHOT_KIND, EKSAccess
from kubestrata.errors import InputError
from kubestrata.kube.objects import KubeObject


def from_objects(objects: Iterable[KubeObject]) -> tuple[EKSAccess | None, list[InputError]]:
    """The EKSClusterAccess snapshot(s) among loaded objects, merged; errors name file and field."""
    docs = [o for o in objects if o.kind == SNAPSHOT_KIND]
    if not docs:
        return None, []
    from kubestrata.eks.awsjson import merge_aws_json

    out: EKSAccess | None = None
    errors: list[InputError] = []
    for o in docs:
        try:
            out = merge_aws_json([(o.source.file if o.source else "<input>", o.raw)], out)
            out.obj = out.obj or o
        except InputError as e:
            errors.append(e)
    return out, errors
