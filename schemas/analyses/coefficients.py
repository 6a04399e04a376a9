"""What every model analysis shares: a formula in the request, a coefficient table out.

Model results list ``coefficients`` as ``{"term", "estimate", "std_error", "statistic",
"p_value"}`` with formulaic's term names (``Intercept``, ``age``, ``sex[T.M]``). A design
column that is zero in every site's rows (a categorical level no row has) cannot be
estimated; it is left out of the fit and named in ``dropped``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

from schemas.analyses.base import AnalysisBase
from schemas.errors import FedpsyError
from schemas.formula import parse_formula, variables_in_formula


class Coefficient(BaseModel):
    """One model coefficient; ``statistic`` is t (OLS) or z (GLM, LMM); null if undefined."""

    model_config = ConfigDict(extra="forbid")

    term: str
    estimate: float
    std_error: float | None
    statistic: float | None
    p_value: float | None


class FormulaRequest(AnalysisBase):
    """A model request: ``formula`` is ``outcome ~ predictors`` (see ``schemas.formula``)."""

    formula: str

    @field_validator("formula")
    @classmethod
    def _formula_is_valid(cls, formula: str) -> str:
        try:
            parse_formula(formula)
        except FedpsyError as exc:
            raise ValueError(exc.detail) from None
        return formula

    def analysis_variables(self) -> set[str]:
        return set(variables_in_formula(self.formula))


__all__ = ["Coefficient", "FormulaRequest"]
