"""Image references and digests (issue 11): a malformed digest is not a pin."""

from __future__ import annotations

import pytest
import yaml

from kubestrata.kube.cluster import Cluster
from kubestrata.kube.images import parse_image, valid_digest
from kubestrata.kube.loader import load_text
from kubestrata.scan import run_scan

SHA = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "image",
    [
        "nginx@latest",
        "nginx:latest@sha256:abc",
        "nginx@sha256:" + "AB" * 32,  # upper-case hex is not a sha256 digest
        "nginx@sha256:" + "ab" * 31,  # 62 characters
        "nginx@sha512:" + "ab" * 32,  # sha512 needs 128
        "nginx@",
        "nginx@:" + "ab" * 32,
    ],
)
def test_malformed_digest_is_not_pinned(image):
    ref = parse_image(image)
    assert ref.digest is None and not ref.pinned
    assert ref.bad_digest is not None


@pytest.mark.parametrize(
    "image",
    [
        f"nginx@{SHA}",
        f"nginx:1.27@{SHA}",
        f"registry.example.com:5000/team/app:v1@{SHA}",
        "a@sha512:" + "0" * 128,
    ],
)
def test_valid_digest_is_pinned(image):
    ref = parse_image(image)
    assert ref.pinned and ref.bad_digest is None and valid_digest(ref.digest)


def test_reference_parts():
    ref = parse_image(f"registry.example.com:5000/team/app:v1@{SHA}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "registry.example.com:5000",
        "team/app",
        "v1",
        SHA,
    )
    assert parse_image("nginx:latest@sha256:abc").tag == "latest"


def test_scan_reports_malformed_digests():
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "a"},
        "spec": {
            "containers": [
                {"name": "one", "image": "nginx@latest"},
                {"name": "two", "image": "nginx:latest@sha256:abc"},
                {"name": "ok", "image": f"nginx:1.27@{SHA}"},
            ]
        },
    }
    res = run_scan(Cluster(load_text(yaml.safe_dump(pod), "p.yaml").objects))
    pinned = {f.container: f.message for f in res.findings if f.rule_id == "KS-IMG-002"}
    latest = {f.container for f in res.findings if f.rule_id == "KS-IMG-001"}
    assert set(pinned) == {"one", "two"} and "not a valid digest" in pinned["two"]
    assert latest == {"one", "two"}
