"""``ttest``: two-sample t-test of ``variable`` between the two levels of ``group``.

The two levels: ``levels`` from the request; else the two the cohort's ``==`` / ``in``
conditions on the group keep (in the cohort's order); else, of the group's levels (its
dictionary categories, ``0``/``1`` when binary), the two with rows in the cohort, when
exactly two have rows (the first round's gated counts say). Rows of other levels are left
out. The statistic is
``mean(first level) − mean(second level)`` over its standard error, as
``scipy.stats.ttest_ind(first, second)``; ``welch`` uses unequal variances
(Welch–Satterthwaite df), ``pooled`` the pooled variance.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.analyses.base import AnalysisBase, AnalysisResult
from schemas.analyses.crosstab import Statistic


class TTestRequest(AnalysisBase):
    analysis: Literal["ttest"] = "ttest"
    variable: str
    group: str
    levels: list[str] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="two levels, comma-separated; empty: the two the cohort or the data leave",
    )

    def analysis_variables(self) -> set[str]:
        return {self.variable, self.group}


class GroupStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int
    mean: float | None
    sd: float | None


class TTestResult(AnalysisResult):
    variable: str
    group: str
    groups: dict[str, GroupStats]
    welch: Statistic
    pooled: Statistic
    n: int
    missing: int
