"""The ``predict`` analysis: a stored model's scores written back at every node.

Each node scores its own rows with the model (:mod:`node.steps.predict`) and stages the
predicted probabilities as the new variable; the coordinator receives only the number of
rows scored (a secure sum over HTTP) and commits the run at every site once every site
answered, as for PCA scores and ComBat values (:mod:`coordinator.analyses.derived`). The
variable's definition names the model, so a later reader knows where the values came from.
"""

from __future__ import annotations

import logging

from coordinator.analyses.derived import commit, new_run_id
from coordinator.federation.base import Federation
from schemas.analyses.predict import PredictRequest, PredictResult
from schemas.dictionary.model import Variable
from schemas.errors import ErrorCode, FedpsyError
from schemas.formula import parse_formula
from schemas.steps.derived import DeriveSpec
from schemas.steps.predict import PredictResult as ScoredRows
from schemas.steps.predict import PredictStep

logger = logging.getLogger(__name__)


def score_variable(request: PredictRequest, run_id: str) -> Variable:
    """The definition of the new variable (the same at every site)."""
    assert request.model is not None
    outcome = " ".join(parse_formula(request.model.formula).outcome)
    return Variable(
        code=request.new_variable,
        label=f"Predicted probability of {outcome}",
        type="numeric",
        min=0.0,
        max=1.0,
        description=(
            f"Model {request.model_id} ({request.model.spec.kind}, "
            f"{request.model.formula}): predicted P({outcome} = 1); run {run_id}, "
            f"values for the rows with complete predictors at visit "
            f"{request.visit}."
        ),
    )


async def predict(request: PredictRequest, federation: Federation) -> PredictResult:
    """Score every site's rows with the request's model and keep the scores there."""
    model = request.model
    if model is None:
        raise FedpsyError(
            f"no model {request.model_id!r} in the coordinator's registry; "
            "train one with a 'train' request first",
            code=ErrorCode.NOT_FOUND,
        )
    run_id = new_run_id()
    step = PredictStep(
        formula=model.formula,
        categories=model.categories,
        columns=model.columns,
        center=model.center,
        scale=model.scale,
        model=model.spec,
        weights=model.weights,
        derive=DeriveSpec(run_id=run_id, variables=(score_variable(request, run_id),)),
        cohort=request.cohort,
        visit=request.visit,
    )
    scored = await federation.sum(step, ScoredRows)
    await commit(federation, run_id, request.cohort, request.visit, scored.n)
    logger.info("model %s scored %d rows as %s", request.model_id, scored.n, request.new_variable)
    return PredictResult(
        model_id=request.model_id,
        new_variable=request.new_variable,
        formula=model.formula,
        n=scored.n,
        run_id=run_id,
    )


__all__ = ["predict", "score_variable"]
