"""Handler of the GLM score step: score, information and deviance at the given β."""

from __future__ import annotations

import logging

import numpy as np

from node.data.source import FrameSource
from node.steps.base import Computed
from node.steps.design import basis, computed, prepared
from node.steps.math.family import check_outcome, evaluate
from schemas.steps.glm import GlmScoreResult, GlmScoreStep

logger = logging.getLogger(__name__)


def glm_score(step: GlmScoreStep, source: FrameSource) -> Computed:
    """``Zᵀ(y − μ)``, ``ZᵀWZ`` and the deviance of ``step.family`` at ``step.beta``."""
    ready = prepared(step, source)
    design = ready.design
    check_outcome(step.family, design.y)
    z = basis(step, design)
    eta = z @ np.asarray(step.beta, dtype=np.float64)
    fitted = evaluate(step.family, eta, design.y)
    score = z.T @ (design.y - fitted.mu)
    information = z.T @ (z * fitted.weights[:, None])
    result = GlmScoreResult(
        columns=design.columns,
        n=design.n,
        missing=design.missing,
        score=[float(v) for v in score],
        information=[[float(v) for v in row] for row in information],
        deviance=fitted.deviance,
    )
    return computed(result, ready)


__all__ = ["glm_score"]
