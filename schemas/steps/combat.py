"""The steps of distributed ComBat (Chen et al., NeuroImage 2022).

ComBat (Johnson, Li & Rabinovic, Biostatistics 8(1), 2007; Fortin et al., NeuroImage 167,
2018) models each variable ``v`` of row ``i`` in batch ``b`` as
``y = α + xᵀβ + γ_b + δ_b ε``. The distributed form needs four exchanges:

1. ``combat_batches`` (gathered): each site's batch labels and their complete-case row
   counts, so that the coordinator learns the batches and checks that each batch lives at
   one site (the empirical-Bayes estimates of a batch are computed where its rows are);
2. ``combat_fit`` (summed): ``XᵀX`` and ``XᵀY`` for the design of batch indicators and
   covariates → the pooled coefficients ``B̂``;
3. ``combat_residuals`` (summed): residual sums of squares under ``B̂`` → the pooled
   variance ``σ̂²`` (over the reference batch's rows when one is given);
4. ``combat_adjust`` (gathered): each site standardizes its rows, estimates ``γ*, δ*`` of
   its batches (parametric empirical Bayes, to convergence in float64), adjusts, stages the
   harmonized values (they stay at the site) and returns the per-batch estimates.

Design columns: one indicator per batch level (``batch[<level>]``), then per covariate either
the variable itself (numeric, integer, binary) or one indicator per category
(``<code>[<category>]``, categorical; the coordinator drops the reference category).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.steps.base import StepBase, StepResult
from schemas.steps.derived import DeriveSpec


class CombatBatchesStep(StepBase):
    """Batch labels present at the site among complete cases of ``variables`` and
    ``covariates``. ``levels``: the batch's levels when the request gives them."""

    step: Literal["combat_batches"] = "combat_batches"
    variables: list[str] = Field(min_length=1)
    batch: str
    covariates: list[str] = Field(default_factory=list)
    levels: list[str] | None = None


class CombatBatchesResult(StepResult):
    """``counts``: complete-case rows per batch label present here; ``missing``: rows
    dropped for a missing value."""

    counts: dict[str, int]
    missing: int


class CombatDesignStep(StepBase):
    """Fields shared by the steps that build the ComBat design. ``levels``: every batch
    level of the run (the design's batch columns, in this order)."""

    variables: list[str] = Field(min_length=1)
    batch: str
    levels: list[str] = Field(min_length=1)
    covariates: list[str] = Field(default_factory=list)


class CombatFitStep(CombatDesignStep):
    step: Literal["combat_fit"] = "combat_fit"


class CombatFitResult(StepResult):
    """``xtx[j][k]`` over design columns, ``xty[j][v]`` per design column and variable."""

    columns: list[str]
    n: int
    missing: int
    xtx: list[list[float]]
    xty: list[list[float]]


class CombatResidualsStep(CombatDesignStep):
    """Residual sums of squares under ``coefficients`` (design column × variable), over
    all rows or only those of batch ``only_batch``."""

    step: Literal["combat_residuals"] = "combat_residuals"
    coefficients: list[list[float]]
    only_batch: str | None = None


class CombatResidualsResult(StepResult):
    n: int
    ssr: list[float]


class CombatAdjustStep(CombatDesignStep):
    """Standardize with ``coefficients``, ``grand_mean`` and ``var_pooled``; estimate each
    local batch's ``γ*``, ``δ*``; adjust; stage the values as ``derive`` says (none: the
    values are computed and dropped). ``ref_batch``: that batch keeps its values
    (``γ* = 0``, ``δ* = 1``). ``tolerance`` / ``max_iter``: the empirical-Bayes iteration
    stops when no estimate changes by more than ``tolerance`` (relative)."""

    step: Literal["combat_adjust"] = "combat_adjust"
    coefficients: list[list[float]]
    grand_mean: list[float]
    var_pooled: list[float]
    eb: bool = True
    ref_batch: str | None = None
    tolerance: float = Field(default=1e-12, gt=0.0)
    max_iter: int = Field(default=10_000, ge=1)
    derive: DeriveSpec | None = None


class BatchFit(BaseModel):
    """One batch's size and per-variable location ``gamma`` (``γ*``) and scale ``delta``
    (``δ*``, a variance ratio), and the empirical-Bayes iterations it took."""

    model_config = ConfigDict(extra="forbid")

    n: int
    gamma: list[float]
    delta: list[float]
    iterations: int


class CombatAdjustResult(StepResult):
    batches: dict[str, BatchFit]


__all__ = [
    "BatchFit",
    "CombatAdjustResult",
    "CombatAdjustStep",
    "CombatBatchesResult",
    "CombatBatchesStep",
    "CombatDesignStep",
    "CombatFitResult",
    "CombatFitStep",
    "CombatResidualsResult",
    "CombatResidualsStep",
]
