"""Recomputing derived variables for the persons an ingest touched, in its transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Connection, Select, Table, delete, select

from node.cdm_variables import derive_site
from node.cdm_variables.pipeline import FOLLOWUP_VARIABLE
from node.cdm_variables.scales import CONFLICT_COLUMNS, GIVEN_CODES, PANSS_ITEMS, QIDS_ITEMS
from node.ingest.upsert import upsert
from node.store import tables as t
from schemas.dictionary import Dictionary

IN_BATCH = 2_000
SOURCE_VARIABLES = (*PANSS_ITEMS, *QIDS_ITEMS, *GIVEN_CODES, FOLLOWUP_VARIABLE)
"""The observation variables the derivations read."""


def _batches(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), IN_BATCH):
        yield list(ids[start : start + IN_BATCH])


def read_rows(
    conn: Connection, table: Table, ids: Sequence[str] | None, *extra: ColumnElement[bool]
) -> pd.DataFrame:
    """The rows of ``table`` (without internal ids) of the persons ``ids`` (every person
    when None), read ``IN`` lists of :data:`IN_BATCH` at a time."""
    cols = [
        c
        for c in table.c
        if c.name not in ("batch_id", "row_id", "exposure_id", "measure_id", "event_id")
    ]
    names = [c.name for c in cols]
    if ids is None:
        return fetch_frame(conn, select(*cols).where(*extra), names)
    frames = [
        fetch_frame(conn, select(*cols).where(table.c.person_id.in_(batch), *extra), names)
        for batch in _batches(ids)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=names)


def fetch_frame(conn: Connection, query: Select[Any], columns: Sequence[str]) -> pd.DataFrame:
    """The rows of ``query`` as a frame, fetched as the driver's plain tuples (building a
    row object per row costs several times the query itself on large reads)."""
    rows = conn.execute(query).cursor.fetchall()
    return pd.DataFrame(rows, columns=list(columns))


@dataclass(frozen=True)
class Rederived:
    """The derived values written, and a warning per given scale total of the touched
    persons that disagrees with its complete items (the items' total is kept)."""

    values: int = 0
    warnings: tuple[str, ...] = ()


def _warnings(conflicts: pd.DataFrame, ids: Sequence[str]) -> tuple[str, ...]:
    mine = conflicts.loc[conflicts["person_id"].isin(ids)]
    mine = mine.sort_values(["person_id", "visit", "variable"])
    return tuple(
        f"person {pid}, visit {visit}: {variable} given as {_number(given)}, but its "
        f"complete items give {_number(derived)}; the items' total is kept"
        for pid, visit, variable, given, derived in mine.loc[:, list(CONFLICT_COLUMNS)].to_numpy()
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(float(value))


def rederive(
    conn: Connection, dictionary: Dictionary, touched: Iterable[str], total_persons: int
) -> Rederived:
    """Replace the derived values of ``touched`` persons."""
    ids = sorted(set(touched))
    if not ids:
        return Rederived()
    scope: list[str] | None = None if len(ids) * 2 > total_persons else ids
    sources = sorted(SOURCE_VARIABLES)
    persons = read_rows(conn, t.person, scope)
    visits = read_rows(conn, t.visit, scope)
    obs = read_rows(conn, t.observation, scope, t.observation.c.variable.in_(sources))
    drugs = read_rows(conn, t.drug_exposure, scope)
    mrs = read_rows(conn, t.mrs_measure, scope)
    events = read_rows(conn, t.event, scope)
    any_drugs = conn.execute(select(t.drug_exposure.c.person_id).limit(1)).first() is not None
    site = derive_site(persons, visits, obs, drugs, mrs, events, site_has_drug_rows=any_drugs)
    derived = site.rows
    codes = sorted(dictionary.codes(source="derived"))
    for batch in _batches(ids):
        conn.execute(
            delete(t.observation).where(
                t.observation.c.person_id.in_(batch), t.observation.c.variable.in_(codes)
            )
        )
    derived = derived[derived["variable"].isin(codes)]
    derived = derived.assign(batch_id=None)
    upsert(conn, t.observation, derived, ("person_id", "visit", "variable"))
    return Rederived(len(derived), _warnings(site.given_conflicts, ids))
