"""Summary, correlation and t-test from exact two-round federated moments.

Round one secure-sums ``n`` and ``Σx`` (per group) for the global means ``m``; round two
secure-sums ``Σ(x − m)``, ``Σ(x − m)²`` and ``Σ(x − m)(y − m)ᵀ`` about them. The corrected
two-pass formula ``M2 = Σ(x − m)² − (Σ(x − m))² / n`` (Chan, Golub & LeVeque, The American
Statistician 37(3), 1983) makes the result exact even when ``|mean| ≫ sd``, where one round
of raw ``Σx²`` cancels catastrophically. No per-site value is needed, so every round fits
secure aggregation. t-tests: Welch (1947), Biometrika 34, for unequal variances.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import stats

from coordinator.analyses.tables import site_levels
from coordinator.federation.base import Federation
from schemas.analyses.correlation import CorrelationRequest, CorrelationResult
from schemas.analyses.crosstab import Statistic
from schemas.analyses.summary import SummaryRequest, SummaryResult, VariableSummary
from schemas.analyses.ttest import GroupStats, TTestRequest, TTestResult
from schemas.cohort import Cohort, cohort_levels
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.moments import MomentsResult, MomentsStep

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Moments:
    """Pooled moments per group ``g`` and variable ``v`` (one group when ungrouped)."""

    levels: list[str] | None
    total: int
    missing: int
    n: npt.NDArray[np.int64]  # (G, V)
    mean: Array  # (G, V); NaN where n = 0
    m2: Array  # (G, V): Σ(x − mean)²
    cross: Array | None  # (G, V, V): Σ(x − mean)(y − mean)ᵀ, complete cases only


async def pooled_moments(
    federation: Federation,
    variables: list[str],
    *,
    cohort: Cohort | None,
    visit: str,
    complete_cases: bool,
    group: str | None = None,
    levels: list[str] | None = None,
) -> Moments:
    """Exact pooled moments in two secure-summed rounds."""
    first = MomentsStep(
        variables=variables,
        complete_cases=complete_cases,
        group=group,
        levels=levels,
        cohort=cohort,
        visit=visit,
    )
    return await second_round(federation, first, await federation.sum(first, MomentsResult))


async def second_round(federation: Federation, first: MomentsStep, r1: MomentsResult) -> Moments:
    """Round two of :func:`pooled_moments` about round one's (``r1``) means."""
    n = np.asarray(r1.n, dtype=np.int64)
    sums = np.asarray(r1.sums, dtype=np.float64)
    center = np.divide(sums, n, out=np.zeros_like(sums), where=n > 0)
    second = first.model_copy(
        update={
            "center": center.tolist(),
            "products": True,
            "levels": r1.levels if first.group is not None else None,
        }
    )
    r2 = await federation.sum(second, MomentsResult)
    if r2.n != r1.n or r2.levels != r1.levels:
        raise FedpsyError(
            "the sites' rows changed between two rounds of one analysis; run it again",
            code=ErrorCode.INTERNAL,
        )
    s = np.asarray(r2.sums, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(n > 0, s / np.maximum(n, 1), 0.0)
        mean = np.where(n > 0, center + shift, np.nan)
        m2 = np.asarray(r2.squares, dtype=np.float64) - s * shift
        cross = None
        if first.complete_cases:
            c = np.asarray(r2.cross, dtype=np.float64)
            cross = c - np.einsum("gi,gj->gij", s, shift)
    return Moments(
        levels=r1.levels,
        total=r1.total,
        missing=r1.missing,
        n=n,
        mean=mean,
        m2=np.maximum(m2, 0.0),
        cross=cross,
    )


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


async def summary(request: SummaryRequest, federation: Federation) -> SummaryResult:
    """Per variable: n, mean, sd and var (ddof 1), missing."""
    mo = await pooled_moments(
        federation,
        list(request.variables),
        cohort=request.cohort,
        visit=request.visit,
        complete_cases=False,
    )
    out = {}
    for j, code in enumerate(request.variables):
        n = int(mo.n[0, j])
        var = float(mo.m2[0, j]) / (n - 1) if n > 1 else math.nan
        out[code] = VariableSummary(
            n=n,
            mean=_finite(float(mo.mean[0, j])),
            var=_finite(var),
            sd=_finite(math.sqrt(var)) if n > 1 else None,
            missing=mo.total - mo.missing - n,
        )
    return SummaryResult(variables=out)


async def correlation(request: CorrelationRequest, federation: Federation) -> CorrelationResult:
    """Pearson correlation matrix on complete cases."""
    mo = await pooled_moments(
        federation,
        list(request.variables),
        cohort=request.cohort,
        visit=request.visit,
        complete_cases=True,
    )
    assert mo.cross is not None
    c = mo.cross[0]
    d = np.sqrt(np.diag(c))
    k = len(request.variables)
    matrix: list[list[float | None]] = []
    for i in range(k):
        row: list[float | None] = []
        for j in range(k):
            if d[i] == 0.0 or d[j] == 0.0:
                row.append(None)
            else:
                row.append(1.0 if i == j else float(np.clip(c[i, j] / (d[i] * d[j]), -1, 1)))
        matrix.append(row)
    return CorrelationResult(
        variables=list(request.variables), matrix=matrix, n=int(mo.n[0, 0]), missing=mo.missing
    )


def _test(t: float, df: float) -> Statistic:
    if not (math.isfinite(t) and math.isfinite(df)) or df <= 0:
        return Statistic(statistic=_finite(t), df=_finite(df), p_value=None)
    return Statistic(statistic=t, df=df, p_value=float(2.0 * stats.t.sf(abs(t), df)))


def _two_levels(request: TTestRequest, r1: MomentsResult) -> list[int]:
    """The positions of the two levels compared: both when round one had two; else the two
    levels with rows (counts that passed every site's gate)."""
    levels = r1.levels or []
    if len(levels) == 2:
        return [0, 1]
    with_rows = [g for g, row in enumerate(r1.n) if row[0] > 0]
    if len(with_rows) == 2:
        return with_rows
    names = [levels[g] for g in with_rows]
    example = json.dumps({"levels": names[:2]}) if len(names) > 1 else '"levels": [A, B]'
    raise FedpsyError(
        f"group {request.group!r} has {len(names)} levels with rows in the cohort "
        f"({', '.join(names) or 'none'}); a t-test compares two: name them in the "
        f"request's 'levels' field ({example.strip('{}')}) or keep two with a cohort "
        f"condition on {request.group!r} (op in)",
        code=ErrorCode.REQUEST_INVALID,
        extra={"levels": names},
    )


def ttest_levels(request: TTestRequest, federation: Federation) -> list[str] | None:
    """``levels`` as given; else the sites for ``site``; else those the cohort keeps."""
    given = site_levels(request.group, request.levels, federation)
    if given is not None:
        return given
    kept = cohort_levels(request.cohort, request.group)
    if kept is not None and len(kept) < 2:
        which = f"only level {kept[0]!r}" if kept else "no level"
        raise FedpsyError(
            f"the cohort keeps {which} of {request.group!r}; a t-test compares two",
            code=ErrorCode.REQUEST_INVALID,
        )
    return kept


async def ttest(request: TTestRequest, federation: Federation) -> TTestResult:
    """Welch and pooled two-sample t-tests (first level minus second level).

    The levels: ``levels``; else the two a cohort's ``==`` / ``in`` conditions on the group
    keep (in the cohort's order); else the group's levels (dictionary order) with rows in
    the cohort, when exactly two have rows. Round one's per-level counts decide that last
    case; they are secure-summed through every site's gate like any other answer.
    """
    first = MomentsStep(
        variables=[request.variable],
        complete_cases=True,
        group=request.group,
        levels=ttest_levels(request, federation),
        cohort=request.cohort,
        visit=request.visit,
    )
    r1 = await federation.sum(first, MomentsResult)
    picked = _two_levels(request, r1)
    mo = await second_round(federation, first, r1)
    levels = [(mo.levels or [])[g] for g in picked]
    mo = replace(mo, n=mo.n[picked], mean=mo.mean[picked], m2=mo.m2[picked])
    n1, n2 = (int(mo.n[g, 0]) for g in range(2))
    m1, m2 = (float(mo.mean[g, 0]) for g in range(2))
    v1, v2 = (float(mo.m2[g, 0]) / (k - 1) if k > 1 else math.nan for g, k in enumerate((n1, n2)))
    groups = {
        lv: GroupStats(n=k, mean=_finite(m), sd=_finite(math.sqrt(v)) if k > 1 else None)
        for lv, k, m, v in zip(levels, (n1, n2), (m1, m2), (v1, v2), strict=True)
    }
    with np.errstate(all="ignore"):
        a, b = v1 / n1 if n1 else math.nan, v2 / n2 if n2 else math.nan
        se_w = math.sqrt(a + b) if a + b >= 0 else math.nan
        t_w = (m1 - m2) / se_w if se_w > 0 else math.nan
        df_w = (
            (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
            if min(n1, n2) > 1 and (a > 0 or b > 0)
            else math.nan
        )
        dof = n1 + n2 - 2
        sp2 = (float(mo.m2[0, 0]) + float(mo.m2[1, 0])) / dof if dof > 0 else math.nan
        se_p = math.sqrt(sp2 * (1 / n1 + 1 / n2)) if dof > 0 and min(n1, n2) > 0 else math.nan
        t_p = (m1 - m2) / se_p if se_p > 0 else math.nan
    return TTestResult(
        variable=request.variable,
        group=request.group,
        groups=groups,
        welch=_test(t_w, df_w),
        pooled=_test(t_p, float(dof)),
        n=n1 + n2,
        missing=mo.missing,
    )
