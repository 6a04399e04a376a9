"""Alembic environment: runs the node's migrations on the engine handed over in the config."""

from __future__ import annotations

from node.store.tables import metadata
from schemas.engine import run_migrations

run_migrations(metadata)
