"""HTTPS with certificate rotation that never drops a request.

uvicorn is given one listening ``SSLContext`` whose SNI callback hands every new handshake the
*current* context. Rotation builds a complete new context from the files and swaps one reference;
handshakes in flight and established connections keep the context they started with. A pair that
fails to load (half-written, mismatched key) is rejected and the previous one keeps serving; the
next poll tries again, so an out-of-order rotation (key written before certificate) settles.

The callback is invoked for clients that send no SNI too (OpenSSL calls the servername callback with
``None``), so IP-address clients also get the rotated certificate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from pathlib import Path

from kubestrata.errors import KubestrataError

log = logging.getLogger("kubestrata.server.tls")

# TLS 1.2+ only; Python's server defaults otherwise (forward-secret AEAD suites).
MIN_VERSION = ssl.TLSVersion.TLSv1_2


def _build(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MIN_VERSION
    ctx.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        # mutual TLS: a caller without a certificate this CA signed fails the handshake (OpenSSL also
        # checks the certificate's extended key usage allows client authentication)
        ctx.load_verify_locations(cafile=str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    # The API server speaks HTTP/1.1 to webhooks unless told otherwise; advertise it explicitly.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _signature(paths: tuple[Path, ...]) -> tuple[tuple[int, int, int], ...]:
    out = []
    for p in paths:
        try:
            st = os.stat(p)  # follows symlinks: Kubernetes Secret volumes swap a ..data symlink
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append((0, 0, 0))
    return tuple(out)


class ReloadingTLS:
    """Holds the serving context and swaps it when the certificate or key files change."""

    def __init__(
        self,
        cert_file: str | os.PathLike[str],
        key_file: str | os.PathLike[str],
        *,
        client_ca: str | os.PathLike[str] | None = None,
        on_reload: Callable[[bool], None] | None = None,
    ) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.client_ca = Path(client_ca) if client_ca is not None else None
        self._on_reload = on_reload
        try:
            self._current = self._build()
        except (OSError, ssl.SSLError) as e:
            what = f"TLS certificate {self.cert_file} and key {self.key_file}"
            if self.client_ca is not None:
                what += f" (client CA {self.client_ca})"
            raise KubestrataError(f"cannot load {what}: {_describe(e)}") from None
        self._sig = _signature(self._files())
        self._rejected_sig: tuple[tuple[int, int, int], ...] | None = None
        self.listening = self._build()
        self.listening.sni_callback = self._sni

    def _files(self) -> tuple[Path, ...]:
        return (self.cert_file, self.key_file) + ((self.client_ca,) if self.client_ca else ())

    def _build(self) -> ssl.SSLContext:
        return _build(self.cert_file, self.key_file, self.client_ca)

    @property
    def current(self) -> ssl.SSLContext:
        return self._current

    def _sni(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        sslobj.context = self._current
        return None

    def check(self) -> bool | None:
        """Reload if the files changed: True reloaded, False rejected (previous kept), None unchanged."""
        sig = _signature(self._files())
        if sig == self._sig:
            return None
        try:
            new = self._build()
        except (OSError, ssl.SSLError) as e:
            if sig != self._rejected_sig:  # report each bad state once, keep retrying quietly
                self._rejected_sig = sig
                log.warning(
                    "tls reload rejected; previous certificate keeps serving",
                    extra={"event": "tls_reload_rejected", "error": _describe(e)},
                )
                if self._on_reload:
                    self._on_reload(False)
            # leave _sig unchanged so the next poll retries (rotation may still be in progress)
            return False
        self._current = new
        self._sig = sig
        log.info("tls certificate reloaded", extra={"event": "tls_reloaded"})
        if self._on_reload:
            self._on_reload(True)
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror} ({getattr(e, 'filename', '') or ''})".replace(" ()", "")
    return str(e) or type(e).__name__
