"""Checking a signed request against known public keys (format: ``schemas.signing``).

Used where the signer's key is pinned rather than trusted from a directory — the
coordinator checking what a pull node sends (``coordinator.federation.mailbox``). The checks and
their codes are those of the node's ``node.auth.verify.verify_request``: headers (``unsigned``),
key (``unknown_key``), digest (``tampered``), signature (``bad_signature``), time
(``expired``); the caller records the nonce only after all of them passed (``replayed``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.errors import AuthError, ErrorCode
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

WINDOW_S = 300.0


@dataclass(frozen=True)
class SignedBy:
    """A request whose signature verified: the key, its time and its nonce."""

    key_fingerprint: str
    timestamp: int
    nonce: str


def signing_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The signing headers, looked up case-insensitively, each checked for its format."""
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in SIGNED_HEADERS if not lowered.get(name.lower())]
    if missing:
        raise AuthError(
            f"missing header(s) {', '.join(missing)}; sign the request with "
            "schemas.signing.sign_headers",
            code=ErrorCode.UNSIGNED,
        )
    found: dict[str, str] = {}
    for name in SIGNED_HEADERS:
        value = lowered[name.lower()].strip()
        if not HEADER_FORMATS[name].fullmatch(value):
            raise AuthError(
                f"header {name} is malformed (expected {HEADER_FORMATS[name].pattern})",
                code=ErrorCode.UNSIGNED,
            )
        found[name] = value
    return found


def check_signature(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    keys: Mapping[str, Ed25519PublicKey],
    now: float,
    window: float = WINDOW_S,
    hint: str = "",
) -> SignedBy:
    """Verify a request signed by one of ``keys`` (fingerprint → key) within ``window``
    seconds of ``now``; raise :class:`AuthError` otherwise. The nonce is not recorded."""
    found = signing_headers(headers)
    key_fp = found[HEADER_KEY]
    public_key = keys.get(key_fp)
    if public_key is None:
        raise AuthError(
            f"key {key_fp[:16]}… is not accepted here{hint}", code=ErrorCode.UNKNOWN_KEY
        )
    digest = body_digest(body)
    if not hmac.compare_digest(digest, found[HEADER_DIGEST]):
        raise AuthError("the body's sha256 differs from the signed digest", code=ErrorCode.TAMPERED)
    message = canonical_message(
        method, path, digest, found[HEADER_TIMESTAMP], found[HEADER_NONCE], key_fp
    )
    try:
        public_key.verify(base64.b64decode(found[HEADER_SIGNATURE], validate=True), message)
    except (InvalidSignature, binascii.Error) as exc:
        raise AuthError(
            f"the signature of {method.upper()} {path} does not verify with key {key_fp[:16]}…",
            code=ErrorCode.BAD_SIGNATURE,
        ) from exc
    timestamp = int(found[HEADER_TIMESTAMP])
    if abs(now - timestamp) > window:
        raise AuthError(
            f"the request time is more than {window:g} s from the receiver's "
            "clock; check both clocks (NTP) and resend",
            code=ErrorCode.EXPIRED,
        )
    return SignedBy(key_fp, timestamp, found[HEADER_NONCE])
