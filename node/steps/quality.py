"""Handlers of the data-quality steps: ``quality`` (one visit) and ``temporal``.

Every number is released only as the gate would let it leave, and otherwise suppressed
(``None``, named in ``suppressed``) instead of refusing the report: a count in ``1 ..
min_cell − 1`` (and its complement: persons with a value but a plausible one, persons
without a temporal problem), a level table with such a cell (all of its counts, since the
others and ``n`` would give it away), a mean and sum of squares over a two-valued column
with such a cell or failing the p%-rule. What is released is stated in the
:class:`~schemas.steps.base.Disclosure` the gate checks, and the rows each variable's
numbers come from go to the differencing guard, as a ``summary`` at the same visit would.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from node.data.checks import CheckedSource, Suppression, checked_source
from node.data.source import FrameSource
from node.steps.base import READ, Computed, Query, Use
from node.steps.disclosure import binary_cells, dominance_ratios, row_ids
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.base import Disclosure
from schemas.steps.quality import (
    TEMPORAL_RULES,
    QualityResult,
    QualityStep,
    TemporalResult,
    TemporalStep,
    VariableQuality,
    visit_order,
)

logger = logging.getLogger(__name__)


class _Released:
    """What a step lets leave, gathered for its disclosure."""

    def __init__(self) -> None:
        self.cells: list[int] = []
        self.ratios: list[float] = []
        self.used: list[Use] = []
        self.queries: list[Query] = []


def _frame(step: QualityStep | TemporalStep, source: FrameSource, codes: list[str]) -> pd.DataFrame:
    """The cohort at the step's visit; a site without the visit has no rows there (the
    gate then gives the size refusal)."""
    try:
        return source.frame(codes, step.visit, step.cohort)
    except FedpsyError as exc:
        if exc.code != ErrorCode.NOT_FOUND:
            raise
        return pd.DataFrame(columns=codes, index=pd.Index([], dtype=np.int64, name="row_id"))


def _variable(
    code: str,
    column: pd.Series,
    checked: CheckedSource,
    rule: Suppression,
    index: np.ndarray,
    out: _Released,
) -> VariableQuality:
    present = column.notna().to_numpy()
    n = int(present.sum())
    if rule.small(n):
        return VariableQuality(n=None, suppressed=["n"])
    out.cells.append(n)
    rows = index[present]
    out.used.append((code, rows))
    variable = checked.definition(code)
    if isinstance(column.dtype, pd.CategoricalDtype) or variable.type == "binary":
        if isinstance(column.dtype, pd.CategoricalDtype):
            held = column[present].value_counts()
            counts = {str(c): int(held.get(c, 0)) for c in column.cat.categories}
        else:
            bits = column.to_numpy(dtype=np.float64)[present]
            counts = {"0": int((bits == 0).sum()), "1": int((bits == 1).sum())}
        if any(rule.small(c) for c in counts.values()):
            return VariableQuality(n=n, suppressed=["levels"])
        out.cells.extend(counts.values())
        return VariableQuality(n=n, levels=counts)
    x = column.to_numpy(dtype=np.float64)[present]
    result = VariableQuality(n=n)
    if n:
        facts = binary_cells(x[:, None])
        ratios = dominance_ratios(x[:, None])
        if any(rule.small(c) for c in facts) or rule.dominated(ratios):
            result.suppressed.append("mean")
        else:
            mean = float(x.mean())
            result.mean, result.m2 = mean, float(np.sum((x - mean) ** 2))
            out.cells.extend(facts)
            out.ratios.extend(ratios)
            out.queries.append(Query(code, rows, np.ones((n, 1))))
    if variable.plausible_min is not None or variable.plausible_max is not None:
        k = int(sum(variable.implausible(float(v)) for v in x))
        if rule.small(k) or (k > 0 and rule.small(n - k)):
            result.suppressed.append("implausible")
        else:
            result.implausible = k
            out.cells.extend((k, n - k) if k else (k,))
    return result


def quality(step: QualityStep, source: FrameSource) -> Computed:
    """Per variable at the visit: persons with a value, moments or level counts, and
    values outside the soft plausibility bounds."""
    checked = checked_source(source)
    codes = list(dict.fromkeys(v for v in step.variables if v != "site"))
    frame = _frame(step, source, codes)
    index = row_ids(frame.index)
    out = _Released()
    rule = checked.suppression.within(step.cohort)
    variables = {code: _variable(code, frame[code], checked, rule, index, out) for code in codes}
    result = QualityResult(persons=len(frame), variables=variables)
    disclosure = Disclosure(rows=len(frame), cells=tuple(out.cells), dominance=tuple(out.ratios))
    used: tuple[Use, ...] = ((READ, index), *out.used) if len(frame) else ()
    return Computed(result, disclosure, used=used, queries=tuple(out.queries))


def temporal(step: TemporalStep, source: FrameSource) -> Computed:
    """Persons of the cohort failing each temporal check, and the site's visit labels."""
    checked = checked_source(source)
    rule = checked.suppression.within(step.cohort)
    frame = _frame(step, source, [])
    index = row_ids(frame.index)
    flags = checked.temporal_flags().reindex(frame.index, fill_value=False)
    counts: dict[str, int | None] = {}
    cells: list[int] = []
    for name in TEMPORAL_RULES:
        k = int(flags[name].sum())
        if rule.small(k) or (k > 0 and rule.small(len(frame) - k)):
            counts[name] = None
        else:
            counts[name] = k
            cells.extend((k, len(frame) - k) if k else (k,))
    held = checked.visit_counts()
    visits = sorted((v for v, n in held.items() if n >= rule.min_cell), key=visit_order)
    result = TemporalResult(persons=len(frame), counts=counts, visits=visits)
    used: tuple[Use, ...] = ((READ, index),) if len(frame) else ()
    return Computed(result, Disclosure(rows=len(frame), cells=tuple(cells)), used=used)


__all__ = ["quality", "temporal"]
