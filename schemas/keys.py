"""Ed25519 identity keys: generation, PEM files with safe permissions, fingerprints.

Both sides hold one Ed25519 key pair (RFC 8032): the coordinator signs every request it
sends, a node pins the coordinator's public key (``fedpsy node trust``) and the
coordinator pins each node's key. Private keys are PKCS#8 PEM written with mode 0600,
public keys SubjectPublicKeyInfo PEM with mode 0644. A key's fingerprint is the sha256 of
its 32 raw public bytes, in lower-case hex; it names the key in headers and file names.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from schemas.errors import ErrorCode, FedpsyError

logger = logging.getLogger(__name__)

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


def generate_private_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """sha256 of the raw 32-byte public key, lower-case hex (64 characters)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def ssh_fingerprint(line: str) -> str:
    """``SHA256:…`` of an OpenSSH public key line (a site's Flower SuperNode key), as
    ``ssh-keygen -l`` prints it, so a site and the coordinator's operator can compare it."""
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    """The public key as SubjectPublicKeyInfo PEM."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_secure(
    path: Path,
    content: bytes,
    mode: int,
    *,
    overwrite: bool = False,
    exists_code: ErrorCode = ErrorCode.BAD_INPUT,
) -> None:
    """Write ``content`` to ``path`` atomically with ``mode`` set before any byte is
    written (whatever the umask); an existing file is an ``exists_code`` error unless
    ``overwrite``."""
    if path.exists() and not overwrite:
        raise FedpsyError(
            f"{path} already exists; refusing to overwrite it (move it away first)",
            code=exists_code,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_private_key(path: Path, key: Ed25519PrivateKey, *, overwrite: bool = False) -> None:
    """Write ``key`` as PEM readable by the owner only (0600)."""
    write_secure(path, private_pem(key), PRIVATE_MODE, overwrite=overwrite)


def write_public_key(path: Path, key: Ed25519PublicKey, *, overwrite: bool = False) -> None:
    """Write ``key`` as PEM readable by everyone (0644)."""
    write_secure(path, public_pem(key), PUBLIC_MODE, overwrite=overwrite)


def _invalid(where: str, why: str) -> FedpsyError:
    return FedpsyError(f"{where}: {why}", code=ErrorCode.KEY_INVALID)


def public_key_from_pem(data: bytes, where: str = "key") -> Ed25519PublicKey:
    """Parse a PEM public key; anything but an Ed25519 public key is a clear error.

    ``where`` names the source (a file name, a URL) in the error.
    """
    if b"PRIVATE KEY" in data:
        raise _invalid(where, "this is a private key; give the matching public key (.pub)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _invalid(where, f"not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise _invalid(where, f"expected an Ed25519 key, found {type(key).__name__}")
    return key


def private_key_from_pem(data: bytes, where: str = "key") -> Ed25519PrivateKey:
    """Parse an unencrypted PEM private key; anything but Ed25519 is a clear error."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _invalid(where, f"not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise _invalid(where, f"expected an Ed25519 key, found {type(key).__name__}")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _invalid(str(path), f"cannot read the key file ({exc.strerror})") from exc


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file ``path``."""
    return public_key_from_pem(_read(path), str(path))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path`` (a warning if others can read it)."""
    data = _read(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        logger.warning(
            "private key %s has mode %o; restrict it with `chmod 600 %s`", path, mode, path
        )
    return private_key_from_pem(data, str(path))
