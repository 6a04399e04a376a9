"""Inserting rows so that a newer batch replaces the values of an older one (same key).

Rows go to the driver as plain tuples through one prepared ``INSERT … ON CONFLICT DO
UPDATE`` statement (the same SQL on SQLite and PostgreSQL, only the placeholder differs),
which keeps per-row overhead low for large files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Table

BATCH = 10_000


def _sql(conn: Connection, table: Table, columns: Sequence[str], key: Sequence[str]) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    quote = conn.dialect.identifier_preparer.quote
    cols = ", ".join(quote(c) for c in columns)
    marks = ", ".join(mark for _ in columns)
    target = ", ".join(quote(c) for c in key)
    updates = [f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in key]
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    return (
        f"INSERT INTO {quote(table.name)} ({cols}) VALUES ({marks}) ON CONFLICT ({target}) {action}"
    )


def _column_values(values: pd.Series) -> list[Any]:
    """Python values (None for missing) the DB drivers accept."""
    return values.astype(object).where(values.notna(), None).tolist()


def upsert(conn: Connection, table: Table, frame: pd.DataFrame, key: Sequence[str]) -> None:
    """Insert the rows of ``frame``; where ``key`` already exists, overwrite the rest."""
    if frame.empty:
        return
    columns = [str(c) for c in frame.columns]
    sql = _sql(conn, table, columns, key)
    data = list(zip(*(_column_values(frame[c]) for c in columns), strict=True))
    for start in range(0, len(data), BATCH):
        conn.exec_driver_sql(sql, data[start : start + BATCH])
