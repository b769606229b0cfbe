"""Source strings: skopeo's transports and Docker's reference normalisation."""

from __future__ import annotations

import pytest

from kubestrata.image.blobs import ImageReadError
from kubestrata.image.reference import ArchiveRef, LayoutRef, RegistryRef, parse_source

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("alpine", RegistryRef("registry-1.docker.io", "library/alpine", "latest")),
        ("alpine:3.19", RegistryRef("registry-1.docker.io", "library/alpine", "3.19")),
        ("docker.io/bitnami/redis:7", RegistryRef("registry-1.docker.io", "bitnami/redis", "7")),
        ("docker://quay.io/org/app:v1", RegistryRef("quay.io", "org/app", "v1")),
        ("localhost:5000/app", RegistryRef("localhost:5000", "app", "latest")),
        ("127.0.0.1:5000/team/app@" + D, RegistryRef("127.0.0.1:5000", "team/app", None, D)),
        ("ghcr.io/o/r:1.0@" + D, RegistryRef("ghcr.io", "o/r", "1.0", D)),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1",
            RegistryRef("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "app", "1"),
        ),
        ("oci:/tmp/layout", LayoutRef("/tmp/layout", None)),
        ("oci:/tmp/layout:v2", LayoutRef("/tmp/layout", "v2")),
        ("oci:/tmp/a:b/layout", LayoutRef("/tmp/a:b/layout", None)),
        ("oci-archive:/tmp/img.tar:v1", LayoutRef("/tmp/img.tar", "v1", archive=True)),
        ("docker-archive:/tmp/app.tar", ArchiveRef("/tmp/app.tar", None)),
        ("docker-archive:/tmp/app.tar:team/app:1.4", ArchiveRef("/tmp/app.tar", "team/app:1.4")),
    ],
)
def test_parse_source(source: str, expected: object) -> None:
    assert parse_source(source) == expected


@pytest.mark.parametrize(
    "source", ["UPPER/case", "a/b:bad tag", "a/b@sha256:short", "oci:", "docker-archive:"]
)
def test_malformed_sources(source: str) -> None:
    with pytest.raises(ImageReadError):
        parse_source(source)


def test_docker_config_documents() -> None:
    import base64

    from kubestrata.image.registry import Credentials, parse_docker_config

    def b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    pull_secret = {
        "auths": {
            "https://index.docker.io/v1/": {"auth": b64("hub:pw1")},
            "ghcr.io": {"username": "gh", "password": "pw2"},
            "registry.example.com:5000": {"auth": b64("me:pa:ss")},  # the password may hold ':'
            "broken.example.com": {"auth": "***not base64***"},
            "empty.example.com": {"auth": b64("nopassword")},
        }
    }
    assert parse_docker_config(pull_secret) == {
        "registry-1.docker.io": Credentials("hub", "pw1"),
        "ghcr.io": Credentials("gh", "pw2"),
        "registry.example.com:5000": Credentials("me", "pa:ss"),
    }
    legacy_dockercfg = {"quay.io": {"auth": b64("q:pw")}}
    assert parse_docker_config(legacy_dockercfg) == {"quay.io": Credentials("q", "pw")}
    assert parse_docker_config(["not", "a", "dict"]) == {}
