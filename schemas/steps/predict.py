"""The predict step: each node scores its own rows with a trained model and keeps the scores.

The model is the one a ``train`` run produced (:class:`schemas.analyses.train.TrainedModel`):
the formula's right-hand side is built as for training (complete cases of the predictors,
the model's columns and categories, standardized with its centers and scales) and the
predicted probability of each row is staged as the new variable of ``derive``; only the
number of rows scored leaves. The outcome need not be known: scoring is for the rows where
it is not yet.
"""

from __future__ import annotations

from typing import Literal

from schemas.models.layout import ModelSpec
from schemas.steps.base import StepResult
from schemas.steps.derived import DeriveSpec
from schemas.steps.design import BasisStep


class PredictStep(BasisStep):
    """Score the rows with ``model``/``weights`` and stage the scores as ``derive``."""

    step: Literal["predict"] = "predict"
    model: ModelSpec
    weights: list[float]
    derive: DeriveSpec


class PredictResult(StepResult):
    """``n``: rows scored (summed over sites)."""

    n: int


__all__ = ["PredictResult", "PredictStep"]
