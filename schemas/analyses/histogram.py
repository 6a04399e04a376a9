"""``histogram``: counts in fixed bins.

``edges`` are the finest bins wanted (half open, last bin closed; values outside are
counted in ``below`` / ``above``), numbers with at most two significant digits (the public
grid of :mod:`schemas.grid`). If a site refuses a bin below its minimum cell size, the
coordinator asks again with adjacent bins merged pairwise (``coarsened`` says how many
times). In the pooled answer a bin with fewer than ``min_count`` rows (but not zero) is
merged with its neighbour; ``merged`` says whether that happened, and ``edges`` are the
bins actually reported.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

from pydantic import Field, field_validator

from schemas.analyses.base import AnalysisBase, AnalysisResult
from schemas.grid import check_edges


class HistogramRequest(AnalysisBase):
    analysis: Literal["histogram"] = "histogram"
    variable: str
    edges: list[float] = Field(min_length=2)
    min_count: int = Field(default=5, ge=0)

    @field_validator("edges")
    @classmethod
    def _increasing(cls, edges: list[float]) -> list[float]:
        if any(b <= a for a, b in pairwise(edges)):
            raise ValueError("edges must be strictly increasing")
        return check_edges(edges)

    def analysis_variables(self) -> set[str]:
        return {self.variable}


class HistogramResult(AnalysisResult):
    variable: str
    edges: list[float]
    counts: list[int]
    below: int
    above: int
    n: int
    missing: int
    coarsened: int
    merged: bool
