"""Inserting rows so that a newer batch replaces the values of an older one (same key)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

BATCH = 5_000


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
           key: Sequence[str]) -> None:
    """Insert ``rows``; where ``key`` already exists, overwrite the other columns."""
    if not rows:
        return
    dialect = conn.dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table)
    update = {c: stmt.excluded[c] for c in rows[0] if c not in key}
    stmt = (stmt.on_conflict_do_update(index_elements=list(key), set_=update) if update
            else stmt.on_conflict_do_nothing(index_elements=list(key)))
    for start in range(0, len(rows), BATCH):
        conn.execute(stmt, list(rows[start:start + BATCH]))
