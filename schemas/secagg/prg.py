"""Seeds and mask vectors: HKDF-SHA256 derivations and a ChaCha20 keystream PRG.

A pairwise mask seed is ``HKDF(k_uv, info = "fedpsy-secagg-v1 mask" ‖ session ‖ round ‖
pair)`` where ``k_uv`` is the pair's session key (:mod:`schemas.secagg.keys`); a mask
vector of ``L`` ring elements is the first ``16·L`` bytes of the ChaCha20 keystream under
the 32-byte seed (RFC 8439 cipher from ``cryptography``; nonce zero, safe because every
seed is used for one vector only), read as little-endian 128-bit integers, i.e. uniform in
Z_2^128 (Bonawitz et al., CCS 2017, §4: PRG expansion of agreed seeds).

Sign convention: in round ``r`` the node at position ``i`` of the sorted participant list
adds the pair mask for every ``j > i`` and subtracts it for every ``j < i``, so all pair
masks cancel in the sum.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from schemas.secagg.fixedpoint import Ring, add, from_bytes, subtract, zeros

SEED_BYTES = 32
DOMAIN = b"fedpsy-secagg-v1"
_NONCE = bytes(16)


def hkdf(key: bytes, info: bytes, salt: bytes | None = None, length: int = SEED_BYTES) -> bytes:
    """HKDF-SHA256 (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def field(*parts: str | int | bytes) -> bytes:
    """An unambiguous byte string of ``parts`` (each length-prefixed)."""
    out = bytearray()
    for part in parts:
        raw = (
            part.to_bytes(8, "big")
            if isinstance(part, int)
            else (part.encode("utf-8") if isinstance(part, str) else part)
        )
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def pair_seed(pair_key: bytes, session: str, round_: int, a: str, b: str) -> bytes:
    """The mask seed of the pair ``{a, b}`` in ``round_`` of ``session``."""
    low, high = sorted((a, b))
    return hkdf(pair_key, DOMAIN + b" mask" + field(session, round_, low, high))


def expand(seed: bytes, length: int) -> Ring:
    """``length`` uniform ring elements from a 32-byte seed."""
    if len(seed) != SEED_BYTES:
        raise ValueError("a PRG seed has 32 bytes")
    if length == 0:
        return zeros(0)
    encryptor = Cipher(algorithms.ChaCha20(seed, _NONCE), mode=None).encryptor()
    return from_bytes(encryptor.update(bytes(16 * length)))


def apply_pair_mask(vector: Ring, seed: bytes, mine: str, other: str) -> Ring:
    """Add (``other`` sorts after ``mine``) or subtract (before) the pair's mask."""
    mask = expand(seed, len(vector))
    return add(vector, mask) if other > mine else subtract(vector, mask)
