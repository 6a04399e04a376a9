"""The public grid of histogram edges: scale-free, and snapping never leaves it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import FedpsyError
from schemas.grid import check_edges, grid_ceil, grid_edges, grid_floor, on_grid
from schemas.steps.tabulate import HistogramStep


@pytest.mark.parametrize("value", [0, 40, 40.5, 41, 99.5, 100, 0.25, 985000, -3.7, 1.05e-6])
def test_grid_numbers(value: float) -> None:
    assert on_grid(value)


@pytest.mark.parametrize("value", [41.3, 40.25, 987654, 0.0123, 11.125, 1680])
def test_off_grid_numbers(value: float) -> None:
    assert not on_grid(value)


@given(st.floats(-1e9, 1e9, allow_nan=False).filter(lambda v: abs(v) > 1e-9))
def test_floor_and_ceil_are_the_nearest_grid_numbers(value: float) -> None:
    low, high = grid_floor(value), grid_ceil(value)
    spacing = 10.0 ** (math.floor(math.log10(abs(value))) - 1) / 2
    assert on_grid(low) and on_grid(high)
    assert low <= value <= high
    assert value - low <= spacing * (1 + 1e-9) and high - value <= spacing * (1 + 1e-9)


@given(
    st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
    st.floats(1e-3, 1e6),
    st.integers(1, 300),
)
def test_quantile_edges_lie_on_the_grid_and_cover_the_range(
    lower: float, width: float, bins: int
) -> None:
    edges = grid_edges(lower, lower + width, bins)
    assert all(on_grid(e) for e in edges)
    assert edges == sorted(set(edges)) and len(edges) >= 2
    assert edges[0] <= lower and edges[-1] >= lower + width


def test_off_grid_edges_are_refused_with_the_nearest_grid_number() -> None:
    with pytest.raises(ValueError, match=r"41\.3 \(try 41\.5\)"):
        check_edges([0.0, 41.3, 100.0])
    with pytest.raises(Exception) as caught:
        HistogramStep(variable="age", edges=[0.0, 41.3, 100.0])
    assert "public grid" in str(caught.value)
    assert not isinstance(caught.value, FedpsyError)  # a validation error: the request's fault
