"""The PCA scores step: each node scores its own rows and keeps the scores.

``scores = ((x − center) / scale) · componentsᵀ`` on complete cases; the node stages them as
the variables of ``derive`` and returns only how many rows it scored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.steps.base import StepBase, StepResult
from schemas.steps.derived import DeriveSpec


class PcaScoresStep(StepBase):
    step: Literal["pca_scores"] = "pca_scores"
    variables: list[str] = Field(min_length=1)
    center: list[float]
    scale: list[float]
    components: list[list[float]] = Field(min_length=1)
    derive: DeriveSpec


class PcaScoresResult(StepResult):
    n: int


__all__ = ["PcaScoresResult", "PcaScoresStep"]
