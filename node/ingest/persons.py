"""The person table's own columns (sex, birth_year, primary_diagnosis) in a flat file.

A flat file may give them next to its variables, on any of a person's rows. A value creates
the person with it, or completes a person the store holds without it; a value that differs
from the stored one, or from one an earlier row of the file gave, is a problem naming the
person, the column and both values, so the whole file is refused. (A person file replaces
stored values; a flat file never does.)
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from node.ingest.context import IngestContext
from node.ingest.problems import Problem, Problems
from node.ingest.rederive import read_rows
from node.ingest.upsert import upsert
from node.store import tables as t
from schemas.cdm import PERSON

PERSON_COLUMNS: tuple[str, ...] = tuple(c for c in PERSON.names if c not in PERSON.key)
"""The person table's columns a flat file may give (the dictionary's ``source: person``)."""

Given = dict[tuple[str, str], tuple[object, int]]
"""(person, column) -> the value a file gave and the row it gave it on."""


def _shown(value: object) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return repr(int(value))
    return repr(value.item() if isinstance(value, np.generic) else value)


def _same(a: object, b: object) -> bool:
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real):
        return float(a) == float(b)
    return str(a) == str(b)


def _stored(ctx: IngestContext, ids: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """The stored ``columns`` of the persons ``ids`` the store holds, indexed by person_id."""
    known = [pid for pid in ids if pid in ctx.persons]
    return read_rows(ctx.conn, t.person, known)[["person_id", *columns]].set_index("person_id")


def check_person_columns(
    ctx: IngestContext,
    file: str,
    pids: pd.Series,
    parsed: dict[str, pd.Series],
    columns: Sequence[str],
    first_row: int,
    given: Given,
    problems: Problems,
) -> pd.DataFrame:
    """The person rows one chunk of a flat file creates or completes.

    Returns ``person_id`` and ``columns`` for every person of the chunk that gets a value
    the store lacks (other columns keep their stored value); adds a problem for each value
    that differs from the stored one or from an earlier row's (``given`` remembers those
    across chunks).
    """
    ids = list(dict.fromkeys(pids))
    stored = _stored(ctx, ids, columns)
    updates: dict[str, dict[str, object]] = {}
    for column in columns:
        values = parsed[column]
        for idx in np.flatnonzero(values.notna().to_numpy()):
            pid, value, row = pids.iloc[idx], values.iloc[idx], first_row + int(idx)
            earlier = given.setdefault((pid, column), (value, row))
            old = stored[column].get(pid) if pid in stored.index else None
            if not _same(earlier[0], value):
                rule = (
                    f"person {pid} has {column} {_shown(earlier[0])} on row {earlier[1]} "
                    f"of this file, {_shown(value)} here"
                )
            elif old is not None and not pd.isna(old) and not _same(old, value):
                rule = (
                    f"person {pid} is stored with {column} {_shown(old)}, the file gives "
                    f"{_shown(value)} (a person file replaces stored values)"
                )
            else:
                if old is None or pd.isna(old):
                    updates.setdefault(pid, {})[column] = value
                continue
            problems.add(Problem(file, row, column, str(values.iloc[idx]), rule))
    rows = pd.DataFrame(
        [{"person_id": pid, **changed} for pid, changed in updates.items()],
        columns=["person_id", *columns],
    )
    if rows.empty:
        return rows
    kept = stored.reindex(rows["person_id"])
    for column in columns:  # a column this file leaves empty keeps its stored value
        rows[column] = rows[column].where(rows[column].notna(), kept[column].to_numpy())
    return rows


def write_person_columns(ctx: IngestContext, rows: pd.DataFrame) -> None:
    """Write the rows of :func:`check_person_columns` (the persons exist by then)."""
    if rows.empty:
        return
    rows = rows.assign(row_id=[ctx.persons[pid] for pid in rows["person_id"]])
    upsert(ctx.conn, t.person, rows, PERSON.store_key)
