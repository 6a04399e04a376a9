"""Gaussian-mixture arithmetic on one node's rows: precision Cholesky factors and weighted
log-densities, computed as scikit-learn's ``GaussianMixture`` does (full covariances)."""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt
import scipy.linalg

from schemas.errors import ErrorCode, FedpsyError

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]


def precision_cholesky(covariances: Array) -> Array:
    """Per component, the upper Cholesky factor of the precision matrix."""
    out = np.empty_like(covariances)
    for k, cov in enumerate(covariances):
        try:
            chol = scipy.linalg.cholesky(cov, lower=True)
        except np.linalg.LinAlgError:
            raise FedpsyError(
                f"mixture component {k + 1} has a singular covariance; raise reg_covar or "
                "use fewer components",
                code=ErrorCode.NOT_ESTIMABLE,
            ) from None
        out[k] = scipy.linalg.solve_triangular(chol, np.eye(len(cov)), lower=True).T
    return out


def weighted_log_density(x: Array, weights: Array, means: Array, covariances: Array) -> Array:
    """``log w_k + log N(x; μ_k, Σ_k)`` for every row and component."""
    prec = precision_cholesky(covariances)
    n, p = x.shape
    out = np.empty((n, len(means)))
    for k, (mu, pc) in enumerate(zip(means, prec, strict=True)):
        y = x @ pc - mu @ pc
        log_det = float(np.sum(np.log(np.diag(pc))))
        out[:, k] = -0.5 * (p * math.log(2 * math.pi) + (y * y).sum(axis=1)) + log_det
    return out + np.log(weights)


__all__ = ["precision_cholesky", "weighted_log_density"]
