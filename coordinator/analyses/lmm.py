"""Linear mixed model with a random intercept per site, by REML from per-site statistics.

Model: ``y_s = X_sβ + u_s1 + ε_s`` with ``u_s ~ N(0, τ²)``, ``ε ~ N(0, σ²I)``, so
``V_s = σ²(I + λ11ᵀ)`` with ``λ = τ²/σ²`` and, by Sherman–Morrison,
``V_s⁻¹ = σ⁻²(I − c_s11ᵀ)``, ``c_s = λ/(1 + n_sλ)``, ``log|V_s| = n_s log σ² +
log(1 + n_sλ)``. Each site's ``n_s, Z_sᵀZ_s, Z_sᵀỹ_s, ỹ_sᵀỹ_s, Z_sᵀ1, 1ᵀỹ_s``
(``lmm_stats``, gathered) therefore give ``ZᵀV⁻¹Z``, ``ZᵀV⁻¹ỹ`` and ``ỹᵀV⁻¹ỹ`` exactly.
Profiling β and σ² out of the REML log-likelihood (Patterson & Thompson, Biometrika 58,
1971; Harville, JASA 72, 1977) leaves one dimension:

``−2ℓ_R(λ) = (N − p) log r(λ) + Σ_s log(1 + n_sλ) + log|A(λ)| + const``

with ``A = Σ_s (Z_sᵀZ_s − c_s Z_sᵀ1 1ᵀZ_s)``, ``b`` alike, ``r = ỹᵀHỹ − bᵀA⁻¹b``. It is
minimized over ``λ ≥ 0`` on a log grid, then the root of its analytic derivative is found
by Brent's method (to ~1e-14 in λ), or ``λ = 0`` when the derivative is non-negative there.
Then ``σ² = r / (N − p)``, ``τ² = λσ²``, ``Cov(β̂) = σ²A⁻¹`` (mapped back from the
centered basis). The statistics are per site by nature: the policy must allow ``lmm``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from coordinator.federation.base import Federation
from coordinator.stats.regression import Array, Basis, coefficient_table, design_basis, spd_solve
from schemas.analyses.lmm import LmmRequest, LmmResult, VarianceComponents
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.design import LmmStatsResult, LmmStatsStep

logger = logging.getLogger(__name__)

GRID = np.linspace(-14.0, 10.0, 49)  # log λ


@dataclass(frozen=True)
class SiteStats:
    """The per-site sums, stacked: ``n (S)``, ``a (S,p,p)``, ``b (S,p)``, ``c (S)``,
    ``u (S,p)`` = ``Z_sᵀ1``, ``v (S)`` = ``1ᵀỹ_s``."""

    n: Array
    a: Array
    b: Array
    c: Array
    u: Array
    v: Array

    @classmethod
    def stack(cls, results: list[LmmStatsResult]) -> SiteStats:
        return cls(
            n=np.array([r.n for r in results], dtype=np.float64),
            a=np.array([r.xtx for r in results], dtype=np.float64),
            b=np.array([r.xty for r in results], dtype=np.float64),
            c=np.array([r.yty for r in results], dtype=np.float64),
            u=np.array([r.x_sum for r in results], dtype=np.float64),
            v=np.array([r.y_sum for r in results], dtype=np.float64),
        )


@dataclass(frozen=True)
class Profile:
    """The REML profile at one λ: criterion, derivative, and what the estimates need."""

    criterion: float
    derivative: float
    gamma: Array
    inverse: Array
    r: float
    logdet: float


def profile(s: SiteStats, lam: float, df: int, columns: list[str]) -> Profile:
    """``−2ℓ_R`` (without constants) and its derivative in λ."""
    c = lam / (1.0 + s.n * lam)
    dc = 1.0 / (1.0 + s.n * lam) ** 2
    a = s.a.sum(axis=0) - np.einsum("s,si,sj->ij", c, s.u, s.u)
    b = s.b.sum(axis=0) - np.einsum("s,si,s->i", c, s.u, s.v)
    cc = float(s.c.sum() - np.sum(c * s.v**2))
    gamma, inverse = spd_solve(a, b, columns)
    r = cc - float(b @ gamma)
    if not r > 0.0:
        raise FedpsyError("the model fits the rows exactly", code=ErrorCode.NOT_ESTIMABLE)
    _, logdet = np.linalg.slogdet(a)
    da = -np.einsum("s,si,sj->ij", dc, s.u, s.u)
    db = -np.einsum("s,si,s->i", dc, s.u, s.v)
    dcc = -float(np.sum(dc * s.v**2))
    dr = dcc - 2.0 * float(gamma @ db) + float(gamma @ da @ gamma)
    criterion = df * math.log(r) + float(np.sum(np.log1p(s.n * lam))) + float(logdet)
    derivative = df * dr / r + float(np.sum(s.n / (1.0 + s.n * lam))) + float(np.sum(inverse * da))
    return Profile(criterion, derivative, gamma, inverse, r, float(logdet))


def reml_ratio(s: SiteStats, df: int, columns: list[str]) -> tuple[float, bool]:
    """The REML estimate of ``λ = τ²/σ²`` and whether its search converged."""

    def deriv(x: float) -> float:
        return profile(s, math.exp(x), df, columns).derivative

    values = [profile(s, math.exp(x), df, columns).criterion for x in GRID]
    best = int(np.argmin(values))
    at_zero = profile(s, 0.0, df, columns)
    if at_zero.derivative >= 0.0 and (best == 0 or at_zero.criterion <= values[best]):
        return 0.0, True
    lo = GRID[max(best - 1, 0)]
    hi = GRID[min(best + 1, len(GRID) - 1)]
    if deriv(lo) < 0.0 < deriv(hi):
        root = optimize.brentq(deriv, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)
        return math.exp(float(root)), True
    found = optimize.minimize_scalar(
        lambda x: profile(s, math.exp(x), df, columns).criterion,
        bounds=(GRID[0], GRID[-1]),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return math.exp(float(found.x)), False


async def lmm(request: LmmRequest, federation: Federation) -> LmmResult:
    """REML fit of ``request.formula`` with a random intercept for each site."""
    basis: Basis = await design_basis(
        federation, request.formula, cohort=request.cohort, visit=request.visit
    )
    if basis.intercept is None:
        raise FedpsyError(
            "a random-intercept model needs an intercept in the formula",
            code=ErrorCode.REQUEST_INVALID,
        )
    step = LmmStatsStep(
        formula=request.formula,
        categories=basis.categories,
        columns=basis.columns,
        center=basis.center.tolist(),
        scale=basis.scale.tolist(),
        y_center=basis.y_center,
        y_scale=basis.y_scale,
        cohort=request.cohort,
        visit=request.visit,
    )
    gathered = await federation.gather(step, LmmStatsResult)
    results = [gathered[site] for site in federation.sites if site in gathered]
    stats = SiteStats.stack(results)
    n = int(stats.n.sum())
    p = basis.p
    df = n - p
    lam, converged = reml_ratio(stats, df, basis.columns)
    best = profile(stats, lam, df, basis.columns)
    sigma2_scaled = best.r / df
    beta, cov = basis.to_original(best.gamma, sigma2_scaled * best.inverse, outcome_scaled=True)
    sigma2 = sigma2_scaled * basis.y_scale**2
    # REML log-likelihood in the original units and basis (|T| = Π 1/s_j):
    log_likelihood = -0.5 * (
        df * math.log(2.0 * math.pi)
        + n * math.log(sigma2)
        + float(np.sum(np.log1p(stats.n * lam)))
        + best.logdet
        - p * math.log(sigma2)
        + 2.0 * float(np.sum(np.log(basis.scale)))
        + df
    )
    logger.debug("lmm %s: lambda=%.6g over %d sites", request.formula, lam, len(results))
    return LmmResult(
        formula=request.formula,
        coefficients=coefficient_table(basis.columns, beta, cov, None),
        n=n,
        missing=sum(r.missing for r in results),
        groups=int(np.sum(stats.n > 0)),
        variance_components=VarianceComponents(site=lam * sigma2, residual=sigma2),
        log_likelihood=log_likelihood,
        converged=converged,
        dropped=basis.dropped,
    )


__all__ = ["SiteStats", "lmm", "profile", "reml_ratio"]
