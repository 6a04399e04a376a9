"""Summary, correlation and t-test from exact two-round federated moments.

Round one secure-sums ``n`` and ``Σx`` (per group) for the global means ``m``; round two
secure-sums ``Σ(x − m)``, ``Σ(x − m)²`` and ``Σ(x − m)(y − m)ᵀ`` about them. The corrected
two-pass formula ``M2 = Σ(x − m)² − (Σ(x − m))² / n`` (Chan, Golub & LeVeque, The American
Statistician 37(3), 1983) makes the result exact even when ``|mean| ≫ sd``, where one round
of raw ``Σx²`` cancels catastrophically. No per-site value is needed, so every round fits
secure aggregation. The summary's skewness and kurtosis take a third round of power sums
of the standardized values about the exact mean (:func:`pooled_shape`). t-tests: Welch
(1947), Biometrika 34, for unequal variances.
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
    """Per variable: n, mean, sd and var (ddof 1), skewness (G1) and excess kurtosis (G2)
    adjusted for bias, missing."""
    variables = list(request.variables)
    mo = await pooled_moments(
        federation, variables, cohort=request.cohort, visit=request.visit, complete_cases=False
    )
    shape = await pooled_shape(
        federation, variables, mo, cohort=request.cohort, visit=request.visit
    )
    out = {}
    for j, code in enumerate(variables):
        n = int(mo.n[0, j])
        var = float(mo.m2[0, j]) / (n - 1) if n > 1 else math.nan
        skewness, kurtosis = shape.get(code, (None, None))
        out[code] = VariableSummary(
            n=n,
            mean=_finite(float(mo.mean[0, j])),
            var=_finite(var),
            sd=_finite(math.sqrt(var)) if n > 1 else None,
            skewness=skewness,
            kurtosis=kurtosis,
            missing=mo.total - mo.missing - n,
        )
    return SummaryResult(variables=out)


async def pooled_shape(
    federation: Federation,
    variables: list[str],
    mo: Moments,
    *,
    cohort: Cohort | None,
    visit: str,
) -> dict[str, tuple[float | None, float | None]]:
    """Skewness and excess kurtosis of the ungrouped ``variables`` with ``n ≥ 3`` and a
    positive variance, from a third secure-summed round about their exact pooled means.

    The sites sum ``z = (x − m)/s`` (``m``, ``s``: the pooled mean and sd of
    :func:`pooled_moments`) and its powers 2 to 4 over the same rows as before (every
    variable is in the step, so each site's rows stay those of the summary); the
    coordinator corrects them to central moments about the mean of ``z``
    (:func:`shape_of`). A site whose p%-rule finds a sum of cubes or fourth powers
    dominated refuses that round (``dominance``): the skewness and kurtosis are then
    withheld (null), asked again one variable at a time when several were asked together.
    Other failures fail the job.
    """
    n = [int(k) for k in mo.n[0]]
    m2 = [float(v) for v in mo.m2[0]]
    eligible = list(dict.fromkeys(v for j, v in enumerate(variables) if n[j] >= 3 and m2[j] > 0))
    if not eligible:
        return {}
    mean = [float(v) if math.isfinite(v) else 0.0 for v in mo.mean[0]]
    scale = [
        math.sqrt(m2[j] / (n[j] - 1)) if n[j] > 1 and m2[j] > 0 else 1.0 for j in range(len(n))
    ]
    step = MomentsStep(
        variables=variables,
        complete_cases=False,
        center=[mean],
        scale=[scale],
        products=True,
        higher=eligible,
        cohort=cohort,
        visit=visit,
    )
    out: dict[str, tuple[float | None, float | None]] = {}
    asked = [eligible]
    while asked:
        higher = asked.pop(0)
        sums = await _higher_sums(federation, step.model_copy(update={"higher": higher}))
        if sums is None:
            if len(higher) > 1:  # which of them is dominated: one at a time
                asked.extend([code] for code in higher)
            continue
        if sums.n != [n]:
            raise FedpsyError(
                "the sites' rows changed between two rounds of one analysis; run it again",
                code=ErrorCode.INTERNAL,
            )
        for k, code in enumerate(higher):
            j = variables.index(code)
            powers = (sums.sums[0][j], sums.squares[0][j], sums.cubes[0][k], sums.fourths[0][k])
            out[code] = shape_of(n[j], *powers)
    return out


async def _higher_sums(federation: Federation, step: MomentsStep) -> MomentsResult | None:
    """The third round's sums, or None when sites refuse it for dominance only."""
    try:
        return await federation.sum(step, MomentsResult)
    except FedpsyError as exc:
        sites = exc.extra.get("sites")
        codes = {str(c) for c in sites.values()} if isinstance(sites, dict) else set()
        if codes == {ErrorCode.DOMINANCE.value}:
            logger.info("skewness and kurtosis of %s withheld: dominance", step.higher)
            return None
        raise


def shape_of(
    n: int, s1: float, s2: float, s3: float, s4: float
) -> tuple[float | None, float | None]:
    """Bias-adjusted skewness ``G1`` and excess kurtosis ``G2`` from ``n`` and the power sums
    ``s_k = Σz^k`` about any center near the mean, as ``scipy.stats.skew(bias=False)`` and
    ``scipy.stats.kurtosis(bias=False)`` (Joanes & Gill, "Comparing measures of sample
    skewness and kurtosis", The Statistician 47(1), 1998). With ``d = s1/n`` the central
    sums are ``M2 = s2 − d·s1``, ``M3 = s3 − 3d·s2 + 2n·d³`` and ``M4 = s4 − 4d·s3 +
    6d²·s2 − 3n·d⁴``; ``G1 = √(n(n−1))/(n−2) · m3/m2^{3/2}`` (n ≥ 3) and ``G2 =
    ((n²−1)·m4/m2² − 3(n−1)²)/((n−2)(n−3))`` (n ≥ 4), with ``m_k = M_k/n``."""
    if n < 3:
        return None, None
    d = s1 / n
    m2 = (s2 - d * s1) / n
    if not m2 > 0.0:
        return None, None
    m3 = (s3 - 3.0 * d * s2 + 2.0 * n * d**3) / n
    m4 = (s4 - 4.0 * d * s3 + 6.0 * d * d * s2 - 3.0 * n * d**4) / n
    skewness = math.sqrt(n * (n - 1.0)) / (n - 2.0) * m3 / m2**1.5
    kurtosis = None
    if n >= 4:
        kurtosis = ((n * n - 1.0) * m4 / (m2 * m2) - 3.0 * (n - 1.0) ** 2) / ((n - 2.0) * (n - 3.0))
    return _finite(skewness), None if kurtosis is None else _finite(kurtosis)


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
