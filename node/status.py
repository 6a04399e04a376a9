"""``fedpsy node status``: what the store holds (counts only, never rows).

:func:`store_status` reads any store through SQLAlchemy, for a node that is open.
:func:`quick_status` gives the same answer for a node directory whose store is the default
SQLite file, with the standard library only: SQLAlchemy, Alembic, pydantic and the
dictionary's YAML cost more to import and parse than the whole command should take. The
dictionary hash then comes from ``DIR/.dictionary-hash.json``, which every opening of the
node writes (:func:`remember_dictionary_hash`) keyed by a digest of everything the hash is
computed from: the shipped dictionary files and code, and the node's extension files. A
changed input is a different key, so a stale hash is never shown. :func:`quick_status`
answers ``None`` whenever it cannot be sure (a PostgreSQL store, no remembered hash for
these inputs, a store the queries do not fit, e.g. one not yet upgraded); the caller then
opens the node, which upgrades its store and remembers the hash for next time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import schemas
from node.layout import NodeDir, read_toml

if TYPE_CHECKING:
    from sqlalchemy import Engine

RECENT_BATCHES = 10
CDM_TABLES = ("person", "visit", "observation", "drug_exposure", "mrs_measure", "event")
"""The tables ``fedpsy node status`` counts, in load order (``node.store.tables.CDM_TABLES``,
written out here so the quick path does not import SQLAlchemy; a test checks they agree)."""
BATCH_COLUMNS = ("batch_id", "file_name", "sha256", "table_name", "rows", "outcome", "loaded_at")
HASH_FILE = ".dictionary-hash.json"
SQLITE_FILE = "store.sqlite"
"""``node.store.engine.SQLITE_FILE`` (a test checks they agree)."""
DICTIONARY_SOURCES = Path(next(iter(schemas.__path__))) / "dictionary"
"""The shipped dictionary: its YAML files and the code that computes its hash."""


def store_status(engine: Engine, site: str, dictionary_hash: str) -> dict[str, Any]:
    """``{"site", "dictionary_hash", "tables": {TABLE: ROWS}, "batches": [...]}``."""
    from sqlalchemy import func, select

    # deferred: the store's SQLAlchemy tables load only where a node is open, so that
    # quick_status, in this module, runs without SQLAlchemy
    from node.store import tables as t

    with engine.connect() as conn:
        counts = {
            name: int(
                conn.execute(select(func.count()).select_from(t.metadata.tables[name])).scalar()
                or 0
            )
            for name in CDM_TABLES
        }
        b = t.ingest_batch.c
        rows = (
            conn.execute(
                select(*(b[c] for c in BATCH_COLUMNS))
                .order_by(b.batch_id.desc())
                .limit(RECENT_BATCHES)
            )
            .mappings()
            .all()
        )
    return {
        "site": site,
        "dictionary_hash": dictionary_hash,
        "tables": counts,
        "batches": [dict(r) for r in rows],
    }


def dictionary_inputs(extensions: list[Path]) -> str:
    """A digest of every input of the dictionary hash: the shipped files (YAML and code)
    and the extension files, in order."""
    digest = hashlib.sha256()
    shipped = sorted(
        p for p in DICTIONARY_SOURCES.iterdir() if p.suffix in (".yaml", ".py") and p.is_file()
    )
    for path in [*shipped, *extensions]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _extension_files(node_dir: NodeDir, names: list[str]) -> list[Path]:
    return [node_dir.dictionary / name for name in names]


def remember_dictionary_hash(root: Path, extensions: list[str], dictionary_hash: str) -> None:
    """Write ``DIR/.dictionary-hash.json`` for :func:`quick_status` (best effort: a node
    directory this user may not write only makes status slower)."""
    node_dir = NodeDir(root)
    try:
        record = {
            "inputs": dictionary_inputs(_extension_files(node_dir, extensions)),
            "hash": dictionary_hash,
        }
        path = root / HASH_FILE
        if path.is_file() and json.loads(path.read_text(encoding="utf-8")) == record:
            return
        partial = path.with_name(f"{HASH_FILE}.{os.getpid()}")
        partial.write_text(json.dumps(record), encoding="utf-8")
        partial.replace(path)
    except (OSError, ValueError):
        return


def _remembered_hash(node_dir: NodeDir, extensions: list[str]) -> str | None:
    try:
        record = json.loads((node_dir.root / HASH_FILE).read_text(encoding="utf-8"))
        inputs = dictionary_inputs(_extension_files(node_dir, extensions))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("inputs") != inputs:
        return None
    found = record.get("hash")
    return found if isinstance(found, str) else None


def quick_status(root: Path) -> dict[str, Any] | None:
    """:func:`store_status` of the node in ``root`` read with the standard library, or
    ``None`` when only opening the node can tell (see the module's docstring). Raises
    ``not_initialized`` for a directory that holds no node."""
    node_dir = NodeDir(root).require()
    config = read_toml(node_dir.config)
    site, extensions = config.get("site"), config.get("dictionary_extensions", [])
    if config.get("database_url") is not None or not isinstance(site, str):
        return None
    if not isinstance(extensions, list) or not all(isinstance(e, str) for e in extensions):
        return None
    dictionary_hash = _remembered_hash(node_dir, extensions)
    store = node_dir.root / SQLITE_FILE
    if dictionary_hash is None or not store.is_file():
        return None
    uri = f"{store.resolve().as_uri()}?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            counts = {
                name: int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])
                for name in CDM_TABLES
            }
            batches = conn.execute(
                f"SELECT {', '.join(BATCH_COLUMNS)} FROM ingest_batch "
                f"ORDER BY batch_id DESC LIMIT {RECENT_BATCHES}"
            ).fetchall()
    except sqlite3.Error:
        return None
    return {
        "site": site,
        "dictionary_hash": dictionary_hash,
        "tables": counts,
        "batches": [dict(zip(BATCH_COLUMNS, row, strict=True)) for row in batches],
    }
