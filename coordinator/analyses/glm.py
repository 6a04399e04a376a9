"""Federated generalized linear models by Newton–Raphson, exact to the pooled fit.

Canonical links only (binomial/logit, poisson/log, gaussian/identity), for which
Newton–Raphson equals Fisher scoring / IRLS (McCullagh & Nelder, *Generalized Linear
Models*, 2nd ed., 1989, §2.5). Each iteration is one secure-summed ``glm_score`` round:
the sites return ``Zᵀ(y − μ)``, ``ZᵀWZ`` and the deviance at the current ``γ`` (in the
centered basis of :mod:`coordinator.stats.regression`), and the coordinator updates
``γ ← γ + (ZᵀWZ)⁻¹Zᵀ(y − μ)``.

Start from the intercept-only solution (intercept = link(ȳ), other coefficients 0), not
``β = 0``: it takes far fewer rounds (METHODS.md, "GLM"), and its deviance is the null
deviance. When the deviance rises the step is halved (Marschner, "glm2: fitting
generalized linear models with convergence problems", The R Journal 3(2), 2011). The fit
has converged when ``|ΔD| / (|D| + 0.1) < 1e-10`` (R's ``glm.control`` criterion); at
most 25 iterations. The last round's score and information then give one more Newton
update, which puts the estimate at the quadratic-convergence limit, and a final round
returns the deviance and information (hence standard errors) at that estimate.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from coordinator.federation.base import Federation
from coordinator.stats.regression import (
    Array,
    Basis,
    coefficient_table,
    design_basis,
    spd_solve,
)
from schemas.analyses.glm import GlmRequest, GlmResult
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.glm import LINKS, GlmScoreResult, GlmScoreStep

logger = logging.getLogger(__name__)

TOLERANCE = 1e-10
MAX_ITERATIONS = 25
MAX_HALVINGS = 30


def start(family: str, basis: Basis) -> Array:
    """The intercept-only solution in the centered basis (zeros without an intercept)."""
    gamma = np.zeros(basis.p)
    k = basis.intercept
    if k is None:
        return gamma
    mean = basis.y_mean
    if family == "binomial":
        if not 0.0 < mean < 1.0:
            raise FedpsyError(
                "the outcome takes a single value in the pooled rows", code=ErrorCode.NOT_ESTIMABLE
            )
        gamma[k] = math.log(mean / (1.0 - mean))
    elif family == "poisson":
        if not mean > 0.0:
            raise FedpsyError(
                "the outcome is zero in every pooled row", code=ErrorCode.NOT_ESTIMABLE
            )
        gamma[k] = math.log(mean)
    else:
        gamma[k] = mean
    return gamma


async def glm(request: GlmRequest, federation: Federation) -> GlmResult:
    """Maximum-likelihood GLM of ``request.formula`` over every site's complete-case rows."""
    basis = await design_basis(
        federation, request.formula, cohort=request.cohort, visit=request.visit
    )
    template = GlmScoreStep(
        formula=request.formula,
        categories=basis.categories,
        columns=basis.columns,
        center=basis.center.tolist(),
        scale=basis.scale.tolist(),
        family=request.family,
        beta=[0.0] * basis.p,
        cohort=request.cohort,
        visit=request.visit,
    )

    async def evaluate(gamma: Array) -> GlmScoreResult:
        step = template.model_copy(update={"beta": [float(g) for g in gamma]})
        result = await federation.sum(step, GlmScoreResult)
        if result.n != basis.n:
            raise FedpsyError(
                "the sites' rows changed between two rounds of one analysis; run it again",
                code=ErrorCode.INTERNAL,
            )
        return result

    gamma = start(request.family, basis)
    current = await evaluate(gamma)
    null_deviance = current.deviance if basis.intercept is not None else None
    iterations = 0
    converged = False
    while iterations < MAX_ITERATIONS:
        delta, _ = spd_solve(
            np.asarray(current.information), np.asarray(current.score), basis.columns
        )
        candidate = gamma + delta
        trial = await evaluate(candidate)
        iterations += 1
        halvings = 0
        while not (
            math.isfinite(trial.deviance) and trial.deviance <= current.deviance * (1.0 + 1e-12)
        ):
            if halvings == MAX_HALVINGS:
                raise FedpsyError(
                    "the deviance did not decrease even after step-halving",
                    code=ErrorCode.NOT_CONVERGED,
                )
            candidate = (gamma + candidate) / 2.0
            trial = await evaluate(candidate)
            halvings += 1
        change = abs(trial.deviance - current.deviance) / (abs(trial.deviance) + 0.1)
        gamma, current = candidate, trial
        if change < TOLERANCE:
            converged = True
            break
    if converged:
        # the free Newton update, then the information at the final estimate
        delta, _ = spd_solve(
            np.asarray(current.information), np.asarray(current.score), basis.columns
        )
        gamma = gamma + delta
        current = await evaluate(gamma)
    _, inverse = spd_solve(
        np.asarray(current.information), np.asarray(current.score), basis.columns
    )
    n, p = current.n, basis.p
    df = n - p
    dispersion = current.deviance / df if request.family == "gaussian" else 1.0
    beta, cov = basis.to_original(gamma, dispersion * inverse, outcome_scaled=False)
    logger.debug(
        "glm %s (%s): %d iterations, converged %s",
        request.formula,
        request.family,
        iterations,
        converged,
    )
    return GlmResult(
        formula=request.formula,
        family=request.family,
        link=LINKS[request.family],
        coefficients=coefficient_table(basis.columns, beta, cov, None),
        n=n,
        missing=current.missing,
        deviance=current.deviance,
        null_deviance=null_deviance,
        dispersion=dispersion,
        df_residual=df,
        iterations=iterations,
        converged=converged,
        dropped=basis.dropped,
    )


__all__ = ["glm", "start"]
