"""Opening a store, the node's or the coordinator's: one engine setup for both.

SQLite (a file in the node or coordinator directory) gets foreign keys, write-ahead
logging and a busy timeout, so a served API and a CLI command can share the file;
PostgreSQL gets ``pool_pre_ping`` so a connection the server closed is replaced, not
handed out. Each side keeps its own tables and Alembic migrations
(``node.store.migrations``, ``coordinator.store.migrations``); :func:`alembic_config`
points Alembic at a package's shipped ``migrations`` folder and :func:`run_migrations` is
what each folder's ``env.py`` runs.
"""

from __future__ import annotations

import threading
from importlib import resources

from alembic import context
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_S = 30
MIGRATING = threading.RLock()
"""Held while Alembic runs: it keeps the running migration's context in module globals,
so two stores opened at once in one process (a node and a coordinator, two threads) must
migrate one after the other."""


def open_engine(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///…`` or ``postgresql+psycopg://…``).

    SQLite gets foreign keys on and a busy timeout so the API and the CLI can share it.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine, package: str) -> Config:
    """An Alembic config for the migrations shipped in ``package``'s ``migrations`` folder,
    running on ``engine`` (the folder's ``env.py`` takes it from ``attributes``)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(package) / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def run_migrations(metadata: MetaData, version_table: str = "alembic_version") -> None:
    """Run the migrations Alembic is executing on the engine :func:`alembic_config` handed
    over (called by a ``migrations/env.py``); SQLite alters tables in batch mode."""
    engine = context.config.attributes["engine"]
    assert isinstance(engine, Engine)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=version_table,
            render_as_batch=engine.dialect.name == "sqlite",
        )
        context.run_migrations()
