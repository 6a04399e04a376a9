"""``summary``: per variable n, mean, sd, var (ddof 1) and missing.

Each variable uses its own non-missing rows. ``mean`` is null when ``n`` is 0, ``sd`` and
``var`` when ``n`` < 2.
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
    missing: int


class SummaryResult(AnalysisResult):
    variables: dict[str, VariableSummary]
