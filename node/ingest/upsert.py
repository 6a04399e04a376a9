"""Inserting rows so that a newer batch replaces the values of an older one (same key).

SQLite: rows go to the driver as plain tuples through one prepared ``INSERT … ON CONFLICT
DO UPDATE`` statement, :data:`BATCH` rows per call. PostgreSQL: rows are streamed with
``COPY`` into a temporary table dropped at commit, then moved with one ``INSERT … SELECT
… ON CONFLICT DO UPDATE``; ``COPY`` costs a fraction of a parameterized insert per row.
Rows whose keys are new for certain (:func:`insert_new`) skip the conflict handling: a
plain ``INSERT`` on SQLite, ``COPY`` straight into the table on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Integer, Table

BATCH = 50_000


def _conflict(conn: Connection, columns: Sequence[str], key: Sequence[str]) -> str:
    quote = conn.dialect.identifier_preparer.quote
    target = ", ".join(quote(c) for c in key)
    updates = [f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in key]
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    return f"ON CONFLICT ({target}) {action}"


def column_values(table: Table, name: str, values: pd.Series) -> list[Any]:
    """Python values (None for missing) the DB drivers accept; whole numbers parsed as
    floats go to integer columns as ints."""
    integer = isinstance(table.c[name].type, Integer)
    if integer and not pd.api.types.is_integer_dtype(values) and values.notna().any():
        values = pd.to_numeric(values).astype("Int64")
    if pd.api.types.is_float_dtype(values) and not values.isna().any():
        return list(values.to_numpy(dtype=np.float64).tolist())
    return list(values.astype(object).where(values.notna(), None).tolist())


def _rows(table: Table, frame: pd.DataFrame, columns: Sequence[str]) -> Iterator[list[Any]]:
    """The frame's rows as tuples, :data:`BATCH` at a time."""
    for start in range(0, len(frame), BATCH):
        part = frame.iloc[start : start + BATCH]
        yield list(zip(*(column_values(table, c, part[c]) for c in columns), strict=True))


def _sqlite(conn: Connection, table: Table, frame: pd.DataFrame, key: Sequence[str] | None) -> None:
    columns = [str(c) for c in frame.columns]
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    if key is not None:
        sql += f" {_conflict(conn, columns, key)}"
    for rows in _rows(table, frame, columns):
        conn.exec_driver_sql(sql, rows)


def _copy(conn: Connection, table: Table, frame: pd.DataFrame, target: str) -> None:
    """Stream the frame's rows into ``target`` (PostgreSQL ``COPY``)."""
    quote = conn.dialect.identifier_preparer.quote
    cols = ", ".join(quote(str(c)) for c in frame.columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {target} ({cols}) FROM STDIN") as copy:
        for rows in _rows(table, frame, [str(c) for c in frame.columns]):
            for row in rows:
                copy.write_row(row)


def _postgresql(conn: Connection, table: Table, frame: pd.DataFrame, key: Sequence[str]) -> None:
    columns = [str(c) for c in frame.columns]
    quote = conn.dialect.identifier_preparer.quote
    cols = ", ".join(quote(c) for c in columns)
    staging = quote(f"load_{table.name}")
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"DROP TABLE IF EXISTS {staging}")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS "
        f"SELECT {cols} FROM {quote(table.name)} WITH NO DATA"
    )
    _copy(conn, table, frame, staging)
    cursor.execute(
        f"INSERT INTO {quote(table.name)} ({cols}) SELECT {cols} FROM {staging} "
        f"{_conflict(conn, columns, key)}"
    )
    cursor.execute(f"DROP TABLE {staging}")


def upsert(conn: Connection, table: Table, frame: pd.DataFrame, key: Sequence[str]) -> None:
    """Insert the rows of ``frame``; where ``key`` already exists, overwrite the rest."""
    if frame.empty:
        return
    if conn.dialect.name == "postgresql":
        _postgresql(conn, table, frame, key)
    else:
        _sqlite(conn, table, frame, key)


def insert_new(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """Insert the rows of ``frame``, whose keys the table cannot hold yet (rows of persons
    new to the store): no conflict handling; PostgreSQL copies them straight into the
    table. A key that exists after all fails the insert, and with it the transaction."""
    if frame.empty:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table, frame, conn.dialect.identifier_preparer.quote(table.name))
    else:
        _sqlite(conn, table, frame, None)
