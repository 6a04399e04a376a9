"""The node's rows as frames, read from its store for exactly the variables a step needs.

Observation values at the requested visit and person-level values are pivoted wide, the
person table's columns joined in, and the result served through
:class:`~node.data.frame_memory.DataFrameSource` (cohort, categories, ``site``). Frames are
indexed by the store's stable ``person.row_id``, so the differencing guard's bitsets stay
valid when new persons are loaded. The labels of an open categorical (no dictionary
categories, e.g. scanner ids) are its labels held by at least the site's minimum cell size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, CursorResult, select

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


class StoreFrameSource(StoreChecks):
    """A FrameSource over the node's store."""

    def frame(self, variables: Sequence[str], visit: str, cohort: Cohort | None) -> pd.DataFrame:
        wanted, needed = self._needed(variables, cohort)
        return self._framed(self._wide(needed, visit), wanted, needed, visit, cohort)

    def frame_of(
        self, people: pd.DataFrame, held: HeldRows, codes: Sequence[str], visit: str
    ) -> pd.DataFrame:
        """:meth:`frame` of ``codes`` at ``visit`` (every person, no cohort) from values at
        hand: ``people`` as :meth:`_wide` reads them, and each variable's rows as
        ``held(code)`` gives them (person ids, ``value_num`` as float64, ``value_text``)."""
        wanted, needed = self._needed(codes, None)
        if people.empty:
            raise FedpsyError(
                f"site {self._site!r} holds no data at visit {visit!r}", code=ErrorCode.NOT_FOUND
            )
        people = people.sort_values("person_id").reset_index(drop=True)
        persons = pd.Index(people["person_id"].to_numpy(object))
        for code in needed:
            if code not in PERSON_COLUMNS:
                people[code] = self._values(code, visit, persons, *held(code))
        people["visit"] = visit
        return self._framed(people, wanted, needed, visit, None)

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

    def _wide(self, codes: list[str], visit: str) -> pd.DataFrame:
        """One row per person at ``visit`` (persons without the visit are absent).

        Observations are read one variable at a time (the store's key leads with the
        variable) and set into the persons' frame as a column: memory holds the frame and
        one variable's rows, never the whole long table (a million persons' columnar
        layer would otherwise need gigabytes). A variable's values are ``value_num``,
        else ``value_text``: float64 when it has no text values, else objects (as the
        categories and the conversion to numbers expect)."""
        p = t.person.c
        obs_codes = [c for c in codes if c not in PERSON_COLUMNS]
        person_cols = [c for c in PERSON_COLUMNS if c in codes]
        with self._engine.connect() as conn:
            people = pd.DataFrame.from_records(
                _tuples(
                    conn.execute(
                        select(p.person_id, p.row_id, *(p[c] for c in person_cols)).where(
                            p.person_id.in_(
                                select(t.visit.c.person_id).where(t.visit.c.label == visit)
                            )
                        )
                    )
                ),
                columns=["person_id", "row_id", *person_cols],
            )
            if people.empty:
                raise FedpsyError(
                    f"site {self._site!r} holds no data at visit {visit!r}",
                    code=ErrorCode.NOT_FOUND,
                )
            people = people.sort_values("person_id").reset_index(drop=True)
            persons = pd.Index(people["person_id"].to_numpy(object))
            for code in obs_codes:
                people[code] = self._column(conn, code, visit, persons)
        people["visit"] = visit
        # DataFrameSource numbers persons by sorted person_id: keep that order to map back
        return people

    def _column(self, conn: Connection, code: str, visit: str, persons: pd.Index) -> pd.Series:
        """``code``'s values at ``visit`` (or person-level) for ``persons``, in their order."""
        o = t.observation.c
        rows = _tuples(
            conn.execute(
                select(o.person_id, o.value_num, o.value_text).where(
                    o.variable == code, o.visit.in_([visit, PERSON_LEVEL])
                )
            )
        )
        if not rows:
            return self._values(code, visit, persons, np.empty(0, dtype=object), None, None)
        long = pd.DataFrame.from_records(rows, columns=["person_id", "value_num", "value_text"])
        del rows
        return self._values(
            code,
            visit,
            persons,
            long["person_id"].to_numpy(object),
            long["value_num"].astype(np.float64),
            long["value_text"],
        )

    def _values(
        self,
        code: str,
        visit: str,
        persons: pd.Index,
        ids: np.ndarray,
        nums: pd.Series | None,
        texts: pd.Series | None,
    ) -> pd.Series:
        """A variable's rows (person ids, numbers, texts) as its column for ``persons``."""
        categorical = self._dictionary.get(code).type == "categorical"
        if nums is None or texts is None or not len(ids):
            return pd.Series(pd.NA if categorical else np.nan, index=range(len(persons)))
        values: pd.Series = nums
        if categorical or texts.notna().any():
            values = values.astype(object).where(values.notna(), texts)
        held = pd.Series(values.to_numpy(), index=pd.Index(ids))
        if not held.index.is_unique:
            raise ValueError(f"{code!r} has two values for a person at {visit!r}")
        return pd.Series(held.reindex(persons).to_numpy(), index=range(len(persons)))


HeldRows = Callable[[str], tuple[np.ndarray, pd.Series | None, pd.Series | None]]
"""A variable's rows at a visit or person-level, at hand: person ids, numbers, texts."""
