"""Handler of the moments step: per-group counts, centered sums and cross-products."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from node.data.source import FrameSource
from node.steps.base import READ, USED, Computed, Query, Use
from node.steps.disclosure import binary_cells, dominance_ratios, row_ids, uses
from node.steps.levels import MISSING, OTHER, codes_of, levels_of, numeric_values
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.base import Disclosure
from schemas.steps.moments import MomentsResult, MomentsStep

logger = logging.getLogger(__name__)


def moments(step: MomentsStep, source: FrameSource) -> Computed:
    """Counts, ``Σz``, ``Σz²``, ``Σz zᵀ``, ``Σz³`` and ``Σz⁴`` of ``z = (x − c)/s`` per
    group level (as the step asks)."""
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
    higher = [variables.index(v) for v in step.higher if v in variables]
    if len(higher) != len(step.higher):
        raise FedpsyError(
            "moments: every variable of 'higher' must be one of 'variables'",
            code=ErrorCode.REQUEST_INVALID,
        )
    center = _per_group(step.center, "center", 0.0, (groups, len(variables)))
    scale = _per_group(step.scale, "scale", 1.0, (groups, len(variables)))
    eligible = codes != OTHER
    present = ~np.isnan(x)
    if step.complete_cases:
        used = eligible & (codes != MISSING) & present.all(axis=1)
        missing = int(np.sum(eligible & ~used))
    else:
        used = eligible & (codes != MISSING)
        missing = int(np.sum(eligible & (codes == MISSING)))
    n, sums, squares, cross, cubes, fourths = [], [], [], [], [], []
    for g in range(groups):
        rows = used & (codes == g)
        d = (x[rows] - center[g]) / scale[g]
        ok = present[rows]
        if step.complete_cases:
            n.append([int(rows.sum())] * len(variables))
        else:
            n.append([int(k) for k in ok.sum(axis=0)])
        d0 = np.where(ok, d, 0.0)
        d2 = d0 * d0
        sums.append([float(s) for s in d0.sum(axis=0)])
        squares.append([float(s) for s in d2.sum(axis=0)] if step.products else [])
        if step.products and step.complete_cases:
            cross.append([[float(v) for v in row] for row in d0.T @ d0])
        if higher:
            cubes.append([float(s) for s in (d2 * d0)[:, higher].sum(axis=0)])
            fourths.append([float(s) for s in (d2 * d2)[:, higher].sum(axis=0)])
    result = MomentsResult(
        levels=levels,
        total=len(frame),
        missing=missing,
        n=n,
        sums=sums,
        squares=squares,
        cross=cross,
        cubes=cubes,
        fourths=fourths,
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
            if j in higher:  # sums of cubes and fourth powers leave too
                ratios.extend(dominance_ratios(values, 3) + dominance_ratios(values, 4))
    disclosure = Disclosure(
        rows=rows_used, cells=cells + tuple(facts), dropped=(other,), dominance=tuple(ratios)
    )
    return Computed(result, disclosure, used=tuple(sets), queries=tuple(queries))


def _per_group(
    given: list[list[float]] | None, name: str, default: float, shape: tuple[int, int]
) -> npt.NDArray[np.float64]:
    """``center`` or ``scale`` as a (groups, variables) array (``default`` when not given)."""
    if given is None:
        return np.full(shape, default)
    out = np.asarray(given, dtype=np.float64)
    if out.shape != shape:
        raise FedpsyError(
            f"moments: {name} has shape {out.shape}, expected {shape}",
            code=ErrorCode.REQUEST_INVALID,
        )
    return out
