"""Per-person values derived at the node, staged per run and kept only when committed.

ComBat-harmonized measures, principal component scores and cluster labels are computed
per person and never leave the node. A step handler builds :class:`DerivedValues` (rows
indexed by ``row_id``, one column per new variable, with the variables' dictionary
definitions) and calls :func:`stage` on its frame source. The coordinator commits the run
(step ``commit_derived``) only after every site answered; :meth:`DerivedSink.commit_derived`
then makes the values variables of the node.

Two sinks exist:

* :class:`~node.data.frame_memory.DataFrameSource` (tests, sandbox) keeps committed values in
  its in-memory frame, so later steps can use them at once;
* :class:`DerivedFrameSource` wraps the store's frame source for the node service and hands
  each committed run to a ``keep`` callback. The service's callback writes the values with
  :func:`node.data.committed.save_harmonized`, writes their definitions with
  :func:`node.data.committed.write_derived_dictionary`, records that file among the node's
  dictionary extensions and reloads its dictionary (see :mod:`node.data.committed`).

A source that is no sink refuses steps that would derive values (``derived_unsupported``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from node.data.source import FrameSource, Versioned
from schemas.cohort import Cohort
from schemas.dictionary.model import Variable
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.derived import DeriveSpec

logger = logging.getLogger(__name__)

MAX_STAGED = 16
"""Runs staged at once per node; the oldest is dropped beyond this (never committed)."""


@dataclass(frozen=True)
class DerivedValues:
    """One run's new values at one node.

    ``values``: index ``row_id``, one column per code of ``variables`` (float64 for numeric
    variables, strings of the categories for categorical ones; missing = no value).
    """

    run_id: str
    visit: str
    variables: tuple[Variable, ...]
    values: pd.DataFrame

    @property
    def codes(self) -> list[str]:
        return [v.code for v in self.variables]


def derived_values(spec: DeriveSpec, visit: str, values: pd.DataFrame) -> DerivedValues:
    """Check that ``values`` has exactly the columns ``spec`` defines and wrap them."""
    if list(values.columns) != spec.codes:
        raise FedpsyError(
            f"derived columns {list(values.columns)} do not match the run's variables {spec.codes}",
            code=ErrorCode.INTERNAL,
        )
    return DerivedValues(spec.run_id, visit, tuple(spec.variables), values)


@runtime_checkable
class DerivedSink(Protocol):
    """A frame source that can stage and keep derived values."""

    def stage_derived(self, derived: DerivedValues) -> None: ...

    def commit_derived(self, run_id: str) -> DerivedValues: ...


def stage(source: object, derived: DerivedValues) -> None:
    """Stage ``derived`` at ``source``, or refuse when the source cannot keep values."""
    if not isinstance(source, DerivedSink):
        raise FedpsyError(
            "this node cannot keep derived values (harmonized values, scores or cluster "
            "labels); run the analysis without storing them",
            code=ErrorCode.DERIVED_UNSUPPORTED,
        )
    source.stage_derived(derived)


class Staging:
    """Staged runs by run id, at most :data:`MAX_STAGED` (oldest dropped first)."""

    def __init__(self, limit: int = MAX_STAGED) -> None:
        self._runs: OrderedDict[str, DerivedValues] = OrderedDict()
        self._limit = limit

    def put(self, derived: DerivedValues) -> None:
        self._runs[derived.run_id] = derived
        self._runs.move_to_end(derived.run_id)
        while len(self._runs) > self._limit:
            dropped, _ = self._runs.popitem(last=False)
            logger.info("dropped staged run %s (never committed)", dropped)

    def pop(self, run_id: str) -> DerivedValues:
        try:
            return self._runs.pop(run_id)
        except KeyError:
            raise FedpsyError(
                f"no values are staged here for run {run_id!r} (the node restarted or the "
                "run was dropped); run the analysis again",
                code=ErrorCode.NOT_FOUND,
            ) from None


def apply_to_wide(wide: pd.DataFrame, derived: DerivedValues) -> pd.DataFrame:
    """``wide`` (columns ``row_id``, ``visit``, variables) with ``derived`` merged in.

    Earlier values of the same variables at the run's visit are replaced; other visits keep
    theirs.
    """
    out = wide.copy()
    at_visit = (out["visit"] == derived.visit).to_numpy()
    rows = out["row_id"].to_numpy()
    for variable in derived.variables:
        column = derived.values[variable.code]
        if variable.type == "categorical":
            cats = list(variable.categories or sorted({str(v) for v in column.dropna()}))
            current = (
                out[variable.code].astype(object)
                if variable.code in out.columns
                else pd.Series([None] * len(out), index=out.index, dtype=object)
            )
            mapped = pd.Series(rows).map(column.astype(object)).to_numpy()
            new = np.where(at_visit, mapped, current.to_numpy())
            labels = [None if pd.isna(v) else str(v) for v in new]
            out[variable.code] = pd.Categorical(labels, categories=cats)
        else:
            current_num = (
                out[variable.code].to_numpy(dtype=np.float64, na_value=np.nan)
                if variable.code in out.columns
                else np.full(len(out), np.nan)
            )
            mapped_num = pd.Series(rows).map(column.astype(np.float64)).to_numpy(dtype=np.float64)
            out[variable.code] = np.where(at_visit, mapped_num, current_num)
    return out


class DerivedFrameSource:
    """The store's frame source, able to stage derived values and hand committed runs to
    ``keep`` (the node service's writer)."""

    def __init__(self, inner: FrameSource, keep: Callable[[DerivedValues], None]) -> None:
        self.inner = inner
        self._keep = keep
        self._staged = Staging()

    @property
    def site(self) -> str:
        return self.inner.site

    @property
    def split_salt(self) -> bytes:
        return self.inner.split_salt

    def frame(self, variables: Sequence[str], visit: str, cohort: Cohort | None) -> pd.DataFrame:
        return self.inner.frame(variables, visit, cohort)

    def domain(self, variables: Sequence[str]) -> pd.DataFrame | None:
        return self.inner.domain(variables)

    def version(self, visit: str) -> str | None:
        return self.inner.version(visit) if isinstance(self.inner, Versioned) else None

    def stage_derived(self, derived: DerivedValues) -> None:
        self._staged.put(derived)

    def commit_derived(self, run_id: str) -> DerivedValues:
        derived = self._staged.pop(run_id)
        self._keep(derived)
        return derived


__all__ = [
    "DerivedFrameSource",
    "DerivedSink",
    "DerivedValues",
    "Staging",
    "apply_to_wide",
    "derived_values",
    "stage",
]
