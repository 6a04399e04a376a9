"""Recomputing derived variables for the persons an ingest touched, in its transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Column, ColumnElement, Connection, Select, Table, delete, select

from node.cdm_variables import derive_site
from node.cdm_variables.scales import CONFLICT_COLUMNS
from node.ingest.derive_at_hand import SOURCE_VARIABLES, AtHand, site_has_drug_rows
from node.ingest.upsert import upsert
from node.ingest.written import Written
from node.store import tables as t
from schemas.dictionary import Dictionary

IN_BATCH = 2_000
PERSON_BATCH = 10_000
"""Persons derived at a time when a load touched most of the site."""


def _batches(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), IN_BATCH):
        yield list(ids[start : start + IN_BATCH])


def _columns(table: Table) -> list[Column[Any]]:
    """The table's columns without internal ids."""
    internal = ("batch_id", "row_id", "exposure_id", "measure_id", "event_id")
    return [c for c in table.c if c.name not in internal]


def read_rows(
    conn: Connection, table: Table, ids: Sequence[str] | None, *extra: ColumnElement[bool]
) -> pd.DataFrame:
    """The rows of ``table`` (without internal ids) of the persons ``ids`` (every person
    when None), read ``IN`` lists of :data:`IN_BATCH` at a time."""
    cols = _columns(table)
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


def _everyone(conn: Connection, sources: Sequence[str]) -> Iterator[tuple[pd.DataFrame, ...]]:
    """Every person's rows (persons, visits, source observations, drugs, MRS, events),
    :data:`PERSON_BATCH` persons at a time in ``person_id`` order: the persons and the
    source observations stream sorted by person from the store (no index needed), the other
    tables are read by ``person_id`` range, so memory follows the batch, not the site."""

    def stream(query: Select[Any]) -> Any:
        """The driver's cursor: rows as plain tuples, fetched as they are read (SQLite;
        PostgreSQL's client cursor holds the result in libpq's compact form)."""
        return conn.execute(query).cursor

    def names(table: Table) -> list[str]:
        return [c.name for c in _columns(table)]

    people = stream(select(*_columns(t.person)).order_by(t.person.c.person_id))
    observations = stream(
        select(*_columns(t.observation))
        .where(t.observation.c.variable.in_(sources))
        .order_by(t.observation.c.person_id)
    )
    at = names(t.observation).index("person_id")
    pending: list[Any] = []
    while batch := people.fetchmany(PERSON_BATCH):
        mine = {row[0] for row in batch}
        taken: list[Any] = []
        while True:  # the observations of this batch's persons come next, together
            pending = pending or observations.fetchmany(IN_BATCH * 25)
            k = _leading(pending, at, mine)
            taken += pending[:k]
            pending = pending[k:]
            if pending or k == 0:
                break
        span = (batch[0][0], batch[-1][0])

        def ranged(table: Table, span: tuple[str, str] = span) -> pd.DataFrame:
            query = select(*_columns(table)).where(table.c.person_id.between(*span))
            return fetch_frame(conn, query, names(table))

        yield (
            pd.DataFrame(batch, columns=names(t.person)),
            ranged(t.visit),
            pd.DataFrame(taken, columns=names(t.observation)),
            ranged(t.drug_exposure),
            ranged(t.mrs_measure),
            ranged(t.event),
        )


def _leading(rows: list[Any], at: int, persons: set[str]) -> int:
    """How many of the first ``rows`` belong to ``persons``: the persons of a batch are
    consecutive in the order the rows come in, so membership only turns from true to false
    along ``rows``, and a bisection finds where."""
    lo, hi = 0, len(rows)
    while lo < hi:
        mid = (lo + hi) // 2
        if rows[mid][at] in persons:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _some(
    conn: Connection, ids: Sequence[str], sources: Sequence[str]
) -> Iterator[tuple[pd.DataFrame, ...]]:
    """The rows of the persons ``ids``, read in ``IN`` lists."""
    yield (
        read_rows(conn, t.person, ids),
        read_rows(conn, t.visit, ids),
        read_rows(conn, t.observation, ids, t.observation.c.variable.in_(sources)),
        read_rows(conn, t.drug_exposure, ids),
        read_rows(conn, t.mrs_measure, ids),
        read_rows(conn, t.event, ids),
    )


def rederive(
    conn: Connection,
    dictionary: Dictionary,
    touched: Iterable[str],
    total_persons: int,
    at_hand: AtHand | None = None,
    written: tuple[Written, dict[str, int]] | None = None,
) -> Rederived:
    """Replace the derived values of ``touched`` persons (of every person when they are
    most of the site: then the site is read in batches of persons, not all at once).

    Persons ``at_hand`` derived during the load (and not touched again) keep those values;
    the rest are read back from the store and derived. ``written`` (with the persons' row
    ids) is told which derived rows were replaced.
    """
    any_drugs = site_has_drug_rows(conn)
    done = at_hand.done(set(touched), any_drugs) if at_hand is not None else set()
    ids = sorted(set(touched) | (set(at_hand.values) if at_hand is not None else set()))
    if not ids:
        return Rederived()
    codes = sorted(dictionary.codes(source="derived"))
    sources = sorted(SOURCE_VARIABLES)
    everyone = len(ids) * 2 > total_persons
    if everyone and (total_persons - len(done)) * 2 > total_persons:
        done = set()  # most of the site left: read it all, in batches of persons
        conn.execute(delete(t.observation).where(t.observation.c.variable.in_(codes)))
        if written is not None:
            written[0].drop_derived(None)
        parts: Iterator[tuple[pd.DataFrame, ...]] = _everyone(conn, sources)
    else:
        left = ids if not everyone else conn.execute(select(t.person.c.person_id)).scalars()
        rest = sorted(set(left) - done)
        for batch in _batches(rest):
            conn.execute(
                delete(t.observation).where(
                    t.observation.c.person_id.in_(batch), t.observation.c.variable.in_(codes)
                )
            )
        parts = _some(conn, rest, sources) if rest else iter(())
        if written is not None:
            written[0].drop_derived(written[1][p] for p in rest)
    values = sum(at_hand.values[p] for p in done) if at_hand is not None else 0
    conflicts = [c for c in at_hand.conflicts] if at_hand is not None and done else []
    conflicts = [c.loc[c["person_id"].isin(done)] for c in conflicts]
    for persons, visits, obs, drugs, mrs, events in parts:
        site = derive_site(persons, visits, obs, drugs, mrs, events, site_has_drug_rows=any_drugs)
        derived = site.rows
        derived = derived[derived["variable"].isin(codes)].assign(batch_id=None)
        upsert(conn, t.observation, derived, ("person_id", "visit", "variable"))
        if written is not None:
            written[0].observations(derived, written[1], derived=True)
        values += len(derived)
        conflicts.append(site.given_conflicts)
    found = [c for c in conflicts if not c.empty]
    warnings = _warnings(pd.concat(found, ignore_index=True), ids) if found else ()
    return Rederived(values, warnings)
