"""Handler of the moments step: per-group counts, centered sums and cross-products."""

from __future__ import annotations

import logging

import numpy as np

from node.data.source import FrameSource
from node.steps.base import READ, USED, Computed, Query, Use
from node.steps.disclosure import binary_cells, dominance_ratios, row_ids, uses
from node.steps.levels import MISSING, OTHER, codes_of, levels_of, numeric_values
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.base import Disclosure
from schemas.steps.moments import MomentsResult, MomentsStep

logger = logging.getLogger(__name__)


def moments(step: MomentsStep, source: FrameSource) -> Computed:
    """Counts, ``Σ(x − c)``, ``Σ(x − c)²`` and ``Σ(x − c)(y − c)ᵀ`` per group level."""
    variables = list(step.variables)
    wanted = variables + ([step.group] if step.group and step.group not in variables else [])
    frame = source.frame(wanted, step.visit, step.cohort)
    x = numeric_values(frame, variables)
    if step.group is None:
        levels: list[str] | None = None
        codes = np.zeros(len(frame), dtype=np.int64)
    else:
        levels = levels_of(frame[step.group], step.group, step.levels)
        codes = codes_of(frame[step.group], levels)
    groups = 1 if levels is None else len(levels)
    center = np.zeros((groups, len(variables)))
    if step.center is not None:
        center = np.asarray(step.center, dtype=np.float64)
        if center.shape != (groups, len(variables)):
            raise FedpsyError(
                f"moments: center has shape {center.shape}, expected ({groups}, {len(variables)})",
                code=ErrorCode.REQUEST_INVALID,
            )
    eligible = codes != OTHER
    present = ~np.isnan(x)
    if step.complete_cases:
        used = eligible & (codes != MISSING) & present.all(axis=1)
        missing = int(np.sum(eligible & ~used))
    else:
        used = eligible & (codes != MISSING)
        missing = int(np.sum(eligible & (codes == MISSING)))
    n, sums, squares, cross = [], [], [], []
    for g in range(groups):
        rows = used & (codes == g)
        d = x[rows] - center[g]
        ok = present[rows]
        if step.complete_cases:
            n.append([int(rows.sum())] * len(variables))
        else:
            n.append([int(k) for k in ok.sum(axis=0)])
        d0 = np.where(ok, d, 0.0)
        sums.append([float(s) for s in d0.sum(axis=0)])
        squares.append([float(s) for s in (d0 * d0).sum(axis=0)] if step.products else [])
        if step.products and step.complete_cases:
            cross.append([[float(v) for v in row] for row in d0.T @ d0])
    result = MomentsResult(
        levels=levels,
        total=len(frame),
        missing=missing,
        n=n,
        sums=sums,
        squares=squares,
        cross=cross,
    )
    index = row_ids(frame.index)
    # rows at a level not asked for: total − missing − n leaves, a count of a level
    other = int(np.sum(codes == OTHER))
    if step.complete_cases:
        rows_used = int(used.sum())
        cells: tuple[int, ...] = tuple(row[0] for row in n) if variables else ()
    else:
        rows_used = int(np.sum(used & present.any(axis=1)))
        cells = tuple(k for row in n for k in row)
    levels_of_rows = [codes == g for g in range(groups)] if levels is not None else []
    sets: list[Use] = [(READ, index), (USED, index[used])]
    queries = []
    for j, variable in enumerate(variables):
        rows_of = used & present[:, j] if not step.complete_cases else used
        sets.extend(uses([variable], index[rows_of], [m[rows_of] for m in levels_of_rows]))
        # sums per level: the levels' indicators are the weights
        per_level = np.column_stack([codes[rows_of] == g for g in range(groups)]).astype(float)
        queries.append(Query(variable, index[rows_of], per_level))
    facts: list[int] = []
    ratios: list[float] = []
    for g in range(groups):
        rows = used & (codes == g)
        for j in range(len(variables)):
            values = x[rows & present[:, j], j][:, None]
            facts.extend(binary_cells(values))
            ratios.extend(dominance_ratios(values))
    disclosure = Disclosure(
        rows=rows_used, cells=cells + tuple(facts), dropped=(other,), dominance=tuple(ratios)
    )
    return Computed(result, disclosure, used=tuple(sets), queries=tuple(queries))
