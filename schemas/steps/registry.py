"""Every step the wire protocol knows: name → request model, result model, additivity.

A node parses an incoming step with :func:`parse_step`; the coordinator looks up the
result model it expects and whether the step may be secure-summed (``additive``: every
numeric field of its result is summed over sites by :mod:`schemas.steps.additive`).
Adding a step means adding one :class:`StepSpec` to :data:`STEPS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.availability import AvailabilityResult, AvailabilityStep
from schemas.steps.base import StepBase, StepResult
from schemas.steps.clusters import (
    GmmStatsResult,
    GmmStatsStep,
    KmeansCandidatesResult,
    KmeansCandidatesStep,
    KmeansSumsResult,
    KmeansSumsStep,
)
from schemas.steps.combat import (
    CombatAdjustResult,
    CombatAdjustStep,
    CombatBatchesResult,
    CombatBatchesStep,
    CombatFitResult,
    CombatFitStep,
    CombatResidualsResult,
    CombatResidualsStep,
)
from schemas.steps.cox import CoxEventsResult, CoxEventsStep, CoxSumsResult, CoxSumsStep
from schemas.steps.derived import CommitDerivedResult, CommitDerivedStep
from schemas.steps.design import (
    ColumnMomentsResult,
    ColumnMomentsStep,
    CrossprodResult,
    CrossprodStep,
    LmmStatsResult,
    LmmStatsStep,
)
from schemas.steps.glm import GlmScoreResult, GlmScoreStep
from schemas.steps.moments import MomentsResult, MomentsStep
from schemas.steps.pca import PcaScoresResult, PcaScoresStep
from schemas.steps.predict import PredictResult, PredictStep
from schemas.steps.quality import QualityResult, QualityStep, TemporalResult, TemporalStep
from schemas.steps.site_fit import SiteFitResult, SiteFitStep
from schemas.steps.survival import (
    SurvivalCountsResult,
    SurvivalCountsStep,
    SurvivalExtentResult,
    SurvivalExtentStep,
)
from schemas.steps.tabulate import (
    CountResult,
    CountStep,
    CrosstabResult,
    CrosstabStep,
    HistogramResult,
    HistogramStep,
)
from schemas.steps.train import TrainResult, TrainStep, TrainSumResult, TrainSumStep


@dataclass(frozen=True)
class StepSpec:
    """The wire models of one step and whether its results sum over sites."""

    request: type[StepBase]
    result: type[StepResult]
    additive: bool


STEPS: dict[str, StepSpec] = {
    "count": StepSpec(CountStep, CountResult, additive=True),
    "moments": StepSpec(MomentsStep, MomentsResult, additive=True),
    "histogram": StepSpec(HistogramStep, HistogramResult, additive=True),
    "crosstab": StepSpec(CrosstabStep, CrosstabResult, additive=True),
    "column_moments": StepSpec(ColumnMomentsStep, ColumnMomentsResult, additive=True),
    "crossprod": StepSpec(CrossprodStep, CrossprodResult, additive=True),
    "glm_score": StepSpec(GlmScoreStep, GlmScoreResult, additive=True),
    "lmm_stats": StepSpec(LmmStatsStep, LmmStatsResult, additive=False),
    "site_fit": StepSpec(SiteFitStep, SiteFitResult, additive=False),
    "train": StepSpec(TrainStep, TrainResult, additive=False),
    "train_sum": StepSpec(TrainSumStep, TrainSumResult, additive=True),
    "predict": StepSpec(PredictStep, PredictResult, additive=True),
    "survival_extent": StepSpec(SurvivalExtentStep, SurvivalExtentResult, additive=True),
    "survival_counts": StepSpec(SurvivalCountsStep, SurvivalCountsResult, additive=True),
    "cox_events": StepSpec(CoxEventsStep, CoxEventsResult, additive=True),
    "cox_sums": StepSpec(CoxSumsStep, CoxSumsResult, additive=True),
    "combat_batches": StepSpec(CombatBatchesStep, CombatBatchesResult, additive=False),
    "combat_fit": StepSpec(CombatFitStep, CombatFitResult, additive=True),
    "combat_residuals": StepSpec(CombatResidualsStep, CombatResidualsResult, additive=True),
    "combat_adjust": StepSpec(CombatAdjustStep, CombatAdjustResult, additive=False),
    "commit_derived": StepSpec(CommitDerivedStep, CommitDerivedResult, additive=True),
    "availability": StepSpec(AvailabilityStep, AvailabilityResult, additive=False),
    "pca_scores": StepSpec(PcaScoresStep, PcaScoresResult, additive=True),
    "kmeans_sums": StepSpec(KmeansSumsStep, KmeansSumsResult, additive=True),
    "kmeans_candidates": StepSpec(KmeansCandidatesStep, KmeansCandidatesResult, additive=False),
    "gmm_stats": StepSpec(GmmStatsStep, GmmStatsResult, additive=True),
    "quality": StepSpec(QualityStep, QualityResult, additive=False),
    "temporal": StepSpec(TemporalStep, TemporalResult, additive=False),
}


def step_spec(name: str) -> StepSpec:
    """The spec of step ``name`` (``request_invalid`` if there is none)."""
    try:
        return STEPS[name]
    except KeyError:
        known = ", ".join(sorted(STEPS))
        raise FedpsyError(
            f"unknown step {name!r}; known steps: {known}", code=ErrorCode.REQUEST_INVALID
        ) from None


def parse_step(data: Mapping[str, Any]) -> StepBase:
    """Validate a step request (a decoded JSON object) into its model."""
    name = data.get("step") if isinstance(data, Mapping) else None
    if not isinstance(name, str):
        raise FedpsyError(
            "a step request needs a string field 'step'", code=ErrorCode.REQUEST_INVALID
        )
    spec = step_spec(name)
    try:
        return spec.request.model_validate(dict(data))
    except ValidationError as exc:
        raise FedpsyError(
            f"step {name!r}: {_describe(exc)}", code=ErrorCode.REQUEST_INVALID
        ) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
