"""Gaussian mixture (full covariances) by federated EM, with BIC to choose the number of
components.

EM (Dempster, Laird & Rubin, JRSS B 39(1), 1977) as scikit-learn's ``GaussianMixture``
runs it: each iteration one E-step at the sites under the current parameters (summed:
``Σr``, ``Σr(x − c)``, ``Σr(x − c)(x − c)ᵀ`` about the current means ``c``, and the
log-likelihood), then the M-step here; stop when the mean log-likelihood changes by less
than ``tol``. Sums about the current means keep the covariance update accurate:
``Σr(x − μ)(x − μ)ᵀ = S − s dᵀ − d sᵀ + R d dᵀ`` with ``d = μ − c``. BIC (Schwarz, Ann. Stat.
6(2), 1978) and AIC use the log-likelihood under the final parameters, from one more
E-step, as scikit-learn's ``bic`` does.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from coordinator.analyses.derived import cluster_labels, commit
from coordinator.analyses.kmeans import best_lloyd
from coordinator.federation.base import Federation
from schemas.analyses.gmm import GmmRequest, GmmResult
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.clusters import GmmStatsResult, GmmStatsStep
from schemas.steps.derived import DeriveSpec

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Mixture:
    weights: Array
    means: Array
    covariances: Array


@dataclass(frozen=True)
class Fit:
    mixture: Mixture
    lower_bound: float
    iterations: int
    converged: bool


def m_step(stats: GmmStatsResult, centers: Array, reg_covar: float) -> Mixture:
    """scikit-learn's M-step from sums taken about ``centers``."""
    mass = np.asarray(stats.resp, dtype=np.float64)
    s1 = np.asarray(stats.first, dtype=np.float64)
    s2 = np.asarray(stats.second, dtype=np.float64)
    nk = mass + 10 * EPS
    means = (s1 + mass[:, None] * centers) / nk[:, None]
    d = means - centers
    scatter = (
        s2
        - np.einsum("ki,kj->kij", s1, d)
        - np.einsum("ki,kj->kij", d, s1)
        + mass[:, None, None] * np.einsum("ki,kj->kij", d, d)
    )
    covariances = scatter / nk[:, None, None]
    covariances += reg_covar * np.eye(centers.shape[1])[None, :, :]
    return Mixture(weights=nk / nk.sum(), means=means, covariances=covariances)


def parameters(k: int, p: int) -> int:
    """Free parameters of a full-covariance mixture of ``k`` components in ``p`` dimensions."""
    return k * p * (p + 1) // 2 + k * p + k - 1


def _step(
    request: GmmRequest, mixture: Mixture, *, hard: bool = False, derive: DeriveSpec | None = None
) -> GmmStatsStep:
    return GmmStatsStep(
        variables=list(request.variables),
        weights=[float(v) for v in mixture.weights],
        means=[[float(v) for v in row] for row in mixture.means],
        covariances=[[[float(v) for v in row] for row in c] for c in mixture.covariances],
        cohort=request.cohort,
        visit=request.visit,
        hard=hard,
        derive=derive,
    )


async def em(federation: Federation, request: GmmRequest, start: Mixture) -> Fit:
    """EM from ``start`` until the mean log-likelihood changes by less than ``tol``."""
    mixture, lower = start, -math.inf
    for iteration in range(1, request.max_iter + 1):
        stats = await federation.sum(_step(request, mixture), GmmStatsResult)
        previous, lower = lower, stats.log_likelihood / stats.n
        mixture = m_step(stats, mixture.means, request.reg_covar)
        if abs(lower - previous) < request.tol:
            return Fit(mixture, lower, iteration, True)
    return Fit(mixture, lower, request.max_iter, False)


async def kmeans_start(
    federation: Federation, request: GmmRequest, k: int, restart: int
) -> Mixture:
    """Parameters from a federated k-means run's clusters (one hard-assignment M-step)."""
    one = request.model_copy(update={"n_init": 1, "seed": request.seed + restart})
    run, _ = await best_lloyd(federation, one, k, None, 300)
    p = len(request.variables)
    placeholder = Mixture(np.full(k, 1.0 / k), run.centers, np.tile(np.eye(p), (k, 1, 1)))
    stats = await federation.sum(_step(request, placeholder, hard=True), GmmStatsResult)
    return m_step(stats, run.centers, request.reg_covar)


async def fit_k(federation: Federation, request: GmmRequest, k: int) -> Fit:
    """The restart with the highest lower bound."""
    if request.init is not None:
        init = request.init
        start = Mixture(
            np.asarray(init.weights, dtype=np.float64),
            np.asarray(init.means, dtype=np.float64),
            np.asarray(init.covariances, dtype=np.float64),
        )
        return await em(federation, request, start)
    best: Fit | None = None
    for restart in range(request.n_init):
        fit = await em(federation, request, await kmeans_start(federation, request, k, restart))
        if best is None or fit.lower_bound > best.lower_bound:
            best = fit
    assert best is not None
    return best


async def gmm(request: GmmRequest, federation: Federation) -> GmmResult:
    """Fit each candidate k, keep the lowest BIC; labels optionally kept at the nodes."""
    p = len(request.variables)
    fits: dict[int, tuple[Fit, GmmStatsResult]] = {}
    bic: dict[int, float] = {}
    for k in request.candidate_ks():
        fit = await fit_k(federation, request, k)
        final = await federation.sum(_step(request, fit.mixture), GmmStatsResult)
        fits[k] = (fit, final)
        bic[k] = -2.0 * final.log_likelihood + parameters(k, p) * math.log(final.n)
    k = min(bic, key=lambda key: (bic[key], key))
    fit, final = fits[k]
    if not all(math.isfinite(v) for v in bic.values()):
        raise FedpsyError("the mixture's likelihood is not finite", code=ErrorCode.NOT_ESTIMABLE)
    run_id = None
    if request.labels_prefix is not None:
        spec = cluster_labels(
            request.new_codes()[0],
            k,
            f"Mixture component (k = {k})",
            "Gaussian mixture",
            "most likely component for",
            request.variables,
            request.visit,
        )
        run_id = spec.run_id
        staged = await federation.sum(_step(request, fit.mixture, derive=spec), GmmStatsResult)
        await commit(federation, run_id, request.cohort, request.visit, staged.n)
    total = final.log_likelihood
    return GmmResult(
        variables=list(request.variables),
        k=k,
        weights=[float(v) for v in fit.mixture.weights],
        means=[[float(v) for v in row] for row in fit.mixture.means],
        covariances=[[[float(v) for v in row] for row in c] for c in fit.mixture.covariances],
        log_likelihood=total / final.n,
        lower_bound=fit.lower_bound,
        iterations=fit.iterations,
        converged=fit.converged,
        bic=bic[k],
        aic=-2.0 * total + 2 * parameters(k, p),
        bic_by_k={str(key): value for key, value in bic.items()},
        n=final.n,
        missing=final.missing,
        new_variables=request.new_codes(),
        run_id=run_id,
    )


__all__ = ["Mixture", "em", "gmm", "m_step", "parameters"]
