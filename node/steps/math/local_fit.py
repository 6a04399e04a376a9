"""A site's own least-squares or GLM fit, for two-stage meta-analysis.

Least squares by Householder QR of the column-equilibrated design (Golub & Van Loan,
*Matrix Computations*, 4th ed., §5.3), covariance ``σ²(XᵀX)⁻¹`` from ``R``. GLMs by
iteratively reweighted least squares (McCullagh & Nelder 1989, §2.5), each step a QR
solve of the weighted working problem, from the intercept-only start with step-halving
when the deviance rises, until the relative deviance change is below ``1e-10`` (at most
25 iterations). A design column that is zero at this site (a categorical level it lacks)
is dropped; any other rank deficiency makes the fit ``not_estimable``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from node.data.formula import Design, Matrix
from node.steps.math.family import check_outcome, evaluate, link
from schemas.errors import ErrorCode, FedpsyError

logger = logging.getLogger(__name__)

TOLERANCE = 1e-10
MAX_ITERATIONS = 25
MAX_HALVINGS = 30
RANK_TOLERANCE = 1e-10


@dataclass(frozen=True)
class LocalFit:
    """Coefficients of the columns kept, their covariance, and the fit's size."""

    columns: list[str]
    estimates: npt.NDArray[np.float64]
    covariance: Matrix
    n: int
    df_residual: int
    converged: bool


def _not_estimable(why: str) -> FedpsyError:
    return FedpsyError(
        f"the model cannot be fitted on this site's rows: {why}", code=ErrorCode.NOT_ESTIMABLE
    )


def _weighted_solve(
    x: Matrix, rhs: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], Matrix]:
    """Least-squares solution of ``x b ≈ rhs`` and ``(xᵀx)⁻¹``, by QR after equilibration."""
    norms = np.sqrt(np.sum(x * x, axis=0))
    if np.any(norms == 0.0):
        raise _not_estimable("a design column has no weight")
    q, r = np.linalg.qr(x / norms)
    diag = np.abs(np.diag(r))
    if diag.min() <= RANK_TOLERANCE * diag.max():
        raise _not_estimable("the design columns are collinear")
    r_inv = np.linalg.solve(r, np.eye(r.shape[0]))
    b = (r_inv @ (q.T @ rhs)) / norms
    inverse = (r_inv @ r_inv.T) / np.outer(norms, norms)
    return b, inverse


def fit_local(design: Design, family: str | None) -> LocalFit:
    """Fit ``design`` by least squares (``family`` None) or as a GLM of ``family``."""
    keep = ~np.all(design.x == 0.0, axis=0)
    columns = [c for c, k in zip(design.columns, keep, strict=True) if k]
    x = design.x[:, keep]
    y = design.y
    n, p = x.shape
    if n <= p:
        raise _not_estimable(f"{n} rows for {p} parameters")
    if family is None:
        beta, inverse = _weighted_solve(x, y)
        resid = y - x @ beta
        sigma2 = float(resid @ resid) / (n - p)
        return LocalFit(columns, beta, sigma2 * inverse, n, n - p, True)
    check_outcome(family, y)
    beta = np.zeros(p)
    if "Intercept" in columns:
        mean = float(y.mean())
        if family != "gaussian" and not (0.0 < mean < (1.0 if family == "binomial" else np.inf)):
            raise _not_estimable("the outcome takes a single value")
        beta[columns.index("Intercept")] = link(family, mean)
    fitted = evaluate(family, x @ beta, y)
    converged = False
    inverse = np.eye(p)
    for _ in range(MAX_ITERATIONS):
        root = np.sqrt(fitted.weights)
        safe = np.where(root > 0.0, root, 1.0)
        step, inverse = _weighted_solve(
            x * root[:, None], np.where(root > 0.0, (y - fitted.mu) / safe, 0.0)
        )
        candidate = beta + step
        trial = evaluate(family, x @ candidate, y)
        halvings = 0
        while (
            not (
                np.isfinite(trial.deviance)
                and trial.deviance <= fitted.deviance * (1.0 + 1e-12) + 1e-300
            )
            and halvings < MAX_HALVINGS
        ):
            candidate = (beta + candidate) / 2.0
            trial = evaluate(family, x @ candidate, y)
            halvings += 1
        change = abs(trial.deviance - fitted.deviance) / (abs(trial.deviance) + 0.1)
        beta, fitted = candidate, trial
        if change < TOLERANCE:
            converged = True
            break
    root = np.sqrt(fitted.weights)
    _, inverse = _weighted_solve(x * root[:, None], np.zeros(n))
    dispersion = fitted.deviance / (n - p) if family == "gaussian" else 1.0
    return LocalFit(columns, beta, dispersion * inverse, n, n - p, converged)


__all__ = ["LocalFit", "fit_local"]
