"""Handler of ``predict``: score this node's rows with a trained model and stage the scores.

The design is the model's right-hand side (complete cases of the predictors; the outcome
may be missing) built by :func:`node.data.formula.build_design` with the model's columns and
categories; which rows it kept is read back from a row-position outcome, so the scores are
staged against exactly the persons they belong to. Only the number of rows scored leaves.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from node.data.formula import build_design
from node.data.source import FrameSource
from node.data.staging import derived_values, stage
from node.steps.base import USED, Computed
from node.steps.design import basis, domain_of
from schemas.errors import ErrorCode, FedpsyError
from schemas.formula import parse_formula
from schemas.models.layout import unflatten
from schemas.models.numeric import predict as model_predict
from schemas.steps.base import Disclosure
from schemas.steps.predict import PredictResult, PredictStep

logger = logging.getLogger(__name__)

POSITION = "scored_row_position"
"""A stand-in outcome holding each row's position in the frame (never a dictionary code:
dictionary codes are lower-case, but this name is only ever a column of a local frame)."""


def predict(step: PredictStep, source: FrameSource) -> Computed:
    """Score every row whose predictors are complete; only the count leaves."""
    if len(step.derive.variables) != 1:
        raise FedpsyError(
            "predict: one new variable holds the scores", code=ErrorCode.REQUEST_INVALID
        )
    columns = list(step.columns or [])
    predictors = list(parse_formula(step.formula).predictors)
    right = step.formula.split("~", 1)[1]
    domain = domain_of(source, predictors, step.categories)
    if domain is not None:  # the probe of node.data.domain, with a stand-in outcome
        build_design(
            f"{POSITION} ~ {right}",
            domain.assign(**{POSITION: 0.0}),
            categories=step.categories,
            strict=True,
        )
    frame = source.frame(predictors, step.visit, step.cohort)
    positioned = frame.assign(**{POSITION: np.arange(len(frame), dtype=np.float64)})
    design = build_design(
        f"{POSITION} ~ {right}", positioned, columns=columns, categories=step.categories
    )
    try:
        weights = unflatten(step.model, len(columns), step.weights)
    except ValueError as exc:
        raise FedpsyError(f"predict: {exc}", code=ErrorCode.REQUEST_INVALID) from None
    scores = model_predict(step.model, weights, basis(step, design))
    rows = design.y.astype(np.int64)
    values = pd.DataFrame({step.derive.codes[0]: scores}, index=frame.index[rows])
    stage(source, derived_values(step.derive, step.visit, values))
    n = int(rows.size)
    logger.debug("predict at %s: %d rows scored", source.site, n)
    return Computed(PredictResult(n=n), Disclosure(rows=n), used=((USED, design.rows),))


__all__ = ["predict"]
