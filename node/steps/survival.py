"""Handlers of the survival steps: the extent of follow-up and per-time counts.

See :mod:`schemas.steps.survival`. A row's time becomes its axis point
``k = ⌈t / resolution⌉`` (:func:`axis_index`); only counts per axis point leave, never a
row's time. The privacy gate sees each level's rows and rows beyond the horizon, and, for a
Kaplan–Meier request, each level's events in each grid interval, its exits (events and
censored rows) between reported points and the difference of the two (the censored rows
the reported numbers give away), so no published interval holds fewer events, exits or
censored rows than the site's minimum cell size; otherwise each level's events. Exits are
counted between the points where the curve's ``at_risk`` is read (``risk_points``). A
``probe`` is judged on the same cells and releases an empty result: only whether the
gate let it pass, or the refusal's code, leaves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from node.data.source import FrameSource
from node.data.watch import note_rows
from node.steps.base import READ, USED, Computed, Use
from node.steps.disclosure import row_ids, uses
from node.steps.levels import MISSING, OTHER, codes_of, levels_of, numeric_values
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.base import Disclosure
from schemas.steps.survival import (
    AXIS_TOLERANCE,
    EXTENT_BITS,
    SurvivalCountsResult,
    SurvivalCountsStep,
    SurvivalExtentResult,
    SurvivalExtentStep,
)

logger = logging.getLogger(__name__)

Index = npt.NDArray[np.int64]
Array = npt.NDArray[np.float64]


def axis_index(times: Array, resolution: float, variable: str) -> Index:
    """Each time's axis point ``⌈t / resolution⌉`` (a time within rounding of a multiple of
    the resolution is that multiple); negative or huge times are refused."""
    q = np.asarray(times, dtype=np.float64) / resolution
    if np.any(q < 0):
        raise FedpsyError(
            f"time variable {variable!r} has negative values at this site; survival times "
            "count from 0 (the index date)",
            code=ErrorCode.REQUEST_INVALID,
        )
    if np.any(q >= 2.0**EXTENT_BITS):
        raise FedpsyError(
            f"time variable {variable!r} spans too many steps of the resolution "
            f"({resolution:g}); give a coarser resolution",
            code=ErrorCode.REQUEST_INVALID,
        )
    k = np.rint(q)
    near = np.abs(q - k) <= AXIS_TOLERANCE * np.maximum(1.0, q)
    return np.where(near, k, np.ceil(q)).astype(np.int64)


def event_flags(values: Array, variable: str) -> npt.NDArray[np.bool_]:
    """Event indicators from present values of a 0/1 variable (anything else is refused)."""
    if not np.all((values == 0.0) | (values == 1.0)):
        raise FedpsyError(
            f"event variable {variable!r} must be binary (1 = event, 0 = censored)",
            code=ErrorCode.REQUEST_INVALID,
        )
    return np.asarray(values == 1.0)


@dataclass(frozen=True)
class SurvivalRows:
    """The rows a survival step uses: axis point, event flag and group code per row."""

    index: Index
    event: npt.NDArray[np.bool_]
    codes: Index
    levels: list[str] | None
    total: int
    missing: int
    used: tuple[Use, ...]  # the rows read and used, and the time and event summed per level

    @property
    def groups(self) -> int:
        return 1 if self.levels is None else len(self.levels)


def survival_rows(step: SurvivalCountsStep, source: FrameSource) -> SurvivalRows:
    """Rows with time, event (and group) present; rows of other levels are left out."""
    wanted = list(dict.fromkeys([step.time, step.event, *([step.group] if step.group else [])]))
    frame = source.frame(wanted, step.visit, step.cohort)
    values = numeric_values(frame, [step.time, step.event])
    levels: list[str] | None = None
    codes = np.zeros(len(frame), dtype=np.int64)
    if step.group is not None:
        levels = levels_of(frame[step.group], step.group, step.levels)
        codes = codes_of(frame[step.group], levels)
    eligible = codes != OTHER
    used = eligible & (codes != MISSING) & ~np.isnan(values).any(axis=1)
    note_rows(int(used.sum()))
    ids = row_ids(frame.index)
    per_level = [codes[used] == g for g in range(len(levels))] if levels is not None else []
    summed = uses([step.time, step.event], ids[used], per_level)
    return SurvivalRows(
        index=axis_index(values[used, 0], step.resolution, step.time),
        event=event_flags(values[used, 1], step.event),
        codes=codes[used],
        levels=levels,
        total=len(frame),
        missing=int(np.sum(eligible & ~used)),
        used=((READ, ids), (USED, ids[used]), *summed),
    )


def survival_extent(step: SurvivalExtentStep, source: FrameSource) -> Computed:
    """Per power of two ``2^j``: 1 when some row's axis point is ``≥ 2^j``."""
    frame = source.frame([step.time], step.visit, step.cohort)
    times = numeric_values(frame, [step.time])[:, 0]
    found = ~np.isnan(times)
    present = times[found]
    note_rows(len(present))
    top = int(axis_index(present, step.resolution, step.time).max()) if len(present) else -1
    reaches = [1 if top >= 2**j else 0 for j in range(EXTENT_BITS)]
    rows = row_ids(frame.index)[found]
    used = ((USED, rows), (step.time, rows))
    return Computed(SurvivalExtentResult(reaches=reaches), Disclosure(rows=len(present)), used)


def _interval_events(events: Index, intervals: list[int]) -> list[int]:
    """Events in ``[0, g_1], (g_1, g_2], …`` from events per axis point."""
    cumulative = np.cumsum(events)[np.asarray(intervals, dtype=np.int64)]
    return [int(v) for v in np.diff(cumulative, prepend=0)]


def _interval_exits(index: Index, intervals: list[int]) -> list[int]:
    """Rows leaving the risk set between reported points: with ``at_risk(g)`` the rows
    whose point is ``≥ g``, the differences of the reported ``at_risk`` are the rows in
    ``[0, g_1), [g_1, g_2), …, [g_m, ∞)`` (events and censored alike; ``g`` here are the
    points where ``at_risk`` is read)."""
    bucket = np.searchsorted(np.asarray(intervals, dtype=np.int64), index, side="right")
    return [int(v) for v in np.bincount(bucket, minlength=len(intervals) + 1)]


def survival_counts(step: SurvivalCountsStep, source: FrameSource) -> Computed:
    """Per level and axis point: rows at risk and events (rows past the horizon stay at
    risk throughout; their events are not counted)."""
    rows = survival_rows(step, source)
    h = step.horizon
    at_risk: list[list[int]] = []
    events: list[list[int]] = []
    n: list[int] = []
    beyond: list[int] = []
    cells: list[int] = []
    for g in range(rows.groups):
        mine = rows.codes == g
        index = rows.index[mine]
        inside = index <= h
        exits = np.bincount(np.minimum(index, h), minlength=h + 1)
        risk = np.cumsum(exits[::-1])[::-1]
        counted = np.bincount(index[inside & rows.event[mine]], minlength=h + 1)
        at_risk.append([int(v) for v in risk])
        events.append([int(v) for v in counted])
        n.append(int(mine.sum()))
        beyond.append(int(np.sum(~inside)))
        cells.extend((n[-1], beyond[-1]))
        risk_points = step.at_risk_points
        if step.intervals is not None and risk_points is not None:
            interval_events = _interval_events(counted, step.intervals)
            leaving = _interval_exits(index, risk_points)
            cells.extend(interval_events)
            cells.extend(leaving)
            # exits less events of an interval: what the reported at-risk and events give
            # away as the censored rows there
            cells.extend(abs(x - e) for x, e in zip(leaving, interval_events, strict=False))
        else:
            cells.append(int(counted.sum()))
    result = SurvivalCountsResult(
        levels=rows.levels,
        total=rows.total,
        missing=rows.missing,
        n=n,
        at_risk=at_risk,
        events=events,
        beyond=beyond,
    )
    if step.probe:  # the gate's verdict on these cells is all that leaves
        result = SurvivalCountsResult(
            levels=rows.levels, total=0, missing=0, n=[], at_risk=[], events=[], beyond=[]
        )
    logger.debug("survival counts: %d rows on %d axis points", sum(n), h + 1)
    revealed = Disclosure(rows=sum(n), cells=tuple(cells))
    return Computed(result, revealed, used=rows.used)


__all__ = [
    "SurvivalRows",
    "axis_index",
    "event_flags",
    "survival_counts",
    "survival_extent",
    "survival_rows",
]
