"""The site's SuperNode key: how the consortium's SuperLink tells this site's SuperNode
from any other machine that can reach it.

With TLS, the coordinator's SuperLink runs with ``--enable-supernode-auth``: it accepts a
SuperNode only when the coordinator operator has registered its public key
(``fedpsy coordinator register-supernode``, which calls ``flwr supernode register``), and
every request the SuperNode sends is signed with the private key. TLS alone would let any
holder of the consortium CA certificate connect a SuperNode and receive training work.

Flower 1.42 wants an ECDSA key on a NIST curve: the private key in OpenSSH format for
``flower-supernode --auth-supernode-private-key``, the public key as one OpenSSH line
(``ecdsa-sha2-nistp384 AAAA…``) for ``flwr supernode register``; both refuse PEM. The pair
is P-384, as in Flower's guide, and lives next to the node's Ed25519 identity
(``DIR/keys/supernode.key``, 0600, and ``DIR/keys/supernode.pub``); it is created the
first time it is needed and kept, since the coordinator knows the site by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import PRIVATE_MODE, PUBLIC_MODE, ssh_fingerprint, write_secure

PRIVATE_FILE = "supernode.key"
PUBLIC_FILE = "supernode.pub"


@dataclass(frozen=True)
class SupernodeKey:
    """The site's SuperNode key pair on disk."""

    private: Path
    public: Path
    line: str
    """The public key as the OpenSSH line ``flwr supernode register`` reads."""
    created: bool = False

    @property
    def fingerprint(self) -> str:
        return ssh_fingerprint(self.line)


def _public_line(key: ec.EllipticCurvePrivateKey) -> str:
    raw = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return raw.decode("ascii")


def _load_private(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except (ValueError, UnsupportedAlgorithm, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise FedpsyError(
            f"{path} is not an unencrypted OpenSSH ECDSA private key; move it away and a new "
            "SuperNode key is created on the next start (the coordinator must then register "
            f"the new {PUBLIC_FILE})",
            code=ErrorCode.CONFIG_INVALID,
        )
    return key


def supernode_key(node_dir: Path) -> SupernodeKey:
    """The site's SuperNode key pair in ``node_dir/keys``, created on first use; a missing
    public key file is written again from the private key."""
    keys = node_dir / "keys"
    private, public = keys / PRIVATE_FILE, keys / PUBLIC_FILE
    created = not private.exists()
    if created:
        key = ec.generate_private_key(ec.SECP384R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        write_secure(private, pem, PRIVATE_MODE)
    else:
        key = _load_private(private)
    line = _public_line(key)
    if created or not public.exists() or public.read_text(errors="replace").strip() != line:
        write_secure(public, (line + "\n").encode("ascii"), PUBLIC_MODE, overwrite=True)
    return SupernodeKey(private, public, line, created)


__all__ = ["PRIVATE_FILE", "PUBLIC_FILE", "SupernodeKey", "supernode_key"]
