"""How many persons have a value of each variable at a visit: the catalog's counts.

Counts leave rounded to ``round_to`` and are suppressed (``None``) below
``suppress_below``, which the coordinator sets to at least every site's minimum cell size;
no exact count leaves.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.steps.base import StepBase, StepResult


class AvailabilityStep(StepBase):
    step: Literal["availability"] = "availability"
    variables: list[str] = Field(min_length=1)
    round_to: int = Field(10, ge=5)
    suppress_below: int = Field(10, ge=5)


class AvailabilityResult(StepResult):
    persons: int | None
    counts: dict[str, int | None]
