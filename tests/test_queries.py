"""The memory of released sums, on both backends: two answers on one variable whose weights
together single out a row are refused, at any visit; unrelated or identical ones pass."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine

from node.privacy.queries import QueryMemory, combined_leverage
from node.steps.base import Query
from schemas.errors import Refused

H = "c" * 64
RNG = np.random.default_rng(5)
AGES = np.sort(RNG.uniform(20, 70, 60))
AGES[30] = 41.0  # the target; nobody else within half a year
AGES[np.abs(AGES - 41.0) < 0.5] = 41.0
ROWS = np.arange(len(AGES), dtype=np.int64)


def window(high: float) -> np.ndarray:
    """About 1 for ages 30 to ``high``, 0 elsewhere (a steep sigmoid window)."""
    with np.errstate(over="ignore"):
        inside = 1 / (1 + np.exp(-200 * (AGES - 30))) / (1 + np.exp(-200 * (high - AGES)))
    return np.column_stack([np.ones(len(AGES)), inside])


def test_two_windows_one_person_apart_combine_into_that_person() -> None:
    wide, narrow = Query("madrs", ROWS, window(41.05)), Query("madrs", ROWS, window(40.95))
    assert combined_leverage(wide, narrow) == pytest.approx(1.0, abs=1e-6)


def test_the_second_window_is_refused_and_other_variables_pass(store_engine: Engine) -> None:
    memory = QueryMemory(store_engine, max_leverage=0.5)
    memory.admit((Query("madrs", ROWS, window(41.05)),), H)
    memory.admit((Query("madrs", ROWS, window(41.05)),), H)  # the same answer again
    memory.admit((Query("hamd", ROWS, window(40.95)),), H)  # another variable
    with pytest.raises(Refused) as caught:
        memory.admit((Query("madrs", ROWS, window(40.95)),), H)
    assert caught.value.code == "differencing"
    assert "41" not in caught.value.detail


def test_ordinary_models_of_one_variable_pass(store_engine: Engine) -> None:
    memory = QueryMemory(store_engine, max_leverage=0.5)
    sex = (RNG.random(len(AGES)) < 0.5).astype(float)
    memory.admit((Query("madrs", ROWS, np.ones((len(AGES), 1))),), H)  # a summary
    memory.admit((Query("madrs", ROWS, np.column_stack([np.ones(len(AGES)), AGES])),), H)
    memory.admit((Query("madrs", ROWS, np.column_stack([np.ones(len(AGES)), sex])),), H)
