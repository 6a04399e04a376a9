"""Analysis requests and results: one module per analysis, one union to parse them.

``AnalysisRequest`` is the discriminated union (on ``"analysis"``) of every request model;
:func:`parse_request` validates a decoded JSON request into it with errors that say which
field is wrong and how. Adding an analysis means adding its module and its request model to
the union (and the result model to :data:`RESULTS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

from schemas.analyses.base import AnalysisBase, AnalysisResult
from schemas.analyses.combat import CombatRequest, CombatResult
from schemas.analyses.correlation import CorrelationRequest, CorrelationResult
from schemas.analyses.count import CountRequest, CountResult
from schemas.analyses.cox import CoxRequest, CoxResult
from schemas.analyses.crosstab import CrosstabRequest, CrosstabResult
from schemas.analyses.glm import GlmRequest, GlmResult
from schemas.analyses.gmm import GmmRequest, GmmResult
from schemas.analyses.histogram import HistogramRequest, HistogramResult
from schemas.analyses.kaplan_meier import KaplanMeierRequest, KaplanMeierResult
from schemas.analyses.kmeans import KmeansRequest, KmeansResult
from schemas.analyses.lmm import LmmRequest, LmmResult
from schemas.analyses.logrank import LogrankRequest, LogrankResult
from schemas.analyses.meta import MetaRequest, MetaResult
from schemas.analyses.ols import OlsRequest, OlsResult
from schemas.analyses.pca import PcaRequest, PcaResult
from schemas.analyses.predict import PredictRequest, PredictResult
from schemas.analyses.quantiles import QuantilesRequest, QuantilesResult
from schemas.analyses.summary import SummaryRequest, SummaryResult
from schemas.analyses.train import TrainingResult, TrainRequest
from schemas.analyses.ttest import TTestRequest, TTestResult
from schemas.errors import FedpsyError

AnalysisRequest = Annotated[
    Union[  # noqa: UP007
        CountRequest,
        SummaryRequest,
        HistogramRequest,
        QuantilesRequest,
        CrosstabRequest,
        CorrelationRequest,
        TTestRequest,
        OlsRequest,
        GlmRequest,
        LmmRequest,
        MetaRequest,
        KaplanMeierRequest,
        LogrankRequest,
        CoxRequest,
        CombatRequest,
        PcaRequest,
        KmeansRequest,
        GmmRequest,
        TrainRequest,
        PredictRequest,
    ],
    Field(discriminator="analysis"),
]

RESULTS: dict[str, type[AnalysisResult]] = {
    "count": CountResult,
    "summary": SummaryResult,
    "histogram": HistogramResult,
    "quantiles": QuantilesResult,
    "crosstab": CrosstabResult,
    "correlation": CorrelationResult,
    "ttest": TTestResult,
    "ols": OlsResult,
    "glm": GlmResult,
    "lmm": LmmResult,
    "meta": MetaResult,
    "kaplan_meier": KaplanMeierResult,
    "logrank": LogrankResult,
    "cox": CoxResult,
    "combat": CombatResult,
    "pca": PcaResult,
    "kmeans": KmeansResult,
    "gmm": GmmResult,
    "train": TrainingResult,
    "predict": PredictResult,
}


@cache
def _adapter() -> TypeAdapter[AnalysisBase]:
    adapter: TypeAdapter[AnalysisBase] = TypeAdapter(AnalysisRequest)
    return adapter


def parse_request(data: Mapping[str, Any]) -> AnalysisBase:
    """Validate a decoded JSON analysis request (``request_invalid`` errors say what to fix)."""
    if not isinstance(data, Mapping):
        raise FedpsyError("an analysis request must be a JSON object", code="request_invalid")
    name = data.get("analysis")
    if not isinstance(name, str) or name not in RESULTS:
        known = ", ".join(sorted(RESULTS))
        raise FedpsyError(
            f"unknown analysis {name!r}; known analyses: {known}", code="request_invalid"
        )
    try:
        return _adapter().validate_python(dict(data))
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = [str(p) for p in err["loc"]]
            if loc and loc[0] == name:
                loc = loc[1:]
            parts.append(f"{'.'.join(loc) or '(top level)'}: {err['msg']}")
        raise FedpsyError(
            f"analysis {name!r}: {'; '.join(parts)}", code="request_invalid"
        ) from None


__all__ = [
    "RESULTS",
    "AnalysisBase",
    "AnalysisRequest",
    "AnalysisResult",
    "parse_request",
]
