"""Analysis requests and results: one module per analysis, one union to parse them.

:data:`ANALYSIS_MODELS` lists every analysis once (request model, result model);
``AnalysisRequest`` is the discriminated union (on ``"analysis"``) of the request models and
:func:`parse_request` validates a decoded JSON request into it with errors that say which
field is wrong and how. Adding an analysis means adding its module and one line to
:data:`ANALYSIS_MODELS`.
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
from schemas.analyses.data_quality import DataQualityRequest, DataQualityResult
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
from schemas.cohort import cohort_problem
from schemas.errors import ErrorCode, FedpsyError

ANALYSIS_MODELS: tuple[tuple[type[AnalysisBase], type[AnalysisResult]], ...] = (
    (CountRequest, CountResult),
    (SummaryRequest, SummaryResult),
    (HistogramRequest, HistogramResult),
    (QuantilesRequest, QuantilesResult),
    (CrosstabRequest, CrosstabResult),
    (CorrelationRequest, CorrelationResult),
    (TTestRequest, TTestResult),
    (OlsRequest, OlsResult),
    (GlmRequest, GlmResult),
    (LmmRequest, LmmResult),
    (MetaRequest, MetaResult),
    (KaplanMeierRequest, KaplanMeierResult),
    (LogrankRequest, LogrankResult),
    (CoxRequest, CoxResult),
    (CombatRequest, CombatResult),
    (PcaRequest, PcaResult),
    (KmeansRequest, KmeansResult),
    (GmmRequest, GmmResult),
    (TrainRequest, TrainingResult),
    (PredictRequest, PredictResult),
    (DataQualityRequest, DataQualityResult),
)
"""Every analysis: its request model and its result model. The one list of analyses; the
request union, :data:`RESULTS`, :data:`ANALYSIS_NAMES` and the nodes' policies derive from it."""


def _name(request: type[AnalysisBase]) -> str:
    name: str = request.model_fields["analysis"].default
    return name


ANALYSIS_NAMES: tuple[str, ...] = tuple(_name(request) for request, _ in ANALYSIS_MODELS)
"""The names of every analysis, in :data:`ANALYSIS_MODELS` order."""

RESULTS: dict[str, type[AnalysisResult]] = {_name(req): res for req, res in ANALYSIS_MODELS}
"""Each analysis's result model, by name."""

AnalysisRequest: Any = Annotated[
    Union[tuple(request for request, _ in ANALYSIS_MODELS)],  # noqa: UP007
    Field(discriminator="analysis"),
]
"""The discriminated union (on ``"analysis"``) of every request model."""


@cache
def _adapter() -> TypeAdapter[AnalysisBase]:
    adapter: TypeAdapter[AnalysisBase] = TypeAdapter(AnalysisRequest)
    return adapter


def parse_request(data: Mapping[str, Any]) -> AnalysisBase:
    """Validate a decoded JSON analysis request (``request_invalid`` errors say what to fix)."""
    if not isinstance(data, Mapping):
        raise FedpsyError(
            "an analysis request must be a JSON object", code=ErrorCode.REQUEST_INVALID
        )
    name = data.get("analysis")
    if not isinstance(name, str) or name not in RESULTS:
        known = ", ".join(sorted(RESULTS))
        raise FedpsyError(
            f"unknown analysis {name!r}; known analyses: {known}", code=ErrorCode.REQUEST_INVALID
        )
    try:
        return _adapter().validate_python(dict(data))
    except ValidationError as exc:
        parts = []
        cohort = cohort_problem(data.get("cohort"))
        for err in exc.errors(include_url=False, include_input=False):
            loc = [str(p) for p in err["loc"]]
            if loc and loc[0] == name:
                loc = loc[1:]
            if loc and loc[0] == "cohort" and cohort is not None:
                if cohort not in parts:  # one sentence for every union member's errors
                    parts.append(cohort)
                continue
            parts.append(f"{'.'.join(loc) or '(top level)'}: {err['msg']}")
        raise FedpsyError(
            f"analysis {name!r}: {'; '.join(parts)}", code=ErrorCode.REQUEST_INVALID
        ) from None


__all__ = [
    "ANALYSIS_MODELS",
    "ANALYSIS_NAMES",
    "RESULTS",
    "AnalysisBase",
    "AnalysisRequest",
    "AnalysisResult",
    "parse_request",
]
