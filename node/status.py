"""``fedpsy node status``: what the store holds (counts only, never rows)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from node.store import tables as t

RECENT_BATCHES = 10


def store_status(engine: Engine, site: str, dictionary_hash: str) -> dict[str, Any]:
    """``{"site", "dictionary_hash", "tables": {TABLE: ROWS}, "batches": [...]}``."""
    with engine.connect() as conn:
        counts = {
            name: int(
                conn.execute(select(func.count()).select_from(t.metadata.tables[name])).scalar()
                or 0
            )
            for name in t.CDM_TABLES
        }
        b = t.ingest_batch.c
        rows = (
            conn.execute(
                select(
                    b.batch_id, b.file_name, b.sha256, b.table_name, b.rows, b.outcome, b.loaded_at
                )
                .order_by(b.batch_id.desc())
                .limit(RECENT_BATCHES)
            )
            .mappings()
            .all()
        )
    return {
        "site": site,
        "dictionary_hash": dictionary_hash,
        "tables": counts,
        "batches": [dict(r) for r in rows],
    }
