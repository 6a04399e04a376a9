"""The coordinator keys a node trusts: ``DIR/trusted/<fingerprint>.pem``.

``fedpsy node trust DIR --coordinator-key FILE`` copies a coordinator's public key into
the node's ``trusted/`` directory under its fingerprint; the node accepts requests signed
by any key there and by no other. Files are public keys (0644). A file whose name does
not match the fingerprint of the key inside, or that holds anything but an Ed25519 public
key, is an error naming the file — the node refuses to start rather than guess.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import fingerprint, load_public_key, write_public_key

logger = logging.getLogger(__name__)

TRUSTED_DIR = "trusted"
SUFFIX = ".pem"


@dataclass(frozen=True)
class TrustedKey:
    """One trusted key: its fingerprint and the file holding it."""

    fingerprint: str
    path: Path


def trusted_dir(node_dir: Path) -> Path:
    """Where ``node_dir`` keeps the keys it trusts."""
    return node_dir / TRUSTED_DIR


def add_trusted_key(node_dir: Path, key_file: Path) -> TrustedKey:
    """Trust the Ed25519 public key in ``key_file``; adding a key twice is harmless."""
    key = load_public_key(key_file)
    fp = fingerprint(key)
    target = trusted_dir(node_dir) / f"{fp}{SUFFIX}"
    if target.exists():
        logger.info("key %s is already trusted", fp)
    else:
        write_public_key(target, key)
        logger.info("now trusting key %s from %s", fp, key_file)
    return TrustedKey(fingerprint=fp, path=target)


def remove_trusted_key(node_dir: Path, key_fingerprint: str) -> None:
    """Stop trusting the key with ``key_fingerprint``."""
    target = trusted_dir(node_dir) / f"{key_fingerprint}{SUFFIX}"
    if not target.is_file():
        raise FedpsyError(
            f"no trusted key {key_fingerprint} in {trusted_dir(node_dir)}; "
            "the trusted keys are the .pem files there, named by fingerprint",
            code=ErrorCode.NOT_FOUND,
        )
    target.unlink()
    logger.info("no longer trusting key %s", key_fingerprint)


def _files(node_dir: Path) -> list[Path]:
    folder = trusted_dir(node_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == SUFFIX)


def load_trusted(node_dir: Path) -> dict[str, Ed25519PublicKey]:
    """Every trusted key by fingerprint; a bad or misnamed file is an error naming it."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in _files(node_dir):
        key = load_public_key(path)
        fp = fingerprint(key)
        if path.stem != fp:
            raise FedpsyError(
                f"{path}: the key inside has fingerprint {fp}, not the one in the file name; "
                "delete the file and trust the key again with "
                "`fedpsy node trust DIR --coordinator-key FILE`",
                code=ErrorCode.KEY_INVALID,
            )
        keys[fp] = key
    return keys


def list_trusted(node_dir: Path) -> list[TrustedKey]:
    """The trusted keys, sorted by fingerprint (each file checked as by :func:`load_trusted`)."""
    return [
        TrustedKey(fingerprint=fp, path=trusted_dir(node_dir) / f"{fp}{SUFFIX}")
        for fp in sorted(load_trusted(node_dir))
    ]
