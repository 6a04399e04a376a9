"""Creating and upgrading the store's schema (Alembic migrations shipped in the package)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from schemas import engine as store_engine


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the shipped migrations and ``engine``."""
    return store_engine.alembic_config(engine, "node.store")


def upgrade(engine: Engine) -> None:
    """Bring the store's schema to the newest revision (idempotent)."""
    with store_engine.MIGRATING:
        command.upgrade(alembic_config(engine), "head")
