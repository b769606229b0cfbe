import pytest

from kubestrata.errors import InputError
from kubestrata.kube.images import parse_image
from kubestrata.kube.loader import load_objects
from kubestrata.kube.podspec import WORKLOAD_KINDS, iter_containers, pod_template, validate_pod_spec

CONTAINERS = {
    "initContainers": [{"name": "i"}],
    "containers": [{"name": "c"}],
    "ephemeralContainers": [{"name": "e"}],
}


def wrap(kind):
    tpl = {"metadata": {"labels": {"a": "b"}}, "spec": CONTAINERS}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}, "spec": CONTAINERS}
    if kind == "PodTemplate":
        return {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}, "template": tpl}
    if kind == "CronJob":
        return {
            "apiVersion": "batch/v1",
            "kind": kind,
            "metadata": {"name": "x"},
            "spec": {"jobTemplate": {"spec": {"template": tpl}}},
        }
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "x"}, "spec": {"template": tpl}}


@pytest.mark.parametrize("kind", sorted(WORKLOAD_KINDS))
def test_every_workload_kind_yields_containers_in_psa_order(kind):
    tpl = pod_template(wrap(kind))
    assert [c.name for c in iter_containers(tpl.spec, tpl.spec_path)] == ["i", "c", "e"]
    paths = [c.path for c in iter_containers(tpl.spec, tpl.spec_path)]
    assert paths[1].endswith("spec.containers[0]")


def test_non_workload_has_no_template():
    assert pod_template({"kind": "Service"}) is None


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"containers": {"name": "c"}}, "spec.containers"),
        ({"containers": [{"name": "c", "securityContext": "x"}]}, "spec.containers[0].securityContext"),
        ({"containers": ["c"]}, "spec.containers[0]"),
        ({"securityContext": "x"}, "spec.securityContext"),
    ],
)
def test_wrong_types_name_the_field(spec, field):
    with pytest.raises(InputError) as e:
        validate_pod_spec(spec)
    assert e.value.field == field


def test_string_spec_is_an_error():
    obj = load_objects(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: nope}\n"
    )[0]
    with pytest.raises(InputError) as e:
        pod_template(obj)
    assert e.value.field == "spec.template"


@pytest.mark.parametrize(
    "image,registry,repo,tag,digest",
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.2", "docker.io", "library/nginx", "1.2", None),
        ("localhost:5000/a/b:3", "localhost:5000", "a/b", "3", None),
        (
            "1.dkr.ecr.us-east-1.amazonaws.com/app@sha256:" + "a" * 64,
            "1.dkr.ecr.us-east-1.amazonaws.com",
            "app",
            None,
            "sha256:" + "a" * 64,
        ),
        ("ghcr.io/org/app:v1@sha256:" + "b" * 64, "ghcr.io", "org/app", "v1", "sha256:" + "b" * 64),
    ],
)
def test_parse_image(image, registry, repo, tag, digest):
    ref = parse_image(image)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repo, tag, digest)
