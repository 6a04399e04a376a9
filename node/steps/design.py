"""Handlers of the design steps: column moments, centered cross-products, LMM stats.

See :mod:`schemas.steps.design` for the two-round scheme. Every handler builds the design
with :func:`node.formula.build_design` (complete cases, the same columns at every site) and
discloses its row count and the number of design columns, so the privacy gate can apply
the minimum rows for a model and the maximum parameters per row.
"""

from __future__ import annotations

import logging

import numpy as np

from node.formula import Design, Matrix, build_design, formula_variables
from node.steps.base import Computed, FrameSource
from schemas.steps.base import Disclosure
from schemas.steps.design import (
    BasisStep,
    ColumnMomentsResult,
    ColumnMomentsStep,
    CrossprodResult,
    CrossprodStep,
    DesignStep,
    LmmStatsResult,
    LmmStatsStep,
)

logger = logging.getLogger(__name__)


def design_of(step: DesignStep, source: FrameSource) -> Design:
    """The complete-case design ``step`` asks for, on ``source``'s rows."""
    frame = source.frame(formula_variables(step.formula), step.visit, step.cohort)
    return build_design(step.formula, frame, columns=step.columns, categories=step.categories)


def disclosure(design: Design) -> Disclosure:
    """Rows used, parameters estimated, and the counts that indicator columns carry: the
    sum of a 0/1 design column (a level, an interaction of levels, a binary variable, and
    its complement) is a count of persons, so the gate checks it as a cell."""
    x = design.x
    indicator = np.all((x == 0) | (x == 1), axis=0) if x.size else np.zeros(0, dtype=bool)
    ones = x[:, indicator].sum(axis=0).astype(int)
    cells = tuple(int(c) for c in (*ones, *(design.n - ones)))
    return Disclosure(rows=design.n, parameters=len(design.columns), cells=cells)


def basis(step: BasisStep, design: Design) -> Matrix:
    """``(x − m) / s`` for the step's centers and scales."""
    center = np.asarray(step.center, dtype=np.float64)
    scale = np.asarray(step.scale, dtype=np.float64)
    return (design.x - center) / scale


def column_moments(step: ColumnMomentsStep, source: FrameSource) -> Computed:
    """``n``, ``Σx``, ``Σx²`` per design column and for the outcome."""
    design = design_of(step, source)
    x, y = design.x, design.y
    result = ColumnMomentsResult(
        columns=design.columns,
        n=design.n,
        missing=design.missing,
        sums=[float(v) for v in x.sum(axis=0)],
        squares=[float(v) for v in (x * x).sum(axis=0)],
        y_sum=float(y.sum()),
        y_squares=float(y @ y),
    )
    return Computed(result, disclosure(design))


def _crossprod(step: CrossprodStep | LmmStatsStep, design: Design) -> dict[str, object]:
    z = basis(step, design)
    yt = (design.y - step.y_center) / step.y_scale
    return {
        "columns": design.columns,
        "n": design.n,
        "missing": design.missing,
        "xtx": [[float(v) for v in row] for row in z.T @ z],
        "xty": [float(v) for v in z.T @ yt],
        "yty": float(yt @ yt),
        "x_sum": [float(v) for v in z.sum(axis=0)],
        "y_sum": float(yt.sum()),
    }


def crossprod(step: CrossprodStep, source: FrameSource) -> Computed:
    """``ZᵀZ``, ``Zᵀỹ``, ``ỹᵀỹ``, ``Zᵀ1``, ``1ᵀỹ`` in the step's centered basis."""
    design = design_of(step, source)
    return Computed(CrossprodResult.model_validate(_crossprod(step, design)), disclosure(design))


def lmm_stats(step: LmmStatsStep, source: FrameSource) -> Computed:
    """The ``crossprod`` sums of this site alone (for a site random intercept)."""
    design = design_of(step, source)
    return Computed(LmmStatsResult.model_validate(_crossprod(step, design)), disclosure(design))


__all__ = ["basis", "column_moments", "crossprod", "design_of", "disclosure", "lmm_stats"]
