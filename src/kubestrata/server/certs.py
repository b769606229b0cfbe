"""A private CA and a serving certificate for the webhook (what `kubestrata certs` writes).

The API server verifies the webhook against the CA given as ``caBundle`` (admission) or
``certificate-authority-data`` (the authorization webhook's kubeconfig), so the CA never has to be
publicly trusted. Keys are ECDSA P-256: small, fast handshakes, accepted by every Kubernetes version.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubestrata.errors import KubestrataError

DEFAULT_CLIENT_NAME = "kube-apiserver"


@dataclass(frozen=True)
class CertPaths:
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path
    client_cert: Path | None = None
    client_key: Path | None = None

    @property
    def ca_bundle(self) -> str:
        """The CA certificate, base64-encoded PEM: the ``caBundle`` field of a webhook configuration."""
        return base64.b64encode(self.ca_cert.read_bytes()).decode()


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write key material readable by the owner only, replacing any previous file atomically, so a
    server watching the directory never sees half a key."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def generate_certs(
    out_dir: str | Path,
    dns_names: list[str],
    *,
    days: int = 365,
    ca_days: int = 3650,
    reuse_ca: bool = True,
    client_name: str | None = DEFAULT_CLIENT_NAME,
) -> CertPaths:
    """Create (or reuse) ``ca.crt``/``ca.key`` in ``out_dir`` and issue ``tls.crt``/``tls.key`` for the names.

    ``dns_names`` may hold DNS names and IP addresses (IP SANs); the first is the subject CN. With a
    ``client_name``, also ``client.crt``/``client.key``: a client certificate (extended key usage
    clientAuth only, subject CN ``client_name``) for the API server to present to the webhook. The
    same CA signs both; the serving certificate cannot act as a client one (serverAuth only).
    """
    if client_name is not None and (
        not client_name or len(client_name) > 64 or any(not c.isprintable() for c in client_name)
    ):
        raise KubestrataError(f"--client-name {client_name!r}: 1 to 64 printable characters")
    if not dns_names:
        raise KubestrataError("give at least one --dns-name (e.g. kubestrata.kubestrata-system.svc)")
    for n in dns_names:
        # checked before anything is written; x509 would otherwise fail late with a misleading message
        if not n or len(n) > 253 or any(c.isspace() or not c.isprintable() for c in n):
            raise KubestrataError(f"--dns-name {n!r} is not a DNS name or IP address")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KubestrataError(f"cannot create {out}: {e.strerror or e}") from None
    paths = CertPaths(out / "ca.crt", out / "ca.key", out / "tls.crt", out / "tls.key")
    now = dt.datetime.now(dt.UTC)
    try:
        if reuse_ca and paths.ca_cert.exists() and paths.ca_key.exists():
            ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
            ca_key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
            if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
                raise KubestrataError(f"{paths.ca_key}: unsupported CA key type")
        else:
            ca_key = ec.generate_private_key(ec.SECP256R1())
            ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubestrata webhook CA")])
            ca_cert = (
                x509.CertificateBuilder()
                .subject_name(ca_name)
                .issuer_name(ca_name)
                .public_key(ca_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=ca_days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256())
            )
            _write_private(paths.ca_key, _pem_key(ca_key))
            _write_public(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))

        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0][:64])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in dns_names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        # key first: a watcher that sees the new certificate then always finds its key
        _write_private(paths.key, _pem_key(key))
        _write_public(paths.cert, cert.public_bytes(serialization.Encoding.PEM))
        if client_name is not None:
            ckey = ec.generate_private_key(ec.SECP256R1())
            ccert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_name)]))
                .issuer_name(ca_cert.subject)
                .public_key(ckey.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                    critical=False,
                )
                .sign(ca_key, hashes.SHA256())
            )
            paths = CertPaths(
                paths.ca_cert, paths.ca_key, paths.cert, paths.key, out / "client.crt", out / "client.key"
            )
            _write_private(out / "client.key", _pem_key(ckey))
            _write_public(out / "client.crt", ccert.public_bytes(serialization.Encoding.PEM))
    except OSError as e:
        raise KubestrataError(f"cannot write certificates in {out}: {e.strerror or e}") from None
    except ValueError as e:
        raise KubestrataError(f"cannot read the existing CA in {out}: {e}") from None
    return paths
