"""The GLM score step: one Newton–Raphson (IRLS) round at a given coefficient vector.

For a canonical link (binomial/logit, poisson/log, gaussian/identity) Newton–Raphson and
Fisher scoring coincide (McCullagh & Nelder, *Generalized Linear Models*, 2nd ed., 1989,
§2.5): at ``β`` each site returns the score ``Zᵀ(y − μ)``, the information ``ZᵀWZ`` with
``W = diag(V(μ))``, its deviance and its row count, all additive. The coordinator sums
them and updates ``β ← β + (ΣZᵀWZ)⁻¹ ΣZᵀ(y − μ)``. ``β`` is expressed in the centered
and scaled basis ``z = (x − m) / s`` of :class:`~schemas.steps.design.BasisStep`, which
only reparameterizes the model and keeps the information matrix well conditioned.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator

from schemas.steps.base import StepResult
from schemas.steps.design import BasisStep

Family = Literal["binomial", "poisson", "gaussian"]
"""GLM families with their canonical links: logit, log and identity."""

LINKS: dict[str, str] = {"binomial": "logit", "poisson": "log", "gaussian": "identity"}


class GlmScoreStep(BasisStep):
    """Score, information and deviance of ``family`` at ``beta`` (one per column)."""

    step: Literal["glm_score"] = "glm_score"
    family: Family
    beta: list[float]

    @model_validator(mode="after")
    def _beta_fits(self) -> Self:
        if self.columns is not None and len(self.beta) != len(self.columns):
            raise ValueError(f"beta needs one value per column ({len(self.columns)})")
        return self


class GlmScoreResult(StepResult):
    """``score = Zᵀ(y − μ)``, ``information = ZᵀWZ``, ``deviance`` over ``n`` rows."""

    columns: list[str]
    n: int
    missing: int
    score: list[float]
    information: list[list[float]]
    deviance: float


__all__ = ["LINKS", "Family", "GlmScoreResult", "GlmScoreStep"]
