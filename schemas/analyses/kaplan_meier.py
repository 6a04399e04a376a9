"""``kaplan_meier``: the product-limit survival curve, per level of ``group`` (optional).

The estimate is computed on the fine public time axis (every ``resolution`` step) from
pooled at-risk and event counts and reported only at the request's ``grid`` times, so it
equals the pooled Kaplan–Meier estimate evaluated there (Kaplan & Meier, JASA 53(282),
1958). Per level (``"all"`` when ungrouped) and grid time ``g_j``: ``survival`` = Ŝ(g_j),
``std_error`` its Greenwood standard error (null when undefined), ``at_risk`` the rows
still followed at ``g_j`` (time ≥ g_j) and ``events`` those in ``(g_{j−1}, g_j]`` (the first
interval ``[0, g_1]``), as R's ``summary(survfit, times=)`` reports them.

Grid times are any non-negative numbers, in the time variable's unit. Rows' times reach a
site's counts only as points of the public axis ``k · resolution``; on that axis Ŝ is a
step function that moves only at axis points, so Ŝ(g) is Ŝ at the last axis point at or
before ``g``, and ``at_risk`` counts the rows from the first axis point at or after ``g``
(:func:`~schemas.analyses.survival.axis_bounds`). A time between two axis points therefore
names the same counts as an axis point does: what a site counts, and what its gate checks,
stays on the public axis, and a grid cannot aim an interval edge finer than the resolution.

Privacy: an interval with fewer than the minimum events would tell when a handful of
people had the event. A site refuses its own such interval (``cell_too_small``), and the
coordinator then keeps, from the start of the grid, each time that every site's rules
allow and leaves out the others (``coordinator/analyses/km_grid.py``): ``merged_points``
lists every requested time left out, with the refusing rule's code and the sites whose rule
required it, never a count; ``coarsened`` counts the refused rounds. In the pooled curve an
interval with ``0 < events < min_events`` is merged with its neighbour (listed with an
empty ``sites`` and its ``group``). ``merged`` says that the reported times are fewer than
asked.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.analyses.base import AnalysisResult
from schemas.analyses.survival import SurvivalRequest, axis_bounds
from schemas.steps.survival import MAX_HORIZON

UNGROUPED = "all"
"""The label of the single curve of an ungrouped request."""


MAX_GRID = 100
"""The most times a grid may ask for: it bounds the rounds of the coordinator's search."""


class KaplanMeierRequest(SurvivalRequest):
    analysis: Literal["kaplan_meier"] = "kaplan_meier"
    group: str | None = None
    levels: list[str] | None = Field(default=None, min_length=1)
    grid: list[float] = Field(min_length=1, max_length=MAX_GRID)
    min_events: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _grid_on_axis(self) -> Self:
        if any(b <= a for a, b in pairwise(self.grid)):
            raise ValueError("grid: times must be strictly increasing")
        points = [axis_bounds(g, self.resolution) for g in self.grid]
        if any(p is None for p in points):
            raise ValueError("grid: times must be finite and ≥ 0")
        if max(p[1] for p in points if p is not None) > MAX_HORIZON:
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


class MergedPoint(BaseModel):
    """A requested grid time the result leaves out, and the rule that required it.

    ``code``: the refusing rule (``cell_too_small``); ``sites``: the sites whose rule
    required it (empty for the request's own ``min_events`` on the pooled counts);
    ``group``: the one curve it was merged from (null: every curve). Never a count.
    """

    model_config = ConfigDict(extra="forbid")

    time: float
    code: str
    sites: list[str] = Field(default_factory=list)
    group: str | None = None


class KaplanMeierResult(AnalysisResult):
    time: str
    event: str
    group: str | None
    groups: dict[str, SurvivalCurve]
    n: int
    missing: int
    coarsened: int
    merged: bool
    merged_points: list[MergedPoint] = Field(default_factory=list)


__all__ = [
    "MAX_GRID",
    "UNGROUPED",
    "KaplanMeierRequest",
    "KaplanMeierResult",
    "MergedPoint",
    "SurvivalCurve",
]
