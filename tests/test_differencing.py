"""Differencing defence on both backends.

The guarantee under test: for every pair of cohorts the guard let through (answered and
remembered) under one dictionary hash, the symmetric difference is 0 or at least
``min_cohort``; and the guard refuses nothing else (every refusal has a witness).
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete

from node.privacy.differencing import DifferencingGuard, difference_size
from node.steps.base import to_bits
from node.store.tables import answered_cohort
from schemas.errors import Refused

H = "a" * 64
BASE = list(range(100, 120))


def test_bitsets_match_python_sets() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        a = set(rng.choice(200, size=rng.integers(0, 60), replace=False).tolist())
        b = set(rng.choice(90, size=rng.integers(0, 60), replace=False).tolist())
        assert difference_size(to_bits(a), to_bits(b)) == len(a ^ b)
    assert to_bits([]).size == 0
    assert to_bits([0, 7, 8]).tolist() == [0b10000001, 0b10000000]
    with pytest.raises(ValueError):
        to_bits([-1])


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_cohorts_differing_by_one_to_four_are_refused(store_engine: Engine, k: int) -> None:
    guard = DifferencingGuard(store_engine, min_cohort=5)
    guard.remember(BASE, H)
    removed, added = BASE[k:], BASE + list(range(200, 200 + k))
    swapped = BASE[(k + 1) // 2 :] + list(range(400, 400 + k // 2))
    for cohort in (removed, added, swapped):
        assert len(set(cohort) ^ set(BASE)) == k
        with pytest.raises(Refused) as caught:
            guard.check(cohort, H)
        assert caught.value.code == "differencing"
        assert set(re.findall(r"\d+", caught.value.detail)) == {"5"}  # never k


def test_identical_and_far_cohorts_are_allowed(store_engine: Engine) -> None:
    guard = DifferencingGuard(store_engine, min_cohort=5)
    guard.remember(BASE, H)
    guard.check(list(reversed(BASE)), H)  # the same cohort again
    guard.check(BASE[5:], H)  # 5 fewer
    guard.check(BASE + list(range(500, 505)), H)  # 5 more
    guard.check([*BASE[3:], 600, 601], H)  # 3 out, 2 in: 5 apart
    guard.check(list(range(1000, 1003)), H)  # small and far (the gate's job, not this one)


def test_memory_is_per_dictionary_hash_and_survives_new_guards(store_engine: Engine) -> None:
    DifferencingGuard(store_engine, min_cohort=5).remember(BASE, H)
    DifferencingGuard(store_engine, min_cohort=5).remember(BASE, H)  # not stored twice
    fresh = DifferencingGuard(store_engine, min_cohort=5)
    assert fresh.count(H) == 1
    with pytest.raises(Refused):
        fresh.check(BASE[1:], H)
    fresh.check(BASE[1:], "b" * 64)


def test_admit_checks_and_remembers_together(store_engine: Engine) -> None:
    guard = DifferencingGuard(store_engine, min_cohort=5)
    guard.admit(BASE, H)
    with pytest.raises(Refused):
        guard.admit(BASE[:-1], H)
    assert guard.count() == 1  # the refused cohort is not remembered
    guard.admit(BASE[:-5], H)
    assert guard.count() == 2


# each request is a fresh random subset of 40 row ids, or an earlier request with a few
# members flipped (so that near misses, the interesting case, are common)
REQUEST = st.one_of(
    st.tuples(st.just(-1), st.sets(st.integers(0, 39), max_size=40)),
    st.tuples(st.integers(0, 30), st.sets(st.integers(0, 39), max_size=6)),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    requests=st.lists(REQUEST, min_size=1, max_size=25),
    min_cohort=st.integers(2, 7),
    atomic=st.booleans(),
)
def test_answered_cohorts_are_pairwise_zero_or_at_least_min_cohort_apart(
    store_engine: Engine, requests: list[tuple[int, set[int]]], min_cohort: int, atomic: bool
) -> None:
    with store_engine.begin() as conn:
        conn.execute(delete(answered_cohort))
    guard = DifferencingGuard(store_engine, min_cohort=min_cohort)
    asked: list[frozenset[int]] = []
    answered: list[frozenset[int]] = []
    refused = 0
    for base, members in requests:
        cohort = frozenset(members) if base < 0 or not asked else asked[base % len(asked)] ^ members
        asked.append(cohort)
        witness = any(0 < len(cohort ^ prior) < min_cohort for prior in answered)
        try:
            if atomic:
                guard.admit(sorted(cohort), H)
            else:
                guard.check(sorted(cohort), H)
                guard.remember(sorted(cohort), H)  # the answer went out
        except Refused:
            assert witness, "refused without an answered cohort close to it"
            refused += 1
            continue
        assert not witness, "answered although an answered cohort is close to it"
        answered.append(cohort)
    for a, b in itertools.combinations(answered, 2):
        assert len(a ^ b) == 0 or len(a ^ b) >= min_cohort
    assert guard.count(H) == len(set(answered))
    event(f"some refused: {refused > 0}")
