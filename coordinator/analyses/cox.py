"""Federated Cox regression with Efron's tie correction, exact to the pooled fit.

The partial likelihood couples sites through the risk sets, but only through sums over
rows: per point of the shared time axis, ``S0``, ``S1``, ``S2`` over the rows at risk and
over that time's events, and the event count ``d`` (``cox_sums`` step, secure-summed;
METHODS.md, "Survival"). With them the coordinator evaluates Efron's log partial
likelihood (Efron, "The efficiency of Cox's likelihood function for censored data", JASA
72(359), 1977), for a time with ``d`` tied events

    ℓ_t = Σ_{i ∈ D_t} η_i − Σ_{r=0}^{d−1} log(S0 − (r/d) E0),

its score ``Σ_{D_t} z − Σ_r (S1 − (r/d) E1) / A_r`` and information
``Σ_r [(S2 − (r/d) E2) / A_r − (S1 − (r/d) E1)(…)ᵀ / A_r²]`` with ``A_r = S0 − (r/d) E0``,
and takes Newton–Raphson steps from β = 0 (Cox, JRSS B 34(2), 1972), halving a step that
lowers the likelihood. Rounds: one ``survival_extent`` for the axis horizon, one
``cox_events`` for the events per axis point and the design's columns, means and scales
(the model is fitted in the basis ``z = (x − m) / s``: centering leaves the partial
likelihood unchanged, scaling only rescales β), then one ``cox_sums`` at the event points
per Newton step. Converged when the relative change of ℓ is below
1e-10 (as R's ``coxph.control``, tighter); one more Newton step then puts β at the
quadratic-convergence limit and a last round gives the information there.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from coordinator.analyses.survival import survival_horizon
from coordinator.federation.base import Federation
from coordinator.stats.bins import only_small_cells
from coordinator.stats.regression import Array, coefficient_table, spd_solve
from schemas.analyses.cox import CoxRequest, CoxResult, HazardRatio
from schemas.errors import ErrorCode, FedpsyError
from schemas.formula import formula_categories
from schemas.steps.cox import CoxEventsResult, CoxEventsStep, CoxSumsResult, CoxSumsStep

logger = logging.getLogger(__name__)

TOLERANCE = 1e-10
MAX_ITERATIONS = 25
MAX_HALVINGS = 30
Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class Efron:
    """Efron's log partial likelihood, score and information at one coefficient vector."""

    log_likelihood: float
    score: Array
    information: Array
    missing: int


def efron(sums: CoxSumsResult, gamma: Array) -> Efron:
    """Evaluate Efron's partial likelihood from pooled per-time sums (see module doc)."""
    d = np.asarray(sums.events, dtype=np.int64)
    at = np.flatnonzero(d > 0)
    counts = d[at]
    times = np.repeat(np.arange(len(at)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    fraction = (np.arange(int(counts.sum())) - starts) / np.repeat(counts, counts)
    s0, e0 = np.asarray(sums.risk0)[at][times], np.asarray(sums.event0)[at][times]
    s1, e1 = np.asarray(sums.risk1)[at][times], np.asarray(sums.event1)[at][times]
    s2, e2 = np.asarray(sums.risk2)[at][times], np.asarray(sums.event2)[at][times]
    a = s0 - fraction * e0
    b = s1 - fraction[:, None] * e1
    c = s2 - fraction[:, None, None] * e2
    event_sum = np.asarray(sums.event_sum, dtype=np.float64)
    with np.errstate(all="ignore"):
        log_likelihood = float(gamma @ event_sum - np.sum(np.log(a)))
        score = event_sum - np.sum(b / a[:, None], axis=0)
        information = np.sum(c / a[:, None, None], axis=0) - np.einsum(
            "ti,tj,t->ij", b, b, 1.0 / (a * a)
        )
    return Efron(log_likelihood, score, (information + information.T) / 2.0, sums.missing)


def _scale(mean: float, mean_square: float) -> float:
    var = mean_square - mean * mean
    if var > 1e-12 * mean_square and math.isfinite(var):
        return math.sqrt(var)
    return math.sqrt(mean_square) if mean_square > 0.0 else 1.0


def _overflowed(exc: FedpsyError) -> bool:
    sites = exc.extra.get("sites")
    codes = {str(c) for c in sites.values()} if isinstance(sites, dict) else {exc.code}
    return codes == {ErrorCode.NOT_CONVERGED}


COARSENINGS = 12
"""Doublings of the axis resolution tried while sites refuse small cells (4096×)."""


async def cox(request: CoxRequest, federation: Federation) -> CoxResult:
    """Maximum partial-likelihood Cox model (Efron ties) over every site's rows, on the
    request's time axis or, while sites refuse small cells (too few rows leave the risk
    set between event times), on an axis twice as coarse."""
    for coarsened in range(COARSENINGS + 1):
        resolution = request.resolution * 2**coarsened
        try:
            result = await _fit(request.model_copy(update={"resolution": resolution}), federation)
        except FedpsyError as exc:
            if not only_small_cells(exc) or coarsened == COARSENINGS:
                raise
            logger.info("a site refused few rows per event time; coarsening the axis")
            continue
        return result.model_copy(update={"coarsened": coarsened})
    raise AssertionError("unreachable")  # pragma: no cover


async def _fit(request: CoxRequest, federation: Federation) -> CoxResult:
    """The Cox model on the request's axis."""
    horizon = await survival_horizon(
        federation, request.time, request.resolution, cohort=request.cohort, visit=request.visit
    )
    first = CoxEventsStep(
        time=request.time,
        event=request.event,
        formula=request.formula,
        resolution=request.resolution,
        horizon=horizon,
        categories=formula_categories(request.formula, federation.sites),
        cohort=request.cohort,
        visit=request.visit,
    )
    raw = await federation.sum(first, CoxEventsResult)
    if raw.beyond:
        raise FedpsyError(
            "the sites' rows changed between two rounds of one analysis; run it again",
            code=ErrorCode.INTERNAL,
        )
    n, events = raw.n, sum(raw.events)
    if n == 0 or events == 0:
        raise FedpsyError(
            f"formula {request.formula!r}: the pooled complete-case rows hold no events",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    squares = np.asarray(raw.squares)
    keep = squares > 0.0
    columns = [c for c, k in zip(raw.columns, keep, strict=True) if k]
    dropped = [c for c, k in zip(raw.columns, keep, strict=True) if not k]
    if not columns:
        raise FedpsyError(
            f"formula {request.formula!r}: no covariate is non-zero in the pooled rows",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    center = np.asarray(raw.sums)[keep] / n
    scale = np.array([_scale(m, s / n) for m, s in zip(center, squares[keep], strict=True)])
    points = [k for k, d in enumerate(raw.events) if d > 0]
    template = CoxSumsStep(
        time=request.time,
        event=request.event,
        formula=request.formula,
        resolution=request.resolution,
        categories=first.categories,
        columns=columns,
        center=center.tolist(),
        scale=scale.tolist(),
        beta=[0.0] * len(columns),
        points=points,
        cohort=request.cohort,
        visit=request.visit,
    )

    async def evaluate(gamma: Array) -> Efron | None:
        step = template.model_copy(update={"beta": [float(g) for g in gamma]})
        try:
            sums = await federation.sum(step, CoxSumsResult)
        except FedpsyError as exc:
            if _overflowed(exc):
                return None
            raise
        if sums.n != n or sum(sums.events) != events:
            raise FedpsyError(
                "the sites' rows changed between two rounds of one analysis; run it again",
                code=ErrorCode.INTERNAL,
            )
        return efron(sums, gamma)

    gamma = np.zeros(len(columns))
    current = await evaluate(gamma)
    if current is None:
        raise FedpsyError("the partial likelihood overflows at β = 0", code=ErrorCode.NOT_CONVERGED)
    iterations, converged = 0, False
    while iterations < MAX_ITERATIONS:
        delta, _ = spd_solve(current.information, current.score, columns)
        candidate = gamma + delta
        trial = await evaluate(candidate)
        iterations += 1
        halvings = 0
        while trial is None or not (
            math.isfinite(trial.log_likelihood)
            and trial.log_likelihood >= current.log_likelihood - 1e-12 * abs(current.log_likelihood)
        ):
            if halvings == MAX_HALVINGS:
                raise FedpsyError(
                    "the partial likelihood did not increase even after step-halving",
                    code=ErrorCode.NOT_CONVERGED,
                )
            candidate = (gamma + candidate) / 2.0
            trial = await evaluate(candidate)
            halvings += 1
        change = abs(trial.log_likelihood - current.log_likelihood) / (
            abs(trial.log_likelihood) + 0.1
        )
        gamma, current = candidate, trial
        if change < TOLERANCE:
            converged = True
            break
    if converged:
        delta, _ = spd_solve(current.information, current.score, columns)
        final = await evaluate(gamma + delta)
        if final is not None and final.log_likelihood >= current.log_likelihood - 1e-9:
            gamma, current = gamma + delta, final
    _, inverse = spd_solve(current.information, current.score, columns)
    beta = gamma / scale
    cov = inverse / np.outer(scale, scale)
    table = coefficient_table(columns, beta, cov, None)
    ratios = [
        HazardRatio(
            term=row.term,
            hazard_ratio=math.exp(row.estimate),
            lower=math.exp(row.estimate - Z95 * row.std_error) if row.std_error else None,
            upper=math.exp(row.estimate + Z95 * row.std_error) if row.std_error else None,
        )
        for row in table
    ]
    logger.debug("cox %s: %d iterations, converged %s", request.formula, iterations, converged)
    return CoxResult(
        time=request.time,
        event=request.event,
        formula=request.formula,
        coefficients=table,
        hazard_ratios=ratios,
        n=n,
        events=events,
        missing=current.missing,
        log_likelihood=current.log_likelihood,
        iterations=iterations,
        converged=converged,
        dropped=dropped,
        resolution=request.resolution,
    )


__all__ = ["Efron", "cox", "efron"]
