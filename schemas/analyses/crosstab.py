"""``crosstab``: contingency counts and Pearson's chi-square (no continuity correction).

Levels are the dictionary categories (``0``/``1`` for binary variables; give
``row_levels`` / ``column_levels`` for other variables). Rows or columns whose total is
zero are kept in ``counts`` but left out of the chi-square test (and of its ``df``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.analyses.base import AnalysisBase, AnalysisResult


class CrosstabRequest(AnalysisBase):
    analysis: Literal["crosstab"] = "crosstab"
    row: str
    column: str
    row_levels: list[str] | None = None
    column_levels: list[str] | None = None

    def analysis_variables(self) -> set[str]:
        return {self.row, self.column}


class Statistic(BaseModel):
    """A test's statistic, degrees of freedom and p-value (null where undefined)."""

    model_config = ConfigDict(extra="forbid")

    statistic: float | None
    df: float | None
    p_value: float | None


class CrosstabResult(AnalysisResult):
    rows: list[str]
    columns: list[str]
    counts: list[list[int]]
    chi2: Statistic
    n: int
    missing: int
