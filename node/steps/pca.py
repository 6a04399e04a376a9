"""Handler of ``pca_scores``: score this node's complete-case rows and stage the scores."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pandas as pd

from node.data.source import FrameSource
from node.data.staging import derived_values, stage
from node.data.watch import note_rows
from node.steps.base import USED, Computed
from node.steps.disclosure import row_ids
from node.steps.levels import numeric_values
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.base import Disclosure
from schemas.steps.pca import PcaScoresResult, PcaScoresStep

logger = logging.getLogger(__name__)


def pca_scores(step: PcaScoresStep, source: FrameSource) -> Computed:
    """Scores on every component; only the number of rows scored leaves."""
    variables = list(step.variables)
    center = np.asarray(step.center, dtype=np.float64)
    scale = np.asarray(step.scale, dtype=np.float64)
    components = np.asarray(step.components, dtype=np.float64)
    k = len(variables)
    if center.shape != (k,) or scale.shape != (k,) or components.shape[1:] != (k,):
        raise FedpsyError(
            "pca_scores: center, scale and components need one value per variable",
            code=ErrorCode.REQUEST_INVALID,
        )
    if len(step.derive.variables) != components.shape[0]:
        raise FedpsyError(
            "pca_scores: one new variable per component is needed", code=ErrorCode.REQUEST_INVALID
        )
    frame = source.frame(variables, step.visit, step.cohort)
    x = numeric_values(frame, variables)
    complete: npt.NDArray[np.bool_] = np.asarray(~np.isnan(x).any(axis=1), dtype=bool)
    scores = ((x[complete] - center) / scale) @ components.T
    values = pd.DataFrame(scores, index=frame.index[complete], columns=step.derive.codes)
    stage(source, derived_values(step.derive, step.visit, values))
    n = int(complete.sum())
    note_rows(n)
    return Computed(
        PcaScoresResult(n=n), Disclosure(rows=n), used=((USED, row_ids(frame.index[complete])),)
    )


__all__ = ["pca_scores"]
