"""Alembic environment: runs the coordinator's migrations on the engine handed over in the
config.

The coordinator records its revision in its own version table, so a coordinator and a
node may share one PostgreSQL database.
"""

from __future__ import annotations

from coordinator.store.schema import VERSION_TABLE
from coordinator.store.tables import metadata
from schemas.engine import run_migrations

run_migrations(metadata, VERSION_TABLE)
