"""Secure aggregation arithmetic: fixed point modulo 2^128, masks, Shamir sharing.

Property tests (hypothesis) on the encoding's range, precision and wrap-around, and on
mask cancellation; exact references are Python integers and ``fractions.Fraction``.
"""

from __future__ import annotations

import math
import secrets
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import FedpsyError
from schemas.secagg import fixedpoint as fp
from schemas.secagg import protocol, shamir
from schemas.secagg.prg import SEED_BYTES, expand, pair_seed

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
ring_ints = st.integers(min_value=0, max_value=fp.MODULUS - 1)


@given(st.lists(finite, min_size=1, max_size=20), st.integers(1, 50))
def test_encoding_is_within_half_a_unit_and_decodes_back(values: list[float], sites: int) -> None:
    decoded = fp.decode(fp.encode(values, sites))
    for x, y in zip(values, decoded, strict=True):
        exact = Fraction(x) * 2**52
        assert abs(Fraction(round(exact)) - exact) <= Fraction(1, 2)
        assert abs(y - x) <= 2.0**-53 + abs(x) * 2.0**-52


@given(st.lists(st.lists(finite, min_size=4, max_size=4), min_size=1, max_size=30))
def test_sum_of_encodings_is_the_exact_sum_of_the_rounded_values(rows: list[list[float]]) -> None:
    sites = len(rows)
    total = fp.zeros(4)
    for row in rows:
        total = fp.add(total, fp.encode(row, sites))
    expected = [sum(round(Fraction(r[k]) * 2**52) for r in rows) for k in range(4)]
    got = [v - fp.MODULUS if v >= fp.HALF else v for v in fp.to_ints(total)]
    assert got == expected
    decoded = fp.decode(total)
    for k in range(4):
        assert decoded[k] == float(Fraction(expected[k], 2**52))  # correctly rounded
        assert decoded[k] == pytest.approx(
            math.fsum(r[k] for r in rows), rel=2.0**-51, abs=sites * 2.0**-52
        )


@given(st.lists(ring_ints, min_size=1, max_size=10), st.lists(ring_ints, min_size=1, max_size=10))
def test_ring_arithmetic_wraps_modulo_2_128(a: list[int], b: list[int]) -> None:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    va, vb = fp.from_ints(a), fp.from_ints(b)
    assert fp.to_ints(fp.add(va, vb)) == [(x + y) % fp.MODULUS for x, y in zip(a, b, strict=True)]
    assert fp.to_ints(fp.subtract(va, vb)) == [
        (x - y) % fp.MODULUS for x, y in zip(a, b, strict=True)
    ]
    assert fp.to_ints(fp.negate(va)) == [(-x) % fp.MODULUS for x in a]
    assert fp.to_ints(fp.from_bytes(fp.to_bytes(va))) == a


@given(st.lists(finite, min_size=1, max_size=8), st.binary(min_size=32, max_size=32))
def test_a_mask_that_wraps_around_cancels_exactly(values: list[float], seed: bytes) -> None:
    encoded = fp.encode(values, 2)
    mask = expand(seed, len(values))
    masked = fp.add(encoded, mask)
    assert fp.to_ints(fp.subtract(masked, mask)) == fp.to_ints(encoded)


@given(st.integers(1, 1000), st.floats(0.5, 0.999999))
def test_values_near_the_limit_are_accepted_and_beyond_it_refused(sites: int, share: float) -> None:
    bound = fp.limit(sites)
    inside = [bound * share, -bound * share]
    total = fp.zeros(2)
    for _ in range(sites):  # every site at the edge: the sum still does not wrap
        total = fp.add(total, fp.encode(inside, sites))
    assert fp.decode(total) == pytest.approx([sites * v for v in inside], rel=1e-12)
    with pytest.raises(FedpsyError) as caught:
        fp.encode([bound * 1.0000001], sites, "moments")
    assert caught.value.code == "secure_aggregation_failed"
    assert "moments" in caught.value.detail and "too large" in caught.value.detail


def test_non_finite_values_are_refused_with_their_position() -> None:
    with pytest.raises(FedpsyError, match="number 2 is not finite"):
        fp.encode([1.0, 2.0, float("nan")], 3)


@settings(max_examples=25)
@given(st.integers(2, 12), st.data())
def test_pair_masks_cancel_over_any_participant_set(n: int, data: st.DataObject) -> None:
    sites = sorted({f"s{i:02d}" for i in range(n)})
    keys = {frozenset((a, b)): secrets.token_bytes(32) for a in sites for b in sites if a < b}
    values = data.draw(st.lists(st.lists(finite, min_size=3, max_size=3), min_size=n, max_size=n))
    self_seeds = {s: secrets.token_bytes(SEED_BYTES) for s in sites}
    total = fp.zeros(3)
    for site, row in zip(sites, values, strict=True):
        pairs = {
            o: pair_seed(keys[frozenset((site, o))], "sess", 1, site, o) for o in sites if o != site
        }
        total = fp.add(total, protocol.mask(fp.encode(row, n), self_seeds[site], pairs, site))
    clear = protocol.remove_masks(total, self_seeds, {})
    expected = [sum(round(Fraction(r[k]) * 2**52) for r in values) for k in range(3)]
    assert [v - fp.MODULUS if v >= fp.HALF else v for v in fp.to_ints(clear)] == expected


def test_dropped_sites_masks_are_removed_with_their_pair_seeds() -> None:
    sites = ["a", "b", "c", "d", "e"]
    keys = {frozenset((x, y)): secrets.token_bytes(32) for x in sites for y in sites if x < y}
    rng = np.random.default_rng(1)
    values = {s: rng.normal(size=6) * 100 for s in sites}
    seeds = {s: secrets.token_bytes(32) for s in sites}

    def seed(x: str, y: str) -> bytes:
        return pair_seed(keys[frozenset((x, y))], "sess", 7, x, y)

    masked = {
        s: protocol.mask(
            fp.encode(values[s], 5), seeds[s], {o: seed(s, o) for o in sites if o != s}, s
        )
        for s in sites
    }
    survivors, dropped = ["a", "c", "e"], ["b", "d"]
    total = fp.zeros(6)
    for s in survivors:
        total = fp.add(total, masked[s])
    clear = protocol.remove_masks(
        total,
        {s: seeds[s] for s in survivors},
        {(s, d): seed(s, d) for s in survivors for d in dropped},
    )
    expected = sum(values[s] for s in survivors)
    assert fp.decode(clear) == pytest.approx(expected, rel=1e-14)


@given(st.lists(st.integers(0, 2**256 - 1), min_size=1, max_size=4), st.integers(2, 9), st.data())
def test_shamir_any_t_shares_rebuild_the_secret(
    secret: list[int], n: int, data: st.DataObject
) -> None:
    t = protocol.default_threshold(n)
    shares = shamir.split(secret, list(range(1, n + 1)), t)
    chosen = data.draw(
        st.lists(st.sampled_from(range(1, n + 1)), min_size=t, max_size=n, unique=True)
    )
    assert shamir.combine({x: shares[x] for x in chosen}, t) == secret
    assert shamir.unpack(shamir.pack(shares[1])) == shares[1]


def test_shamir_fewer_than_t_shares_are_refused_and_do_not_determine_the_secret() -> None:
    shares = shamir.split([12345], [1, 2, 3, 4, 5], 3)
    with pytest.raises(ValueError, match="3 needed"):
        shamir.combine({1: shares[1], 2: shares[2]}, 3)
    # two shares with a guessed third point give a different "secret" each time
    guesses = {shamir.combine({1: shares[1], 2: shares[2], 3: [g]}, 3)[0] for g in range(5)}
    assert len(guesses) == 5


def test_threshold_rule_needs_a_majority() -> None:
    assert [protocol.default_threshold(n) for n in (2, 3, 10, 20)] == [2, 2, 6, 11]
    assert protocol.threshold_ok(6, 10) and not protocol.threshold_ok(5, 10)
    assert not protocol.threshold_ok(11, 10)


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=SEED_BYTES, max_size=SEED_BYTES), st.integers(1, 1000))
def test_pair_masks_differ_between_rounds_of_one_session(key: bytes, round_: int) -> None:
    values = np.zeros(4)
    zero_self = bytes(SEED_BYTES)
    masks = [
        protocol.mask(fp.encode(values, 2), zero_self, {"b": pair_seed(key, "s", r, "a", "b")}, "a")
        for r in (round_, round_ + 1)
    ]
    assert fp.to_bytes(masks[0]) != fp.to_bytes(masks[1])
    assert pair_seed(key, "s", round_, "a", "b") == pair_seed(key, "s", round_, "b", "a")
