"""ComBat's location/scale estimates for one batch, computed where the batch's rows are.

Johnson, Li & Rabinovic, "Adjusting batch effects in microarray expression data using
empirical Bayes methods", Biostatistics 8(1), 2007, section 3.2 (parametric priors): on the
standardized data ``s`` of one batch (rows × variables), ``γ̂_v`` is the batch mean and
``δ̂²_v`` the batch variance (ddof 1) of variable ``v``. The priors are taken across the
batch's variables: ``γ ~ N(γ̄, τ̄²)`` and ``δ² ~ InverseGamma(λ̄, θ̄)`` with method-of-moments
hyperparameters, and the posterior means are found by iterating

    γ* = (n τ̄² γ̂ + δ*² γ̄) / (n τ̄² + δ*²),
    δ*² = (θ̄ + ½ Σ (s − γ*)²) / (n/2 + λ̄ − 1)

until nothing changes. The priors are per batch, so a batch held by one site needs nothing
from the others (Chen et al., NeuroImage 2022). neuroCombat stops at a relative change of
1e-4; here the iteration runs to ``tolerance`` (default 1e-12) in float64.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from schemas.errors import ErrorCode, FedpsyError

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BatchEstimate:
    """``gamma`` (γ*), ``delta`` (δ*²) per variable, and the iterations taken (0: no EB)."""

    gamma: Array
    delta: Array
    iterations: int


def location_scale(s: Array) -> tuple[Array, Array]:
    """``γ̂`` (batch means) and ``δ̂²`` (batch variances, ddof 1; a zero becomes 1, as in
    neuroCombat) of a batch's standardized rows."""
    if s.shape[0] < 2:
        raise FedpsyError(
            "a ComBat batch needs at least 2 rows to estimate its scale",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    gamma = s.mean(axis=0)
    delta = s.var(axis=0, ddof=1)
    delta[delta == 0.0] = 1.0
    return gamma, delta


def inverse_gamma_prior(delta_hat: Array) -> tuple[float, float]:
    """Method-of-moments ``(λ̄, θ̄)`` of the inverse-gamma prior of ``δ²`` across variables."""
    m = float(np.mean(delta_hat))
    s2 = float(np.var(delta_hat, ddof=1))
    if not s2 > 0.0:
        raise FedpsyError(
            "ComBat's empirical Bayes needs batch variances that differ across variables; "
            "use eb: false",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    return (2.0 * s2 + m * m) / s2, (m * s2 + m**3) / s2


def estimate_batch(
    s: Array, *, eb: bool, tolerance: float = 1e-12, max_iter: int = 10_000
) -> BatchEstimate:
    """``γ*`` and ``δ*²`` of one batch's standardized rows ``s`` (rows × variables)."""
    gamma_hat, delta_hat = location_scale(s)
    if not eb:
        return BatchEstimate(gamma_hat, delta_hat, 0)
    if s.shape[1] < 2:
        raise FedpsyError(
            "ComBat's empirical Bayes needs at least 2 variables; use eb: false",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    n = float(s.shape[0])
    gamma_bar = float(np.mean(gamma_hat))
    t2 = float(np.var(gamma_hat, ddof=1))
    a, b = inverse_gamma_prior(delta_hat)
    g_old, d_old = gamma_hat, delta_hat
    for iteration in range(1, max_iter + 1):
        g_new = (t2 * n * gamma_hat + d_old * gamma_bar) / (t2 * n + d_old)
        sum2 = ((s - g_new) ** 2).sum(axis=0)
        d_new = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
        change = max(
            float(np.max(np.abs(g_new - g_old) / np.sqrt(d_new))),
            float(np.max(np.abs(d_new - d_old) / d_new)),
        )
        g_old, d_old = g_new, d_new
        if change <= tolerance:
            return BatchEstimate(g_new, d_new, iteration)
    raise FedpsyError(
        f"ComBat's empirical Bayes did not converge in {max_iter} iterations",
        code=ErrorCode.NOT_CONVERGED,
    )


__all__ = ["BatchEstimate", "estimate_batch", "inverse_gamma_prior", "location_scale"]
