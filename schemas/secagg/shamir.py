"""Shamir t-of-n secret sharing over the prime field GF(2^521 − 1).

A secret vector (each element an integer below 2^256: 32-byte seeds) is shared with one
random polynomial of degree ``t − 1`` per element whose constant term is the element;
the share of holder ``x`` (1, 2, …) is the polynomials' values at ``x``. Any ``t`` shares
give the secret back by Lagrange interpolation at 0; fewer reveal nothing about it
(Shamir, "How to share a secret", CACM 22(11), 1979). 2^521 − 1 is a Mersenne prime, so
every 256-bit secret is a field element. Coefficients come from :mod:`secrets`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

PRIME = (1 << 521) - 1
ELEMENT_BYTES = 66


def split(secret: Sequence[int], holders: Sequence[int], threshold: int) -> dict[int, list[int]]:
    """Shares of ``secret`` for each holder x-coordinate (distinct, ≥ 1)."""
    if not 1 <= threshold <= len(holders):
        raise ValueError(f"threshold {threshold} must be between 1 and {len(holders)} holders")
    if len(set(holders)) != len(holders) or min(holders) < 1 or max(holders) >= PRIME:
        raise ValueError("holder x-coordinates must be distinct field elements ≥ 1")
    if any(not 0 <= s < PRIME for s in secret):
        raise ValueError("every secret element must be a field element")
    shares: dict[int, list[int]] = {x: [] for x in holders}
    for element in secret:
        coefficients = [element] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
        for x in holders:
            value = 0
            for c in reversed(coefficients):  # Horner
                value = (value * x + c) % PRIME
            shares[x].append(value)
    return shares


def lagrange_at_zero(holders: Sequence[int]) -> dict[int, int]:
    """The Lagrange coefficients of ``holders`` for interpolation at 0."""
    out: dict[int, int] = {}
    for j in holders:
        num, den = 1, 1
        for m in holders:
            if m != j:
                num = num * m % PRIME
                den = den * (m - j) % PRIME
        out[j] = num * pow(den, -1, PRIME) % PRIME
    return out


def combine(shares: Mapping[int, Sequence[int]], threshold: int) -> list[int]:
    """The secret from at least ``threshold`` shares (the first ``threshold`` are used)."""
    if len(shares) < threshold:
        raise ValueError(f"{len(shares)} shares given, {threshold} needed")
    holders = sorted(shares)[:threshold]
    coefficients = lagrange_at_zero(holders)
    size = len(shares[holders[0]])
    return [sum(coefficients[x] * shares[x][k] for x in holders) % PRIME for k in range(size)]


def pack(elements: Sequence[int]) -> bytes:
    """Field elements as fixed-width big-endian bytes."""
    return b"".join(e.to_bytes(ELEMENT_BYTES, "big") for e in elements)


def unpack(data: bytes) -> list[int]:
    if len(data) % ELEMENT_BYTES:
        raise ValueError("packed shares are a multiple of 66 bytes")
    return [
        int.from_bytes(data[i : i + ELEMENT_BYTES], "big")
        for i in range(0, len(data), ELEMENT_BYTES)
    ]
