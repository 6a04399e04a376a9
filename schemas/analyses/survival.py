"""What the survival analyses share: the time and event variables and the time axis.

``time`` is a numeric variable (follow-up in days, say, ``≥ 0``) and ``event`` a binary
one (1 = the event happened at ``time``, 0 = censored then), e.g.
``time_to_rehospitalization`` and ``rehospitalization``. Times are counted on the public
axis ``k · resolution`` (:mod:`schemas.steps.survival`): with the default resolution 1 and
times in whole days every distinct time is its own axis point and the answers equal the
pooled ones; a coarser resolution groups times (ties), which a site's policy may ask for.
"""

from __future__ import annotations

import math

from pydantic import Field

from schemas.analyses.base import AnalysisBase
from schemas.steps.survival import AXIS_TOLERANCE


def axis_point(value: float, resolution: float) -> int | None:
    """``value / resolution`` when it is a whole number ``≥ 0`` (within rounding), else None."""
    q = value / resolution
    k = round(q)
    if k < 0 or not math.isfinite(q) or abs(q - k) > AXIS_TOLERANCE * max(1.0, abs(q)):
        return None
    return int(k)


def axis_bounds(value: float, resolution: float) -> tuple[int, int] | None:
    """The axis points around a time ``value ≥ 0``: ``(p, q)`` with ``p`` the last point at or
    before it and ``q`` the first at or after it (equal when ``value`` is on the axis, within
    rounding); None for a negative or non-finite value.

    Counted on the axis, the survival function is a step function that moves only at axis
    points, so ``Ŝ(value) = Ŝ(p)``, the events up to ``value`` are those up to ``p``, and the
    rows still at risk at ``value`` (time ``≥ value``) are those at ``q`` or later.
    """
    on = axis_point(value, resolution)
    if on is not None:
        return on, on
    q = value / resolution
    if not math.isfinite(q) or q < 0:
        return None
    return math.floor(q), math.floor(q) + 1


class SurvivalRequest(AnalysisBase):
    """``time``, ``event`` and the axis ``resolution`` (in the time variable's unit)."""

    time: str
    event: str
    resolution: float = Field(default=1.0, gt=0)

    def analysis_variables(self) -> set[str]:
        return {self.time, self.event}


__all__ = ["SurvivalRequest", "axis_bounds", "axis_point"]
