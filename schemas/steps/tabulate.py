"""Counting steps: cohort size, histogram bin counts and contingency tables.

All three are additive (counts sum over sites). Labels of the table margins are carried
fields: every site reports the same public levels (dictionary categories, ``0``/``1`` for
binary variables, or levels given in the request), so the tables line up.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

from pydantic import Field, field_validator

from schemas.grid import check_edges
from schemas.steps.base import StepBase, StepResult


class CountStep(StepBase):
    """How many rows the cohort holds at the visit."""

    step: Literal["count"] = "count"


class CountResult(StepResult):
    n: int


class HistogramStep(StepBase):
    """Counts of ``variable`` in the fixed bins ``edges``.

    Bins are half open ``[e_i, e_{i+1})`` except the last, which is closed (numpy's
    convention); values below ``edges[0]`` or above ``edges[-1]`` are counted in ``below``
    and ``above``. Edges lie on the public grid of :mod:`schemas.grid`.
    """

    step: Literal["histogram"] = "histogram"
    variable: str
    edges: list[float] = Field(min_length=2)

    @field_validator("edges")
    @classmethod
    def _increasing(cls, edges: list[float]) -> list[float]:
        if any(b <= a for a, b in pairwise(edges)):
            raise ValueError("edges must be strictly increasing")
        return check_edges(edges)


class HistogramResult(StepResult):
    counts: list[int]
    below: int
    above: int
    missing: int


class CrosstabStep(StepBase):
    """Contingency counts of ``row`` by ``column`` on rows where both are present.

    ``row_levels`` / ``column_levels`` name the levels (as strings) for a variable that
    is not categorical; categorical variables use their dictionary categories and binary
    (0/1) variables ``["0", "1"]``.
    """

    step: Literal["crosstab"] = "crosstab"
    row: str
    column: str
    row_levels: list[str] | None = None
    column_levels: list[str] | None = None


class CrosstabResult(StepResult):
    rows: list[str]
    columns: list[str]
    counts: list[list[int]]
    missing: int
