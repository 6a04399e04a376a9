"""Count and crosstab: secure-summed counts (Pearson chi-square from the pooled table)."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
from scipy import stats

from coordinator.federation.base import Federation
from schemas.analyses.count import CountRequest, CountResult
from schemas.analyses.crosstab import CrosstabRequest, CrosstabResult, Statistic
from schemas.steps import tabulate

logger = logging.getLogger(__name__)


def site_levels(
    variable: str, levels: list[str] | None, federation: Federation
) -> list[str] | None:
    """The levels of a grouping variable: the sites taking part for ``site`` (each node
    knows only its own site id), else as given."""
    if variable == "site" and levels is None:
        return list(federation.sites)
    return levels


async def count(request: CountRequest, federation: Federation) -> CountResult:
    """Rows in the cohort, summed over sites."""
    step = tabulate.CountStep(cohort=request.cohort, visit=request.visit)
    total = await federation.sum(step, tabulate.CountResult)
    return CountResult(n=total.n)


def pearson_chi2(counts: npt.ArrayLike) -> Statistic:
    """Pearson's chi-square test of independence, no continuity correction (Pearson 1900).

    Rows and columns with a zero total are left out; with fewer than two non-empty rows or
    columns the test is undefined (nulls).
    """
    table = np.asarray(counts, dtype=np.float64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, c = table.shape
    if r < 2 or c < 2:
        return Statistic(statistic=None, df=None, p_value=None)
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    statistic = float(np.sum((table - expected) ** 2 / expected))
    df = (r - 1) * (c - 1)
    return Statistic(statistic=statistic, df=float(df), p_value=float(stats.chi2.sf(statistic, df)))


async def crosstab(request: CrosstabRequest, federation: Federation) -> CrosstabResult:
    """Pooled contingency table and its chi-square test."""
    step = tabulate.CrosstabStep(
        row=request.row,
        column=request.column,
        row_levels=site_levels(request.row, request.row_levels, federation),
        column_levels=site_levels(request.column, request.column_levels, federation),
        cohort=request.cohort,
        visit=request.visit,
    )
    total = await federation.sum(step, tabulate.CrosstabResult)
    table = np.asarray(total.counts, dtype=np.int64).reshape(len(total.rows), len(total.columns))
    return CrosstabResult(
        rows=total.rows,
        columns=total.columns,
        counts=total.counts,
        chi2=pearson_chi2(table),
        n=int(table.sum()),
        missing=total.missing,
    )
