"""The shipped migrations create every CDM table on both backends."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from node.store.schema import upgrade
from node.store.tables import metadata


def test_migrations_create_every_table(store_engine: Engine) -> None:
    names = set(inspect(store_engine).get_table_names())
    assert set(metadata.tables) <= names
    upgrade(store_engine)  # idempotent
    assert set(metadata.tables) <= set(inspect(store_engine).get_table_names())
