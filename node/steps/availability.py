"""The ``availability`` step: rounded, suppressed counts of non-missing values."""

from __future__ import annotations

from node.data.source import FrameSource
from node.steps.base import READ, Computed
from node.steps.disclosure import row_ids
from schemas.steps.availability import AvailabilityResult, AvailabilityStep
from schemas.steps.base import Disclosure


def _coarse(n: int, step: AvailabilityStep) -> int | None:
    if n < step.suppress_below:
        return None
    return max(step.round_to * round(n / step.round_to), step.suppress_below)


def availability(step: AvailabilityStep, source: FrameSource) -> Computed:
    known = [v for v in step.variables if v != "site"]
    frame = source.frame(known, step.visit, step.cohort)
    counts = {code: _coarse(int(frame[code].notna().sum()), step) for code in known}
    persons = _coarse(len(frame), step)
    # only coarsened counts leave: multiples of round_to, none below suppress_below
    disclosed = tuple(c for c in (persons, *counts.values()) if c is not None)
    return Computed(
        AvailabilityResult(persons=persons, counts=counts),
        Disclosure(rows=len(frame), cells=disclosed),
        used=((READ, row_ids(frame.index)),),
    )
