"""The Cox steps: events per axis point, then risk-set and event-set sums at event points.

For the partial likelihood with Efron's tie correction (Efron, "The efficiency of Cox's
likelihood function for censored data", JASA 72(359), 1977) the coordinator needs, at
each event time ``t`` on the shared axis (see :mod:`schemas.steps.survival`), over the
rows at risk (time ``≥ t``) ``S0 = Σ w``, ``S1 = Σ w z`` and ``S2 = Σ w z zᵀ`` with
``w = exp(zβ)``, the same three sums over the rows with an event at ``t`` and the number of
those events ``d``. Every one of them is a sum over rows, so sites' values add up to the
pooled ones (METHODS.md, "Survival"); so does ``Σ z`` over all events, the first term of
the score. ``z = (x − m) / s`` is the design (the formula's right side, intercept removed)
centered and scaled for conditioning, which leaves the partial likelihood unchanged up to
the scale of β.

Round one (``cox_events``) counts the events per point of the whole axis, so the
coordinator learns at which points the pooled rows have events; every later round
(``cox_sums``) asks for the sums at those points only. A site thereby learns on which
axis points some row of the consortium has an event (not where, nor how many): the price
of not shipping ``p²`` sums for every point of a long follow-up.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from schemas.errors import ErrorCode, FedpsyError
from schemas.formula import parse_formula
from schemas.steps.base import StepResult
from schemas.steps.survival import MAX_HORIZON, SurvivalStep


def right_side(formula: str) -> str:
    """The covariates of a Cox formula: ``"age + sex"`` and ``"~ age + sex"`` both give
    ``"age + sex"`` (``request_invalid`` when it names an outcome or is malformed)."""
    text = formula.strip()
    if "~" in text:
        left, _, right = text.partition("~")
        if left.strip():
            raise FedpsyError(
                f"formula {formula!r}: a Cox model takes only the right side "
                "('age + sex'); 'time' and 'event' name the outcome",
                code=ErrorCode.REQUEST_INVALID,
            )
        text = right.strip()
    parse_formula(text, outcome=False)
    return text


class CoxStep(SurvivalStep):
    """Fields of both Cox steps: the event, the covariates and their public levels.

    ``formula`` is the right side; the node builds its design with the intercept removed.
    ``categories``: public levels replacing a categorical variable's own (every site id for
    ``site``).
    """

    event: str
    formula: str
    categories: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("formula")
    @classmethod
    def _formula_is_valid(cls, formula: str) -> str:
        try:
            return right_side(formula)
        except FedpsyError as exc:
            raise ValueError(exc.detail) from None


class CoxEventsStep(CoxStep):
    """Round one: events per axis point ``0 … horizon`` and the design's raw column sums."""

    step: Literal["cox_events"] = "cox_events"
    horizon: int = Field(ge=0, le=MAX_HORIZON)


class CoxEventsResult(StepResult):
    """``events[k]``: events at axis point ``k``; ``sums``/``squares``: ``Σx``/``Σx²`` per
    design column over the ``n`` complete-case rows; ``beyond``: rows past the horizon."""

    columns: list[str]
    n: int
    missing: int
    beyond: int
    events: list[int]
    sums: list[float]
    squares: list[float]


class CoxSumsStep(CoxStep):
    """Efron's sums at ``beta`` in the basis ``z = (x − center) / scale`` of ``columns``,
    at each axis point of ``points`` (the points where the pooled rows have events)."""

    step: Literal["cox_sums"] = "cox_sums"
    columns: list[str] = Field(min_length=1)
    center: list[float]
    scale: list[float]
    beta: list[float]
    points: list[int] = Field(min_length=1)

    @model_validator(mode="after")
    def _shapes_agree(self) -> Self:
        p = len(self.columns)
        if any(len(v) != p for v in (self.center, self.scale, self.beta)):
            raise ValueError(f"center, scale and beta need one value per column ({p})")
        if any(not s > 0 for s in self.scale):
            raise ValueError("scales must be positive")
        if self.points[0] < 0 or any(b <= a for a, b in pairwise(self.points)):
            raise ValueError("points must be increasing axis points ≥ 0")
        return self


class CoxSumsResult(StepResult):
    """Per axis point ``t`` of the request's ``points``; ``p`` design ``columns``.

    ``n``: rows used; ``missing``: rows dropped (a missing or non-finite value);
    ``events[t] = d``; ``event_sum = Σ z`` over the events at the points;
    ``risk0/1/2[t]`` and ``event0/1/2[t]``: ``Σ w``, ``Σ w z``, ``Σ w z zᵀ`` over the rows
    at risk at ``t`` (time ``≥ t``) and over the events at ``t``.
    """

    columns: list[str]
    n: int
    missing: int
    events: list[int]
    event_sum: list[float]
    risk0: list[float]
    risk1: list[list[float]]
    risk2: list[list[list[float]]]
    event0: list[float]
    event1: list[list[float]]
    event2: list[list[list[float]]]


__all__ = [
    "CoxEventsResult",
    "CoxEventsStep",
    "CoxStep",
    "CoxSumsResult",
    "CoxSumsStep",
    "right_side",
]
