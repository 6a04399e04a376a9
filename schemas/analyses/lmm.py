"""``lmm``: linear mixed model with a random intercept per site, fitted by REML.

``y = Xβ + u_site + ε`` with ``u ~ N(0, τ²)`` per site and ``ε ~ N(0, σ²)``. Result:
fixed-effect ``coefficients`` (statistic = z, as statsmodels MixedLM; standard errors from
``(XᵀV̂⁻¹X)⁻¹`` as lme4, nlme and SAS report them — statsmodels' ``bse_fe`` also includes
observed fixed/variance cross terms and differs slightly), ``n``, ``missing``,
``groups`` (sites with rows), ``variance_components`` ``{"site": τ², "residual": σ²}``,
``log_likelihood`` (the REML criterion at the optimum), ``converged`` and the ``dropped``
terms. Each site's sufficient statistics leave it on their own, so the policy must allow
``lmm``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.analyses.base import AnalysisResult
from schemas.analyses.coefficients import Coefficient, FormulaRequest


class LmmRequest(FormulaRequest):
    analysis: Literal["lmm"] = "lmm"


class VarianceComponents(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: float
    residual: float


class LmmResult(AnalysisResult):
    formula: str
    coefficients: list[Coefficient]
    n: int
    missing: int
    groups: int
    variance_components: VarianceComponents
    log_likelihood: float
    converged: bool
    dropped: list[str]


__all__ = ["LmmRequest", "LmmResult", "VarianceComponents"]
