"""KubeObject's identity: ``ref`` reads raw once and must say what kind, namespace, name and
api_version say, whatever the types in the manifest."""

from __future__ import annotations

import itertools

from kubestrata.kube.objects import KubeObject, ObjectRef

KINDS = [None, "", "Pod", "Namespace", "ClusterRole", 5]
METADATA = [
    None,
    [],
    {},
    {"name": "a"},
    {"generateName": "g-"},
    {"name": "", "generateName": "g"},
    {"name": 7, "namespace": "n"},
    {"namespace": ""},
    {"namespace": 3},
    {"name": "a", "namespace": "team"},
]
API_VERSIONS = [None, "v1", "apps/v1", 3]


def test_ref_agrees_with_the_identity_properties():
    for kind, meta, api in itertools.product(KINDS, METADATA, API_VERSIONS):
        raw = {"metadata": meta}
        if kind is not None:
            raw["kind"] = kind
        if api is not None:
            raw["apiVersion"] = api
        o = KubeObject(raw)
        assert o.ref == ObjectRef(o.kind, o.namespace, o.name, o.api_version), raw


def test_identity_of_a_plain_object():
    o = KubeObject({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "web"}})
    assert (o.kind, o.namespace, o.name, o.api_version) == ("Deployment", "default", "web", "apps/v1")
    assert str(o.ref) == "Deployment/default/web"
    ns = KubeObject({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "team", "namespace": "x"}})
    assert ns.namespace == "" and ns.ref.namespace == ""
