"""``kaplan_meier``: the product-limit survival curve, per level of ``group`` (optional).

The estimate is computed on the fine public time axis (every ``resolution`` step) from
pooled at-risk and event counts and reported only at the request's ``grid`` times, so it
equals the pooled Kaplan–Meier estimate evaluated there (Kaplan & Meier, JASA 53(282),
1958). Per level (``"all"`` when ungrouped) and grid time ``g_j``: ``survival`` = Ŝ(g_j),
``std_error`` its Greenwood standard error (null when undefined), ``at_risk`` the rows
still followed at ``g_j`` (time ≥ g_j) and ``events`` those in ``(g_{j−1}, g_j]`` (the first
interval ``[0, g_1]``), as R's ``summary(survfit, times=)`` reports them.

Privacy: an interval with fewer than the minimum events would tell when a handful of
people had the event. A site refuses its own such interval (``cell_too_small``) and the
coordinator then merges grid intervals pairwise (``coarsened`` counts the rounds); in the
pooled curve an interval with ``0 < events < min_events`` is merged with its neighbour
(its grid time dropped). ``merged`` says that the reported times are fewer than asked.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.analyses.base import AnalysisResult
from schemas.analyses.survival import SurvivalRequest, axis_point
from schemas.steps.survival import MAX_HORIZON

UNGROUPED = "all"
"""The label of the single curve of an ungrouped request."""


class KaplanMeierRequest(SurvivalRequest):
    analysis: Literal["kaplan_meier"] = "kaplan_meier"
    group: str | None = None
    levels: list[str] | None = Field(default=None, min_length=1)
    grid: list[float] = Field(min_length=1)
    min_events: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _grid_on_axis(self) -> Self:
        if any(b <= a for a, b in pairwise(self.grid)):
            raise ValueError("grid: times must be strictly increasing")
        points = [axis_point(g, self.resolution) for g in self.grid]
        if any(p is None for p in points):
            raise ValueError(
                f"grid: times must be ≥ 0 and whole multiples of the resolution "
                f"({self.resolution:g})"
            )
        if max(p for p in points if p is not None) > MAX_HORIZON:
            raise ValueError(
                f"grid: the last time is more than {MAX_HORIZON} steps of the resolution; "
                "give a coarser resolution"
            )
        return self

    def analysis_variables(self) -> set[str]:
        used = super().analysis_variables()
        return used | {self.group} if self.group is not None else used


class SurvivalCurve(BaseModel):
    """One level's curve at the reported grid times (lists of equal length)."""

    model_config = ConfigDict(extra="forbid")

    time: list[float]
    survival: list[float]
    std_error: list[float | None]
    at_risk: list[int]
    events: list[int]


class KaplanMeierResult(AnalysisResult):
    time: str
    event: str
    group: str | None
    groups: dict[str, SurvivalCurve]
    n: int
    missing: int
    coarsened: int
    merged: bool


__all__ = ["UNGROUPED", "KaplanMeierRequest", "KaplanMeierResult", "SurvivalCurve"]
