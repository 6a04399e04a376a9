"""Data-quality steps: per-site completeness, moments and shares at one visit, and the
site's temporal checks.

Both are gathered (per-site values leave: a data-quality report is about sites), and the
node suppresses every count in ``1 .. min_cell − 1`` of its own policy (``None``, with the
suppressed field named in ``suppressed``) instead of refusing the whole report; what is
left passes the privacy gate like any answer. Zero counts leave (the gate's rule).

``quality`` at ``visit``: ``persons`` in the cohort at the visit, and per variable the
persons with a value (``n``); for numeric and integer variables their mean and sum of
squared deviations from the site's own mean (``m2``, so the coordinator merges sites
exactly, Chan, Golub & LeVeque 1983) and the count outside the dictionary's soft
plausibility bounds; for binary and categorical variables the count of each level.

``temporal``: persons of the cohort (at ``visit``) with visit days out of the order of
their visit labels, with an event dated before their index date (day < 0), and with a
drug exposure ending before it starts; and the site's visit labels held by at least
``min_cell`` persons, ordered by :func:`visit_order`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.steps.base import StepBase, StepResult

TEMPORAL_RULES: tuple[str, ...] = ("visit_order", "event_before_index", "exposure_end_before_start")
"""The temporal checks, in report order."""

_NOMINAL = re.compile(r"^(day|week|month|year)_?(\d+)$")
_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def visit_order(label: str) -> tuple[int, int, str]:
    """Sort key of a visit label: ``baseline`` first, then labels naming a nominal time
    (``day3``, ``week6``, ``month_12``, ``year2``) by that time, then any other label
    alphabetically."""
    if label == "baseline":
        return (0, 0, label)
    found = _NOMINAL.match(label.lower())
    if found:
        return (1, int(found.group(2)) * _DAYS[found.group(1)], label)
    return (2, 0, label)


def nominal(label: str) -> bool:
    """Whether a visit label names a time, so that its day can be checked against others'."""
    return visit_order(label)[0] < 2


class QualityStep(StepBase):
    """Completeness, moments, level counts and implausible values of ``variables``."""

    step: Literal["quality"] = "quality"
    variables: list[str] = Field(default_factory=list)


class VariableQuality(BaseModel):
    """One variable at one site and visit; ``None`` where suppressed or not applicable."""

    model_config = ConfigDict(extra="forbid")

    n: int | None
    mean: float | None = None
    m2: float | None = None
    levels: dict[str, int] | None = None
    implausible: int | None = None
    suppressed: list[str] = Field(default_factory=list)


class QualityResult(StepResult):
    persons: int
    variables: dict[str, VariableQuality]


class TemporalStep(StepBase):
    """The site's temporal checks over the cohort's persons at ``visit``."""

    step: Literal["temporal"] = "temporal"


class TemporalResult(StepResult):
    persons: int
    counts: dict[str, int | None]
    visits: list[str]
