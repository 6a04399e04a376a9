"""The node's rows as frames, read from its store for exactly the variables a step needs.

Observation values at the requested visit and person-level values are pivoted wide, the
person table's columns joined in, and the result served through
:class:`~node.data.frame_memory.DataFrameSource` (cohort, categories, ``site``). Frames are
indexed by the store's stable ``person.row_id``, so the differencing guard's bitsets stay
valid when new persons are loaded. The labels of an open categorical (no dictionary
categories, e.g. scanner ids) are its labels held by at least the site's minimum cell size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import CursorResult, select

from node.data.checks import StoreChecks
from node.data.domain import site_probe
from node.data.frame_memory import DataFrameSource
from node.store import tables as t
from node.store.tables import PERSON_LEVEL
from schemas.cohort import Cohort
from schemas.errors import ErrorCode, FedpsyError

PERSON_COLUMNS = ("sex", "birth_year", "primary_diagnosis")


def _tuples(result: CursorResult[Any]) -> list[tuple[Any, ...]]:
    """Plain tuples, fetched at once from the driver's cursor: SQLAlchemy would make a Row
    per fetch, and pandas probes Row objects attribute by attribute, slowly."""
    assert result.cursor is not None
    rows = list(result.cursor.fetchall())
    result.close()
    return rows


def _pivot(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """``(person_id, variable, value_num, value_text)`` rows as one row per person and one
    object column per variable (the number, else the text; NaN where the person has no
    row), persons and variables sorted: a pivot done with one scatter per variable."""
    if not rows:
        return pd.DataFrame()
    table = np.array(rows, dtype=object)
    pids, variables, nums, texts = (np.ascontiguousarray(table[:, i]) for i in range(4))
    return pivot_columns(pids, variables, np.where(pd.isna(nums), texts, nums))


def pivot_columns(pids: np.ndarray, variables: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """:func:`_pivot` of rows given as columns (``values``: the number, else the text)."""
    if not len(pids):
        return pd.DataFrame()
    person_codes, persons = pd.factorize(pids, sort=True)
    variable_codes, names = pd.factorize(variables, sort=True)
    cell = person_codes.astype(np.int64) * len(names) + variable_codes
    if len(pd.unique(cell)) != len(cell):
        raise ValueError("Index contains duplicate entries, cannot reshape")
    columns = {}
    for k, name in enumerate(names):
        at = variable_codes == k
        column = np.full(len(persons), np.nan, dtype=object)
        column[person_codes[at]] = values[at]
        columns[name] = column
    index = pd.Index(persons, name="person_id")
    return pd.DataFrame(columns, index=index, dtype=object).rename_axis(columns="variable")


class StoreFrameSource(StoreChecks):
    """A FrameSource over the node's store."""

    def frame(self, variables: Sequence[str], visit: str, cohort: Cohort | None) -> pd.DataFrame:
        wanted, needed = self._needed(variables, cohort)
        people, pivoted = self._read(needed, visit)
        wide = self._wide(people, pivoted, needed, visit)
        return self._framed(wide, wanted, needed, visit, cohort)

    def frame_of(
        self, people: pd.DataFrame, pivoted: pd.DataFrame, codes: Sequence[str], visit: str
    ) -> pd.DataFrame:
        """:meth:`frame` of ``codes`` at ``visit`` (every person, no cohort) from values
        at hand: ``people`` and ``pivoted`` as :meth:`_read` would read them."""
        wanted, needed = self._needed(codes, None)
        wide = self._wide(people, pivoted, needed, visit)
        return self._framed(wide, wanted, needed, visit, None)

    def _needed(
        self, variables: Sequence[str], cohort: Cohort | None
    ) -> tuple[list[str], list[str]]:
        wanted = list(dict.fromkeys(variables))
        needed = set(wanted) | (cohort.variables() if cohort is not None else set())
        needed.discard("site")
        for code in sorted(needed):
            self._dictionary.get(code)  # unknown variables: a clear error naming them
        return wanted, sorted(needed)

    def _framed(
        self,
        wide: pd.DataFrame,
        wanted: list[str],
        needed: list[str],
        visit: str,
        cohort: Cohort | None,
    ) -> pd.DataFrame:
        categories = {
            code: self._categories(code, wide)
            for code in needed
            if self._dictionary.get(code).type == "categorical"
        }
        for code, cats in categories.items():  # rare labels of open categoricals: withheld
            wide[code] = wide[code].where(wide[code].isna() | wide[code].isin(cats))
        source = DataFrameSource(
            self._site, wide.drop(columns=["row_id"]), categories, self._split_salt
        )
        framed = source.frame(wanted, visit, cohort)
        framed.index = pd.Index(wide["row_id"].to_numpy()[framed.index.to_numpy()], name="row_id")
        return framed

    def domain(self, variables: Sequence[str]) -> pd.DataFrame:
        """A probe frame over the dictionary's declared ranges of ``variables``."""
        return site_probe(self._dictionary, self._site, variables)

    def _categories(self, code: str, wide: pd.DataFrame) -> list[str]:
        """Dictionary categories; for an open categorical, the labels held by at least
        ``min_label_count`` persons here (a rarer label would name too few persons, so its
        rows count as missing)."""
        var = self._dictionary.get(code)
        if var.categories is not None:
            return list(var.categories)
        held = wide[code].dropna().astype(str).value_counts()
        return sorted(str(label) for label, n in held.items() if n >= self._min_label_count)

    def _read(self, codes: list[str], visit: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The persons with ``visit`` (id, row id and the person columns among ``codes``),
        and their observation values of ``codes`` there or person-level, pivoted."""
        p, o, v = t.person.c, t.observation.c, t.visit.c
        obs_codes = [c for c in codes if c not in PERSON_COLUMNS]
        person_cols = [c for c in PERSON_COLUMNS if c in codes]
        with self._engine.connect() as conn:
            people = pd.DataFrame.from_records(
                _tuples(
                    conn.execute(
                        select(p.person_id, p.row_id, *(p[c] for c in person_cols)).where(
                            p.person_id.in_(select(v.person_id).where(v.label == visit))
                        )
                    )
                ),
                columns=["person_id", "row_id", *person_cols],
            )
            rows = _tuples(
                conn.execute(
                    select(o.person_id, o.variable, o.value_num, o.value_text).where(
                        o.variable.in_(obs_codes), o.visit.in_([visit, PERSON_LEVEL])
                    )
                )
            )
        return people, _pivot(rows)

    def _wide(
        self, people: pd.DataFrame, pivoted: pd.DataFrame, codes: list[str], visit: str
    ) -> pd.DataFrame:
        """One row per person at ``visit`` (persons without the visit are absent)."""
        obs_codes = [c for c in codes if c not in PERSON_COLUMNS]
        if people.empty:
            raise FedpsyError(
                f"site {self._site!r} holds no data at visit {visit!r}", code=ErrorCode.NOT_FOUND
            )
        out = people.set_index("person_id").join(pivoted, how="left").reset_index()
        for code in obs_codes:
            if code not in out.columns:
                out[code] = (
                    pd.NA if self._dictionary.get(code).type == "categorical" else float("nan")
                )
        out["visit"] = visit
        # DataFrameSource numbers persons by sorted person_id: keep that order to map back
        return out.sort_values("person_id").reset_index(drop=True)
