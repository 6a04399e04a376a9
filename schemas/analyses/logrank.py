"""``logrank``: the k-sample log-rank test of equal survival across the levels of ``group``.

Per distinct time, pooled at-risk and event counts per level give observed minus expected
events and their hypergeometric covariance; the statistic ``(O − E)ᵀ V⁻¹ (O − E)`` over all
levels but one is chi-square with ``k − 1`` df (Mantel, Cancer Chemother. Rep. 50(3),
1966; Peto & Peto, JRSS A 135(2), 1972), as ``survdiff`` in R and statsmodels. Levels
without rows are left out of ``k``. ``groups`` gives each level's rows, observed and
expected events.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.analyses.base import AnalysisResult
from schemas.analyses.survival import SurvivalRequest


class LogrankRequest(SurvivalRequest):
    analysis: Literal["logrank"] = "logrank"
    group: str
    levels: list[str] | None = Field(default=None, min_length=2)

    def analysis_variables(self) -> set[str]:
        return super().analysis_variables() | {self.group}


class LogrankGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int
    observed: int
    expected: float


class LogrankResult(AnalysisResult):
    time: str
    event: str
    group: str
    groups: dict[str, LogrankGroup]
    statistic: float | None
    df: int | None
    p_value: float | None
    n: int
    missing: int


__all__ = ["LogrankGroup", "LogrankRequest", "LogrankResult"]
