"""Handlers of the Cox steps: events per axis point, then Efron's sums at event points.

See :mod:`schemas.steps.cox`. The design comes from :func:`node.data.formula.build_design` with
the time variable as its outcome, so complete cases and categorical coding are the same as
for every other model. To keep each row's event next to its design row through the
complete-case filter, the outcome column handed to the design is ``2k + event`` (``k`` the
row's axis point, an integer, so the code is exact) and is decoded afterwards.

Disclosure: the design's (rows used and dropped, columns, leverage, dominance; the model
rules), the site's number of events, and as cells the events per axis point (round one)
and the rows per slot between consecutive event points (the sums over the rows at risk at
two consecutive points differ by the sums over the rows that left in between, so one row
leaving alone would give its covariates away). A site with too few rows per point refuses
``cell_too_small`` and the coordinator asks again on a coarser axis.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from node.data.formula import Design, build_design
from node.data.source import FrameSource
from node.steps.base import Computed
from node.steps.design import disclosure, probe, queries_of, usage
from node.steps.levels import numeric_values
from node.steps.survival import axis_index, event_flags
from schemas.errors import ErrorCode, FedpsyError
from schemas.formula import parse_formula
from schemas.steps.cox import (
    CoxEventsResult,
    CoxEventsStep,
    CoxStep,
    CoxSumsResult,
    CoxSumsStep,
)

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
Index = npt.NDArray[np.int64]
INTERCEPT = "Intercept"


@dataclass(frozen=True)
class CoxRows:
    """The complete-case design: ``x`` (without intercept), axis point and event per row."""

    x: Array
    columns: list[str]
    point: npt.NDArray[np.int64]
    event: npt.NDArray[np.bool_]
    missing: int
    design: Design

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def cox_rows(step: CoxStep, source: FrameSource, columns: list[str] | None) -> CoxRows:
    """The design of ``step.formula`` with each row's axis point and event flag."""
    predictors = parse_formula(step.formula, outcome=False).variables
    if step.time in predictors or step.event in predictors:
        raise FedpsyError(
            f"formula {step.formula!r}: the time and event variables cannot be covariates",
            code=ErrorCode.REQUEST_INVALID,
        )
    probe(source, f"{step.time} ~ {step.formula}", [step.time, *predictors], step.categories)
    frame = source.frame(
        list(dict.fromkeys([step.time, step.event, *predictors])), step.visit, step.cohort
    )
    values = numeric_values(frame, [step.time, step.event])
    present = ~np.isnan(values).any(axis=1)
    code = np.full(len(frame), np.nan)
    index = axis_index(values[present, 0], step.resolution, step.time)
    code[present] = 2.0 * index + event_flags(values[present, 1], step.event)
    frame[step.time] = code
    design = build_design(
        f"{step.time} ~ {step.formula}", frame, columns=columns, categories=step.categories
    )
    x, built = design.x, design.columns
    if columns is None:
        keep = [c != INTERCEPT for c in built]
        x, built = x[:, keep], [c for c in built if c != INTERCEPT]
    return CoxRows(
        x=x,
        columns=built,
        point=(design.y // 2).astype(np.int64),
        event=(design.y % 2) == 1.0,
        missing=design.missing,
        design=design,
    )


def _computed(
    step: CoxStep, result: CoxEventsResult | CoxSumsResult, rows: CoxRows, cells: Index
) -> Computed:
    """The design's disclosure (without its outcome, which codes time and event) with the
    step's cells: its events, and the counts per point or slot that ``cells`` holds."""
    design = rows.design
    # the partial likelihood is centered
    summed = replace(design, x=np.column_stack([np.ones(rows.n), rows.x]))
    revealed = disclosure(replace(summed, y=np.zeros(0)))
    extra = (int(rows.event.sum()), *(int(c) for c in cells))
    revealed = revealed.model_copy(
        update={"cells": revealed.cells + extra, "parameters": len(rows.columns)}
    )
    used, queries = usage(summed, extra=(step.event,)), queries_of(summed, extra=(step.event,))
    return Computed(result, revealed, used=used, queries=queries)


def cox_events(step: CoxEventsStep, source: FrameSource) -> Computed:
    """Events per axis point and ``Σx``, ``Σx²`` per design column (round one)."""
    rows = cox_rows(step, source, None)
    inside = rows.point <= step.horizon
    events = np.bincount(rows.point[rows.event & inside], minlength=step.horizon + 1)
    result = CoxEventsResult(
        columns=rows.columns,
        n=rows.n,
        missing=rows.missing,
        beyond=int(np.sum(~inside)),
        events=[int(v) for v in events],
        sums=[float(v) for v in rows.x.sum(axis=0)],
        squares=[float(v) for v in (rows.x * rows.x).sum(axis=0)],
    )
    return _computed(step, result, rows, events)


def cox_sums(step: CoxSumsStep, source: FrameSource) -> Computed:
    """``S0``, ``S1``, ``S2`` over the rows at risk and over the events, and ``d``, at each
    of ``step.points``; ``Σ z`` over those events; all at ``step.beta``."""
    rows = cox_rows(step, source, step.columns)
    z = (rows.x - np.asarray(step.center)) / np.asarray(step.scale)
    with np.errstate(over="ignore"):
        w = np.exp(z @ np.asarray(step.beta))
    if not np.all(np.isfinite(w)):
        raise FedpsyError(
            "the linear predictor overflows at these coefficients; the model does not "
            "converge (a covariate may separate the events)",
            code=ErrorCode.NOT_CONVERGED,
        )
    points = np.asarray(step.points, dtype=np.int64)
    m = len(points)
    # slot j holds the rows whose time lies in [points[j], points[j+1]); rows before the
    # first point are never at risk at a point, so they go to slot m (dropped)
    slot = np.searchsorted(points, rows.point, side="right") - 1
    slot[slot < 0] = m
    at_point = (slot < m) & (points[np.minimum(slot, m - 1)] == rows.point)
    ev = rows.event & at_point
    wz = w[:, None] * z
    wzz = wz[:, :, None] * z[:, None, :]

    def by_slot(values: Array, mask: npt.NDArray[np.bool_]) -> Array:
        out = np.zeros((m + 1, *values.shape[1:]))
        np.add.at(out, slot[mask], values[mask])
        return out[:m]

    everyone = np.ones(rows.n, dtype=bool)
    # rows per slot (and before the first point): the differences of the risk sums
    slots = np.bincount(slot, minlength=m + 1)
    result = CoxSumsResult(
        columns=rows.columns,
        n=rows.n,
        missing=rows.missing,
        events=[int(v) for v in np.bincount(slot[ev], minlength=m + 1)[:m]],
        event_sum=[float(v) for v in z[ev].sum(axis=0)],
        risk0=_from_end(by_slot(w, everyone)).tolist(),
        risk1=_from_end(by_slot(wz, everyone)).tolist(),
        risk2=_from_end(by_slot(wzz, everyone)).tolist(),
        event0=by_slot(w, ev).tolist(),
        event1=by_slot(wz, ev).tolist(),
        event2=by_slot(wzz, ev).tolist(),
    )
    logger.debug("cox sums: %d rows at %d points, %d columns", rows.n, m, len(rows.columns))
    return _computed(step, result, rows, slots)


def _from_end(values: Array) -> Array:
    """Per slot ``j``: the sum over slots ``≥ j`` (the rows at risk at ``points[j]``)."""
    return np.cumsum(values[::-1], axis=0)[::-1]


__all__ = ["CoxRows", "cox_events", "cox_rows", "cox_sums"]
