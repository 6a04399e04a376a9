"""Handlers of the design steps: column moments, centered cross-products, LMM stats.

See :mod:`schemas.steps.design` for the two-round scheme. Every handler builds the design
with :func:`node.data.formula.build_design` (complete cases, the same columns at every site) and
discloses its row count and the number of design columns, so the privacy gate can apply
the minimum rows for a model and the maximum parameters per row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from node.data.formula import Design, Matrix, build_design
from node.data.source import FrameSource, Versioned, WrappedSource
from node.steps.base import READ, USED, Computed, Query, Use
from node.steps.design_cache import JobScope, current_job
from node.steps.disclosure import (
    binary_cells,
    dominance_ratios,
    max_leverage,
    outcome_cells,
    support,
    two_valued_masks,
    uses,
)
from schemas.cohort import Cohort
from schemas.formula import variables_in_formula
from schemas.steps.base import Disclosure, StepResult
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


def domain_of(
    source: FrameSource, variables: list[str], categories: Mapping[str, Sequence[str]] | None
) -> pd.DataFrame | None:
    """The probe frame of ``variables`` (:mod:`node.data.domain`), with the levels the step
    gives (the coordinator's levels of ``site`` or of an open categorical) cycled through."""
    frame = source.domain(variables)
    if frame is None:
        return None
    for name, levels in (categories or {}).items():
        if name in frame.columns and levels:
            cycled = [str(levels[i % len(levels)]) for i in range(len(frame))]
            frame[name] = pd.Categorical(cycled, categories=[str(v) for v in levels])
    return frame


def probe(
    source: FrameSource,
    formula: str,
    variables: list[str],
    categories: Mapping[str, Sequence[str]] | None,
) -> None:
    """Refuse a formula whose terms are not finite on its variables' declared ranges, before
    any row is read (:mod:`node.data.domain`)."""
    frame = domain_of(source, variables, categories)
    if frame is not None:
        build_design(formula, frame, categories=categories, strict=True)


def design_of(step: DesignStep, source: FrameSource) -> Design:
    """The complete-case design ``step`` asks for, on ``source``'s rows."""
    variables = variables_in_formula(step.formula)  # the step checked its outcome
    probe(source, step.formula, variables, step.categories)
    frame = source.frame(variables, step.visit, step.cohort)
    return build_design(step.formula, frame, columns=step.columns, categories=step.categories)


@dataclass(frozen=True)
class Prepared:
    """A design and what its statistics reveal whatever the step's parameters (``β``, a
    basis): its :func:`disclosure`, :func:`usage` and :func:`queries_of`."""

    design: Design
    disclosure: Disclosure
    used: tuple[Use, ...]
    queries: tuple[Query, ...]

    @classmethod
    def of(cls, design: Design) -> Prepared:
        """``design`` with its facts, every array read-only (a kept design is shared by
        the rounds of its job)."""
        prepared = cls(design, disclosure(design), usage(design), queries_of(design))
        for array in prepared.arrays():
            array.flags.writeable = False
        return prepared

    def arrays(self) -> list[np.ndarray]:
        d = self.design
        held = [d.x, d.y, d.rows, d.read, *(rows for _, rows in self.used)]
        held += [a for q in self.queries for a in (q.rows, q.weights)]
        return list({id(a): a for a in held}.values())

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays())


def readable(source: object, variables: list[str], cohort: Cohort | None) -> None:
    """Every wrapper's read rule for these variables under this cohort (what reading a
    frame checks), so that a round reusing its job's design is held to them too."""
    while hasattr(source, "inner"):
        if isinstance(source, WrappedSource):
            source.check(variables, cohort)
        source = source.inner


def prepared(step: DesignStep, source: FrameSource) -> Prepared:
    """The design of ``step`` with its facts: built on the first round of a job, the
    job's own kept one on its later rounds (:mod:`node.steps.design_cache`)."""
    job = current_job()
    if job is None or not isinstance(source, Versioned):
        return Prepared.of(design_of(step, source))
    cache, scope = job
    readable(source, variables_in_formula(step.formula), step.cohort)
    cohort = None if step.cohort is None else step.cohort.model_dump(mode="json")

    def key(columns: Sequence[str] | None) -> tuple[JobScope, str]:
        asked = {
            "formula": step.formula,
            "categories": step.categories,
            "columns": None if columns is None else list(columns),
            "visit": step.visit,
            "cohort": cohort,
        }
        return scope, json.dumps(asked, sort_keys=True)

    # kept under the columns it has: a first round asking for every column (None) gives
    # the later rounds naming those same columns their design
    kept: Prepared = cache.get_or_build(
        key(step.columns),
        lambda: source.version(step.visit),
        lambda: Prepared.of(design_of(step, source)),
        kept_as=lambda built: key(built.design.columns),
    )
    return kept


def disclosure(design: Design) -> Disclosure:
    """What a model's statistics on ``design`` reveal (:mod:`node.steps.disclosure`): rows used,
    parameters, the counts that two-valued columns carry (a level, an interaction of
    levels, a binary variable, and its complement, are counts of persons), the outcome
    cells of a two-valued outcome, each column's support, the largest leverage and the
    dominance of every column's and the outcome's sum of squares."""
    x, y = design.x, design.y
    sums = np.column_stack([x, y]) if y.size else x
    return Disclosure(
        rows=design.n,
        cells=binary_cells(x) + outcome_cells(x, y),
        parameters=len(design.columns),
        support=support(x),
        leverage=max_leverage(x),
        dominance=dominance_ratios(sums),
    )


def usage(design: Design, extra: tuple[str, ...] = ()) -> tuple[Use, ...]:
    """What a model's statistics on ``design`` sum over, for the differencing guard: the
    rows read and used (counted: ``n`` and ``missing`` leave), and for each of its
    variables (and ``extra`` ones) its rows and the rows of each two-valued column (``Xᵀy`` and
    ``XᵀX`` hold sums over them)."""
    masks = two_valued_masks(design.x)
    counted = [(READ, design.read), (USED, design.rows)]
    return (*counted, *uses((*design.variables, *extra), design.rows, masks))


def queries_of(design: Design, extra: tuple[str, ...] = ()) -> tuple[Query, ...]:
    """The sums a model releases: its outcome weighted by the design's columns (``Xᵀy``),
    and each other variable (and ``extra`` ones) by the columns and the outcome (``XᵀX``,
    ``Xᵀy``), over its rows."""
    outcome = design.variables[:1]
    with_y = np.column_stack([design.x, design.y]) if design.y.size else design.x
    queries = [Query(v, design.rows, design.x) for v in outcome]
    others = dict.fromkeys(v for v in (*design.variables, *extra) if v not in outcome)
    return tuple(queries + [Query(v, design.rows, with_y) for v in others])


def computed(result: StepResult, prepared: Prepared) -> Computed:
    """``result`` with the disclosure, usage and queries of a prepared design."""
    return Computed(result, prepared.disclosure, used=prepared.used, queries=prepared.queries)


def basis(step: BasisStep, design: Design) -> Matrix:
    """``(x − m) / s`` for the step's centers and scales."""
    center = np.asarray(step.center, dtype=np.float64)
    scale = np.asarray(step.scale, dtype=np.float64)
    return (design.x - center) / scale


def column_moments(step: ColumnMomentsStep, source: FrameSource) -> Computed:
    """``n``, ``Σx``, ``Σx²`` per design column and for the outcome."""
    ready = prepared(step, source)
    design = ready.design
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
    return computed(result, ready)


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
    ready = prepared(step, source)
    return computed(CrossprodResult.model_validate(_crossprod(step, ready.design)), ready)


def lmm_stats(step: LmmStatsStep, source: FrameSource) -> Computed:
    """The ``crossprod`` sums of this site alone (for a site random intercept)."""
    ready = prepared(step, source)
    return computed(LmmStatsResult.model_validate(_crossprod(step, ready.design)), ready)


__all__ = [
    "Prepared",
    "basis",
    "column_moments",
    "computed",
    "crossprod",
    "design_of",
    "disclosure",
    "lmm_stats",
    "prepared",
    "queries_of",
    "usage",
]
