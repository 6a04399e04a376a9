"""Deriving the variables of persons a flat file brings, from the values at hand.

A person the store did not hold before a chunk of a flat file has, in the store, exactly
the chunk's rows: its observations, its visits (day unknown), its person row, and no
drug, MRS or event rows. Its derived variables are computed right after the chunk is
written, from those values, instead of being read back at the end of the ingest. The
result is what :func:`node.ingest.rederive.rederive` would compute from the store: the
same derivation (:func:`~node.cdm_variables.derive_site`) on frames of the same columns
and types. A person seen again later in the ingest (a later chunk, another file) is
derived anew from the store at the end, as is every person derived here when the site's
first drug rows come after its chunk (the current-medication variables depend on it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Table, select

from node.cdm_variables import derive_site
from node.cdm_variables.pipeline import FOLLOWUP_VARIABLE
from node.cdm_variables.scales import GIVEN_CODES, PANSS_ITEMS, QIDS_ITEMS
from node.ingest.upsert import column_values, insert_new
from node.store import tables as t

SOURCE_VARIABLES = (*PANSS_ITEMS, *QIDS_ITEMS, *GIVEN_CODES, FOLLOWUP_VARIABLE)
"""The observation variables the derivations read."""
INTERNAL = ("batch_id", "row_id", "exposure_id", "measure_id", "event_id")
"""Columns of the store tables the derivations do not read."""


def column_names(table: Table) -> list[str]:
    """The table's columns without internal ids, in table order (as read back)."""
    return [c.name for c in table.c if c.name not in INTERNAL]


def site_has_drug_rows(conn: Connection) -> bool:
    return conn.execute(select(t.drug_exposure.c.person_id).limit(1)).first() is not None


@dataclass
class AtHand:
    """The persons derived from the values at hand during one ingest."""

    codes: frozenset[str]
    """The dictionary's derived variables (the ones written)."""
    site_has_drug_rows: bool
    values: Counter[str] = field(default_factory=Counter)
    """Derived values written per person."""
    conflicts: list[pd.DataFrame] = field(default_factory=list)
    """Given scale totals that disagree with their items, per chunk."""

    def done(self, touched: set[str], any_drugs: bool) -> set[str]:
        """The persons whose derived values written here stand: not touched again later,
        derived under the site's final answer to whether it has drug rows."""
        if any_drugs != self.site_has_drug_rows:
            return set()
        return set(self.values) - touched

    def derive(
        self,
        conn: Connection,
        persons: list[str],
        long: pd.DataFrame,
        visits: pd.DataFrame,
        person_rows: pd.DataFrame,
    ) -> pd.DataFrame | None:
        """Derive and write the variables of ``persons`` (new to the store in this chunk)
        from the chunk's LONG rows, its ``(person_id, label)`` visits and the person
        columns it gave (:func:`node.ingest.persons.check_person_columns`); the rows
        written."""
        if not persons:
            return None
        mine = pd.Index(persons)
        site = derive_site(
            _persons(persons, person_rows),
            _visits(visits.loc[visits["person_id"].isin(mine)]),
            _observations(long, mine),
            *(pd.DataFrame([], columns=column_names(x)) for x in _EMPTY),
            site_has_drug_rows=self.site_has_drug_rows,
        )
        derived = site.rows
        derived = derived[derived["variable"].isin(self.codes)].assign(batch_id=None)
        insert_new(conn, t.observation, derived)
        self.values.update(dict.fromkeys(persons, 0))
        self.values.update(derived["person_id"].tolist())
        if not site.given_conflicts.empty:
            self.conflicts.append(site.given_conflicts)
        return derived


_EMPTY = (t.drug_exposure, t.mrs_measure, t.event)


def _persons(persons: list[str], person_rows: pd.DataFrame) -> pd.DataFrame:
    """The person rows as the store returns them: given columns converted as written."""
    names = column_names(t.person)
    given = person_rows.set_index("person_id") if not person_rows.empty else None
    columns: dict[str, list[Any]] = {"person_id": list(persons)}
    for name in names[1:]:
        if given is None or name not in given.columns:
            columns[name] = [None] * len(persons)
            continue
        values = given[name].reindex(persons)
        columns[name] = column_values(t.person, name, values)
    rows = list(zip(*(columns[n] for n in names), strict=True))
    return pd.DataFrame(rows, columns=names)


def _visits(visits: pd.DataFrame) -> pd.DataFrame:
    pairs = zip(visits["person_id"].tolist(), visits["label"].tolist(), strict=True)
    return pd.DataFrame([(p, v, None) for p, v in pairs], columns=column_names(t.visit))


def _observations(long: pd.DataFrame, persons: pd.Index) -> pd.DataFrame:
    """The chunk's source observations of ``persons``, typed as read back: numbers as
    float64 (every source variable is numeric), text as objects."""
    rows = long.loc[long["variable"].isin(SOURCE_VARIABLES) & long["person_id"].isin(persons)]
    names = column_names(t.observation)
    out = pd.DataFrame({n: rows[n].to_numpy(dtype=object) for n in names})
    return out.infer_objects() if len(out) else pd.DataFrame([], columns=names)


__all__ = ["SOURCE_VARIABLES", "AtHand", "column_names", "site_has_drug_rows"]
