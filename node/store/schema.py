"""Creating and upgrading the store's schema (Alembic migrations shipped in the package)."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the shipped migrations and ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("node.store") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the store's schema to the newest revision (idempotent)."""
    command.upgrade(alembic_config(engine), "head")
