"""Wald 95 % intervals, estimate ± crit · SE, as statsmodels' ``conf_int``: crit is the
97.5 % quantile of t with the residual degrees of freedom for least squares and of the
standard normal otherwise."""

from __future__ import annotations

from scipy import stats

LEVEL = 0.95


def critical(df: float | None = None) -> float:
    """The two-sided 95 % critical value: t with ``df`` degrees of freedom, else normal."""
    q = 0.5 + LEVEL / 2
    return float(stats.t.ppf(q, df) if df is not None else stats.norm.ppf(q))
