"""GLM families with canonical links, evaluated on a site's rows.

For a canonical link the score is ``Xᵀ(y − μ)`` and the (observed = expected) information
``XᵀWX`` with ``W = diag(V(μ))`` (McCullagh & Nelder, *Generalized Linear Models*, 2nd
ed., 1989, §2.5). Deviances use ``xlogy`` and the linear predictor directly so that
``0·log 0 = 0`` and fitted probabilities near 0 or 1 lose no digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import expit, xlogy

from schemas.errors import ErrorCode, FedpsyError

Vector = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Fitted:
    """Mean, IRLS weights and deviance at one linear predictor."""

    mu: Vector
    weights: Vector
    deviance: float


def check_outcome(family: str, y: Vector) -> None:
    """Refuse outcome values the family cannot model (without naming any value)."""
    if family == "binomial" and not np.all((y >= 0.0) & (y <= 1.0)):
        raise FedpsyError(
            "the binomial family needs an outcome between 0 and 1 (binary 0/1)",
            code=ErrorCode.REQUEST_INVALID,
        )
    if family == "poisson" and not np.all(y >= 0.0):
        raise FedpsyError(
            "the poisson family needs a non-negative outcome (counts)",
            code=ErrorCode.REQUEST_INVALID,
        )
    if family not in ("binomial", "poisson", "gaussian"):
        raise FedpsyError(f"unknown family {family!r}", code=ErrorCode.REQUEST_INVALID)


def evaluate(family: str, eta: Vector, y: Vector) -> Fitted:
    """``μ``, ``V(μ)`` and the deviance of ``y`` at linear predictor ``eta``."""
    with np.errstate(over="ignore"):
        if family == "binomial":
            mu = np.asarray(expit(eta), dtype=np.float64)
            log_mu = -np.logaddexp(0.0, -eta)
            log_1m = -np.logaddexp(0.0, eta)
            dev = 2.0 * np.sum(
                xlogy(y, y) - y * log_mu + xlogy(1.0 - y, 1.0 - y) - (1.0 - y) * log_1m
            )
            return Fitted(mu, mu * (1.0 - mu), float(dev))
        if family == "poisson":
            mu = np.exp(eta)
            dev = 2.0 * np.sum(xlogy(y, y) - y * eta - (y - mu))
            return Fitted(mu, mu, float(dev))
    if family == "gaussian":
        resid = y - eta
        return Fitted(eta.copy(), np.ones_like(eta), float(resid @ resid))
    raise FedpsyError(f"unknown family {family!r}", code=ErrorCode.REQUEST_INVALID)


def link(family: str, mean: float) -> float:
    """The canonical link of a mean: the intercept-only solution's intercept."""
    if family == "binomial":
        return float(np.log(mean / (1.0 - mean)))
    if family == "poisson":
        return float(np.log(mean))
    return float(mean)


__all__ = ["Fitted", "check_outcome", "evaluate", "link"]
