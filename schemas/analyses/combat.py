"""``combat``: harmonize variables across batches (sites or scanners) with distributed ComBat.

ComBat (Johnson, Li & Rabinovic, Biostatistics 8(1), 2007; for imaging Fortin et al.,
NeuroImage 167, 2018) removes each batch's additive (``gamma``) and multiplicative
(``delta``) effect on each variable while keeping the effects of ``covariates``
(biological covariates such as age, sex, primary_diagnosis). The distributed form (Chen et
al., "Privacy-preserving harmonization via distributed ComBat", NeuroImage 248, 2022) equals
pooled ComBat: it exchanges only ``XᵀX``, ``XᵀY``, residual sums of squares and per-batch
estimates. ``batch``: ``site`` or a categorical (or binary) variable such as
``mrs_scanner``; each batch must live at one site. ``eb``: empirical-Bayes shrinkage
(needs at least 2 variables). ``ref_batch``: that batch keeps its values and the others
are mapped onto it.

The harmonized values stay at each node: with ``store`` (default) every node keeps them as
new variables ``<code>_combat`` (listed in ``new_variables``) at the request's visit, for
the rows of this run. Result: ``batches: {label: {n, gamma, delta}}`` — each batch's size
and per-variable location (``γ*``, in units of the pooled residual SD) and scale (``δ*²``,
a variance ratio): per-batch (for ``site``: per-site) values, so the policy must allow
``combat``. ``grand_mean`` and ``var_pooled`` per variable, ``coefficients`` of the
covariates (design column → variable → estimate), ``n`` and ``missing``.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.analyses.base import AnalysisBase, AnalysisResult
from schemas.dictionary.model import CODE_MAX_LENGTH

SUFFIX = "_combat"


class CombatRequest(AnalysisBase):
    analysis: Literal["combat"] = "combat"
    variables: list[str] = Field(min_length=1)
    batch: str = "site"
    covariates: list[str] = Field(default_factory=list)
    eb: bool = True
    ref_batch: str | None = None
    store: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        named = [*self.variables, *self.covariates, self.batch]
        repeated = sorted({v for v in named if named.count(v) > 1})
        if repeated:
            raise ValueError(
                f"{', '.join(map(repr, repeated))} named twice among variables, covariates "
                "and batch"
            )
        if self.eb and len(self.variables) < 2:
            raise ValueError("empirical Bayes (eb) needs at least 2 variables; set eb to false")
        too_long = [v for v in self.variables if len(v) + len(SUFFIX) > CODE_MAX_LENGTH]
        if self.store and too_long:
            raise ValueError(f"{too_long} are too long to name their harmonized variables")
        return self

    def analysis_variables(self) -> set[str]:
        return {*self.variables, *self.covariates, self.batch}

    def new_codes(self) -> list[str]:
        return [f"{v}{SUFFIX}" for v in self.variables]


class BatchEstimates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int
    gamma: dict[str, float]
    delta: dict[str, float]


class CombatResult(AnalysisResult):
    variables: list[str]
    new_variables: list[str]
    run_id: str | None
    batch: str
    ref_batch: str | None
    eb: bool
    batches: dict[str, BatchEstimates]
    grand_mean: dict[str, float]
    var_pooled: dict[str, float]
    coefficients: dict[str, dict[str, float]]
    n: int
    missing: int


__all__ = ["SUFFIX", "BatchEstimates", "CombatRequest", "CombatResult"]
