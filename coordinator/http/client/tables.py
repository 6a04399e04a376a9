"""Conversions the analyses share: coefficient tables with Wald intervals and ratios.

Intervals are Wald intervals, estimate ± crit · SE, with crit the 97.5 % quantile of t with
the residual degrees of freedom for least squares and of the standard normal otherwise, as
statsmodels' ``conf_int``. Ratios (odds, rate, hazard) are ``exp`` of the estimate and of
its interval's ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from coordinator.http.client.result import Tables
from coordinator.stats.wald import critical

COEFFICIENT_COLUMNS = ["estimate", "std_error", "statistic", "p_value", "ci_low", "ci_high"]
RATIO_OF_FAMILY = {"binomial": "odds_ratio", "poisson": "rate_ratio"}
"""The ratio ``exp(estimate)`` means for a GLM family's canonical link."""


def with_ratio(frame: pd.DataFrame, ratio: str | None) -> pd.DataFrame:
    """``frame`` with ``<ratio>``, ``<ratio>_ci_low``, ``<ratio>_ci_high`` = exp of
    ``estimate``, ``ci_low``, ``ci_high`` (unchanged when ``ratio`` is None)."""
    if ratio is None:
        return frame
    return frame.assign(
        **{
            ratio: np.exp(frame["estimate"]),
            f"{ratio}_ci_low": np.exp(frame["ci_low"]),
            f"{ratio}_ci_high": np.exp(frame["ci_high"]),
        }
    )


def coefficient_frame(
    rows: Iterable[Mapping[str, Any]], df: float | None = None, ratio: str | None = None
) -> pd.DataFrame:
    """Coefficient rows ``{term, estimate, std_error, statistic, p_value}`` as a frame indexed
    by ``term`` with the 95 % interval (and the ratio columns of ``ratio``)."""
    frame = pd.DataFrame(
        list(rows), columns=["term", "estimate", "std_error", "statistic", "p_value"]
    ).set_index("term")
    frame = frame.astype(float)
    half = critical(df) * frame["std_error"]
    frame = frame.assign(ci_low=frame["estimate"] - half, ci_high=frame["estimate"] + half)
    return with_ratio(frame[COEFFICIENT_COLUMNS], ratio)


def named(frame: pd.DataFrame, index: str | None, columns: str | None = None) -> pd.DataFrame:
    """``frame`` with its axes named."""
    frame.index.name = index
    frame.columns.name = columns
    return frame


def scalars(result: Mapping[str, Any], _: Mapping[str, Any]) -> Tables:
    """The plain values of a result as a one-row frame (for results without their own
    conversion); the rest stays in the envelope."""
    plain = {k: v for k, v in result.items() if v is None or isinstance(v, str | int | float)}
    return pd.DataFrame([plain]), {}
