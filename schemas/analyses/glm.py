"""``glm``: generalized linear model (binomial/logit, poisson/log, gaussian/identity).

Fitted by Newton–Raphson from the intercept-only solution with step-halving. Result:
``coefficients`` (statistic = z, p-value from the normal distribution, as statsmodels),
``n``, ``missing``, ``deviance``, ``null_deviance`` (intercept-only model; null without an
intercept), ``dispersion`` (1 for binomial and poisson; Pearson χ² / ``df_residual`` for
gaussian), ``df_residual``, ``iterations`` (Newton updates), ``converged`` and the
``dropped`` terms.
"""

from __future__ import annotations

from typing import Literal

from schemas.analyses.base import AnalysisResult
from schemas.analyses.coefficients import Coefficient, FormulaRequest
from schemas.steps.glm import Family


class GlmRequest(FormulaRequest):
    analysis: Literal["glm"] = "glm"
    family: Family


class GlmResult(AnalysisResult):
    formula: str
    family: Family
    link: str
    coefficients: list[Coefficient]
    n: int
    missing: int
    deviance: float
    null_deviance: float | None
    dispersion: float
    df_residual: int
    iterations: int
    converged: bool
    dropped: list[str]


__all__ = ["GlmRequest", "GlmResult"]
