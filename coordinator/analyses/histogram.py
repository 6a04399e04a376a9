"""Histogram and approximate quantiles from secure-summed fixed-edge bin counts.

Bins are public (given by the request, on the grid of :mod:`schemas.grid`), so per-site
counts line up and sum. A node refuses
a result with a cell below its minimum; the coordinator then asks again with adjacent bins
merged pairwise, until every site answers (or one bin remains). Quantiles interpolate
linearly inside the bins of a fine histogram, so each is within one bin width of the
pooled sample quantile (numpy's default, Hyndman & Fan 1996 definition 7) without any
single value leaving a site.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from coordinator.analyses.moments import pooled_moments
from coordinator.federation.base import Federation
from coordinator.stats.bins import coarsen, merge_small, only_small_cells
from schemas.analyses.histogram import HistogramRequest, HistogramResult
from schemas.analyses.quantiles import QuantilesRequest, QuantilesResult
from schemas.cohort import Cohort
from schemas.errors import ErrorCode, FedpsyError
from schemas.grid import grid_edges
from schemas.steps import tabulate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Binned:
    edges: list[float]
    counts: list[int]
    below: int
    above: int
    missing: int
    coarsened: int


async def binned(
    federation: Federation, variable: str, edges: list[float], *, cohort: Cohort | None, visit: str
) -> Binned:
    """Pooled counts on ``edges``, coarsened until no site refuses a small cell."""
    coarsened = 0
    while True:
        step = tabulate.HistogramStep(variable=variable, edges=edges, cohort=cohort, visit=visit)
        try:
            total = await federation.sum(step, tabulate.HistogramResult)
        except FedpsyError as exc:
            if not only_small_cells(exc) or len(edges) <= 2:
                raise
            edges = coarsen(edges)
            coarsened += 1
            logger.info("a site refused small cells; asking again with %d bins", len(edges) - 1)
            continue
        return Binned(
            edges=list(edges),
            counts=total.counts,
            below=total.below,
            above=total.above,
            missing=total.missing,
            coarsened=coarsened,
        )


async def histogram(request: HistogramRequest, federation: Federation) -> HistogramResult:
    """Counts in the request's bins (coarsened / merged where cells would be too small)."""
    b = await binned(
        federation,
        request.variable,
        list(request.edges),
        cohort=request.cohort,
        visit=request.visit,
    )
    edges, counts = merge_small(b.edges, b.counts, request.min_count)
    return HistogramResult(
        variable=request.variable,
        edges=edges,
        counts=counts,
        below=b.below,
        above=b.above,
        n=sum(b.counts) + b.below + b.above,
        missing=b.missing,
        coarsened=b.coarsened,
        merged=edges != b.edges,
    )


class _OutsideRange(Exception):
    """An order statistic lies below (``side`` -1) or above (+1) the histogram's range."""

    def __init__(self, side: int) -> None:
        super().__init__(side)
        self.side = side


def _order_statistic(k: int, b: Binned) -> float:
    """Estimate the ``k``-th (0-based) smallest value: spread evenly within its bin."""
    if k < b.below:
        raise _OutsideRange(-1)
    before = b.below
    for j, c in enumerate(b.counts):
        if k < before + c:
            lo, hi = b.edges[j], b.edges[j + 1]
            return lo + (k - before + 0.5) / c * (hi - lo)
        before += c
    raise _OutsideRange(1)


def _interpolate(b: Binned, probabilities: list[float]) -> list[float]:
    """numpy's default ("linear") quantiles with each order statistic estimated in its bin."""
    n = sum(b.counts) + b.below + b.above
    values = []
    for p in probabilities:
        h = (n - 1) * p
        k = math.floor(h)
        lo = _order_statistic(k, b)
        hi = _order_statistic(min(k + 1, n - 1), b) if h > k else lo
        values.append(lo + (h - k) * (hi - lo))
    return values


WIDENINGS = 6  # each widening multiplies the range by 4 on the side that needs it


async def quantiles(request: QuantilesRequest, federation: Federation) -> QuantilesResult:
    """Quantiles interpolated in a fine histogram; ``error_bound`` is the widest bin.

    Without a given range the histogram spans the pooled mean ± 8 sd (two-round moments);
    when a requested quantile falls outside it, that side is widened (the bound grows with
    it) and the counts are asked again. With a given range that is an error instead.
    """
    lower, upper = request.lower, request.upper
    given = lower is not None and upper is not None
    if lower is None or upper is None:
        lower, upper = await _default_range(request, federation)
    for _ in range(WIDENINGS + 1):
        edges = grid_edges(lower, upper, request.bins)
        lower, upper = edges[0], edges[-1]
        b = await binned(
            federation, request.variable, edges, cohort=request.cohort, visit=request.visit
        )
        n = sum(b.counts) + b.below + b.above
        if n == 0:
            raise FedpsyError(
                f"no values of {request.variable!r} in the cohort", code=ErrorCode.REQUEST_INVALID
            )
        try:
            values = _interpolate(b, list(request.probabilities))
        except _OutsideRange as out:
            if given:
                raise FedpsyError(
                    "a requested quantile lies outside [lower, upper]; give a wider range",
                    code=ErrorCode.REQUEST_INVALID,
                ) from None
            width = upper - lower
            lower, upper = (
                (lower - 3 * width, upper) if out.side < 0 else (lower, upper + 3 * width)
            )
            continue
        return QuantilesResult(
            variable=request.variable,
            probabilities=list(request.probabilities),
            values=values,
            error_bound=float(np.max(np.diff(b.edges))),
            lower=lower,
            upper=upper,
            bins=len(b.edges) - 1,
            n=n,
            missing=b.missing,
        )
    raise FedpsyError(
        f"the values of {request.variable!r} spread too far for a histogram; give lower and upper",
        code=ErrorCode.REQUEST_INVALID,
    )


async def _default_range(request: QuantilesRequest, federation: Federation) -> tuple[float, float]:
    mo = await pooled_moments(
        federation,
        [request.variable],
        cohort=request.cohort,
        visit=request.visit,
        complete_cases=False,
    )
    n = int(mo.n[0, 0])
    if n == 0:
        raise FedpsyError(
            f"no values of {request.variable!r} in the cohort", code=ErrorCode.REQUEST_INVALID
        )
    mean = float(mo.mean[0, 0])
    sd = math.sqrt(float(mo.m2[0, 0]) / (n - 1)) if n > 1 else 0.0
    spread = 8.0 * sd if sd > 0 else max(abs(mean), 1.0) * 1e-6
    return mean - spread, mean + spread
