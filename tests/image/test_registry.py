"""Images read from a real registry (docker-registry 2.8 on loopback): anonymous, token auth, basic
auth, ECR credentials from moto, multi-arch indexes, tag and digest references, each digest pulled
once."""

from __future__ import annotations

import base64
import time

import pytest

from kubestrata.image.blobs import ImageReadError
from kubestrata.image.inventory import ImageReader, inventory_of
from kubestrata.image.registry import Credentials, EcrAuth, ecr_credentials
from tests.conftest import moto_endpoint
from tests.image import images
from tests.image.conftest import PASSWORD, USER, Registry
from tests.image.imagebuild import DEBIAN_OS_RELEASE, DPKG_STATUS, F, Image, Pusher, layer


def test_anonymous_pull_by_tag_and_digest(registry: Registry) -> None:
    img = images.full_image()
    Pusher(registry.url).image("team/full", "v1", img)
    inv = inventory_of(f"{registry.host}/team/full:v1", insecure=True)
    assert images.keys(inv) == images.FULL_EXPECTED
    assert inv.digest == img.digest
    assert inv.gaps == []
    by_digest = inventory_of(f"{registry.host}/team/full@{img.digest}", insecure=True)
    assert images.keys(by_digest) == images.FULL_EXPECTED
    assert by_digest.reference.endswith(img.digest)


def test_each_digest_is_pulled_once(registry: Registry) -> None:
    imgs = [images.alpine_image(), images.rpm_image(), images.distroless_image()]
    pusher = Pusher(registry.url)
    refs = []
    for i, img in enumerate(imgs):
        digest = pusher.image(f"once/img{i}", "latest", img)
        refs += [f"{registry.host}/once/img{i}:latest", f"{registry.host}/once/img{i}@{digest}"]
    before = registry.blob_gets()
    with ImageReader(insecure=True) as reader:
        # four at a time, each reference five times over: still one pull per digest
        invs = reader.inventories(refs * 5, workers=4)
        assert all(inv.packages for inv in invs)
        assert [inv.reference for inv in invs] == refs * 5
        # 3 images x (config + 1 layer) blobs; at most one manifest GET per distinct reference (a tag
        # must be asked for; its digest twin, read at the same moment, may be too)
        assert reader.registry.stats.blob_gets == 6
        assert 3 <= reader.registry.stats.manifest_gets <= len(refs)
    with ImageReader(insecure=True) as reader:
        for ref in refs * 2:  # one at a time: the tag resolves the digest, its twin is then known
            reader.inventory(ref)
        assert reader.registry.stats.manifest_gets == 3
    # the registry's own access log agrees: 6 per reader (its lines land just after the responses)
    deadline = time.monotonic() + 3
    while registry.blob_gets() - before < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert registry.blob_gets() - before == 12


def test_multi_arch_index_picks_the_platform(registry: Registry) -> None:
    amd = images.alpine_image()
    arm = Image(
        [layer([F("etc/os-release", DEBIAN_OS_RELEASE), F("var/lib/dpkg/status", DPKG_STATUS)])],
        architecture="arm64",
        variant="v8",
    )
    Pusher(registry.url).index("multi/app", "1.0", [amd, arm])
    ref = f"{registry.host}/multi/app:1.0"
    assert images.keys(inventory_of(ref, insecure=True)) == images.ALPINE_EXPECTED
    arm_inv = inventory_of(ref, platform="linux/arm64", insecure=True)
    assert arm_inv.digest == arm.digest and arm_inv.platform == "linux/arm64/v8"
    assert {p.name for p in arm_inv.packages} == {"libssl3", "tzdata", "bsdutils"}
    with pytest.raises(
        ImageReadError,
        match=r"no manifest for platform linux/s390x \(available: linux/amd64, linux/arm64/v8\)",
    ):
        inventory_of(ref, platform="linux/s390x", insecure=True)


def test_not_found_is_one_clear_error(registry: Registry) -> None:
    with pytest.raises(ImageReadError, match="manifest nope: not found .*MANIFEST_UNKNOWN|NAME_UNKNOWN"):
        inventory_of(f"{registry.host}/missing/repo:nope", insecure=True)


def test_insecure_is_for_loopback_only() -> None:
    with pytest.raises(ImageReadError, match="loopback registries only"):
        inventory_of("registry.example.com/a/b:1", insecure=True)


def test_token_auth_with_credentials(token_registry: Registry) -> None:
    img = images.alpine_image()
    Pusher(token_registry.url, USER, PASSWORD).image("private/app", "1", img)
    token_registry.token_requests.clear()
    inv = inventory_of(
        f"{token_registry.host}/private/app:1", credentials=Credentials(USER, PASSWORD), insecure=True
    )
    assert images.keys(inv) == images.ALPINE_EXPECTED
    # one token for the repository, reused for the manifest and every blob
    assert token_registry.token_requests == [
        {"service": ["kubestrata-test-registry"], "scope": ["repository:private/app:pull"], "user": USER}
    ]


def test_token_auth_anonymous_pull_of_public_repo(token_registry: Registry) -> None:
    img = images.distroless_image()
    Pusher(token_registry.url, USER, PASSWORD).image("public/base", "1", img)
    inv = inventory_of(f"{token_registry.host}/public/base:1", insecure=True)
    assert images.keys(inv) == images.DISTROLESS_EXPECTED


def test_token_auth_denied_without_credentials(token_registry: Registry) -> None:
    Pusher(token_registry.url, USER, PASSWORD).image("private/other", "1", images.alpine_image())
    with pytest.raises(ImageReadError, match="unauthorised"):
        inventory_of(f"{token_registry.host}/private/other:1", insecure=True)
    with pytest.raises(ImageReadError, match="token server answered 401"):
        inventory_of(
            f"{token_registry.host}/private/other:1", credentials=Credentials(USER, "wrong"), insecure=True
        )


def test_basic_auth(basic_registry: Registry) -> None:
    Pusher(basic_registry.url, USER, PASSWORD).image("basic/app", "1", images.alpine_image())
    inv = inventory_of(
        f"{basic_registry.host}/basic/app:1",
        credentials={basic_registry.host: Credentials(USER, PASSWORD)},
        insecure=True,
    )
    assert images.keys(inv) == images.ALPINE_EXPECTED
    with pytest.raises(ImageReadError, match="requires a username and password"):
        inventory_of(f"{basic_registry.host}/basic/app:1", insecure=True)


def test_ecr_credentials_from_moto_reach_the_registry_as_basic_auth(
    basic_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ECR's GetAuthorizationToken (moto) gives AWS:<password>; the client sends exactly that as
    Basic auth. The local htpasswd registry is given moto's password for user AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto_endpoint() as endpoint:
        creds = ecr_credentials(
            EcrAuth(region="us-east-1", registry_id="123456789012", endpoint_url=endpoint)
        )
        assert creds == Credentials("AWS", "123456789012-auth-token")
        # the header the client builds for it
        sent = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        assert base64.b64decode(sent) == b"AWS:123456789012-auth-token"
        _add_htpasswd_user(basic_registry, "AWS", creds.password)
        Pusher(basic_registry.url, USER, PASSWORD).image("ecr/app", "1", images.alpine_image())
        spec = EcrAuth(region="us-east-1", registry_id="123456789012", endpoint_url=endpoint)
        inv = inventory_of(
            f"{basic_registry.host}/ecr/app:1", credentials={basic_registry.host: spec}, insecure=True
        )
    assert images.keys(inv) == images.ALPINE_EXPECTED


def _add_htpasswd_user(reg: Registry, user: str, password: str) -> None:
    import os
    import time
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    path = reg.log.parent / "htpasswd"
    with path.open("a") as fh:
        fh.write(f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}\n")
    # the registry reloads the file when its mtime changes
    later = time.time() + 2
    os.utime(path, (later, later))


def test_expired_token_is_replaced(token_registry: Registry) -> None:
    Pusher(token_registry.url, USER, PASSWORD).image("private/expiring", "1", images.alpine_image())
    with ImageReader(insecure=True, credentials=Credentials(USER, PASSWORD)) as reader:
        key = (token_registry.host, "repository:private/expiring:pull")
        reader.registry._tokens[key] = "Bearer expired.token.value"  # as a token past its expiry
        inv = reader.inventory(f"{token_registry.host}/private/expiring:1")
        assert reader.registry.stats.token_gets == 1
    assert images.keys(inv) == images.ALPINE_EXPECTED
