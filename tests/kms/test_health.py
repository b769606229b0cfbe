"""Status healthz: a cached round trip that does not flap on throttling but reports real failures."""

from __future__ import annotations

from kubestrata.kms.backends import KMSError, LocalBackend
from kubestrata.kms.service import Health


class Throttled(LocalBackend):
    """The local backend with an injectable failure (what AWS KMS throttling looks like to Health)."""

    failure: KMSError | None = None

    def encrypt(self, plaintext: bytes):  # noqa: ANN201
        if self.failure:
            raise self.failure
        return super().encrypt(plaintext)


THROTTLED = KMSError("UNAVAILABLE", "AWS KMS ThrottlingException", transient=True)
DENIED = KMSError("PERMISSION_DENIED", "AWS KMS AccessDeniedException", transient=False)


def test_cached_and_not_flapping(keyring):
    be = Throttled(keyring)
    h = Health(be, ok_ttl=30, fail_ttl=5, grace=300)
    assert h.check().ok and h.probes == 1
    assert h.check().ok and h.probes == 1  # cached: the API server's polls cost nothing
    h.ok_ttl = 0
    be.failure = THROTTLED
    for _ in range(5):
        s = h.check()
        assert s.ok and s.message == "ok"  # a recent success + throttling: still healthy
    be.failure = DENIED
    s = h.check()
    assert not s.ok and "AccessDeniedException" in s.message  # a real failure is reported at once


def test_lasting_throttling_is_reported(keyring):
    be = Throttled(keyring)
    h = Health(be, ok_ttl=0, fail_ttl=0, grace=0)
    assert h.check().ok
    be.failure = THROTTLED
    s = h.check()
    assert not s.ok and "ThrottlingException" in s.message


def test_never_healthy_before_a_first_success(keyring):
    be = Throttled(keyring)
    be.failure = THROTTLED
    assert not Health(be).check().ok
