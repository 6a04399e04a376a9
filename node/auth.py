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

import base64
import binascii
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node.nonces import DEFAULT_WINDOW, NonceStore
from schemas.errors import AuthError
from schemas.signing import (
    HEADER_DIGEST,
    HEADER_FORMATS,
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SIGNED_HEADERS,
    body_digest,
    canonical_message,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verified:
    """A request that passed every check: who signed it, when, with which nonce."""

    key_fingerprint: str
    timestamp: int
    nonce: str


def _signing_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The signing headers, looked up case-insensitively, each checked for its format."""
    lowered = {name.lower(): value for name, value in headers.items()}
    found: dict[str, str] = {}
    missing = [name for name in SIGNED_HEADERS if not lowered.get(name.lower())]
    if missing:
        raise AuthError(
            f"missing header(s) {', '.join(missing)}; sign the request with "
            "schemas.signing.sign_headers",
            code="unsigned",
        )
    for name in SIGNED_HEADERS:
        value = lowered[name.lower()].strip()
        if not HEADER_FORMATS[name].fullmatch(value):
            raise AuthError(
                f"header {name} is malformed (expected {HEADER_FORMATS[name].pattern})",
                code="unsigned",
            )
        found[name] = value
    return found


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
    fingerprints to the coordinator keys this node trusts (``node.trust.load_trusted``).
    ``window`` may not exceed the nonce store's, or a replay could outlive its nonce.
    """
    if window > nonces.window:
        raise ValueError("the time window exceeds how long the nonce store remembers")
    found = _signing_headers(headers)
    key_fp = found[HEADER_KEY]
    public_key = trusted.get(key_fp)
    if public_key is None:
        raise AuthError(
            f"key {key_fp[:16]}… is not trusted here; trust it with "
            "`fedpsy node trust DIR --coordinator-key FILE`",
            code="unknown_key",
        )
    digest = body_digest(body)
    if not hmac.compare_digest(digest, found[HEADER_DIGEST]):
        raise AuthError("the body's sha256 differs from the signed digest", code="tampered")
    message = canonical_message(
        method, path, digest, found[HEADER_TIMESTAMP], found[HEADER_NONCE], key_fp
    )
    try:
        public_key.verify(base64.b64decode(found[HEADER_SIGNATURE], validate=True), message)
    except (InvalidSignature, binascii.Error) as exc:
        raise AuthError(
            f"the signature of {method.upper()} {path} does not verify with key {key_fp[:16]}…",
            code="bad_signature",
        ) from exc
    timestamp = int(found[HEADER_TIMESTAMP])
    if abs(now - timestamp) > window:
        raise AuthError(
            f"the request time is more than {window:g} s from this node's clock; "
            "check both clocks (NTP) and resend",
            code="expired",
        )
    nonce = found[HEADER_NONCE]
    if not nonces.record(nonce, now):
        raise AuthError("this nonce was already used; sign each request afresh", code="replayed")
    logger.debug("verified %s %s signed by %s", method.upper(), path, key_fp[:16])
    return Verified(key_fingerprint=key_fp, timestamp=timestamp, nonce=nonce)
