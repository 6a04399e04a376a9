"""Signed X25519 keys, pairwise session keys and the encrypted share channel.

Each node holds a long-term X25519 key pair. Its public key travels in a
:class:`~schemas.secagg.wire.KeyBundle` together with the node's Ed25519 identity and
the identity's signature over ``"fedpsy-secagg-key-v1" ‖ x25519 public key``, so a relay
(the coordinator) cannot swap the key without the signature failing. The pair key of
nodes ``u`` and ``v`` in a session is ``HKDF(X25519(u, v), salt = sha256(session),
info = "fedpsy-secagg-v1 pair" ‖ sorted sites ‖ their keys)``: fresh per session (a node
accepts each session id once), agreed without any secret crossing the coordinator
(RFC 7748, RFC 5869). Shamir shares from ``u`` to ``v`` are sealed with AES-256-GCM under
``HKDF(pair key, "share" ‖ sender ‖ recipient)``, nonce = round, additional data =
session ‖ round ‖ sender ‖ recipient (NIST SP 800-38D; each key/nonce pair seals once).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import fingerprint, public_key_from_pem, public_pem
from schemas.secagg.prg import DOMAIN, field, hkdf
from schemas.secagg.wire import KeyBundle

STATEMENT = b"fedpsy-secagg-key-v1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise FedpsyError(f"{where}: not base64", code=ErrorCode.REQUEST_INVALID) from exc


def raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def make_bundle(identity: Ed25519PrivateKey, key: X25519PrivateKey) -> KeyBundle:
    """The signed public bundle of a node's X25519 key."""
    raw = raw_public(key.public_key())
    return KeyBundle(
        identity=public_pem(identity.public_key()).decode("ascii"),
        key=b64(raw),
        signature=b64(identity.sign(STATEMENT + raw)),
    )


def bundle_fingerprint(bundle: KeyBundle) -> str:
    """The fingerprint of the identity the bundle names."""
    return fingerprint(public_key_from_pem(bundle.identity.encode(), "key bundle identity"))


def verify_bundle(bundle: KeyBundle, site: str) -> X25519PublicKey:
    """The bundle's X25519 key, if the named identity signed it; else ``peer_key_mismatch``."""
    identity = public_key_from_pem(bundle.identity.encode(), f"identity of {site}")
    raw = unb64(bundle.key, f"secure aggregation key of {site}")
    try:
        identity.verify(unb64(bundle.signature, f"key signature of {site}"), STATEMENT + raw)
        return X25519PublicKey.from_public_bytes(raw)
    except (InvalidSignature, ValueError):
        raise FedpsyError(
            f"the secure aggregation key relayed for site {site} is not signed by that site's "
            "identity; the relay may have substituted it",
            code=ErrorCode.PEER_KEY_MISMATCH,
        ) from None


def pair_key(
    mine: X25519PrivateKey, theirs: X25519PublicKey, session: str, sites: tuple[str, str]
) -> bytes:
    """The session key both nodes of a pair derive (the same at either end)."""
    shared = mine.exchange(theirs)
    keys = sorted([raw_public(mine.public_key()), raw_public(theirs)])
    low, high = sorted(sites)
    salt = hashlib.sha256(session.encode("utf-8")).digest()
    return hkdf(shared, DOMAIN + b" pair" + field(low, high, *keys), salt=salt)


def _share_key(key: bytes, sender: str, recipient: str) -> AESGCM:
    return AESGCM(hkdf(key, DOMAIN + b" share" + field(sender, recipient)))


def _aad(session: str, round_: int, sender: str, recipient: str) -> bytes:
    return field(session, round_, sender, recipient)


def seal(
    key: bytes, session: str, round_: int, sender: str, recipient: str, plaintext: bytes
) -> str:
    """Shares from ``sender`` to ``recipient`` for ``round_``, sealed (base64)."""
    nonce = round_.to_bytes(12, "big")
    sealed = _share_key(key, sender, recipient).encrypt(
        nonce, plaintext, _aad(session, round_, sender, recipient)
    )
    return b64(sealed)


def unseal(
    key: bytes, session: str, round_: int, sender: str, recipient: str, sealed: str
) -> bytes:
    """Open sealed shares; a tampered or misaddressed message is an error naming the sender."""
    nonce = round_.to_bytes(12, "big")
    try:
        return _share_key(key, sender, recipient).decrypt(
            nonce, unb64(sealed, f"shares from {sender}"), _aad(session, round_, sender, recipient)
        )
    except InvalidTag:
        raise FedpsyError(
            f"the shares relayed from site {sender} for round {round_} do not "
            "authenticate (altered or misaddressed)",
            code=ErrorCode.SECURE_AGGREGATION_FAILED,
        ) from None
