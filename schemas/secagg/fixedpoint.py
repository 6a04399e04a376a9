"""Fixed-point encoding of reals modulo 2^128, and vector arithmetic in that ring.

A real ``x`` is encoded as ``round(x · 2^52) mod 2^128`` (two's complement: negative
numbers are ``2^128 − |round(x · 2^52)|``). Sums of encodings modulo 2^128 decode to the
sum of the rounded values as long as the true sum stays in ``(−2^127, 2^127)``; masks
(uniform in the ring) added by one node and subtracted by another cancel exactly,
whatever wrap-around happens in between (Bonawitz et al., CCS 2017, §3).

Precision: each encoded number is within ``2^-53`` (≈ 1.1e-16) of the real it encodes,
so a sum over ``n`` sites is within ``n · 2^-53`` of the exact sum of the sites' float64
values, plus the final rounding to float64 (relative ``2^-53``). The integer addition
itself is exact — no float rounding accumulates across sites — so a secure sum is at
least as accurate as adding the sites' float64 results. Range: :func:`limit` is the
largest magnitude a site may send when ``n`` sites are summed (≈ 3.8e22 / n; 1.9e21 for
20 sites), checked before encoding so the sum can never wrap.

Vectors in the ring are numpy arrays of shape ``(L, 2)`` and dtype ``uint64`` holding the
low and high 64-bit limbs of each element (little-endian order, as the PRG emits them).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from schemas.errors import ErrorCode, FedpsyError

SCALE_BITS = 52
SCALE = 2.0**SCALE_BITS
MODULUS = 1 << 128
HALF = 1 << 127
_TWO64 = 2.0**64

Ring = npt.NDArray[np.uint64]
"""A vector in Z_2^128: shape ``(L, 2)``, columns low limb, high limb."""


def limit(sites: int) -> float:
    """The largest ``|x|`` one of ``sites`` sites may encode so that the sum cannot wrap."""
    if sites < 1:
        raise ValueError("limit needs at least one site")
    return float((HALF - (1 << 64)) // sites) / SCALE


def encode(values: npt.ArrayLike, sites: int, where: str = "value") -> Ring:
    """Encode a float vector for a sum over ``sites`` sites; out of range is an error."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        bad = int(np.flatnonzero(~np.isfinite(x))[0])
        raise FedpsyError(
            f"{where}: number {bad} is not finite; secure aggregation sums finite numbers only",
            code=ErrorCode.SECURE_AGGREGATION_FAILED,
        )
    bound = limit(sites)
    if x.size and float(np.max(np.abs(x))) >= bound:
        big = int(np.argmax(np.abs(x)))
        raise FedpsyError(
            f"{where}: number {big} is too large for a secure sum over {sites} sites "
            f"(the limit is |x| < {bound:.3g}); rescale the variable",
            code=ErrorCode.SECURE_AGGREGATION_FAILED,
        )
    scaled = np.rint(x * SCALE)  # exact: scaling by a power of two, then rounding
    magnitude = np.abs(scaled)
    high = np.floor(magnitude / _TWO64)
    low = magnitude - high * _TWO64  # exact: both terms are integers below 2^117
    out = np.empty((x.size, 2), dtype=np.uint64)
    out[:, 0] = low.astype(np.uint64)
    out[:, 1] = high.astype(np.uint64)
    negative = scaled < 0
    if np.any(negative):
        out[negative] = negate(out[negative])
    return out


def to_ints(vector: Ring) -> list[int]:
    """The ring elements as Python ints in ``[0, 2^128)``."""
    return [(int(hi) << 64) | int(lo) for lo, hi in np.asarray(vector, dtype=np.uint64)]


def from_ints(values: list[int]) -> Ring:
    """Ring elements from Python ints (taken modulo 2^128)."""
    out = np.empty((len(values), 2), dtype=np.uint64)
    for i, v in enumerate(values):
        v %= MODULUS
        out[i, 0] = v & 0xFFFFFFFFFFFFFFFF
        out[i, 1] = v >> 64
    return out


def decode(vector: Ring) -> npt.NDArray[np.float64]:
    """Signed decoding: elements ≥ 2^127 are negative; each is divided by 2^52."""
    out = []
    for v in to_ints(vector):
        signed = v - MODULUS if v >= HALF else v
        out.append(signed / (1 << SCALE_BITS))  # int / int is correctly rounded
    return np.asarray(out, dtype=np.float64)


def zeros(length: int) -> Ring:
    return np.zeros((length, 2), dtype=np.uint64)


def add(a: Ring, b: Ring) -> Ring:
    """``a + b`` modulo 2^128, element-wise."""
    if a.shape != b.shape:
        raise ValueError(f"cannot add ring vectors of shapes {a.shape} and {b.shape}")
    low = a[:, 0] + b[:, 0]
    carry = (low < a[:, 0]).astype(np.uint64)
    out = np.empty_like(a)
    out[:, 0] = low
    out[:, 1] = a[:, 1] + b[:, 1] + carry
    return out


def negate(a: Ring) -> Ring:
    """``−a`` modulo 2^128 (two's complement)."""
    low = ~a[:, 0] + np.uint64(1)
    carry = (low == 0).astype(np.uint64)
    out = np.empty_like(a)
    out[:, 0] = low
    out[:, 1] = ~a[:, 1] + carry
    return out


def subtract(a: Ring, b: Ring) -> Ring:
    """``a − b`` modulo 2^128."""
    return add(a, negate(b))


def to_bytes(vector: Ring) -> bytes:
    """Little-endian bytes, 16 per element (low limb first)."""
    return np.ascontiguousarray(vector, dtype="<u8").tobytes()


def from_bytes(data: bytes) -> Ring:
    if len(data) % 16:
        raise ValueError("a ring vector is a multiple of 16 bytes")
    return np.frombuffer(data, dtype="<u8").astype(np.uint64).reshape(-1, 2)
