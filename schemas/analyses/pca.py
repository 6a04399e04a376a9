"""``pca``: principal components of the pooled covariance (or correlation) matrix.

The matrix comes from the exact two-round federated moments (see :mod:`schemas.steps.
moments`); its eigenvectors are the ``components`` (one row per component, one loading per
variable, each signed so that its largest loading is positive, as scikit-learn does),
its eigenvalues the ``explained_variance`` (ddof 1) and their shares of the total the
``explained_variance_ratio`` (Jolliffe, *Principal Component Analysis*, 2nd ed., Springer
2002). ``scale``: standardize each variable to unit variance first (the correlation
matrix). Complete cases only. ``n_components``: how many to report (default all).

With ``scores_prefix`` every node keeps each of its rows' scores as new variables
``<prefix>_pc1`` … (listed in ``new_variables``, for the rows of this run at the request's
visit); the scores never leave the nodes.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from schemas.analyses.base import AnalysisBase, AnalysisResult
from schemas.dictionary.model import CODE_MAX_LENGTH, CODE_PATTERN


class PcaRequest(AnalysisBase):
    analysis: Literal["pca"] = "pca"
    variables: list[str] = Field(min_length=2)
    scale: bool = True
    n_components: int | None = Field(default=None, ge=1)
    scores_prefix: str | None = Field(default=None, pattern=CODE_PATTERN)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.variables)) != len(self.variables):
            raise ValueError("variables: a variable is named twice")
        if self.n_components is not None and self.n_components > len(self.variables):
            raise ValueError("n_components: at most one component per variable")
        if self.scores_prefix is not None:
            longest = f"{self.scores_prefix}_pc{len(self.variables)}"
            if len(longest) > CODE_MAX_LENGTH:
                raise ValueError(f"scores_prefix: {longest!r} would be too long a code")
        return self

    def analysis_variables(self) -> set[str]:
        return set(self.variables)

    def components_wanted(self) -> int:
        return self.n_components or len(self.variables)

    def new_codes(self) -> list[str]:
        if self.scores_prefix is None:
            return []
        return [f"{self.scores_prefix}_pc{j + 1}" for j in range(self.components_wanted())]


class PcaResult(AnalysisResult):
    variables: list[str]
    scale: bool
    n: int
    missing: int
    mean: list[float]
    sd: list[float]
    components: list[list[float]]
    explained_variance: list[float]
    explained_variance_ratio: list[float]
    new_variables: list[str]
    run_id: str | None


__all__ = ["PcaRequest", "PcaResult"]
