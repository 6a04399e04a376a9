"""What the regression analyses share: the design basis, a stable solve, coefficient tables.

Round one (``column_moments``, secure-summed) gives each design column's global mean and
a rough scale. The models are then solved in the basis ``z = (x − m) / s`` (the intercept
column kept as is), where the normal equations are well conditioned, and mapped back:
with ``η = Zγ = Xβ`` we have ``Z = XT⁻¹``, i.e. ``β = Tγ`` with ``T = diag(1/s)`` plus
``T[0, j] = −m_j / s_j`` in the intercept's row. The means and scales only affect
conditioning, never the answer: any values give the same β up to rounding (METHODS.md,
"OLS"; the Longley benchmark, NIST StRD).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import linalg, stats

from coordinator.federation.base import Federation
from schemas.analyses.coefficients import Coefficient
from schemas.cohort import Cohort
from schemas.errors import ErrorCode, FedpsyError
from schemas.formula import formula_categories
from schemas.steps.design import ColumnMomentsResult, ColumnMomentsStep

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
INTERCEPT = "Intercept"
COLLINEAR = 1e-13  # smallest eigenvalue of the equilibrated matrix, relative to the largest


@dataclass(frozen=True)
class Basis:
    """The pooled design's columns, their centers and scales, and the outcome's."""

    formula: str
    categories: dict[str, list[str]]
    columns: list[str]
    dropped: list[str]
    n: int
    missing: int
    center: Array
    scale: Array
    y_center: float
    y_scale: float
    y_mean: float

    @property
    def intercept(self) -> int | None:
        return self.columns.index(INTERCEPT) if INTERCEPT in self.columns else None

    @property
    def p(self) -> int:
        return len(self.columns)

    def transform(self) -> Array:
        """``T`` with ``β = Tγ`` (coefficients of x from those of z)."""
        t = np.diag(1.0 / self.scale)
        k = self.intercept
        if k is not None:
            row = -self.center / self.scale
            row[k] = 1.0
            t[k, :] = row
        return t

    def to_original(self, gamma: Array, cov: Array, *, outcome_scaled: bool) -> tuple[Array, Array]:
        """β and Cov(β) from γ and Cov(γ); ``outcome_scaled``: γ was fitted to ỹ."""
        t = self.transform()
        beta = t @ gamma
        cov_beta = t @ cov @ t.T
        if outcome_scaled:
            beta = beta * self.y_scale
            cov_beta = cov_beta * self.y_scale**2
            if self.intercept is not None:
                beta[self.intercept] += self.y_center
        return beta, cov_beta


def _rough_scale(mean: float, mean_square: float) -> float:
    """A positive scale for conditioning: the sd from raw moments, else the RMS."""
    var = mean_square - mean * mean
    rms = math.sqrt(max(mean_square, 0.0))
    if var > 1e-12 * max(mean_square, 1e-300) and math.isfinite(var):
        return math.sqrt(var)
    return rms if rms > 0.0 else 1.0


async def design_basis(
    federation: Federation, formula: str, *, cohort: Cohort | None, visit: str
) -> Basis:
    """Round one: the design's columns, counts, centers and scales (secure-summed)."""
    categories = formula_categories(formula, federation.sites)
    step = ColumnMomentsStep(formula=formula, categories=categories, cohort=cohort, visit=visit)
    r = await federation.sum(step, ColumnMomentsResult)
    if r.n == 0:
        raise FedpsyError(
            f"formula {formula!r}: no site has a row with every variable present",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    sums = np.asarray(r.sums, dtype=np.float64)
    squares = np.asarray(r.squares, dtype=np.float64)
    keep = squares > 0.0
    columns = [c for c, k in zip(r.columns, keep, strict=True) if k]
    dropped = [c for c, k in zip(r.columns, keep, strict=True) if not k]
    if not columns:
        raise FedpsyError(
            f"formula {formula!r}: every design column is zero", code=ErrorCode.NOT_ESTIMABLE
        )
    if r.n <= len(columns):
        raise FedpsyError(
            f"formula {formula!r}: {r.n} rows for {len(columns)} parameters",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    means = sums[keep] / r.n
    mean_squares = squares[keep] / r.n
    has_intercept = INTERCEPT in columns
    center = np.zeros(len(columns))
    scale = np.ones(len(columns))
    for j, name in enumerate(columns):
        if name == INTERCEPT:
            continue
        if has_intercept:
            center[j] = means[j]
            scale[j] = _rough_scale(float(means[j]), float(mean_squares[j]))
        else:
            scale[j] = math.sqrt(float(mean_squares[j]))
    y_mean = r.y_sum / r.n
    y_ms = r.y_squares / r.n
    y_scale = _rough_scale(y_mean, y_ms) if has_intercept else math.sqrt(y_ms) or 1.0
    logger.debug("basis of %s: %d rows, columns %s, dropped %s", formula, r.n, columns, dropped)
    return Basis(
        formula=formula,
        categories=categories,
        columns=columns,
        dropped=dropped,
        n=r.n,
        missing=r.missing,
        center=center,
        scale=scale,
        y_center=y_mean if has_intercept else 0.0,
        y_scale=y_scale,
        y_mean=y_mean,
    )


def spd_solve(a: Array, b: Array, columns: Sequence[str]) -> tuple[Array, Array]:
    """``a⁻¹b`` and ``a⁻¹`` for a symmetric positive definite ``a``, by Cholesky after
    symmetric equilibration (van der Sluis, Numer. Math. 14, 1969); collinear designs
    raise ``not_estimable``."""
    diag = np.diag(a).copy()
    if np.any(~(diag > 0.0)):
        bad = [c for c, d in zip(columns, diag, strict=True) if not d > 0.0]
        raise FedpsyError(
            f"the design columns {bad} carry no information", code=ErrorCode.NOT_ESTIMABLE
        )
    d = 1.0 / np.sqrt(diag)
    scaled = a * np.outer(d, d)
    eig = np.linalg.eigvalsh(scaled)
    if not eig[0] > COLLINEAR * eig[-1]:
        raise FedpsyError(
            "the design columns are collinear in the pooled rows (a variable constant there, "
            f"or a term a combination of others); columns: {list(columns)}",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    factor = linalg.cho_factor(scaled, lower=True)
    x = linalg.cho_solve(factor, b * d) * d
    inverse = linalg.cho_solve(factor, np.eye(len(d))) * np.outer(d, d)
    return np.asarray(x, dtype=np.float64), np.asarray((inverse + inverse.T) / 2.0)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def coefficient_table(
    columns: Sequence[str], estimates: Array, cov: Array, df: int | None
) -> list[Coefficient]:
    """Rows ``{term, estimate, std_error, statistic, p_value}``: t with ``df`` degrees of
    freedom, or z (normal) when ``df`` is None."""
    rows = []
    for j, term in enumerate(columns):
        var = float(cov[j, j])
        se = math.sqrt(var) if var >= 0.0 else math.nan
        stat = float(estimates[j]) / se if se > 0.0 else math.nan
        if not math.isfinite(stat):
            p = math.nan
        elif df is None:
            p = float(2.0 * stats.norm.sf(abs(stat)))
        else:
            p = float(2.0 * stats.t.sf(abs(stat), df))
        rows.append(
            Coefficient(
                term=term,
                estimate=float(estimates[j]),
                std_error=_finite(se),
                statistic=_finite(stat),
                p_value=_finite(p),
            )
        )
    return rows


__all__ = ["INTERCEPT", "Basis", "coefficient_table", "design_basis", "spd_solve"]
