"""The Kaplan–Meier grid every site's rules allow: which requested times the curve keeps.

Each site refuses a ``survival_counts`` step whose grid intervals hold 1 … min − 1 of its
events or exits, or whose rows still at risk after the last time are that few
(``cell_too_small``). The coordinator first asks for the whole grid. When a site refuses,
it searches for the common grid, one requested time at a time from the last one back: it
sends a *probe* (the same step with ``probe``: each node judges exactly the cells the real
answer would have and releases nothing but its verdict) of that time followed by the times
kept so far, and keeps the time when every site lets the probe pass; otherwise the time is
left out (its interval merged into the next kept one, or, past the last kept time, cut
from the curve's end), listed with the refusing sites and their code. The kept grid is
then asked for for real: it passed every site's gate as a probe. So intervals are merged
only where some site's rule requires it, and jointly: the one common axis keeps each time
that every site allows given the later times kept, never a global halving.

Why from the end: a grid's cells are its intervals, the first one ``[0, g_1]`` and the
rows at risk after its last time. Working backwards fixes the end of the curve first (the
only cell no merge can cure, the thin tail of follow-up, is cut there), and any early
times no site allows fall into the first interval, which is always a valid one; searching
forwards instead can keep an early time that leaves the later ones no valid interval.

What the search reveals: per probe, which sites refused and with which code, never a
count, cell or interval. Each probe is a grid of the researcher's own times that the
researcher could have sent as a request of its own, so the search tells nothing a
sequence of requests could not, and it is bounded: at most ``len(grid) + 1`` rounds
(the grid has at most :data:`~schemas.analyses.kaplan_meier.MAX_GRID` times).

A site that refuses every one-interval probe (``[0, g]`` for each requested ``g``) when
no time could be kept supports no interval of the grid, merged or not: the search then
fails naming those sites (``cell_too_small``), so that ``"on_refusal": "drop_site"``
leaves them out and answers from the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from coordinator.analyses.tables import site_levels
from coordinator.federation.base import Federation
from coordinator.federation.failures import SiteFailure, SitesFailed
from coordinator.stats.bins import only_small_cells
from schemas.analyses.kaplan_meier import KaplanMeierRequest, MergedPoint
from schemas.analyses.survival import axis_bounds
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.survival import SurvivalCountsResult, SurvivalCountsStep

logger = logging.getLogger(__name__)

NO_INTERVAL = "no interval of the grid, merged or not, passes the site's rules"


@dataclass(frozen=True)
class KeptGrid:
    """The pooled counts on the kept grid, the requested times kept, those left out and
    the refused rounds."""

    total: SurvivalCountsResult
    times: list[float]
    merged: list[MergedPoint]
    refused_rounds: int


def bounds(times: list[float], resolution: float) -> tuple[list[int], list[int]]:
    """Per requested time, the axis point its survival and events are read at and the
    one its at-risk count is read at (:func:`~schemas.analyses.survival.axis_bounds`)."""
    pairs = [axis_bounds(t, resolution) for t in times]
    if any(p is None for p in pairs):
        raise FedpsyError("grid: times must be ≥ 0", code=ErrorCode.REQUEST_INVALID)
    return [p[0] for p in pairs if p], [p[1] for p in pairs if p]


def counts_step(
    request: KaplanMeierRequest, federation: Federation, times: list[float], *, probe: bool
) -> SurvivalCountsStep:
    """The ``survival_counts`` step of a curve read off at ``times``."""
    events_at, risk_at = bounds(times, request.resolution)
    return SurvivalCountsStep(
        time=request.time,
        event=request.event,
        group=request.group,
        levels=site_levels(request.group, request.levels, federation)
        if request.group is not None
        else None,
        resolution=request.resolution,
        horizon=max(events_at[-1], risk_at[-1]),
        intervals=events_at,
        risk_points=None if risk_at == events_at else risk_at,
        probe=probe,
        cohort=request.cohort,
        visit=request.visit,
    )


def _refusing(exc: FedpsyError, federation: Federation) -> dict[str, str]:
    """``{site: code}`` of a refusal that merging may cure; re-raises any other failure."""
    if not only_small_cells(exc):
        raise exc
    sites = exc.extra.get("sites")
    if isinstance(sites, dict):
        return {str(s): str(c) for s, c in sites.items()}
    return dict.fromkeys(federation.sites, str(exc.code))


async def _ask(
    request: KaplanMeierRequest, federation: Federation, times: list[float], *, probe: bool
) -> SurvivalCountsResult | dict[str, str]:
    """The pooled counts (or an empty probe answer), or ``{site: code}`` of the refusal."""
    step = counts_step(request, federation, times, probe=probe)
    try:
        return await federation.sum(step, SurvivalCountsResult)
    except FedpsyError as exc:
        return _refusing(exc, federation)


def _no_interval(refusals: list[dict[str, str]]) -> SitesFailed:
    """The failure when no time could be kept: the sites that refused every one-interval
    probe (else every site that refused one), each with its code."""
    every = set.intersection(*(set(r) for r in refusals))
    named = every or set().union(*(set(r) for r in refusals))
    codes = {s: c for r in refusals for s, c in r.items() if s in named}
    return SitesFailed({s: SiteFailure(codes[s], NO_INTERVAL) for s in sorted(named)})


async def kept_grid(request: KaplanMeierRequest, federation: Federation) -> KeptGrid:
    """Pooled counts on the finest common grid the sites allow (see the module)."""
    times = list(request.grid)
    first = await _ask(request, federation, times, probe=False)
    if isinstance(first, SurvivalCountsResult):
        return KeptGrid(first, times, [], 0)
    kept: list[float] = []
    merged: list[MergedPoint] = []
    refusals: list[dict[str, str]] = []
    rounds = 1
    for t in reversed(times):
        candidate = [t, *kept]
        if candidate == times:
            answer: SurvivalCountsResult | dict[str, str] = first
        else:
            answer = await _ask(request, federation, candidate, probe=True)
            rounds += not isinstance(answer, SurvivalCountsResult)
        if isinstance(answer, SurvivalCountsResult):
            kept = candidate
            continue
        if not kept:
            refusals.append(answer)
        codes = set(answer.values())
        code = codes.pop() if len(codes) == 1 else ErrorCode.CELL_TOO_SMALL
        merged.append(MergedPoint(time=t, code=code, sites=sorted(answer)))
        logger.info("grid time %g left out: sites %s refused", t, sorted(answer))
    if not kept:
        raise _no_interval(refusals)
    total = await _ask(request, federation, kept, probe=False)
    if not isinstance(total, SurvivalCountsResult):
        raise FedpsyError(
            "the sites' rows changed between two rounds of one analysis; run it again",
            code=ErrorCode.INTERNAL,
        )
    return KeptGrid(total, kept, sorted(merged, key=lambda m: m.time), rounds)


__all__ = ["NO_INTERVAL", "KeptGrid", "bounds", "counts_step", "kept_grid"]
