"""Coordinator-side analyses: name → algorithm, and :func:`run_analysis`.

Each algorithm is an ``async`` function ``(request, federation) -> result`` written against
the abstract :class:`~coordinator.federation.base.Federation`, so it runs the same over HTTP,
in the sandbox and in tests. Adding an analysis means adding it to :data:`ANALYSES` with
:func:`bind`, which checks the request's type.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from coordinator.analyses.combat import combat
from coordinator.analyses.cox import cox
from coordinator.analyses.glm import glm
from coordinator.analyses.gmm import gmm
from coordinator.analyses.histogram import histogram, quantiles
from coordinator.analyses.kmeans import kmeans
from coordinator.analyses.lmm import lmm
from coordinator.analyses.meta import meta
from coordinator.analyses.moments import correlation, summary, ttest
from coordinator.analyses.ols import ols
from coordinator.analyses.pca import pca
from coordinator.analyses.predict import predict
from coordinator.analyses.quality import data_quality
from coordinator.analyses.survival import kaplan_meier, logrank
from coordinator.analyses.tables import count, crosstab
from coordinator.analyses.train import train
from coordinator.federation.base import Federation
from schemas.analyses.base import AnalysisBase, AnalysisResult
from schemas.analyses.combat import CombatRequest
from schemas.analyses.correlation import CorrelationRequest
from schemas.analyses.count import CountRequest
from schemas.analyses.cox import CoxRequest
from schemas.analyses.crosstab import CrosstabRequest
from schemas.analyses.data_quality import DataQualityRequest
from schemas.analyses.glm import GlmRequest
from schemas.analyses.gmm import GmmRequest
from schemas.analyses.histogram import HistogramRequest
from schemas.analyses.kaplan_meier import KaplanMeierRequest
from schemas.analyses.kmeans import KmeansRequest
from schemas.analyses.lmm import LmmRequest
from schemas.analyses.logrank import LogrankRequest
from schemas.analyses.meta import MetaRequest
from schemas.analyses.ols import OlsRequest
from schemas.analyses.pca import PcaRequest
from schemas.analyses.predict import PredictRequest
from schemas.analyses.quantiles import QuantilesRequest
from schemas.analyses.summary import SummaryRequest
from schemas.analyses.train import TrainRequest
from schemas.analyses.ttest import TTestRequest
from schemas.errors import ErrorCode, FedpsyError

logger = logging.getLogger(__name__)

A = TypeVar("A", bound=AnalysisBase)
Algorithm = Callable[[AnalysisBase, Federation], Awaitable[AnalysisResult]]


def bind(
    request_type: type[A], algorithm: Callable[[A, Federation], Awaitable[AnalysisResult]]
) -> Algorithm:
    """An :data:`Algorithm` for ``algorithm`` that first checks the request's type."""

    async def run(request: AnalysisBase, federation: Federation) -> AnalysisResult:
        if not isinstance(request, request_type):
            raise FedpsyError(
                f"analysis {request.analysis!r} is not a {request_type.__name__}",
                code=ErrorCode.REQUEST_INVALID,
            )
        return await algorithm(request, federation)

    run.__name__ = getattr(algorithm, "__name__", "analysis")
    return run


ANALYSES: dict[str, Algorithm] = {
    "count": bind(CountRequest, count),
    "summary": bind(SummaryRequest, summary),
    "histogram": bind(HistogramRequest, histogram),
    "quantiles": bind(QuantilesRequest, quantiles),
    "crosstab": bind(CrosstabRequest, crosstab),
    "correlation": bind(CorrelationRequest, correlation),
    "ttest": bind(TTestRequest, ttest),
    "ols": bind(OlsRequest, ols),
    "glm": bind(GlmRequest, glm),
    "lmm": bind(LmmRequest, lmm),
    "meta": bind(MetaRequest, meta),
    "kaplan_meier": bind(KaplanMeierRequest, kaplan_meier),
    "logrank": bind(LogrankRequest, logrank),
    "cox": bind(CoxRequest, cox),
    "combat": bind(CombatRequest, combat),
    "pca": bind(PcaRequest, pca),
    "kmeans": bind(KmeansRequest, kmeans),
    "gmm": bind(GmmRequest, gmm),
    "train": bind(TrainRequest, train),
    "predict": bind(PredictRequest, predict),
    "data_quality": bind(DataQualityRequest, data_quality),
}


async def run_analysis(
    request: AnalysisBase, federation: Federation
) -> tuple[AnalysisResult, dict[str, int]]:
    """Run ``request`` over ``federation``: its result and the rows each site used."""
    algorithm = ANALYSES.get(request.analysis)
    if algorithm is None:
        known = ", ".join(sorted(ANALYSES))
        raise FedpsyError(
            f"unknown analysis {request.analysis!r}; known analyses: {known}",
            code=ErrorCode.REQUEST_INVALID,
        )
    logger.info("running %s over %d sites", request.analysis, len(federation.sites))
    result = await algorithm(request, federation)
    return result, federation.rows
