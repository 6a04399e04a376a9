"""Two-stage random-effects meta-analysis of one coefficient across sites.

Stage one: each site fits the model on its own rows (``site_fit``, gathered) and returns
``y_i`` (estimate) and ``v_i = SE_i²``. Stage two, here: with ``w_i = 1/v_i``,

- fixed effect: ``μ_F = Σw y / Σw``, ``SE = (Σw)^-½``; Cochran's ``Q = Σw (y − μ_F)²`` on
  ``k − 1`` df; ``I² = max(0, (Q − df) / Q)`` (Higgins & Thompson, Stat. Med. 21, 2002);
- between-site variance τ²: DerSimonian & Laird (Controlled Clinical Trials 7, 1986)
  ``max(0, (Q − df) / (Σw − Σw²/Σw))``; REML (Viechtbauer, J. Educ. Behav. Stat. 30,
  2005), the root of ``tr P − yᵀPPy`` with ``P = W − Wl lᵀW / Σw`` and
  ``W = diag(1/(v + τ²))``; Paule & Mandel (J. Res. NBS 87, 1982), the root of
  ``Σw*(y − μ*)² = k − 1``. Roots by Brent's method; τ² = 0 when none is positive;
- random effects: ``w* = 1/(v + τ²)``, ``μ = Σw*y / Σw*``, ``SE = (Σw*)^-½``, normal
  confidence interval and z test.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

from coordinator.federation.base import Federation
from schemas.analyses.crosstab import Statistic
from schemas.analyses.meta import MetaRequest, MetaResult, Pooled, SiteEstimate
from schemas.errors import ErrorCode, FedpsyError
from schemas.formula import formula_categories
from schemas.steps.site_fit import SiteFitResult, SiteFitStep

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]


def _pooled(y: Array, w: Array) -> tuple[float, float]:
    total = float(w.sum())
    return float(w @ y) / total, 1.0 / math.sqrt(total)


def cochran_q(y: Array, v: Array) -> float:
    """Cochran's Q about the fixed-effect estimate."""
    w = 1.0 / v
    mu, _ = _pooled(y, w)
    return float(w @ (y - mu) ** 2)


def tau2_dl(y: Array, v: Array) -> float:
    """DerSimonian–Laird moment estimate of τ²."""
    w = 1.0 / v
    q = cochran_q(y, v)
    denom = float(w.sum() - (w @ w) / w.sum())
    return max(0.0, (q - (len(y) - 1)) / denom) if denom > 0.0 else 0.0


def _root(g: Callable[[float], float], scale: float) -> float:
    """The smallest τ² ≥ 0 with ``g(τ²) = 0`` for a ``g`` negative below it (else 0)."""
    if g(0.0) >= 0.0:
        return 0.0
    hi = max(scale, 1e-300)
    while g(hi) < 0.0:
        hi *= 2.0
        if hi > 1e300:
            raise FedpsyError(
                "the between-site variance did not converge", code=ErrorCode.NOT_CONVERGED
            )
    return float(
        optimize.brentq(g, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    )


def tau2_reml(y: Array, v: Array) -> float:
    """REML estimate of τ²: root of ``tr P − yᵀPPy`` (the REML score times −2)."""

    def g(t: float) -> float:
        w = 1.0 / (v + t)
        mu, _ = _pooled(y, w)
        sw = float(w.sum())
        return sw - float(w @ w) / sw - float((w * w) @ (y - mu) ** 2)

    return _root(g, float(np.var(y)) + float(v.mean()))


def tau2_pm(y: Array, v: Array) -> float:
    """Paule–Mandel estimate of τ²: generalized Q equal to its expectation ``k − 1``."""
    k = len(y)

    def g(t: float) -> float:
        w = 1.0 / (v + t)
        mu, _ = _pooled(y, w)
        return (k - 1) - float(w @ (y - mu) ** 2)

    return _root(g, float(np.var(y)) + float(v.mean()))


TAU2: dict[str, Callable[[Array, Array], float]] = {"dl": tau2_dl, "reml": tau2_reml, "pm": tau2_pm}


def _summary(y: Array, w: Array, z: float) -> Pooled:
    mu, se = _pooled(y, w)
    stat = mu / se
    return Pooled(
        estimate=mu,
        std_error=se,
        ci_low=mu - z * se,
        ci_high=mu + z * se,
        statistic=stat,
        p_value=float(2.0 * stats.norm.sf(abs(stat))),
    )


async def meta(request: MetaRequest, federation: Federation) -> MetaResult:
    """Pool each site's estimate of ``request.term`` with a random-effects model."""
    step = SiteFitStep(
        formula=request.formula,
        term=request.term,
        family=request.family,
        categories=formula_categories(request.formula, federation.sites),
        cohort=request.cohort,
        visit=request.visit,
    )
    gathered = await federation.gather(step, SiteFitResult)
    sites = [s for s in federation.sites if s in gathered]
    if not sites:
        raise FedpsyError("no site returned an estimate", code=ErrorCode.NOT_ESTIMABLE)
    fits = [gathered[s] for s in sites]
    y = np.array([f.estimate for f in fits], dtype=np.float64)
    se = np.array([f.std_error for f in fits], dtype=np.float64)
    if not np.all(np.isfinite(y)) or not np.all(se > 0.0):
        raise FedpsyError(
            "a site's estimate or standard error is not usable", code=ErrorCode.NOT_ESTIMABLE
        )
    v = se**2
    z = float(stats.norm.ppf(0.5 + request.level / 2.0))
    k = len(sites)
    q = cochran_q(y, v)
    df = k - 1
    tau2 = TAU2[request.method](y, v)
    w_random = 1.0 / (v + tau2)
    weights = w_random / w_random.sum()
    per_site = [
        SiteEstimate(
            site=s,
            n=f.n,
            estimate=f.estimate,
            std_error=f.std_error,
            ci_low=f.estimate - z * f.std_error,
            ci_high=f.estimate + z * f.std_error,
            weight=float(wt),
        )
        for s, f, wt in zip(sites, fits, weights, strict=True)
    ]
    q_test = Statistic(
        statistic=q, df=float(df), p_value=float(stats.chi2.sf(q, df)) if df > 0 else None
    )
    logger.debug("meta %s[%s]: k=%d tau2=%.6g", request.formula, request.term, k, tau2)
    return MetaResult(
        formula=request.formula,
        term=request.term,
        method=request.method,
        level=request.level,
        per_site=per_site,
        fixed=_summary(y, 1.0 / v, z),
        random=_summary(y, w_random, z),
        tau2=tau2,
        q=q_test,
        i_squared=max(0.0, (q - df) / q) if q > 0.0 else 0.0,
        n=sum(f.n for f in fits),
        missing=sum(f.missing for f in fits),
    )


__all__ = ["cochran_q", "meta", "tau2_dl", "tau2_pm", "tau2_reml"]
