"""``cox``: proportional hazards regression with Efron's tie correction.

``formula`` is the right side only (``"age + sex"``; a leading ``~`` is accepted); the
outcome is ``time`` and ``event``. The design has no intercept (the baseline hazard takes
its place); categorical terms use their first category as reference. Fitted by Newton–
Raphson on the pooled partial likelihood from β = 0 (Cox, JRSS B 34(2), 1972; Efron,
JASA 72(359), 1977), equal to ``PHReg(ties="efron")`` of statsmodels or ``coxph`` in R.

``coefficients`` are log hazard ratios with standard errors, z statistics and p-values;
``hazard_ratios`` their exponentials with Wald 95 % confidence intervals. Sites count
the rows leaving the risk set between event times as cells; when one refuses, the
coordinator fits again on an axis twice as coarse (more ties), and ``resolution`` says the
axis the fit used (``coarsened`` how many times it doubled).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from schemas.analyses.base import AnalysisResult
from schemas.analyses.coefficients import Coefficient
from schemas.analyses.survival import SurvivalRequest
from schemas.errors import FedpsyError
from schemas.formula import variables_in_formula
from schemas.steps.cox import right_side


class CoxRequest(SurvivalRequest):
    analysis: Literal["cox"] = "cox"
    formula: str

    @field_validator("formula")
    @classmethod
    def _right_side(cls, formula: str) -> str:
        try:
            return right_side(formula)
        except FedpsyError as exc:
            raise ValueError(exc.detail) from None

    def analysis_variables(self) -> set[str]:
        return super().analysis_variables() | set(variables_in_formula(self.formula))


class HazardRatio(BaseModel):
    """``exp(estimate)`` of one coefficient with its Wald 95 % interval (null if undefined)."""

    model_config = ConfigDict(extra="forbid")

    term: str
    hazard_ratio: float
    lower: float | None
    upper: float | None


class CoxResult(AnalysisResult):
    time: str
    event: str
    formula: str
    ties: Literal["efron"] = "efron"
    coefficients: list[Coefficient]
    hazard_ratios: list[HazardRatio]
    n: int
    events: int
    missing: int
    log_likelihood: float
    iterations: int
    converged: bool
    dropped: list[str]
    resolution: float
    coarsened: int = 0


__all__ = ["CoxRequest", "CoxResult", "HazardRatio"]
