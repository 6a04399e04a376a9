"""Step name → the node's handler for it, and :func:`run_step`.

Adding a step means writing its handler (``(request, FrameSource) -> Computed``) and adding
it to :data:`HANDLERS` with :func:`bind`, which checks that the request has the type the
handler expects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from node.data.source import FrameSource
from node.steps.availability import availability
from node.steps.base import Computed, Handler
from node.steps.clusters import gmm_stats, kmeans_candidates, kmeans_sums
from node.steps.combat import combat_adjust, combat_batches, combat_fit, combat_residuals
from node.steps.commit import commit_derived
from node.steps.cox import cox_events, cox_sums
from node.steps.design import column_moments, crossprod, lmm_stats
from node.steps.glm import glm_score
from node.steps.moments import moments
from node.steps.pca import pca_scores
from node.steps.predict import predict
from node.steps.quality import quality, temporal
from node.steps.site_fit import site_fit
from node.steps.survival import survival_counts, survival_extent
from node.steps.tabulate import count, crosstab, histogram
from node.steps.train import train, train_sum
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.availability import AvailabilityStep
from schemas.steps.base import StepBase
from schemas.steps.clusters import GmmStatsStep, KmeansCandidatesStep, KmeansSumsStep
from schemas.steps.combat import (
    CombatAdjustStep,
    CombatBatchesStep,
    CombatFitStep,
    CombatResidualsStep,
)
from schemas.steps.cox import CoxEventsStep, CoxSumsStep
from schemas.steps.derived import CommitDerivedStep
from schemas.steps.design import ColumnMomentsStep, CrossprodStep, LmmStatsStep
from schemas.steps.glm import GlmScoreStep
from schemas.steps.moments import MomentsStep
from schemas.steps.pca import PcaScoresStep
from schemas.steps.predict import PredictStep
from schemas.steps.quality import QualityStep, TemporalStep
from schemas.steps.site_fit import SiteFitStep
from schemas.steps.survival import SurvivalCountsStep, SurvivalExtentStep
from schemas.steps.tabulate import CountStep, CrosstabStep, HistogramStep
from schemas.steps.train import TrainStep, TrainSumStep

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=StepBase)


def bind(request_type: type[S], handler: Callable[[S, FrameSource], Computed]) -> Handler:
    """A :data:`Handler` for ``handler`` that first checks the request's type."""

    def run(step: StepBase, source: FrameSource) -> Computed:
        if not isinstance(step, request_type):
            raise FedpsyError(
                f"step {step.step!r} is not a {request_type.__name__}",
                code=ErrorCode.REQUEST_INVALID,
            )
        return handler(step, source)

    run.__name__ = getattr(handler, "__name__", "handler")
    return run


HANDLERS: dict[str, Handler] = {
    "count": bind(CountStep, count),
    "moments": bind(MomentsStep, moments),
    "histogram": bind(HistogramStep, histogram),
    "crosstab": bind(CrosstabStep, crosstab),
    "column_moments": bind(ColumnMomentsStep, column_moments),
    "crossprod": bind(CrossprodStep, crossprod),
    "glm_score": bind(GlmScoreStep, glm_score),
    "lmm_stats": bind(LmmStatsStep, lmm_stats),
    "site_fit": bind(SiteFitStep, site_fit),
    "train": bind(TrainStep, train),
    "train_sum": bind(TrainSumStep, train_sum),
    "predict": bind(PredictStep, predict),
    "survival_extent": bind(SurvivalExtentStep, survival_extent),
    "survival_counts": bind(SurvivalCountsStep, survival_counts),
    "cox_events": bind(CoxEventsStep, cox_events),
    "cox_sums": bind(CoxSumsStep, cox_sums),
    "combat_batches": bind(CombatBatchesStep, combat_batches),
    "combat_fit": bind(CombatFitStep, combat_fit),
    "combat_residuals": bind(CombatResidualsStep, combat_residuals),
    "combat_adjust": bind(CombatAdjustStep, combat_adjust),
    "commit_derived": bind(CommitDerivedStep, commit_derived),
    "availability": bind(AvailabilityStep, availability),
    "pca_scores": bind(PcaScoresStep, pca_scores),
    "kmeans_sums": bind(KmeansSumsStep, kmeans_sums),
    "kmeans_candidates": bind(KmeansCandidatesStep, kmeans_candidates),
    "gmm_stats": bind(GmmStatsStep, gmm_stats),
    "quality": bind(QualityStep, quality),
    "temporal": bind(TemporalStep, temporal),
}


def run_step(step: StepBase, source: FrameSource) -> Computed:
    """Compute ``step`` on ``source``'s rows."""
    handler = HANDLERS.get(step.step)
    if handler is None:
        raise FedpsyError(
            f"this node has no handler for step {step.step!r}", code=ErrorCode.REQUEST_INVALID
        )
    logger.debug("running step %s at %s", step.step, source.site)
    return handler(step, source)
