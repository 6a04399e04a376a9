"""``quantiles``: approximate quantiles from a fine fixed-edge histogram.

Exact quantiles would disclose single values, so the coordinator secure-sums counts in
``bins`` equal bins over ``[lower, upper]`` and interpolates linearly within bins. Each value
is within ``error_bound`` (the widest bin actually used) of numpy's default ("linear")
quantile of the pooled rows. Without a given range the bins span the pooled mean ± 8 sd,
widened (×4 on the side that needs it) while a requested quantile falls outside; with a
given range such a quantile is an error. ``lower`` / ``upper`` report the range used.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.analyses.base import AnalysisBase, AnalysisResult


class QuantilesRequest(AnalysisBase):
    analysis: Literal["quantiles"] = "quantiles"
    variable: str
    probabilities: list[float] = Field(default=[0.25, 0.5, 0.75], min_length=1)
    bins: int = Field(default=1000, ge=1, le=100_000)
    lower: float | None = None
    upper: float | None = None

    @model_validator(mode="after")
    def _check(self) -> QuantilesRequest:
        if any(not 0.0 <= p <= 1.0 for p in self.probabilities):
            raise ValueError("probabilities must lie in [0, 1]")
        if (self.lower is None) != (self.upper is None):
            raise ValueError("give both lower and upper, or neither")
        if self.lower is not None and self.upper is not None and self.upper <= self.lower:
            raise ValueError("upper must be greater than lower")
        return self

    def analysis_variables(self) -> set[str]:
        return {self.variable}


class QuantilesResult(AnalysisResult):
    variable: str
    probabilities: list[float]
    values: list[float]
    error_bound: float
    lower: float
    upper: float
    bins: int
    n: int
    missing: int
