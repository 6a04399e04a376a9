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
  keep only the grid times every site allows (:mod:`coordinator.analyses.km_grid`), each
  time left out listed with its rule's code; intervals of the pooled curve with
  ``0 < events < min_events`` are merged with a neighbour.
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

from coordinator.analyses.km_grid import bounds, kept_grid
from coordinator.analyses.tables import site_levels
from coordinator.federation.base import Federation
from coordinator.stats.bins import merge_small
from schemas.analyses.kaplan_meier import (
    UNGROUPED,
    KaplanMeierRequest,
    KaplanMeierResult,
    MergedPoint,
    SurvivalCurve,
)
from schemas.analyses.logrank import LogrankGroup, LogrankRequest, LogrankResult
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


async def kaplan_meier(request: KaplanMeierRequest, federation: Federation) -> KaplanMeierResult:
    """Product-limit curves per level, read off at the grid times every site allows
    (:mod:`coordinator.analyses.km_grid`), merged where pooled events are few."""
    grid = await kept_grid(request, federation)
    total = grid.total
    events_at, risk_at = bounds(grid.times, request.resolution)
    merged_points = list(grid.merged)
    curves: dict[str, SurvivalCurve] = {}
    for g, name in enumerate(total.levels or [UNGROUPED]):
        at_risk = np.asarray(total.at_risk[g], dtype=np.float64)
        events = np.asarray(total.events[g], dtype=np.float64)
        survival, std_error = product_limit(at_risk, events)
        cumulative = np.cumsum(total.events[g])
        counts = np.diff(cumulative[events_at], prepend=0)
        # merged by position in the kept grid (two times may share an axis point)
        positions = [BEFORE_AXIS, *range(len(grid.times))]
        interval_counts = [int(c) for c in counts]
        kept, per_interval = merge_intervals(positions, interval_counts, request.min_events)
        at = kept[1:]
        merged_points.extend(
            MergedPoint(time=grid.times[j], code=ErrorCode.CELL_TOO_SMALL, group=name)
            for j in range(len(grid.times))
            if j not in at
        )
        curves[name] = SurvivalCurve(
            time=[grid.times[j] for j in at],
            survival=[float(survival[events_at[j]]) for j in at],
            std_error=[_finite(float(std_error[events_at[j]])) for j in at],
            at_risk=[int(total.at_risk[g][risk_at[j]]) for j in at],
            events=per_interval,
        )
    merged_points.sort(key=lambda m: m.time)
    return KaplanMeierResult(
        time=request.time,
        event=request.event,
        group=request.group,
        groups=curves,
        n=sum(total.n),
        missing=total.missing,
        coarsened=grid.refused_rounds,
        merged=bool(merged_points),
        merged_points=merged_points,
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
