"""What a data-quality step needs beyond frames: the site's minimum cell size and the
persons failing each temporal check, read from the CDM tables.

:class:`CheckedSource` is implemented by the node's store source (and forwarded by the
derived-values wrapper); a source without CDM tables (an in-memory frame) cannot answer the
data-quality steps. :func:`temporal_flags` reads, per person (indexed by ``row_id``, never
the person id), whether their visit days disagree with the order of their visit labels,
whether an event is dated before the index date (day < 0), and whether a drug exposure ends
before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from node.data.source import FrameSource, innermost
from node.store import tables as t
from schemas.cohort import Cohort
from schemas.dictionary import Dictionary
from schemas.dictionary.model import Variable
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.quality import TEMPORAL_RULES, nominal, visit_order


@dataclass(frozen=True)
class Suppression:
    """The site's thresholds a data-quality step suppresses by, from its policy: counts in
    ``1 .. min_cell − 1`` and sums failing the p%-rule (``dominance_percent``).

    Under a cohort that selects rows (:meth:`within`) a zero is suppressed as well: a zero
    holds for every subset, so a cohort of persons an earlier answer showed to have none,
    plus one person, would otherwise tell that person's count by zero against suppressed.
    Without such a cohort a zero describes the whole site and is released."""

    min_cell: int
    dominance_percent: float
    zeros: bool = False

    def small(self, count: int) -> bool:
        return count < self.min_cell and (count > 0 or self.zeros)

    def within(self, cohort: Cohort | None) -> Suppression:
        """These thresholds for a step under ``cohort`` (``site`` is constant at a node)."""
        narrows = cohort is not None and bool(cohort.variables() - {"site"})
        return replace(self, zeros=narrows)

    def dominated(self, ratios: tuple[float, ...]) -> bool:
        limit = self.dominance_percent / 100.0
        return limit > 0 and any(r < limit for r in ratios)


@runtime_checkable
class CheckedSource(Protocol):
    """A frame source that knows its site's thresholds, dictionary and CDM tables."""

    @property
    def suppression(self) -> Suppression: ...

    def definition(self, code: str) -> Variable:
        """The dictionary definition of ``code``."""
        ...

    def temporal_flags(self) -> pd.DataFrame:
        """Per person (index ``row_id``): one boolean column per temporal rule."""
        ...

    def visit_counts(self) -> dict[str, int]:
        """Persons per visit label."""
        ...


def checked_source(source: FrameSource) -> CheckedSource:
    """The store source inside ``source`` (under any wrappers) as a
    :class:`CheckedSource`; ``request_invalid`` for a source without CDM tables."""
    inner = innermost(source)
    if not isinstance(inner, CheckedSource):
        raise FedpsyError(
            "this node holds no CDM tables to check; data quality is answered by a node "
            "serving its store",
            code=ErrorCode.REQUEST_INVALID,
        )
    return inner


def _frame(engine: Engine, query: Any, columns: list[str]) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(query)]
    return pd.DataFrame.from_records(rows, columns=columns)


def _out_of_order(visits: pd.DataFrame) -> set[str]:
    """Persons whose visit days do not strictly increase in the order of their labels
    (labels naming a nominal time only; visits without a day are skipped)."""
    timed = visits[visits["label"].map(nominal) & visits["day"].notna()].copy()
    if timed.empty:
        return set()
    timed["order"] = timed["label"].map(visit_order)
    timed = timed.sort_values(["person_id", "order"])
    step = timed.groupby("person_id")["day"].diff()
    return set(timed.loc[step.notna() & (step <= 0), "person_id"])


def temporal_flags(engine: Engine) -> pd.DataFrame:
    """The temporal checks of every person of the store, by ``row_id``."""
    p, v, e, d = t.person.c, t.visit.c, t.event.c, t.drug_exposure.c
    persons = _frame(engine, select(p.person_id, p.row_id), ["person_id", "row_id"])
    visits = _frame(engine, select(v.person_id, v.label, v.day), ["person_id", "label", "day"])
    early = _frame(engine, select(e.person_id).where(e.day < 0).distinct(), ["person_id"])
    reversed_ = _frame(
        engine,
        select(d.person_id).where(d.end_day.is_not(None), d.end_day < d.start_day).distinct(),
        ["person_id"],
    )
    found = {
        "visit_order": _out_of_order(visits),
        "event_before_index": set(early["person_id"]),
        "exposure_end_before_start": set(reversed_["person_id"]),
    }
    ids = persons["person_id"]
    out = pd.DataFrame(
        {rule: ids.isin(found[rule]).to_numpy() for rule in TEMPORAL_RULES},
        index=pd.Index(persons["row_id"].to_numpy(dtype=np.int64), name="row_id"),
    )
    return out


def visit_counts(engine: Engine) -> dict[str, int]:
    """Persons per visit label in the store."""
    v = t.visit.c
    visits = _frame(engine, select(v.label, v.person_id), ["label", "person_id"])
    return {str(k): int(n) for k, n in visits.groupby("label")["person_id"].nunique().items()}


class StoreChecks:
    """The :class:`CheckedSource` side of a frame source over a node's store: its
    thresholds, its dictionary, and the checks read from its CDM tables."""

    _engine: Engine
    _dictionary: Dictionary
    _min_label_count: int
    _dominance_percent: float

    @property
    def suppression(self) -> Suppression:
        return Suppression(self._min_label_count, self._dominance_percent)

    def definition(self, code: str) -> Variable:
        return self._dictionary.get(code)

    def temporal_flags(self) -> pd.DataFrame:
        return temporal_flags(self._engine)

    def visit_counts(self) -> dict[str, int]:
        return visit_counts(self._engine)


__all__ = [
    "CheckedSource",
    "StoreChecks",
    "Suppression",
    "checked_source",
    "temporal_flags",
    "visit_counts",
]
