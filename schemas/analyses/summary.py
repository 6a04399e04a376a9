"""``summary``: per variable n, mean, sd, var (ddof 1), skewness, kurtosis and missing.

Each variable uses its own non-missing rows. ``mean`` is null when ``n`` is 0, ``sd`` and
``var`` when ``n`` < 2. ``skewness`` is the bias-adjusted sample skewness G1 and
``kurtosis`` the bias-adjusted excess (Fisher) kurtosis G2, as ``scipy.stats.skew(x,
bias=False)`` and ``scipy.stats.kurtosis(x, bias=False)``; ``skewness`` is null when ``n``
< 3, ``kurtosis`` when ``n`` < 4, both when the sd is 0 or when a site's dominance rule
withholds them (one value dominates a sum of cubes or fourth powers).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.analyses.base import AnalysisBase, AnalysisResult


class SummaryRequest(AnalysisBase):
    analysis: Literal["summary"] = "summary"
    variables: list[str] = Field(min_length=1)

    def analysis_variables(self) -> set[str]:
        return set(self.variables)


class VariableSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int
    mean: float | None
    sd: float | None
    var: float | None
    skewness: float | None = None
    kurtosis: float | None = None
    missing: int


class SummaryResult(AnalysisResult):
    variables: dict[str, VariableSummary]
