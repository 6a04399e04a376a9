"""The node's Ed25519 identity: created at init, presented in ``/v1/info``; secrets
derived from it."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from node.layout import NodeDir
from schemas.keys import (
    generate_private_key,
    load_private_key,
    write_private_key,
    write_public_key,
)


def create_identity(node_dir: NodeDir) -> None:
    """Write a fresh key pair into ``DIR/keys`` (private key 0600)."""
    key = generate_private_key()
    write_private_key(node_dir.private_key, key)
    write_public_key(node_dir.public_key, key.public_key())


def load_identity(node_dir: NodeDir) -> Ed25519PrivateKey:
    return load_private_key(node_dir.private_key)


def secret_salt(key: Ed25519PrivateKey, purpose: str) -> bytes:
    """A secret of this node for ``purpose`` (e.g. training splits), derived from its
    private key with HKDF-SHA256: stable across restarts, unknown outside the site."""
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(raw)
