"""Histogram and approximate quantiles from secure-summed fixed-edge bin counts.

Bins are public (given by the request), so per-site counts line up and sum. A node refuses
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
from coordinator.federation import Federation
from schemas.analyses.histogram import HistogramRequest, HistogramResult
from schemas.analyses.quantiles import QuantilesRequest, QuantilesResult
from schemas.cohort import Cohort
from schemas.errors import FedpsyError
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


def coarsen(edges: list[float]) -> list[float]:
    """Merge adjacent bins pairwise (an odd last bin stays alone)."""
    kept = edges[::2]
    if kept[-1] != edges[-1]:
        kept.append(edges[-1])
    return kept


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
            if exc.code != "cell_too_small" or len(edges) <= 2:
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


def merge_small(
    edges: list[float], counts: list[int], minimum: int
) -> tuple[list[float], list[int]]:
    """Merge every bin holding 0 < count < ``minimum`` into its right (else left) neighbour."""
    out_edges, out_counts, acc = [edges[0]], [], 0
    for i, c in enumerate(counts):
        acc += c
        if acc == 0 or acc >= minimum:
            out_counts.append(acc)
            out_edges.append(edges[i + 1])
            acc = 0
    if acc:
        out_counts.append(acc)
        out_edges.append(edges[-1])
    while len(out_counts) > 1 and 0 < out_counts[-1] < minimum:
        out_counts[-2] += out_counts.pop()
        del out_edges[-2]
    return out_edges, out_counts


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


def _order_statistic(k: int, b: Binned) -> float:
    """Estimate the ``k``-th (0-based) smallest value: spread evenly within its bin."""
    inside = sum(b.counts)
    if k < b.below or k >= b.below + inside:
        raise FedpsyError(
            "a requested quantile lies outside [lower, upper]; give a wider lower and upper",
            code="request_invalid",
        )
    before = b.below
    for j, c in enumerate(b.counts):
        if k < before + c:
            lo, hi = b.edges[j], b.edges[j + 1]
            return lo + (k - before + 0.5) / c * (hi - lo)
        before += c
    raise AssertionError("unreachable")


async def quantiles(request: QuantilesRequest, federation: Federation) -> QuantilesResult:
    """Quantiles interpolated in a fine histogram; ``error_bound`` is the widest bin."""
    lower, upper = request.lower, request.upper
    if lower is None or upper is None:
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
                f"no values of {request.variable!r} in the cohort", code="request_invalid"
            )
        mean = float(mo.mean[0, 0])
        sd = math.sqrt(float(mo.m2[0, 0]) / (n - 1)) if n > 1 else 0.0
        spread = 8.0 * sd if sd > 0 else max(abs(mean), 1.0) * 1e-6
        lower, upper = mean - spread, mean + spread
    edges = [float(e) for e in np.linspace(lower, upper, request.bins + 1)]
    edges[0], edges[-1] = lower, upper
    b = await binned(
        federation, request.variable, edges, cohort=request.cohort, visit=request.visit
    )
    n = sum(b.counts) + b.below + b.above
    if n == 0:
        raise FedpsyError(
            f"no values of {request.variable!r} in the cohort", code="request_invalid"
        )
    values = []
    for p in request.probabilities:
        h = (n - 1) * p
        k = math.floor(h)
        lo = _order_statistic(k, b)
        hi = _order_statistic(min(k + 1, n - 1), b) if h > k else lo
        values.append(lo + (h - k) * (hi - lo))
    bound = float(np.max(np.diff(b.edges)))
    return QuantilesResult(
        variable=request.variable,
        probabilities=list(request.probabilities),
        values=values,
        error_bound=bound,
        lower=lower,
        upper=upper,
        bins=len(b.edges) - 1,
        n=n,
        missing=b.missing,
    )
