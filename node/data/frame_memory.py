"""A :class:`~node.data.source.FrameSource` over one wide in-memory frame.

The wide frame has a ``person_id`` column, a ``visit`` column (``baseline`` when absent)
and one column per variable; person-level variables are repeated on each of the person's
visit rows. The node's store builds such a frame from its tables and serves it through
this class; tests and the sandbox build it from a CSV.

Frames are indexed by ``row_id``: the position of the person in sorted ``person_id``
order, stable for a given set of persons and never the person id itself. Categorical
variables become pandas ``Categorical`` with the given categories (a label outside them is
an error), every other variable float64 (NaN = missing), and the pseudo-variable ``site``
a categorical with the single category of this site.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from node.data.cohort import cohort_mask
from node.data.staging import DerivedValues, Staging, apply_to_wide
from node.data.watch import note_rows
from schemas.cohort import Cohort
from schemas.errors import ErrorCode, FedpsyError

logger = logging.getLogger(__name__)

DEFAULT_VISIT = "baseline"


class DataFrameSource:
    """The rows of one site, held as a wide DataFrame."""

    def __init__(
        self,
        site: str,
        data: pd.DataFrame,
        categories: Mapping[str, Sequence[str]],
        split_salt: bytes = b"",
    ) -> None:
        if "person_id" not in data.columns:
            raise FedpsyError(
                f"site {site!r}: the frame has no person_id column", code=ErrorCode.BAD_INPUT
            )
        if "site" in data.columns:
            raise FedpsyError(
                f"site {site!r}: 'site' is a reserved variable name", code=ErrorCode.BAD_INPUT
            )
        self._site = site
        self._split_salt = split_salt
        self._categories = {k: [str(c) for c in v] for k, v in categories.items()}
        self._wide = self._prepare(data)
        self._staged = Staging()

    @property
    def site(self) -> str:
        return self._site

    @property
    def split_salt(self) -> bytes:
        return self._split_salt

    @property
    def variables(self) -> list[str]:
        """Variables this source holds (including ``site``)."""
        return [c for c in self._wide.columns if c not in ("row_id", "visit")]

    def frame(self, variables: Sequence[str], visit: str, cohort: Cohort | None) -> pd.DataFrame:
        """One row per person at ``visit`` in ``cohort``, with exactly ``variables``."""
        unknown = [v for v in variables if v not in self._wide.columns or v in ("row_id", "visit")]
        if unknown:
            raise FedpsyError(
                f"site {self._site!r} does not hold {', '.join(map(repr, unknown))}",
                code=ErrorCode.UNKNOWN_VARIABLE,
            )
        at_visit = self._wide[self._wide["visit"] == visit]
        rows = at_visit.drop(columns=["visit"]).set_index("row_id")
        rows.index.name = "row_id"
        selected = rows[cohort_mask(rows, cohort).to_numpy()]
        note_rows(len(selected))
        return selected.loc[:, list(variables)].copy()

    def domain(self, variables: Sequence[str]) -> pd.DataFrame | None:
        """None: a frame without a dictionary has no declared ranges to probe."""
        return None

    def stage_derived(self, derived: DerivedValues) -> None:
        """Hold a run's derived values until it is committed (see :mod:`node.data.staging`)."""
        self._staged.put(derived)

    def commit_derived(self, run_id: str) -> DerivedValues:
        """Make a staged run's values variables of this frame."""
        derived = self._staged.pop(run_id)
        self._wide = apply_to_wide(self._wide, derived)
        return derived

    def _prepare(self, data: pd.DataFrame) -> pd.DataFrame:
        wide = data.reset_index(drop=True)
        if "visit" not in wide.columns:
            wide["visit"] = DEFAULT_VISIT
        wide["visit"] = wide["visit"].astype(object).map(str)
        ids = wide["person_id"].astype(object).map(str)
        if ids.isna().any():
            raise FedpsyError(
                f"site {self._site!r}: a row has no person_id", code=ErrorCode.BAD_INPUT
            )
        dup = pd.DataFrame({"p": ids, "v": wide["visit"]}).duplicated()
        if dup.any():
            raise FedpsyError(
                f"site {self._site!r}: {int(dup.sum())} rows repeat a (person_id, visit) pair",
                code=ErrorCode.BAD_INPUT,
            )
        order = {pid: i for i, pid in enumerate(sorted(set(ids)))}
        out = pd.DataFrame(
            {
                "row_id": ids.map(order).astype(np.int64).to_numpy(),
                "visit": wide["visit"].to_numpy(),
            }
        )
        for column in wide.columns:
            if column in ("person_id", "visit"):
                continue
            out[column] = self._convert(column, wide[column]).reset_index(drop=True)
        out["site"] = pd.Categorical([self._site] * len(out), categories=[self._site])
        return out

    def _convert(self, column: str, values: pd.Series) -> pd.Series:
        if column in self._categories:
            cats = self._categories[column]
            labels = values.astype(object).map(_label)
            bad = labels.notna() & ~labels.isin(cats)
            if bad.any():
                shown = sorted({str(v) for v in labels[bad]})[:5]
                raise FedpsyError(
                    f"site {self._site!r}: variable {column!r} has labels {shown} outside "
                    f"its categories {cats}",
                    code=ErrorCode.BAD_INPUT,
                )
            return pd.Series(pd.Categorical(labels, categories=cats), index=values.index)
        try:
            return pd.to_numeric(values, errors="raise").astype(np.float64)
        except (ValueError, TypeError):
            raise FedpsyError(
                f"site {self._site!r}: variable {column!r} is not numeric and has no categories",
                code=ErrorCode.BAD_INPUT,
            ) from None


def _label(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
