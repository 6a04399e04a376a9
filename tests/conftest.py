"""Shared fixtures: a fresh store on every backend.

``store_url`` is parametrized over SQLite and PostgreSQL. Each PostgreSQL test gets its own
schema (dropped afterwards). With ``CI=true`` an unreachable PostgreSQL fails the test
instead of skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from node.store.engine import open_engine
from node.store.schema import upgrade

PG_ADMIN_URL = os.environ.get("FEDPSY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    if not _pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but {PG_ADMIN_URL} is not reachable")
        pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")
    return PG_ADMIN_URL


@pytest.fixture
def pg_schema_url(pg_admin_url: str) -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{pg_admin_url}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def store_engine(store_url: str) -> Iterator[Engine]:
    """An engine on a fresh store with the schema created by the shipped migrations."""
    engine = open_engine(store_url)
    upgrade(engine)
    yield engine
    engine.dispose()
