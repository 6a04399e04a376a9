"""``ols``: least-squares linear regression, exact to the pooled fit.

Result: ``coefficients`` (statistic = t with ``df_residual`` degrees of freedom), ``n``
rows used, ``missing`` rows dropped, ``r_squared`` (uncentered when the formula has no
intercept, as statsmodels), ``adj_r_squared``, ``sigma`` (residual standard error,
``√(RSS / (n − p))``), ``df_residual`` and the ``dropped`` terms.
"""

from __future__ import annotations

from typing import Literal

from schemas.analyses.base import AnalysisResult
from schemas.analyses.coefficients import Coefficient, FormulaRequest


class OlsRequest(FormulaRequest):
    analysis: Literal["ols"] = "ols"


class OlsResult(AnalysisResult):
    formula: str
    coefficients: list[Coefficient]
    n: int
    missing: int
    r_squared: float
    adj_r_squared: float
    sigma: float
    df_residual: int
    dropped: list[str]


__all__ = ["OlsRequest", "OlsResult"]
