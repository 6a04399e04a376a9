"""``predict``: a trained model's scores kept at every node as a new variable.

Request: ``model_id`` (a model in the coordinator's registry, from a ``train`` job) and
``new_variable`` (the code of the variable that will hold each person's predicted
probability at the request's ``visit``), plus ``cohort`` and ``visit``. The coordinator
fills in ``model`` from its registry; a request may also carry the model itself (e.g. one
downloaded with ``GET /v1/models/{id}``). Every node scores the rows whose predictors are
complete and keeps the scores; they never leave the node (the run is committed only when
every site scored).

Result: ``model_id``, ``new_variable``, ``n`` (rows scored over all sites), ``run_id``
(the run the values are kept under) and the model's ``formula``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.analyses.base import AnalysisBase, AnalysisResult
from schemas.analyses.train import TrainedModel
from schemas.dictionary.model import CODE_MAX_LENGTH, CODE_PATTERN
from schemas.formula import parse_formula


class PredictRequest(AnalysisBase):
    analysis: Literal["predict"] = "predict"
    model_id: str = Field(min_length=1, max_length=64)
    new_variable: str = Field(pattern=CODE_PATTERN, max_length=CODE_MAX_LENGTH)
    model: TrainedModel | None = None

    def analysis_variables(self) -> set[str]:
        if self.model is None:
            return set()
        return set(parse_formula(self.model.formula).predictors)


class PredictResult(AnalysisResult):
    model_id: str
    new_variable: str
    formula: str
    n: int
    run_id: str


__all__ = ["PredictRequest", "PredictResult"]
