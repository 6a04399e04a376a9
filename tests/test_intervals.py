"""The memory of released histogram edges, on both backends.

Two histograms of the same persons whose edges together set apart 1 .. min_cell-1 of them
are refused, whatever the order; the same edges again, coarser edges and other persons'
histograms are not.
"""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine

from node.privacy.intervals import IntervalMemory, cell_counts, cuts_of
from node.steps.base import Intervals
from schemas.errors import Refused

H = "b" * 64
AGES = np.array([30.0] * 40 + [40.0] + [60.0] * 40)  # one person aged 40
ROWS = np.arange(len(AGES), dtype=np.int64)


def histogram(edges: tuple[float, ...], values: np.ndarray = AGES) -> Intervals:
    return Intervals("age", edges, values)


def test_the_cells_of_a_single_histogram_are_its_bins() -> None:
    edges = (0.0, 40.0, 50.0, 100.0)
    counts = cell_counts(AGES, cuts_of(edges))
    below, above = int((AGES < 0).sum()), int((AGES > 100).sum())
    assert counts.tolist() == [below, *np.histogram(AGES, bins=edges)[0].tolist(), above]


def test_shifting_one_edge_by_one_person_is_refused(store_engine: Engine) -> None:
    memory = IntervalMemory(store_engine, min_cell=5)
    memory.admit(histogram((0.0, 40.0, 100.0)), ROWS, H)  # 40 | 41
    with pytest.raises(Refused) as caught:
        memory.admit(histogram((0.0, 40.5, 100.0)), ROWS, H)  # 41 | 40
    assert caught.value.code == "differencing"
    assert "40" not in caught.value.detail  # the refusal never names the edge or a count


def test_a_closed_top_edge_and_an_inner_edge_at_one_value_are_a_cell(
    store_engine: Engine,
) -> None:
    memory = IntervalMemory(store_engine, min_cell=5)
    memory.admit(histogram((0.0, 40.0)), ROWS, H)  # x ≤ 40: 41 persons
    with pytest.raises(Refused):
        memory.admit(histogram((0.0, 40.0, 100.0)), ROWS, H)  # x < 40: 40


def test_same_or_coarser_edges_and_other_persons_pass(store_engine: Engine) -> None:
    memory = IntervalMemory(store_engine, min_cell=5)
    memory.admit(histogram((0.0, 20.0, 50.0, 100.0)), ROWS, H)
    memory.admit(histogram((0.0, 20.0, 50.0, 100.0)), ROWS, H)
    memory.admit(histogram((0.0, 50.0, 100.0)), ROWS, H)
    others = ROWS[:-10]  # a cohort that differs: its own memory
    memory.admit(histogram((0.0, 40.5, 100.0), AGES[:-10]), others, H)


def test_memory_survives_a_new_memory_object(store_engine: Engine) -> None:
    IntervalMemory(store_engine, min_cell=5).admit(histogram((0.0, 40.0, 100.0)), ROWS, H)
    with pytest.raises(Refused):
        IntervalMemory(store_engine, min_cell=5).admit(histogram((0.0, 40.5, 100.0)), ROWS, H)


def test_an_empty_piece_of_a_split_interval_is_refused_like_a_small_one(
    store_engine: Engine,
) -> None:
    """Splitting a released interval must not tell "nobody there" from "one person there"."""
    nobody_at_40 = np.array([30.0] * 40 + [60.0] * 40)
    rows = np.arange(len(nobody_at_40), dtype=np.int64)
    memory = IntervalMemory(store_engine, min_cell=5)
    memory.admit(histogram((0.0, 40.0, 100.0), nobody_at_40), rows, H)
    with pytest.raises(Refused):
        memory.admit(histogram((0.0, 40.5, 100.0), nobody_at_40), rows, H)
