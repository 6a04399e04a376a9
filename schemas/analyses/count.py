"""``count``: rows in the cohort."""

from __future__ import annotations

from typing import Literal

from schemas.analyses.base import AnalysisBase, AnalysisResult


class CountRequest(AnalysisBase):
    analysis: Literal["count"] = "count"


class CountResult(AnalysisResult):
    n: int
