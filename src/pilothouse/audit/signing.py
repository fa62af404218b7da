"""The Ed25519 key that signs audit checkpoints, kept in a file outside the database.

The server creates the key (PKCS#8 PEM, mode 0600, in a 0700 directory) the first time it starts without one.
Verification needs only public keys: the signing key's own, plus the public keys of rotated-out keys that the
operator lists as trusted, so an auditor can verify with public keys alone (`pilothouse audit public-key`).
A key is named by its id: the first 16 hex digits of the SHA-256 of its raw public bytes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pilothouse.store.private_files import PRIVATE_FILE, private_dir

__all__ = [
    "AuditKeyError",
    "Signer",
    "TrustedKeys",
    "key_id",
    "load_or_create_signer",
    "load_public_key",
    "load_signer",
]

log = logging.getLogger("pilothouse.audit")


class AuditKeyError(Exception):
    """A key file is missing, unreadable or not an Ed25519 key; the message names the file and what to do."""


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name of a public key (recorded on each checkpoint)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True, slots=True)
class Signer:
    """The private key and where it lives."""

    path: Path
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, message: bytes) -> str:
        """The signature of `message`, hex."""
        return self.private.sign(message).hex()

    def public_pem(self) -> str:
        return public_pem(self.public)


class TrustedKeys:
    """Public keys whose checkpoint signatures are accepted, by key id."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id(k): k for k in keys}

    @property
    def ids(self) -> list[str]:
        return sorted(self._keys)

    def verify(self, kid: str, message: bytes, signature_hex: str) -> str | None:
        """None when `signature_hex` is `kid`'s valid signature of `message`, else why not."""
        public = self._keys.get(kid)
        if public is None:
            return f"signed by key {kid}, which is not a trusted key ({', '.join(self.ids) or 'none'})"
        try:
            public.verify(bytes.fromhex(signature_hex), message)
        except (InvalidSignature, ValueError):
            return f"the signature does not match its fields (key {kid})"
        return None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AuditKeyError(
            f"no audit signing key at {path}: start the server once to create it, or give its path"
        ) from None
    except OSError as exc:
        raise AuditKeyError(f"cannot read the audit key file {path}: {exc.strerror}") from None


def load_signer(path: Path) -> Signer:
    """The signing key in `path` (it must exist)."""
    data = _read(path)
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise AuditKeyError(f"{path} holds a {type(private).__name__}, not an Ed25519 key")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "the audit signing key %s is mode %o: other users may read it; run `chmod 600 %s`", path, mode, path
        )
    return Signer(path, private)


def load_or_create_signer(path: Path) -> Signer:
    """The signing key in `path`, created (0600, directory 0700) when the file does not exist."""
    if path.exists():
        return load_signer(path)
    private_dir(path.parent)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:  # O_EXCL: two replicas starting together keep one key (the loser reads the winner's)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return load_signer(path)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    log.info(  # a first start: not a warning (`pilothouse up` keeps its stderr to real problems)
        "created the audit signing key %s (key id %s); keep it outside the database's backups",
        path,
        key_id(private.public_key()),
    )
    return Signer(path, private)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file holding the public key (or the private key it belongs to)."""
    data = _read(path)
    key: object
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise AuditKeyError(f"{path} is not a PEM Ed25519 public (or private) key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key
