"""The facts the gate checks, against independent references (statsmodels, plain counts)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.outliers_influence import OLSInfluence

from node.steps.disclosure import (
    binary_cells,
    dominance_ratios,
    max_leverage,
    outcome_cells,
    support,
)


def test_leverage_equals_statsmodels_hat_values() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(60), rng.normal(size=60), rng.integers(0, 2, 60)])
    y = rng.normal(size=60)
    hat = OLSInfluence(OLS(y, x).fit()).hat_matrix_diag
    assert max_leverage(x) == pytest.approx(float(hat.max()), rel=1e-10)


def test_a_column_that_isolates_a_row_has_leverage_one() -> None:
    rng = np.random.default_rng(2)
    age = rng.uniform(20, 60, 40)
    age[7] = 41.0
    spike = 2 * np.exp(-(((age - 41) * 100) ** 2))  # non-zero for row 7 only
    x = np.column_stack([np.ones(40), age, spike])
    assert max_leverage(x) == pytest.approx(1.0, abs=1e-9)
    assert support(x)[-1] == 1  # and the spike is off its usual value in one row


def test_rank_deficient_design_counts_only_its_estimable_part() -> None:
    x = np.column_stack([np.ones(30), np.zeros(30), np.arange(30.0)])  # a level absent here
    assert max_leverage(x) == pytest.approx(max_leverage(x[:, [0, 2]]), rel=1e-12)


def test_support_leaves_out_constant_columns() -> None:
    x = np.column_stack([np.ones(10), [0.0] * 8 + [1.0] * 2, np.arange(10.0)])
    assert support(x) == (2, 9)


def test_binary_and_outcome_cells_are_plain_counts() -> None:
    x = np.column_stack([np.ones(12), [1.0] * 3 + [0.0] * 9])
    y = np.array([1.0, 0, 0] + [1.0] * 4 + [0.0] * 5)
    assert binary_cells(x) == (3, 9)  # the constant intercept is no table
    # y: 5 ones, 7 zeros; in the indicator's 3 rows: 1 and 2
    assert outcome_cells(x, y) == (5, 7, 1, 2)
    assert outcome_cells(x, np.arange(12.0)) == ()  # not a two-valued outcome
    # any two values make a two-cell table: 2·flag + 1 counts the flag just the same
    assert binary_cells(2 * x + 1) == (3, 9)
    assert outcome_cells(2 * x + 1, 3 * y - 1) == (5, 7, 1, 2)


def p_percent_reference(values: np.ndarray) -> float:
    """(total − two largest) / largest of the squared deviations, by sorting."""
    c = np.sort((values - values.mean()) ** 2)[::-1]
    return float("inf") if c[0] == 0 else float((c.sum() - c[0] - c[1]) / c[0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=40))
def test_dominance_ratio_is_the_p_percent_rule(values: list[float]) -> None:
    data = np.asarray(values)
    (ratio,) = dominance_ratios(data[:, None])
    assert ratio == pytest.approx(p_percent_reference(data), rel=1e-9, abs=1e-9)


def test_higher_powers_are_judged_on_their_own_contributions() -> None:
    """Sums of cubes and fourth powers (skewness, kurtosis): contributions |x − x̄|³ and
    (x − x̄)⁴, which one moderately far value dominates long before it dominates a variance."""
    rng = np.random.default_rng(8)
    values = np.append(rng.normal(20.0, 2.0, 39), 35.0)
    for power in (2, 3, 4):
        c = np.sort(np.abs(values - values.mean()) ** power)[::-1]
        (ratio,) = dominance_ratios(values[:, None], power)
        assert ratio == pytest.approx((c.sum() - c[0] - c[1]) / c[0], rel=1e-12)
    (squares,) = dominance_ratios(values[:, None])
    (fourths,) = dominance_ratios(values[:, None], 4)
    assert squares > 0.1 > fourths


def test_one_far_value_dominates_and_ordinary_spread_does_not() -> None:
    rng = np.random.default_rng(3)
    ages = rng.normal(40, 10, 99)
    (ordinary,) = dominance_ratios(ages[:, None])
    (planted,) = dominance_ratios(np.append(ages, 987654.0)[:, None])
    assert ordinary > 1 and planted < 0.01
