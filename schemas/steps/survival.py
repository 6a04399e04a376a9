"""Survival steps: the extent of follow-up, and per-time counts on a public time axis.

Times leave a node only as counts on a public axis ``k · resolution`` (``k = 0 … horizon``),
so per-site counts line up and sum (METHODS.md, "Survival"). A node maps each time ``t``
to the axis point ``k = ⌈t / resolution⌉`` (a time within rounding of a multiple of the
resolution is that multiple); with times in whole units of the resolution (days, say) the
axis holds every distinct time and the pooled estimates are exact.

* ``survival_extent`` (additive): per power of two ``2^j``, whether this site has a row at
  axis point ``k ≥ 2^j``. Summed, it tells the coordinator only the power-of-two bracket of
  the longest follow-up, from which it chooses ``horizon``; no row's time leaves.
* ``survival_counts`` (additive): per group level and axis point, the rows at risk
  (``index ≥ k``) and the events at ``k``. Rows beyond ``horizon`` are at risk at every
  point and counted in ``beyond``; their events are not counted. ``intervals`` (axis
  points ``g_1 ≤ … ≤ g_m``) names the intervals ``[0, g_1], (g_1, g_2], …`` whose event
  counts the node's privacy gate checks, and ``risk_points`` (default: the same points)
  where the curve's ``at_risk`` is read, so the rows leaving between them are checked too:
  a Kaplan–Meier curve is published only at those points. With ``probe`` the node checks
  the same cells and answers only whether its gate lets the result out (an empty result,
  or the refusal's code): the coordinator's search for the grid every site allows.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from schemas.steps.base import StepBase, StepResult

EXTENT_BITS = 48
"""Powers of two the extent step answers for: axis points up to ``2^48``."""

MAX_HORIZON = 2**16 - 1
"""The longest axis a survival step may ask for (points ``0 … MAX_HORIZON``)."""

AXIS_TOLERANCE = 1e-9
"""Relative distance from a multiple of the resolution still taken as that multiple."""


class SurvivalStep(StepBase):
    """Fields every survival step shares: the time variable and the axis resolution."""

    time: str
    resolution: float = Field(default=1.0, gt=0)


class SurvivalExtentStep(SurvivalStep):
    """Which powers of two the site's axis points reach (rows with a time present)."""

    step: Literal["survival_extent"] = "survival_extent"


class SurvivalExtentResult(StepResult):
    """``reaches[j]``: 1 when the site has a row at an axis point ``≥ 2^j``, else 0."""

    reaches: list[int]


class SurvivalCountsStep(SurvivalStep):
    """At-risk and event counts per axis point, per level of ``group`` (optional).

    ``levels``: the group's levels (default: its categories, ``0``/``1`` when binary);
    rows of other levels are left out. ``intervals``: non-decreasing axis points
    ``≤ horizon`` whose interval event counts the gate checks (Kaplan–Meier); without them
    the gate checks each level's rows and events (log-rank). ``risk_points``: where the
    at-risk counts of those intervals are read, one per interval point and not before it
    (default: the interval points themselves; one later for a requested time between two
    axis points). ``probe``: check only, release nothing but the gate's verdict.
    """

    step: Literal["survival_counts"] = "survival_counts"
    event: str
    group: str | None = None
    levels: list[str] | None = None
    horizon: int = Field(ge=0, le=MAX_HORIZON)
    intervals: list[int] | None = Field(default=None, min_length=1)
    risk_points: list[int] | None = None
    probe: bool = False

    @field_validator("intervals", "risk_points")
    @classmethod
    def _increasing(cls, points: list[int] | None) -> list[int] | None:
        if points is not None and (
            not points or points[0] < 0 or any(b < a for a, b in pairwise(points))
        ):
            raise ValueError("intervals and risk_points must be non-decreasing axis points ≥ 0")
        return points

    @model_validator(mode="after")
    def _within_horizon(self) -> Self:
        if self.intervals is not None and self.intervals[-1] > self.horizon:
            raise ValueError("intervals must end at or before the horizon")
        if self.risk_points is not None and (
            self.intervals is None
            or len(self.risk_points) != len(self.intervals)
            or any(r < i for r, i in zip(self.risk_points, self.intervals, strict=True))
            or self.risk_points[-1] > self.horizon
        ):
            raise ValueError(
                "risk_points: one per interval point, not before it, within the horizon"
            )
        if self.probe and self.intervals is None:
            raise ValueError("probe: only for a Kaplan–Meier step (with intervals)")
        return self

    @property
    def at_risk_points(self) -> list[int] | None:
        """Where the reported at-risk counts are read (the interval points by default)."""
        return self.risk_points if self.risk_points is not None else self.intervals


class SurvivalCountsResult(StepResult):
    """Per group ``g`` (one group when ungrouped) and axis point ``k``.

    ``total``: cohort rows at the visit; ``missing``: rows dropped for a missing time,
    event or group; ``n[g]``: rows used; ``at_risk[g][k]``: rows whose time is at ``k`` or
    later (including ``beyond``); ``events[g][k]``: events at ``k``; ``beyond[g]``: rows
    whose time lies past the horizon.
    """

    levels: list[str] | None
    total: int
    missing: int
    n: list[int]
    at_risk: list[list[int]]
    events: list[list[int]]
    beyond: list[int]


__all__ = [
    "AXIS_TOLERANCE",
    "EXTENT_BITS",
    "MAX_HORIZON",
    "SurvivalCountsResult",
    "SurvivalCountsStep",
    "SurvivalExtentResult",
    "SurvivalExtentStep",
    "SurvivalStep",
]
