"""Signed requests: every failure has its own code, checks run in order, nonces persist."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine

from node.auth.nonces import NonceStore
from node.auth.verify import verify_request
from schemas.errors import AuthError
from schemas.keys import fingerprint, generate_private_key
from schemas.signing import (
    HEADER_DIGEST,
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SIGNED_HEADERS,
    body_digest,
    canonical_message,
    sign_headers,
)

NOW = 1_800_000_000.0
PATH = "/v1/tasks?wait=1"
BODY = b'{"step": "moments"}'


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return generate_private_key()


@pytest.fixture
def trusted(key: Ed25519PrivateKey) -> dict[str, Ed25519PublicKey]:
    return {fingerprint(key.public_key()): key.public_key()}


@pytest.fixture
def nonces(store_engine: Engine) -> NonceStore:
    return NonceStore(store_engine)


def code_of(
    headers: dict[str, str],
    trusted: dict[str, Ed25519PublicKey],
    nonces: NonceStore,
    *,
    method: str = "POST",
    path: str = PATH,
    body: bytes = BODY,
    now: float = NOW,
) -> str:
    with pytest.raises(AuthError) as caught:
        verify_request(headers, method, path, body, trusted, nonces, now)
    return caught.value.code


def test_headers_and_canonical_message(key: Ed25519PrivateKey) -> None:
    headers = sign_headers(key, "post", PATH, BODY, now=NOW, nonce="ab" * 16)
    assert set(headers) == set(SIGNED_HEADERS)
    assert headers[HEADER_KEY] == fingerprint(key.public_key())
    assert headers[HEADER_TIMESTAMP] == str(int(NOW))
    assert headers[HEADER_DIGEST] == body_digest(BODY)
    expected = "\n".join(
        ["POST", PATH, body_digest(BODY), str(int(NOW)), "ab" * 16, headers[HEADER_KEY]]
    ).encode()
    assert (
        canonical_message(
            "post", PATH, body_digest(BODY), str(int(NOW)), "ab" * 16, headers[HEADER_KEY]
        )
        == expected
    )
    key.public_key().verify(base64.b64decode(headers[HEADER_SIGNATURE]), expected)
    fresh = {sign_headers(key, "GET", "/", b"")[HEADER_NONCE] for _ in range(50)}
    assert len(fresh) == 50
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in fresh)


def test_a_good_request_verifies_once(
    key: Ed25519PrivateKey, trusted: dict[str, Ed25519PublicKey], nonces: NonceStore
) -> None:
    headers = sign_headers(key, "POST", PATH, BODY, now=NOW)
    lower = {name.lower(): value for name, value in headers.items()}  # as ASGI servers pass
    verified = verify_request(lower, "POST", PATH, BODY, trusted, nonces, NOW + 10)
    assert verified.key_fingerprint == fingerprint(key.public_key())
    assert verified.nonce == headers[HEADER_NONCE]
    assert code_of(headers, trusted, nonces, now=NOW + 11) == "replayed"


@pytest.mark.parametrize("name", SIGNED_HEADERS)
def test_a_missing_or_malformed_header_is_unsigned(
    key: Ed25519PrivateKey, trusted: dict[str, Ed25519PublicKey], nonces: NonceStore, name: str
) -> None:
    headers = sign_headers(key, "POST", PATH, BODY, now=NOW)
    without = {k: v for k, v in headers.items() if k != name}
    assert code_of(without, trusted, nonces) == "unsigned"
    assert code_of({**headers, name: ""}, trusted, nonces) == "unsigned"
    assert code_of({**headers, name: "x" + headers[name]}, trusted, nonces) == "unsigned"
    assert code_of({}, trusted, nonces) == "unsigned"


def test_an_untrusted_key_is_refused(
    trusted: dict[str, Ed25519PublicKey], nonces: NonceStore
) -> None:
    stranger = generate_private_key()
    assert (
        code_of(sign_headers(stranger, "POST", PATH, BODY, now=NOW), trusted, nonces)
        == "unknown_key"
    )


def test_a_changed_body_is_tampered(
    key: Ed25519PrivateKey, trusted: dict[str, Ed25519PublicKey], nonces: NonceStore
) -> None:
    headers = sign_headers(key, "POST", PATH, BODY, now=NOW)
    assert code_of(headers, trusted, nonces, body=BODY + b" ") == "tampered"
    # a digest header rewritten to match the new body breaks the signature instead
    forged = {**headers, HEADER_DIGEST: body_digest(BODY + b" ")}
    assert code_of(forged, trusted, nonces, body=BODY + b" ") == "bad_signature"


@pytest.mark.parametrize(
    "change",
    ["method", "path", "query", "timestamp", "nonce", "signature", "other_key_signature"],
)
def test_any_other_change_breaks_the_signature(
    key: Ed25519PrivateKey, trusted: dict[str, Ed25519PublicKey], nonces: NonceStore, change: str
) -> None:
    headers = sign_headers(key, "POST", PATH, BODY, now=NOW)
    method, path = "POST", PATH
    if change == "method":
        method = "PUT"
    elif change == "path":
        path = "/v1/admin?wait=1"
    elif change == "query":
        path = "/v1/tasks?wait=2"
    elif change == "timestamp":
        headers[HEADER_TIMESTAMP] = str(int(NOW) + 1)
    elif change == "nonce":
        headers[HEADER_NONCE] = "0" * 32
    elif change == "signature":
        raw = bytearray(base64.b64decode(headers[HEADER_SIGNATURE]))
        raw[0] ^= 1
        headers[HEADER_SIGNATURE] = base64.b64encode(bytes(raw)).decode()
    else:
        other = sign_headers(generate_private_key(), "POST", PATH, BODY, now=NOW)
        headers[HEADER_SIGNATURE] = other[HEADER_SIGNATURE]
    assert code_of(headers, trusted, nonces, method=method, path=path) == "bad_signature"


def test_time_window_is_inclusive_both_ways(
    key: Ed25519PrivateKey, trusted: dict[str, Ed25519PublicKey], nonces: NonceStore
) -> None:
    for offset in (-301, 301, -10_000):
        headers = sign_headers(key, "POST", PATH, BODY, now=NOW)
        assert code_of(headers, trusted, nonces, now=NOW + offset) == "expired"
    for offset in (-300, 300, 0):
        headers = sign_headers(key, "POST", PATH, BODY, now=NOW)
        verify_request(headers, "POST", PATH, BODY, trusted, nonces, NOW + offset)


def test_checks_run_in_order_and_failures_do_not_burn_the_nonce(
    key: Ed25519PrivateKey, trusted: dict[str, Ed25519PublicKey], nonces: NonceStore
) -> None:
    stale = sign_headers(key, "POST", PATH, BODY, now=NOW - 1000)
    # tampered beats bad signature beats expired
    assert code_of(stale, trusted, nonces, body=b"other") == "tampered"
    assert code_of({**stale, HEADER_NONCE: "1" * 32}, trusted, nonces) == "bad_signature"
    assert code_of(stale, trusted, nonces) == "expired"
    assert code_of(stale, {}, nonces, body=b"other") == "unknown_key"
    assert not nonces.seen(stale[HEADER_NONCE])
    # a forged request carrying a real nonce does not stop the real request
    real = sign_headers(key, "POST", PATH, BODY, now=NOW)
    assert code_of(real, trusted, nonces, body=b"forged") == "tampered"
    assert code_of(real, trusted, nonces, path="/v1/other") == "bad_signature"
    verify_request(real, "POST", PATH, BODY, trusted, nonces, NOW)
    # a replay that is also expired reports expired: the time is checked first
    assert code_of(real, trusted, nonces, now=NOW + 301) == "expired"
    assert code_of(real, trusted, nonces, now=NOW + 299) == "replayed"


def test_used_nonces_survive_a_new_store_object(
    store_engine: Engine, key: Ed25519PrivateKey, trusted: dict[str, Ed25519PublicKey]
) -> None:
    headers = sign_headers(key, "POST", PATH, BODY, now=NOW)
    verify_request(headers, "POST", PATH, BODY, trusted, NonceStore(store_engine), NOW)
    restarted = NonceStore(store_engine)  # e.g. after `fedpsy node serve` restarts
    assert restarted.seen(headers[HEADER_NONCE])
    assert code_of(headers, trusted, restarted, now=NOW + 60) == "replayed"


def test_nonces_are_pruned_only_after_twice_the_window(store_engine: Engine) -> None:
    store = NonceStore(store_engine, window=300)
    assert store.record("a" * 32, NOW)
    assert not store.record("a" * 32, NOW + 599)
    assert store.prune(NOW + 600) == 0
    assert store.seen("a" * 32)
    assert store.record("b" * 32, NOW + 601)  # prunes the first on the way
    assert not store.seen("a" * 32)
    assert len(store) == 1


def test_window_may_not_outlive_the_nonce_memory(
    key: Ed25519PrivateKey, trusted: dict[str, Ed25519PublicKey], store_engine: Engine
) -> None:
    headers = sign_headers(key, "POST", PATH, BODY, now=NOW)
    short = NonceStore(store_engine, window=60)
    with pytest.raises(ValueError, match="window"):
        verify_request(headers, "POST", PATH, BODY, trusted, short, NOW, window=300)
