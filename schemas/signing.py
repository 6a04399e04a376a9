"""Request signing: the canonical message and the headers a signed request carries.

The coordinator signs every request it sends a node with its Ed25519 key (RFC 8032); the
node verifies with ``node.auth.verify.verify_request``. The signed message binds the request
line, the body, the time, a one-time nonce and the signing key::

    METHOD \\n PATH?QUERY \\n sha256(body) hex \\n timestamp \\n nonce \\n key fingerprint

Headers (all required):

``X-Fedpsy-Key``             fingerprint of the signing key (64 hex digits)
``X-Fedpsy-Timestamp``       unix seconds, an integer
``X-Fedpsy-Nonce``           128 random bits, 32 lower-case hex digits
``X-Fedpsy-Content-SHA256``  sha256 of the body, 64 lower-case hex digits
``X-Fedpsy-Signature``       base64 (standard alphabet) of the 64-byte signature
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.keys import fingerprint

HEADER_KEY = "X-Fedpsy-Key"
HEADER_TIMESTAMP = "X-Fedpsy-Timestamp"
HEADER_NONCE = "X-Fedpsy-Nonce"
HEADER_DIGEST = "X-Fedpsy-Content-SHA256"
HEADER_SIGNATURE = "X-Fedpsy-Signature"
SIGNED_HEADERS = (HEADER_KEY, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_DIGEST, HEADER_SIGNATURE)

HEADER_FORMATS: dict[str, re.Pattern[str]] = {
    HEADER_KEY: re.compile(r"[0-9a-f]{64}"),
    HEADER_TIMESTAMP: re.compile(r"[0-9]{1,12}"),
    HEADER_NONCE: re.compile(r"[0-9a-f]{32}"),
    HEADER_DIGEST: re.compile(r"[0-9a-f]{64}"),
    HEADER_SIGNATURE: re.compile(r"[A-Za-z0-9+/]{86}=="),
}
"""What each header's value must look like (full match)."""

NONCE_BYTES = 16


def new_nonce() -> str:
    """128 random bits as 32 lower-case hex digits."""
    return secrets.token_hex(NONCE_BYTES)


def body_digest(body: bytes) -> str:
    """sha256 of the request body, lower-case hex."""
    return hashlib.sha256(body).hexdigest()


def canonical_message(
    method: str, path: str, digest: str, timestamp: str, nonce: str, key_fingerprint: str
) -> bytes:
    """The bytes that are signed: the six fields joined by newlines, UTF-8.

    ``path`` includes the query string exactly as sent (``/v1/tasks?wait=1``). None of
    the fields can contain a newline (the header formats exclude it; a request line
    cannot hold one), so the encoding is unambiguous.
    """
    fields = (method.upper(), path, digest, timestamp, nonce, key_fingerprint)
    if any("\n" in field for field in fields):
        raise ValueError("a signed field contains a newline")
    return "\n".join(fields).encode("utf-8")


def sign_headers(
    private_key: Ed25519PrivateKey,
    method: str,
    path: str,
    body: bytes,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers that sign the request ``method path`` with ``body``.

    ``now`` (unix seconds; default the current time) and ``nonce`` (default a fresh
    random one) exist so tests can produce expired and replayed requests.
    """
    timestamp = str(int(time.time() if now is None else now))
    nonce = new_nonce() if nonce is None else nonce
    key_fp = fingerprint(private_key.public_key())
    digest = body_digest(body)
    signature = private_key.sign(canonical_message(method, path, digest, timestamp, nonce, key_fp))
    return {
        HEADER_KEY: key_fp,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_DIGEST: digest,
        HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
    }
