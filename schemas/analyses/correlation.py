"""``correlation``: Pearson correlation matrix on complete cases."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.analyses.base import AnalysisBase, AnalysisResult


class CorrelationRequest(AnalysisBase):
    analysis: Literal["correlation"] = "correlation"
    variables: list[str] = Field(min_length=2)

    def analysis_variables(self) -> set[str]:
        return set(self.variables)


class CorrelationResult(AnalysisResult):
    variables: list[str]
    matrix: list[list[float | None]]
    n: int
    missing: int
