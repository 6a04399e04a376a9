"""Opening the node's store: SQLite in the node directory by default, PostgreSQL by URL.

The engine itself is set up by :func:`schemas.engine.open_engine`, shared with the
coordinator's store.
"""

from __future__ import annotations

from pathlib import Path

from schemas.engine import open_engine

SQLITE_FILE = "store.sqlite"


def sqlite_url(node_dir: Path) -> str:
    """The default store URL for a node directory."""
    return f"sqlite:///{(node_dir / SQLITE_FILE).resolve()}"


__all__ = ["SQLITE_FILE", "open_engine", "sqlite_url"]
