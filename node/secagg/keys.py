"""The node's long-term secure aggregation key and the peer identities it has pinned.

``DIR/keys/secagg.key``: the X25519 private key (PKCS#8 PEM, 0600), created on first use.
``DIR/keys/peers.json``: ``{site: identity fingerprint}`` of every peer seen in a session,
pinned the first time (trust on first use). The coordinator relays both the peers' keys
and their identities; a key must be signed by the identity relayed with it, and that
identity must be the one pinned for the site, so a relay that swaps a key is caught by
the signature, and one that swaps key and identity together is caught by the pin once
the node has met the real peer.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.layout import NodeDir
from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import write_secure

logger = logging.getLogger(__name__)
_lock = threading.Lock()


def key_path(node_dir: NodeDir) -> Path:
    return node_dir.keys / "secagg.key"


def pins_path(node_dir: NodeDir) -> Path:
    return node_dir.keys / "peers.json"


def _write(path: Path, data: bytes, mode: int) -> None:
    write_secure(path, data, mode, overwrite=True)


def load_or_create_key(node_dir: NodeDir) -> X25519PrivateKey:
    """The node's X25519 key; written (0600) the first time it is needed."""
    path = key_path(node_dir)
    with _lock:
        if not path.exists():
            key = X25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write(path, pem, 0o600)
            logger.info("created the secure aggregation key %s", path)
            return key
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, X25519PrivateKey):
        raise FedpsyError(
            f"{path} does not hold an X25519 private key; move it away and a new one is made",
            code=ErrorCode.KEY_INVALID,
        )
    return loaded


def load_pins(node_dir: NodeDir) -> dict[str, str]:
    path = pins_path(node_dir)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in dict(data).items()}


def check_and_pin(node_dir: NodeDir, seen: dict[str, str]) -> list[str]:
    """Compare relayed identities with the pins; pin new sites. Returns newly pinned sites.

    A site whose relayed identity differs from its pin is ``peer_key_mismatch`` (nothing
    is pinned then).
    """
    with _lock:
        pins = load_pins(node_dir)
        for site, fp in sorted(seen.items()):
            if site in pins and pins[site] != fp:
                raise FedpsyError(
                    f"the identity relayed for site {site} ({fp[:16]}…) is not the one this "
                    f"node pinned for it ({pins[site][:16]}…); if {site} really changed its "
                    f"key, remove it from {pins_path(node_dir)}",
                    code=ErrorCode.PEER_KEY_MISMATCH,
                )
        new = sorted(s for s in seen if s not in pins)
        if new:
            pins.update({s: seen[s] for s in new})
            _write(pins_path(node_dir), json.dumps(pins, indent=2, sort_keys=True).encode(), 0o644)
        return new
