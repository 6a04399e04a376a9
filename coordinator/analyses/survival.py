"""Kaplan–Meier curves and the log-rank test from secure-summed counts on a public time axis.

Every site counts, per group level and per point ``k · resolution`` of a shared axis, the
rows at risk and the events (:mod:`schemas.steps.survival`); the counts add up over sites
to the pooled ones, so both answers equal the pooled ones (METHODS.md, "Survival").

* Kaplan–Meier (Kaplan & Meier, JASA 53(282), 1958): the product-limit estimate
  ``Ŝ(t) = Π_{k ≤ t} (1 − d_k / n_k)`` is formed on the fine axis and only read off at the
  request's grid times; multiplying over the grid intervals instead would give the
  life-table estimate, a different number. Greenwood's variance
  ``Ŝ² Σ d_k / (n_k (n_k − d_k))`` (Greenwood, Rep. Public Health Med. Subj. 33, 1926). The
  axis ends at the last grid time: rows followed longer stay at risk, their later events
  never leave. A site refusing a grid interval with too few events makes the coordinator
  merge intervals pairwise and ask again, as for histograms; intervals of the pooled curve
  with ``0 < events < min_events`` are merged with a neighbour.
* Log-rank (Mantel 1966; Peto & Peto, JRSS A 135(2), 1972): observed minus expected events
  per level and their hypergeometric covariance, summed over the axis points with events.
  The axis must cover all follow-up: one ``survival_extent`` round tells the coordinator the
  power-of-two bracket of the longest time (nothing finer), which sets the horizon.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from coordinator.analyses.tables import site_levels
from coordinator.federation.base import Federation
from coordinator.stats.bins import coarsen, merge_small, only_small_cells
from schemas.analyses.kaplan_meier import (
    UNGROUPED,
    KaplanMeierRequest,
    KaplanMeierResult,
    SurvivalCurve,
)
from schemas.analyses.logrank import LogrankGroup, LogrankRequest, LogrankResult
from schemas.analyses.survival import axis_point
from schemas.cohort import Cohort
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.survival import (
    MAX_HORIZON,
    SurvivalCountsResult,
    SurvivalCountsStep,
    SurvivalExtentResult,
    SurvivalExtentStep,
)

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
BEFORE_AXIS = -1  # the left edge of the first grid interval [0, g_1]


async def survival_horizon(
    federation: Federation, time: str, resolution: float, *, cohort: Cohort | None, visit: str
) -> int:
    """The last axis point to ask for: ``2^(j+1) − 1`` for the highest power of two ``2^j``
    some site's follow-up reaches (so it covers every row's time)."""
    step = SurvivalExtentStep(time=time, resolution=resolution, cohort=cohort, visit=visit)
    extent = await federation.sum(step, SurvivalExtentResult)
    reached = [j for j, c in enumerate(extent.reaches) if c > 0]
    horizon = 2 ** (max(reached) + 1) - 1 if reached else 0
    if horizon > MAX_HORIZON:
        raise FedpsyError(
            f"the follow-up in {time!r} spans more than {MAX_HORIZON} steps of the "
            f"resolution ({resolution:g}); give a coarser resolution",
            code=ErrorCode.REQUEST_INVALID,
        )
    return horizon


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def product_limit(at_risk: Array, events: Array) -> tuple[Array, Array]:
    """Ŝ and its Greenwood standard error at every axis point (NaN where undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(events > 0, 1.0 - events / at_risk, 1.0)
        survival: Array = np.cumprod(factor, dtype=np.float64)
        terms = np.where(events > 0, events / (at_risk * (at_risk - events)), 0.0)
        std_error: Array = survival * np.sqrt(np.cumsum(terms))
    return survival, std_error


def merge_intervals(
    edges: list[int], counts: list[int], minimum: int
) -> tuple[list[int], list[int]]:
    """Grid intervals (axis points ``edges``) with ``0 < count < minimum`` merged into a
    neighbour, as histogram bins are."""
    kept, merged = merge_small([float(e) for e in edges], counts, minimum)
    return [int(e) for e in kept], merged


async def _counts(
    request: KaplanMeierRequest, federation: Federation, grid: list[int]
) -> tuple[SurvivalCountsResult, list[int], int]:
    """Pooled counts up to the last grid point; grid intervals merged while sites refuse.

    Sites refuse an interval with 1 .. min-1 events or exits, including the rows still at
    risk at the last grid time; when even one interval is refused, the curve is cut at
    the middle of the grid and merging starts again from the fine grid (a site with a
    thin tail of follow-up then reports a shorter curve, never the thin tail)."""
    edges = [BEFORE_AXIS, *grid]
    coarsened = 0
    while True:
        step = SurvivalCountsStep(
            time=request.time,
            event=request.event,
            group=request.group,
            levels=site_levels(request.group, request.levels, federation)
            if request.group is not None
            else None,
            resolution=request.resolution,
            horizon=edges[-1],
            intervals=edges[1:],
            cohort=request.cohort,
            visit=request.visit,
        )
        try:
            return await federation.sum(step, SurvivalCountsResult), edges, coarsened
        except FedpsyError as exc:
            if not only_small_cells(exc) or (len(edges) <= 2 and len(grid) <= 1):
                raise
            coarsened += 1
            if len(edges) <= 2:
                grid = grid[: len(grid) // 2]
                edges = [BEFORE_AXIS, *grid]
                logger.info("a site refused its tail; cutting the grid at %d", grid[-1])
                continue
            edges = [int(e) for e in coarsen([float(e) for e in edges])]
            logger.info("a site refused few events; asking again with %d intervals", len(edges) - 1)


async def kaplan_meier(request: KaplanMeierRequest, federation: Federation) -> KaplanMeierResult:
    """Product-limit curves per level, read off at the grid (merged where events are few)."""
    points = [axis_point(g, request.resolution) for g in request.grid]
    grid = [p for p in points if p is not None]
    label = dict(zip(grid, request.grid, strict=True))
    total, edges, coarsened = await _counts(request, federation, grid)
    merged = coarsened > 0
    curves: dict[str, SurvivalCurve] = {}
    for g, name in enumerate(total.levels or [UNGROUPED]):
        at_risk = np.asarray(total.at_risk[g], dtype=np.float64)
        events = np.asarray(total.events[g], dtype=np.float64)
        survival, std_error = product_limit(at_risk, events)
        cumulative = np.cumsum(total.events[g])
        counts = np.diff(cumulative[edges[1:]], prepend=0)
        kept, per_interval = merge_intervals(edges, [int(c) for c in counts], request.min_events)
        merged = merged or kept != edges
        at = kept[1:]
        curves[name] = SurvivalCurve(
            time=[label[k] for k in at],
            survival=[float(survival[k]) for k in at],
            std_error=[_finite(float(std_error[k])) for k in at],
            at_risk=[int(total.at_risk[g][k]) for k in at],
            events=per_interval,
        )
    return KaplanMeierResult(
        time=request.time,
        event=request.event,
        group=request.group,
        groups=curves,
        n=sum(total.n),
        missing=total.missing,
        coarsened=coarsened,
        merged=merged,
    )


def logrank_statistic(at_risk: Array, events: Array) -> tuple[Array, Array]:
    """Observed minus expected events per level and their covariance, from per-level
    at-risk and event counts (levels × axis points)."""
    n_all = at_risk.sum(axis=0)
    d_all = events.sum(axis=0)
    use = (d_all > 0) & (n_all > 1)
    n, d, nt, dt = at_risk[:, use], events[:, use], n_all[use], d_all[use]
    share = n / nt
    expected = (share * dt).sum(axis=1)
    weight = dt * (nt - dt) / (nt - 1.0)
    cov = np.einsum("t,gt->g", weight, share)[:, None] * np.eye(len(n)) - np.einsum(
        "t,gt,ht->gh", weight, share, share
    )
    return d.sum(axis=1) - expected, cov


async def logrank(request: LogrankRequest, federation: Federation) -> LogrankResult:
    """The k-sample log-rank test over the levels of ``group`` that have rows."""
    horizon = await survival_horizon(
        federation, request.time, request.resolution, cohort=request.cohort, visit=request.visit
    )
    step = SurvivalCountsStep(
        time=request.time,
        event=request.event,
        group=request.group,
        levels=site_levels(request.group, request.levels, federation),
        resolution=request.resolution,
        horizon=horizon,
        cohort=request.cohort,
        visit=request.visit,
    )
    total = await federation.sum(step, SurvivalCountsResult)
    if any(total.beyond):
        raise FedpsyError(
            "the sites' rows changed between two rounds of one analysis; run it again",
            code=ErrorCode.INTERNAL,
        )
    levels = total.levels or []
    at_risk = np.asarray(total.at_risk, dtype=np.float64)
    events = np.asarray(total.events, dtype=np.float64)
    present = [g for g in range(len(levels)) if total.n[g] > 0]
    if len(present) < 2:
        raise FedpsyError(
            f"group {request.group!r} has rows in {len(present)} of its levels {levels}; "
            "the log-rank test compares two or more",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    diff, cov = logrank_statistic(at_risk[present], events[present])
    expected = events[present].sum(axis=1) - diff
    statistic: float | None = None
    p_value: float | None = None
    try:
        value = float(diff[1:] @ np.linalg.solve(cov[1:, 1:], diff[1:]))
        statistic, p_value = value, float(stats.chi2.sf(value, len(present) - 1))
    except np.linalg.LinAlgError:
        logger.info("log-rank covariance is singular (no events to compare)")
    expected_of = {g: float(expected[i]) for i, g in enumerate(present)}
    groups = {
        levels[g]: LogrankGroup(
            n=total.n[g], observed=int(events[g].sum()), expected=expected_of.get(g, 0.0)
        )
        for g in range(len(levels))
    }
    return LogrankResult(
        time=request.time,
        event=request.event,
        group=request.group,
        groups=groups,
        statistic=statistic,
        df=len(present) - 1,
        p_value=p_value,
        n=sum(total.n),
        missing=total.missing,
    )


__all__ = [
    "kaplan_meier",
    "logrank",
    "logrank_statistic",
    "merge_intervals",
    "product_limit",
    "survival_horizon",
]
