"""Alembic environment: runs migrations on the engine handed over in the config.

The coordinator records its revision in its own version table, so a coordinator and a
node may share one PostgreSQL database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from coordinator.store.schema import VERSION_TABLE
from coordinator.store.tables import metadata

engine = context.config.attributes["engine"]
assert isinstance(engine, Engine)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=engine.dialect.name == "sqlite",
    )
    context.run_migrations()
