"""Creating and upgrading the coordinator's store (Alembic migrations shipped in the package).

A store made before the coordinator used migrations has the coordinator's tables, as
``metadata.create_all`` made them on every start, but no version table. :func:`upgrade`
brings such a store to the baseline revision the way that start did (it creates any table
the store lacks and gives ``node`` its ``mode`` column, every node ``push``) and stamps it
at the baseline instead of creating its tables again; later revisions then apply as usual.

The revision is kept in :data:`VERSION_TABLE`, not Alembic's default ``alembic_version``
that the node's store uses, so a coordinator and a node may share one database.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from coordinator.store.tables import metadata
from schemas import engine as store_engine

VERSION_TABLE = "coordinator_alembic_version"
BASELINE = "0001"  # the schema of the last coordinator without migrations
BASELINE_TABLES = ("node", "job", "user", "model", "pull_message", "pull_nonce")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the shipped migrations and ``engine``."""
    return store_engine.alembic_config(engine, "coordinator.store")


def upgrade(engine: Engine) -> None:
    """Bring the store's schema to the newest revision (idempotent); a store made before
    migrations is adopted at the baseline first."""
    with store_engine.MIGRATING:
        if is_unversioned(engine):
            adopt_unversioned(engine)
        command.upgrade(alembic_config(engine), "head")


def is_unversioned(engine: Engine) -> bool:
    """Whether the store holds coordinator tables but no version table (made before
    migrations)."""
    names = set(inspect(engine).get_table_names())
    return VERSION_TABLE not in names and bool(names & set(metadata.tables))


def adopt_unversioned(engine: Engine) -> None:
    """Complete a store made before migrations as its last start would have, then stamp
    it at the baseline revision."""
    # only the baseline's tables the store lacks (checkfirst); later revisions add the rest
    metadata.create_all(engine, tables=[metadata.tables[name] for name in BASELINE_TABLES])
    add_mode_column(engine)
    with store_engine.MIGRATING:
        command.stamp(alembic_config(engine), BASELINE)


def add_mode_column(engine: Engine) -> None:
    """Give a node table created before pull mode its ``mode`` column (all push)."""
    columns = {c["name"] for c in inspect(engine).get_columns("node")}
    if "mode" not in columns:
        with engine.begin() as conn:
            conn.execute(
                text("ALTER TABLE node ADD COLUMN mode VARCHAR(8) NOT NULL DEFAULT 'push'")
            )
