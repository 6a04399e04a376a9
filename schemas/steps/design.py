"""Steps over a model's design matrix: column moments, centered cross-products, LMM stats.

Every site builds the same design from the formula (``node.data.formula``). The regression
analyses take two rounds (see METHODS.md, "OLS"):

1. ``column_moments`` (additive): ``n``, ``Σx`` and ``Σx²`` per design column and for the
   outcome. The coordinator derives global column means ``m`` and rough scales ``s``
   (only conditioning depends on them, so rough is enough) and drops columns that are zero
   at every site (a level absent from the pooled rows).
2. ``crossprod`` (additive) or ``lmm_stats`` (gathered per site): the same sums taken in
   the centered and scaled basis ``z = (x − m) / s`` and ``ỹ = (y − m_y) / s_y``:
   ``ZᵀZ``, ``Zᵀỹ``, ``ỹᵀỹ``, ``Zᵀ1`` and ``1ᵀỹ``. Centering about the *global* mean
   keeps the cross-products free of the cancellation that ruins raw ``XᵀX`` on
   ill-conditioned data (Longley, NIST StRD); the coordinator solves there and maps the
   coefficients back, which is exact algebra. The intercept column is never centered or
   scaled (``m = 0``, ``s = 1``), and without an intercept nothing is centered.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from schemas.errors import FedpsyError
from schemas.formula import parse_formula
from schemas.steps.base import StepBase, StepResult


class DesignStep(StepBase):
    """A step computed from the design of ``formula`` (complete cases).

    ``categories``: public levels replacing a categorical variable's own (the coordinator
    sends every site id for ``site``); ``columns``: the design columns to use, in order
    (default: every column the formula builds).
    """

    formula: str
    categories: dict[str, list[str]] = Field(default_factory=dict)
    columns: list[str] | None = None

    @field_validator("formula")
    @classmethod
    def _formula_is_valid(cls, formula: str) -> str:
        try:
            parse_formula(formula)
        except FedpsyError as exc:
            raise ValueError(exc.detail) from None
        return formula


class ColumnMomentsStep(DesignStep):
    """Round one of a regression: ``n``, ``Σx``, ``Σx²`` per column and for the outcome."""

    step: Literal["column_moments"] = "column_moments"


class ColumnMomentsResult(StepResult):
    """Raw sums over the complete-case rows (additive; ``columns`` is carried)."""

    columns: list[str]
    n: int
    missing: int
    sums: list[float]
    squares: list[float]
    y_sum: float
    y_squares: float


class BasisStep(DesignStep):
    """A design step in the centered and scaled basis ``z = (x − m) / s``.

    ``columns`` is required here (from round one); ``center``/``scale`` give ``m``/``s``
    per column.
    """

    columns: list[str] | None = Field(default=None, min_length=1)
    center: list[float]
    scale: list[float]

    @model_validator(mode="after")
    def _shapes_agree(self) -> Self:
        if self.columns is None:
            raise ValueError("columns: required (the design columns, from round one)")
        p = len(self.columns)
        if len(self.center) != p or len(self.scale) != p:
            raise ValueError(f"center and scale need one value per column ({p})")
        if any(not s > 0 for s in self.scale):
            raise ValueError("scales must be positive")
        return self


class CrossprodStep(BasisStep):
    """Centered and scaled cross-products; ``ỹ = (y − y_center) / y_scale``."""

    step: Literal["crossprod"] = "crossprod"
    y_center: float = 0.0
    y_scale: float = Field(default=1.0, gt=0)


class CrossprodResult(StepResult):
    """``ZᵀZ`` (``xtx``), ``Zᵀỹ`` (``xty``), ``ỹᵀỹ`` (``yty``), ``Zᵀ1`` (``x_sum``),
    ``1ᵀỹ`` (``y_sum``) over the ``n`` complete-case rows; ``missing`` rows dropped."""

    columns: list[str]
    n: int
    missing: int
    xtx: list[list[float]]
    xty: list[float]
    yty: float
    x_sum: list[float]
    y_sum: float


class LmmStatsStep(BasisStep):
    """The same sums as ``crossprod``, returned per site (gathered, never summed).

    With them the coordinator evaluates the REML likelihood of a random intercept per
    site exactly; they leave each site on their own, so the policy must allow ``lmm``.
    """

    step: Literal["lmm_stats"] = "lmm_stats"
    y_center: float = 0.0
    y_scale: float = Field(default=1.0, gt=0)


class LmmStatsResult(CrossprodResult):
    """One site's ``crossprod`` sums."""


__all__ = [
    "BasisStep",
    "ColumnMomentsResult",
    "ColumnMomentsStep",
    "CrossprodResult",
    "CrossprodStep",
    "DesignStep",
    "LmmStatsResult",
    "LmmStatsStep",
]
