"""Ed25519 key files (permissions, round trips, fingerprints) and the node's trusted keys."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.auth.trust import add_trusted_key, list_trusted, load_trusted, remove_trusted_key
from schemas.errors import FedpsyError
from schemas.keys import (
    fingerprint,
    generate_private_key,
    load_private_key,
    load_public_key,
    write_private_key,
    write_public_key,
)

# RFC 8032 section 7.1, test 1
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_fingerprint_is_sha256_of_raw_public_bytes() -> None:
    key = Ed25519PrivateKey.from_private_bytes(RFC_SECRET)
    assert fingerprint(key.public_key()) == hashlib.sha256(RFC_PUBLIC).hexdigest()


def test_private_key_is_0600_and_public_0644_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive umask must not widen the private key
    try:
        key = generate_private_key()
        write_private_key(tmp_path / "keys" / "node.key", key)
        write_public_key(tmp_path / "keys" / "node.pub", key.public_key())
    finally:
        os.umask(old)
    assert mode(tmp_path / "keys" / "node.key") == 0o600
    assert mode(tmp_path / "keys" / "node.pub") == 0o644
    assert not [p for p in (tmp_path / "keys").iterdir() if p.name.endswith(".tmp")]


def test_keys_round_trip(tmp_path: Path) -> None:
    key = generate_private_key()
    write_private_key(tmp_path / "k", key)
    write_public_key(tmp_path / "k.pub", key.public_key())
    loaded = load_private_key(tmp_path / "k")
    assert fingerprint(loaded.public_key()) == fingerprint(key.public_key())
    assert fingerprint(load_public_key(tmp_path / "k.pub")) == fingerprint(key.public_key())
    load_public_key(tmp_path / "k.pub").verify(loaded.sign(b"m"), b"m")


def test_key_files_are_never_overwritten_by_default(tmp_path: Path) -> None:
    first, second = generate_private_key(), generate_private_key()
    write_private_key(tmp_path / "k", first)
    with pytest.raises(FedpsyError, match="already exists"):
        write_private_key(tmp_path / "k", second)
    assert fingerprint(load_private_key(tmp_path / "k").public_key()) == fingerprint(
        first.public_key()
    )
    write_private_key(tmp_path / "k", second, overwrite=True)
    assert mode(tmp_path / "k") == 0o600


def _pem_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not a key at all", "not a PEM public key"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
        (_pem_of(ec.generate_private_key(ec.SECP256R1())), "expected an Ed25519 key"),
        (b"-----BEGIN PRIVATE KEY-----\n", "this is a private key"),
    ],
)
def test_bad_public_keys_are_clear_errors(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "coordinator.pub"
    path.write_bytes(content)
    with pytest.raises(FedpsyError, match=says) as caught:
        load_public_key(path)
    assert caught.value.code == "key_invalid"
    assert str(path) in caught.value.detail


def test_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FedpsyError, match="cannot read") as caught:
        load_public_key(tmp_path / "absent.pub")
    assert caught.value.code == "key_invalid"


def test_trust_adds_lists_and_loads_keys(tmp_path: Path) -> None:
    node = tmp_path / "node"
    assert load_trusted(node) == {}
    keys = [generate_private_key() for _ in range(2)]
    for i, key in enumerate(keys):
        write_public_key(tmp_path / f"c{i}.pub", key.public_key())
    added = add_trusted_key(node, tmp_path / "c0.pub")
    again = add_trusted_key(node, tmp_path / "c0.pub")  # harmless twice
    add_trusted_key(node, tmp_path / "c1.pub")
    fps = sorted(fingerprint(k.public_key()) for k in keys)
    assert added == again
    assert added.path == node / "trusted" / f"{added.fingerprint}.pem"
    assert mode(added.path) == 0o644
    assert [t.fingerprint for t in list_trusted(node)] == fps
    loaded = load_trusted(node)
    assert sorted(loaded) == fps
    sig = keys[0].sign(b"hello")
    loaded[fingerprint(keys[0].public_key())].verify(sig, b"hello")
    remove_trusted_key(node, fps[0])
    assert sorted(load_trusted(node)) == fps[1:]
    with pytest.raises(FedpsyError) as caught:
        remove_trusted_key(node, fps[0])
    assert caught.value.code == "not_found"


def test_trusting_a_non_ed25519_key_is_refused(tmp_path: Path) -> None:
    rsa_pub = tmp_path / "rsa.pub"
    rsa_pub.write_bytes(_pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    with pytest.raises(FedpsyError, match="expected an Ed25519 key"):
        add_trusted_key(tmp_path / "node", rsa_pub)
    assert load_trusted(tmp_path / "node") == {}


def test_a_misnamed_or_corrupt_trusted_file_stops_loading(tmp_path: Path) -> None:
    node = tmp_path / "node"
    key = generate_private_key()
    write_public_key(tmp_path / "c.pub", key.public_key())
    entry = add_trusted_key(node, tmp_path / "c.pub")
    entry.path.rename(entry.path.with_name("0" * 64 + ".pem"))
    with pytest.raises(FedpsyError, match="not the one in the file name") as caught:
        load_trusted(node)
    assert caught.value.code == "key_invalid"
    (node / "trusted" / ("0" * 64 + ".pem")).write_text("garbage")
    with pytest.raises(FedpsyError, match="not a PEM public key"):
        load_trusted(node)
