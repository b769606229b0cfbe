"""The local backend's keyring: AES-256 key encryption keys in one JSON file, mode 0600.

A keyring is made once by ``kubestrata kms init`` and changed only by ``rotate`` (add a key, make it
primary) and ``retire`` (drop a non-primary key after every Secret has been rewritten). Loading never
creates or repairs anything: a missing, unreadable, group/world-readable or corrupt file is an error,
because a plugin that silently started with a new key would make every stored Secret unreadable.

Every key's id is derived from its material (``local:`` + 32 hex digits of SHA-256 over a domain tag
and the key), so the id changes exactly when the key changes and a flipped bit in the file is caught
as corruption. Retired ids are remembered and never accepted again.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubestrata.errors import KubestrataError

KIND = "KubestrataKMSKeyring"
FORMAT_VERSION = 1
KEY_BYTES = 32  # AES-256
_ID_TAG = b"kubestrata kms v2 key id\x00"


class KeyringError(KubestrataError):
    """The keyring file is missing, unreadable, too open or corrupt (names the file and the field)."""


def key_id_for(material: bytes) -> str:
    """The public, stable identity of a key: a one-way hash of its material (logged by the API server)."""
    return "local:" + hashlib.sha256(_ID_TAG + material).hexdigest()[:32]


@dataclass(frozen=True)
class Key:
    id: str
    material: bytes = field(repr=False)
    created: str

    def to_doc(self) -> dict[str, Any]:
        return {"id": self.id, "created": self.created, "secret": base64.b64encode(self.material).decode()}


@dataclass
class Keyring:
    path: Path
    keys: list[Key]
    primary_id: str
    retired: list[str] = field(default_factory=list)

    @property
    def primary(self) -> Key:
        return self.by_id[self.primary_id]

    @property
    def by_id(self) -> dict[str, Key]:
        return {k.id: k for k in self.keys}

    def to_doc(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "version": FORMAT_VERSION,
            "primary": self.primary_id,
            "keys": [k.to_doc() for k in self.keys],
            "retired": list(self.retired),
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_key() -> Key:
    material = secrets.token_bytes(KEY_BYTES)
    return Key(key_id_for(material), material, _now())


def _corrupt(path: Path, where: str, detail: str) -> KeyringError:
    return KeyringError(
        f"{path}: field {where}: {detail}; the keyring is corrupt and the plugin refuses to start "
        "(restore it from backup; a new key would make every stored Secret unreadable)"
    )


def parse(path: Path, raw: bytes) -> Keyring:
    """A keyring from the file's bytes, every field verified."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KeyringError(
            f"{path}: not valid JSON ({e}); the keyring is corrupt and the plugin refuses to start "
            "(restore it from backup; a new key would make every stored Secret unreadable)"
        ) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise _corrupt(path, "kind", f"expected {KIND!r}")
    if doc.get("version") != FORMAT_VERSION:
        raise _corrupt(path, "version", f"unsupported format version {doc.get('version')!r}")
    raw_keys = doc.get("keys")
    if not isinstance(raw_keys, list) or not raw_keys:
        raise _corrupt(path, "keys", "no keys")
    keys: list[Key] = []
    for i, k in enumerate(raw_keys):
        if not isinstance(k, dict):
            raise _corrupt(path, f"keys[{i}]", "not an object")
        secret, kid, created = k.get("secret"), k.get("id"), k.get("created", "")
        if not isinstance(secret, str) or not isinstance(kid, str) or not isinstance(created, str):
            raise _corrupt(path, f"keys[{i}]", "id, secret and created must be strings")
        try:
            material = base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            raise _corrupt(path, f"keys[{i}].secret", "not base64") from None
        if len(material) != KEY_BYTES:
            raise _corrupt(path, f"keys[{i}].secret", f"{len(material)} bytes, expected {KEY_BYTES}")
        if key_id_for(material) != kid:
            raise _corrupt(path, f"keys[{i}].id", f"{kid} does not match the key material")
        keys.append(Key(kid, material, created))
    ids = [k.id for k in keys]
    if len(set(ids)) != len(ids):
        raise _corrupt(path, "keys", "duplicate key")
    primary = doc.get("primary")
    if primary not in ids:
        raise _corrupt(path, "primary", f"{primary!r} is not one of the keys")
    retired = doc.get("retired", [])
    if not isinstance(retired, list) or not all(isinstance(r, str) for r in retired):
        raise _corrupt(path, "retired", "must be a list of key ids")
    if set(retired) & set(ids):
        raise _corrupt(path, "retired", "a retired key id is still in the keyring")
    return Keyring(path, keys, primary, retired)


def load(path: str | Path) -> Keyring:
    """Read and verify the keyring; never creates one."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise KeyringError(
            f"{p}: no keyring; create one with `kubestrata kms init --keyring {p}` (the plugin never "
            "generates a key by itself)"
        ) from None
    except OSError as e:
        raise KeyringError(f"{p}: cannot read the keyring: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyringError(f"{p}: not a regular file")
    if st.st_mode & 0o077:
        raise KeyringError(
            f"{p}: the keyring is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"chmod 600 {p}"
        )
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise KeyringError(f"{p}: cannot read the keyring: {e.strerror or e}") from None
    return parse(p, raw)


def fingerprint(path: str | Path) -> tuple[int, int, int, int] | None:
    """What changes when the file is replaced or rewritten (for reloading a running plugin)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_dev)


def _write(ring: Keyring) -> None:
    """Atomically replace the file: a new 0600 file beside it, fsync, rename, fsync the directory."""
    p = ring.path
    data = (json.dumps(ring.to_doc(), indent=2) + "\n").encode()
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(p.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise init/rotate/retire on one keyring (a lock file beside it)."""
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def init(path: str | Path) -> Keyring:
    """Create a keyring with one fresh key; refuses to touch an existing file."""
    p = Path(path)
    if not p.parent.is_dir():
        raise KeyringError(f"{p}: directory {p.parent} does not exist")
    with _locked(p):
        if p.exists() or p.is_symlink():
            raise KeyringError(f"{p}: a keyring already exists; it is never overwritten (use `kms rotate`)")
        key = new_key()
        ring = Keyring(p, [key], key.id)
        _write(ring)
    return ring


def rotate(path: str | Path, *, primary: bool = True) -> tuple[Keyring, Key]:
    """Add a fresh key and make it primary (or, with primary=False, only stage it for decryption so
    that every control-plane node can have it before any node encrypts with it); every older key
    stays for decryption."""
    p = Path(path)
    with _locked(p):
        ring = load(p)
        key = new_key()
        # 128-bit ids from 256-bit random keys do not collide; the check keeps the promise explicit
        if key.id in ring.by_id or key.id in ring.retired:
            raise KeyringError(f"{p}: generated key id {key.id} was used before; run rotate again")
        ring.keys.append(key)
        if primary:
            ring.primary_id = key.id
        _write(ring)
    return ring, key


def promote(path: str | Path, key_id: str) -> Keyring:
    """Make a staged key the primary (the second half of a rotation across several nodes)."""
    p = Path(path)
    with _locked(p):
        ring = load(p)
        if key_id not in ring.by_id:
            raise KeyringError(f"{p}: no key {key_id} in the keyring (copy the staged keyring here first)")
        if ring.primary_id != key_id:
            ring.primary_id = key_id
            _write(ring)
    return ring


def retire(path: str | Path, key_id: str) -> Keyring:
    """Remove a key that is no longer primary; data still encrypted under it becomes unreadable."""
    p = Path(path)
    with _locked(p):
        ring = load(p)
        if key_id not in ring.by_id:
            raise KeyringError(f"{p}: no key {key_id} in the keyring")
        if key_id == ring.primary_id:
            raise KeyringError(f"{p}: {key_id} is the primary key; rotate first, rewrap, then retire it")
        ring.keys = [k for k in ring.keys if k.id != key_id]
        ring.retired.append(key_id)
        _write(ring)
    return ring
