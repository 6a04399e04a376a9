"""Handlers of the counting steps: count, histogram, crosstab."""

from __future__ import annotations

import logging

import numpy as np

from node.data.source import FrameSource
from node.steps.base import READ, USED, Computed, Intervals
from node.steps.disclosure import row_ids
from node.steps.levels import MISSING, codes_of, levels_of, numeric_values
from schemas.steps.base import Disclosure
from schemas.steps.tabulate import (
    CountResult,
    CountStep,
    CrosstabResult,
    CrosstabStep,
    HistogramResult,
    HistogramStep,
)

logger = logging.getLogger(__name__)


def count(step: CountStep, source: FrameSource) -> Computed:
    """Rows in the cohort at the visit."""
    frame = source.frame([], step.visit, step.cohort)
    n = len(frame)
    return Computed(CountResult(n=n), Disclosure(rows=n), used=((READ, row_ids(frame.index)),))


def histogram(step: HistogramStep, source: FrameSource) -> Computed:
    """Counts of one variable in fixed bins (numpy's convention: last bin closed)."""
    frame = source.frame([step.variable], step.visit, step.cohort)
    x = numeric_values(frame, [step.variable])[:, 0]
    found = ~np.isnan(x)
    present = x[found]
    edges = np.asarray(step.edges, dtype=np.float64)
    below = int(np.sum(present < edges[0]))
    above = int(np.sum(present > edges[-1]))
    inside = present[(present >= edges[0]) & (present <= edges[-1])]
    index = np.searchsorted(edges, inside, side="right") - 1
    index[index == len(edges) - 1] = len(edges) - 2  # the top edge closes the last bin
    counts = np.bincount(index, minlength=len(edges) - 1)
    result = HistogramResult(
        counts=[int(c) for c in counts],
        below=below,
        above=above,
        missing=int(len(x) - len(present)),
    )
    cells = (*result.counts, below, above)
    index = row_ids(frame.index)
    used = ((READ, index), (USED, index[found]), (step.variable, index[found]))
    return Computed(
        result,
        Disclosure(rows=len(present), cells=cells),
        used=used,
        intervals=Intervals(step.variable, tuple(step.edges), present),
    )


def crosstab(step: CrosstabStep, source: FrameSource) -> Computed:
    """Contingency counts; rows missing either variable are counted in ``missing``.

    Rows whose value lies outside levels given in the request are left out (neither
    counted nor missing).
    """
    frame = source.frame([step.row, step.column], step.visit, step.cohort)
    rows = levels_of(frame[step.row], step.row, step.row_levels)
    columns = levels_of(frame[step.column], step.column, step.column_levels)
    r = codes_of(frame[step.row], rows)
    c = codes_of(frame[step.column], columns)
    missing = int(np.sum((r == -1) | (c == -1)))
    keep = (r >= 0) & (c >= 0)
    flat = np.bincount(r[keep] * len(columns) + c[keep], minlength=len(rows) * len(columns))
    table = flat.reshape(len(rows), len(columns))
    result = CrosstabResult(
        rows=rows, columns=columns, counts=[[int(v) for v in row] for row in table], missing=missing
    )
    index = row_ids(frame.index)
    counted = index[keep | (r == MISSING) | (c == MISSING)]  # counted, or counted as missing
    revealed = Disclosure(rows=int(keep.sum()), cells=tuple(int(v) for v in flat))
    return Computed(result, revealed, used=((USED, index[keep]), (READ, counted)))
