"""The node's analysis-ready columnar layer: per visit, one typed wide Arrow table.

The store (SQLite or PostgreSQL) stays the system of record; this layer is a copy of it
shaped for analysis. For each visit, ``DIR/columnar/<digest of the visit>.arrow`` (an
Arrow IPC file, uncompressed, read memory-mapped) holds one row per person with the visit,
in ``person_id`` order, keyed by the person's ``row_id``, and one column per dictionary
variable that has a value there (person-level variables and the person table's columns
included): float64 with NaN for missing values for numeric, integer and binary variables,
dictionary-encoded strings for categorical ones (the dictionary's categories, or every
label held for an open categorical). A variable without any value at the visit has no
column and reads as all missing. The values are exactly those
:class:`~node.data.frame_store.StoreFrameSource` reads: the layer is built through it.

**Never stale.** Every change of the store's data is a row of ``ingest_batch``: each
loaded file is one, and so is each committed derivation run
(:func:`node.data.committed.save_harmonized`). The store's *version* is the number of
those rows, the largest batch id and the newest batch's file hash and time
(:func:`store_version`), read by the builder before and after it reads the values; a
build whose two readings differ is thrown away and read again. The file's metadata
carries the version and the dictionary hash it was built under, and every read compares
them with the store's version of that moment and the reader's dictionary: a file (or a
process's cached copy) of another version is never read, whichever process wrote it —
the reader builds the visit anew. After an ingest (:func:`refresh_columnar`) and a
derivation commit the visits are built at once, so the next step finds them ready. After
a load of flat files into a store without persons, the store holds exactly what the load
wrote: :func:`node.data.layer_at_hand.write_layers` builds every visit from those values
at hand (:mod:`node.ingest.written`) instead of reading them back, stamped with the
version the load committed, and writes nothing if the store has moved on since.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, Engine, Select, func, select

from node.data.frame_store import PERSON_COLUMNS, StoreFrameSource
from node.store import tables as t
from node.store.tables import PERSON_LEVEL
from schemas.dictionary import Dictionary

logger = logging.getLogger(__name__)

LAYOUT = "1"
"""The file layout; a file of another layout is rebuilt."""
ATTEMPTS = 5
"""Builds tried while the store keeps changing under the reader."""
GROUP = 12
"""Variables read from the store and converted at a time: a build holds the Arrow
columns made so far and one group's frame, not the whole visit's frame and its copies."""

_META = (b"fedpsy.layout", b"fedpsy.version", b"fedpsy.dictionary", b"fedpsy.visit")


def store_version(conn: Connection) -> str:
    """The store's data version: ``<batches>.<largest batch id>.<digest>`` of
    ``ingest_batch``, the digest of the newest batch's file hash and time (a store made
    anew under the same node directory does not take an older store's version)."""
    count, last, sha256, loaded_at = conn.execute(_VERSION).one()
    newest = () if last is None else (sha256, loaded_at)
    mark = hashlib.sha256(repr(newest).encode("utf-8")).hexdigest()[:16]
    return f"{int(count)}.{int(last or 0)}.{mark}"


def _version_query() -> Select[int, int | None, str | None, float | None]:
    b = t.ingest_batch.c
    newest = select(t.ingest_batch).order_by(b.batch_id.desc()).limit(1).subquery()
    return select(
        func.count(),
        func.max(b.batch_id),
        select(newest.c.sha256).scalar_subquery(),
        select(newest.c.loaded_at).scalar_subquery(),
    ).select_from(t.ingest_batch)


_VERSION = _version_query()
"""One statement for :func:`store_version` (it runs before every read of the layer)."""


def layer_path(folder: Path, visit: str) -> Path:
    """The file of ``visit`` (visit labels are free text: the name is their digest)."""
    return folder / f"{hashlib.sha256(visit.encode('utf-8')).hexdigest()[:32]}.arrow"


@dataclass
class Layer:
    """One visit's table as read from its file, with the columns converted so far."""

    version: str
    dictionary_hash: str
    table: pa.Table
    row_ids: npt.NDArray[np.int64]
    converted: dict[str, pd.Series] = field(default_factory=dict)

    def numeric(self, code: str) -> npt.NDArray[np.float64]:
        """A numeric variable's values (NaN = missing), zero-copy from the file."""
        if code not in self.table.column_names:
            return np.full(len(self.row_ids), np.nan)
        values = self.table.column(code).combine_chunks()
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)

    def labels(self, code: str) -> tuple[npt.NDArray[np.int64], list[str]]:
        """A categorical variable's codes (-1 = missing) and the labels they index."""
        if code not in self.table.column_names:
            return np.full(len(self.row_ids), -1, dtype=np.int64), []
        values = self.table.column(code).combine_chunks()
        codes = values.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        return codes, [str(v) for v in values.dictionary.to_pylist()]


def _arrow_column(values: pd.Series) -> pa.Array:
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.asarray(values.cat.codes.to_numpy(), dtype=np.int32)
        indices = pa.array(codes, mask=codes < 0, type=pa.int32())
        labels = pa.array([str(c) for c in values.cat.categories], type=pa.string())
        return pa.DictionaryArray.from_arrays(indices, labels)
    return pa.array(values.to_numpy(dtype=np.float64, na_value=np.nan), type=pa.float64())


def _arrays(wide: pd.DataFrame) -> dict[str, pa.Array]:
    """The columns of ``wide`` with at least one value, as Arrow arrays."""
    return {str(c): _arrow_column(wide[c]) for c in wide.columns if wide[c].notna().any()}


def _read_columns(
    reader: StoreFrameSource, codes: list[str], visit: str
) -> tuple[npt.NDArray[np.int64], dict[str, pa.Array]] | None:
    """The visit's row ids and the Arrow arrays of ``codes``, read :data:`GROUP` variables
    at a time (each group's frame is converted and let go before the next is read); None
    when the groups disagree on the rows (the store changed between two of them)."""
    row_ids: npt.NDArray[np.int64] | None = None
    arrays: dict[str, pa.Array] = {}
    for start in range(0, max(len(codes), 1), GROUP):
        part = reader.frame(codes[start : start + GROUP], visit, None)
        ids = part.index.to_numpy(dtype=np.int64)
        if row_ids is None:
            row_ids = ids
        elif not np.array_equal(ids, row_ids):
            return None
        arrays.update(_arrays(part))
        del part
    assert row_ids is not None
    return row_ids, arrays


def _to_table(
    row_ids: npt.NDArray[np.int64],
    columns: dict[str, pa.Array],
    version: str,
    dictionary_hash: str,
    visit: str,
) -> pa.Table:
    """The row ids and the columns (variables with a value at the visit) as an Arrow
    table with the layer's metadata."""
    table = pa.table({"row_id": pa.array(row_ids, type=pa.int64()), **columns})
    meta = dict(zip(_META, (LAYOUT, version, dictionary_hash, visit), strict=True))
    return table.replace_schema_metadata({k: v.encode("utf-8") for k, v in meta.items()})


def _write(path: Path, table: pa.Table) -> None:
    """Write ``table`` next to ``path`` and move it in place: readers see the old file or
    the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.new")
    with pa.OSFile(str(staged), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(table.num_rows, 1))
    staged.replace(path)


def _read(path: Path) -> pa.Table | None:
    try:
        with pa.memory_map(str(path), "r") as source:
            return pa.ipc.open_file(source).read_all()
    except (FileNotFoundError, pa.ArrowInvalid):
        return None


def _layer(table: pa.Table) -> Layer:
    meta = table.schema.metadata or {}
    return Layer(
        version=meta.get(b"fedpsy.version", b"").decode("utf-8"),
        dictionary_hash=meta.get(b"fedpsy.dictionary", b"").decode("utf-8"),
        table=table,
        row_ids=table.column("row_id").to_numpy(),
    )


def _held(conn: Connection, dictionary: Dictionary, visit: str) -> list[str]:
    """The dictionary's variables with a value at ``visit`` (or person-level): the person
    table's columns and the observations' variables there."""
    o = t.observation.c
    found = conn.execute(select(o.variable).distinct().where(o.visit.in_([visit, PERSON_LEVEL])))
    return _codes(dictionary, set(found.scalars()))


def _codes(dictionary: Dictionary, found: set[str]) -> list[str]:
    held = found | set(PERSON_COLUMNS)
    return [code for code in dictionary.variables if code in held]


Held = Callable[[str], list[str]]
""":func:`_held` of any visit, as read at one version of the store."""


def _held_by_visit(conn: Connection, dictionary: Dictionary) -> Held:
    """:func:`_held` of every visit, from one pass over the observations."""
    o = t.observation.c
    found: dict[str, set[str]] = {}
    for visit, variable in conn.execute(select(o.visit, o.variable).distinct()).all():
        found.setdefault(str(visit), set()).add(str(variable))
    person_level = found.get(PERSON_LEVEL, set())
    return lambda visit: _codes(dictionary, found.get(visit, set()) | person_level)


def build_layer(
    engine: Engine,
    site: str,
    dictionary: Dictionary,
    visit: str,
    folder: Path,
    held: tuple[str, Held] | None = None,
) -> Layer:
    """Read ``visit`` from the store, write its file and return it; the values and the
    version they carry are read in one consistent state of the store. ``held``: a store
    version and the variables of each visit read at it, used while the store is still at
    that version (several visits built in a row read the variables once)."""
    reader = StoreFrameSource(engine, site, dictionary)
    for _ in range(ATTEMPTS):
        with engine.connect() as conn:
            before = store_version(conn)
            if held is not None and held[0] == before:
                codes = held[1](visit)
            else:
                codes = _held(conn, dictionary, visit)
        read = _read_columns(reader, codes, visit)
        with engine.connect() as conn:
            after = store_version(conn)
        if before == after and read is not None:
            table = _to_table(*read, before, dictionary.hash, visit)
            _write(layer_path(folder, visit), table)
            logger.info("columnar layer built", extra={"visit": visit, "rows": table.num_rows})
            return _layer(table)
    # the store changed under every attempt: serve this read from the values of one read,
    # without keeping them (the next read builds again)
    logger.info("columnar layer not kept: the store kept changing", extra={"visit": visit})
    wide = reader.frame(codes, visit, None)
    row_ids = wide.index.to_numpy(dtype=np.int64)
    return _layer(_to_table(row_ids, _arrays(wide), "", dictionary.hash, visit))


def _drop_others(folder: Path, visits: list[str]) -> None:
    """Remove the files of visits other than ``visits``."""
    if folder.is_dir():
        keep = {layer_path(folder, v).name for v in visits}
        for stale in folder.glob("*.arrow"):
            if stale.name not in keep:
                stale.unlink(missing_ok=True)


def open_layer(
    engine: Engine,
    site: str,
    dictionary: Dictionary,
    visit: str,
    folder: Path,
    cached: Layer | None = None,
) -> Layer:
    """The layer of ``visit`` at the store's current version: ``cached`` when it is
    current, else the file when it is, else a fresh build."""
    with engine.connect() as conn:
        version = store_version(conn)
    current = (version, dictionary.hash)
    if cached is not None and (cached.version, cached.dictionary_hash) == current:
        return cached
    found = _file_layer(folder, visit)
    if found is not None and (found.version, found.dictionary_hash) == current:
        return found
    return build_layer(engine, site, dictionary, visit, folder)


def _file_layer(folder: Path, visit: str) -> Layer | None:
    table = _read(layer_path(folder, visit))
    if table is None:
        return None
    meta = table.schema.metadata or {}
    if meta.get(b"fedpsy.layout") != LAYOUT.encode() or meta.get(b"fedpsy.visit") != visit.encode(
        "utf-8"
    ):
        return None
    return _layer(table)


def refresh_columnar(
    engine: Engine, site: str, dictionary: Dictionary, folder: Path, visits: list[str] | None = None
) -> list[str]:
    """Build the layer of every visit of the store (or of ``visits``) now, after a change
    of its data; returns the visits built. Files of visits no longer in the store go."""
    with engine.connect() as conn:
        version = store_version(conn)
        held = sorted(str(v) for v in conn.execute(select(t.visit.c.label).distinct()).scalars())
        variables = _held_by_visit(conn, dictionary)
    wanted = held if visits is None else [v for v in visits if v in held]
    for visit in wanted:
        build_layer(engine, site, dictionary, visit, folder, (version, variables))
    if visits is None:
        _drop_others(folder, held)
    return wanted


__all__ = [
    "Layer",
    "build_layer",
    "open_layer",
    "refresh_columnar",
    "store_version",
]
