"""Verifying a signed request (see ``schemas.signing`` for the format).

Checks run in a fixed order and stop at the first failure, each with its own code:

1. headers   — every signing header present and well formed   → ``unsigned``
2. key       — the fingerprint names a trusted key             → ``unknown_key``
3. digest    — the body hashes to the signed digest            → ``tampered``
4. signature — Ed25519 signature over the canonical message     → ``bad_signature``
5. time      — timestamp within ``±window`` of the node's clock → ``expired``
6. nonce     — never used before; recorded only now, after every
               other check passed                              → ``replayed``

The time is checked after the signature so that an unauthenticated party learns nothing
about the node's clock, and the nonce is recorded last so that a forged or stale request
cannot burn a nonce the real coordinator is about to use.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node.auth.nonces import DEFAULT_WINDOW, NonceStore
from schemas.errors import AuthError, ErrorCode
from schemas.verify import SignedBy, check_signature

logger = logging.getLogger(__name__)

Verified = SignedBy
"""A request that passed every check: who signed it, when, with which nonce."""

TRUST_HINT = "; trust it with `fedpsy node trust DIR --coordinator-key FILE`"


def verify_request(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    trusted: Mapping[str, Ed25519PublicKey],
    nonces: NonceStore,
    now: float,
    window: float = DEFAULT_WINDOW,
) -> Verified:
    """Check the signature headers of a request; raise :class:`AuthError` when any fails.

    ``path`` is the path with its query string exactly as received; ``trusted`` maps
    fingerprints to the coordinator keys this node trusts (``node.auth.trust.load_trusted``).
    ``window`` may not exceed the nonce store's, or a replay could outlive its nonce.
    """
    if window > nonces.window:
        raise ValueError("the time window exceeds how long the nonce store remembers")
    signed = check_signature(headers, method, path, body, trusted, now, window, TRUST_HINT)
    if not nonces.record(signed.nonce, now):
        raise AuthError(
            "this nonce was already used; sign each request afresh", code=ErrorCode.REPLAYED
        )
    logger.debug("verified %s %s signed by %s", method.upper(), path, signed.key_fingerprint[:16])
    return signed
