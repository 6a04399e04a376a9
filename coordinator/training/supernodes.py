"""The sites' SuperNodes the coordinator's SuperLink admits: registering their public keys.

With TLS the SuperLink runs with ``--enable-supernode-auth`` (:mod:`fedpsy.flower`) and
admits a SuperNode only once its public key is registered through the SuperLink's Control
API; a SuperNode with any other key is refused when it connects. Registration is
``flwr supernode register KEY fedpsy --format json`` with the coordinator's Flower
environment (``FLWR_HOME`` = ``DIR/flwr``, whose ``config.toml`` holds the connection
``fedpsy`` written when ``fedpsy coordinator serve --flower`` starts), so it works only
while the SuperLink runs; Flower's open-source SuperLink asks for no account for it.

The key is checked here first, because Flower reports a wrong file with a bare exit code:
it must be the site's ``supernode.pub``, one OpenSSH line with an ECDSA key on a NIST
curve (``ecdsa-sha2-nistp384 AAAA…``), never a PEM file or a private key. Registrations
live in the SuperLink's database (``DIR/flwr/superlink.db``) and survive its restarts.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from coordinator.training.superlink import CONNECTION, flwr_json
from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import ssh_fingerprint

NIST_CURVES = ("secp256r1", "secp384r1", "secp521r1")
ALREADY_REGISTERED = "Public key already in use"


@dataclass(frozen=True)
class Registered:
    """One registration: the SuperLink's node id for the key (None when the key was
    registered before) and the key's fingerprint."""

    fingerprint: str
    node_id: int | None


def read_public_key(path: Path) -> str:
    """The SuperNode public key in ``path`` as its OpenSSH line, or an error saying which
    file to ask the site for."""
    wanted = (
        "expected the site's SuperNode public key, one OpenSSH line 'ecdsa-sha2-nistp384 "
        "AAAA…' (the file DIR/keys/supernode.pub that `fedpsy node supernode-key DIR` shows "
        "at the site)"
    )
    if not path.is_file():
        raise FedpsyError(f"{path} does not exist; {wanted}", code=ErrorCode.BAD_INPUT)
    raw = path.read_bytes()
    if b"PRIVATE KEY" in raw:
        raise FedpsyError(
            f"{path} is a private key: it must never leave the site (ask for a new SuperNode "
            f"key if it did); {wanted}",
            code=ErrorCode.BAD_INPUT,
        )
    try:
        key = serialization.load_ssh_public_key(raw.strip())
    except (ValueError, UnsupportedAlgorithm):
        raise FedpsyError(
            f"{path} is not a SuperNode public key; {wanted}", code=ErrorCode.BAD_INPUT
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in NIST_CURVES:
        raise FedpsyError(
            f"{path} is not an ECDSA key on a NIST curve, which Flower requires; {wanted}",
            code=ErrorCode.BAD_INPUT,
        )
    return raw.decode("ascii").split("\n", 1)[0].strip()


def _connection(home: Path) -> dict[str, Any]:
    """The connection ``fedpsy`` in ``home/config.toml``, or an error naming what to start."""
    config = home / "config.toml"
    try:
        table = tomllib.loads(config.read_text(encoding="utf-8"))["superlink"][CONNECTION]
    except (OSError, ValueError, KeyError, TypeError):
        raise FedpsyError(
            f"no SuperLink connection in {config}: start the SuperLink with `fedpsy "
            f"coordinator serve {home.parent} --flower` (with TLS) and register keys while "
            "it runs",
            code=ErrorCode.SUPERLINK_ERROR,
        ) from None
    return dict(table)


def control(home: Path, *args: str) -> dict[str, Any]:
    """:func:`~coordinator.training.superlink.flwr_json` for the SuperLink's Control API,
    saying what to do when the SuperLink does not answer."""
    answer = flwr_json(home, *args)
    if answer.get("success") is False:
        message = str(answer.get("error-message", "")).strip()
        if "unavailable" in message:
            address = message.split("(", 1)[-1].split(")", 1)[0]
            raise FedpsyError(
                f"the SuperLink at {address} does not answer: is `fedpsy coordinator serve "
                f"{home.parent} --flower` running (it checks its TLS certificate at start)?",
                code=ErrorCode.SUPERLINK_ERROR,
            )
        answer["error-message"] = message
    return answer


def register_supernode(home: Path, public_key: Path) -> Registered:
    """Register the SuperNode public key in ``public_key`` with the SuperLink whose
    connection is in ``home`` (the coordinator's ``DIR/flwr``)."""
    line = read_public_key(public_key)
    if _connection(home).get("insecure"):
        raise FedpsyError(
            "the SuperLink runs without TLS, so it admits any SuperNode and a registration "
            "would change nothing: set the coordinator's tls_certfile, tls_keyfile and "
            "tls_ca_certs and restart `fedpsy coordinator serve --flower`",
            code=ErrorCode.CONFIG_INVALID,
        )
    answer = control(home, "supernode", "register", str(public_key.resolve()), CONNECTION)
    if answer.get("success"):
        return Registered(ssh_fingerprint(line), int(answer["node-id"]))
    message = str(answer.get("error-message", ""))
    if ALREADY_REGISTERED in message:
        return Registered(ssh_fingerprint(line), None)
    raise FedpsyError(
        f"the SuperLink did not register the key: {message[-300:]}", code=ErrorCode.SUPERLINK_ERROR
    )


def list_supernodes(home: Path) -> list[dict[str, Any]]:
    """The SuperNodes the SuperLink knows (``flwr supernode list``): node id, status
    (registered, online, offline, …) and times."""
    _connection(home)
    answer = control(home, "supernode", "list", CONNECTION)
    if not answer.get("success"):
        raise FedpsyError(
            f"flwr supernode list failed: {answer.get('error-message', '')}",
            code=ErrorCode.SUPERLINK_ERROR,
        )
    return [dict(node) for node in answer.get("nodes", [])]


__all__ = ["Registered", "list_supernodes", "read_public_key", "register_supernode"]
