"""CSV writing: numbers as text (integers without ".0", missing as an empty cell), tables
appended chunk by chunk, each file created with its header on its first non-empty chunk.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import TracebackType
from typing import TextIO

import numpy as np
from numpy.typing import NDArray

from schemas import cdm

TextColumn = NDArray[np.object_]

TABLES: dict[str, tuple[str, ...]] = {table.file: table.names for table in cdm.TABLES}
"""The columns of each ingest file, in file order (:mod:`schemas.cdm`); the flat observation
file's variable columns follow its fixed ones (:data:`fedpsy.synth.tables.OBSERVATION_COLUMNS`).
"""


def _number(value: float) -> str:
    if math.isnan(value):
        return ""
    if value.is_integer():
        return str(int(value))
    return repr(value)


def number_text(values: NDArray[np.generic]) -> TextColumn:
    """Numbers as CSV text: ``3``, ``0.85``, ``""`` for NaN (each distinct value formatted once)."""
    flat = np.asarray(values, dtype=float)
    if flat.size == 0:
        return np.asarray([], dtype=object)
    unique, inverse = np.unique(flat, return_inverse=True)
    labels = np.asarray([_number(float(u)) for u in unique], dtype=object)
    return np.asarray(labels[inverse.reshape(-1)], dtype=object)


def string_text(values: NDArray[np.generic]) -> TextColumn:
    """Strings as CSV text; they never need quoting (codes, ids, labels)."""
    out = np.asarray(values, dtype=object)
    return out


def as_text(values: NDArray[np.generic]) -> TextColumn:
    """Either kind of column as CSV text, by dtype."""
    if values.dtype.kind in "USO":
        return string_text(values)
    return number_text(values)


class TableWriter:
    """One CSV file written in chunks; nothing is created until a chunk has rows."""

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        self.columns = columns
        self.rows = 0
        self._fh: TextIO | None = None

    def append(self, columns: dict[str, TextColumn]) -> None:
        lengths = {len(columns[c]) for c in self.columns}
        if len(lengths) != 1:
            raise ValueError(f"{self.path.name}: columns of unequal length {sorted(lengths)}")
        (m,) = lengths
        if m == 0:
            return
        if self._fh is None:
            self._fh = self.path.open("w", encoding="utf-8", newline="\n")
            self._fh.write(",".join(self.columns) + "\n")
        cells = [columns[c] for c in self.columns]
        self._fh.write("\n".join(map(",".join, zip(*cells, strict=True))))
        self._fh.write("\n")
        self.rows += m

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class SiteWriter:
    """The six ingest files of one site folder (stale files of an earlier run removed).

    ``observation_columns``: the flat observation file's header, its fixed columns first.
    """

    def __init__(self, folder: Path, observation_columns: tuple[str, ...]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.tables: dict[str, TableWriter] = {}
        for name, columns in TABLES.items():
            path = folder / f"{name}.csv"
            path.unlink(missing_ok=True)
            flat = name == cdm.OBSERVATIONS.file
            self.tables[name] = TableWriter(path, observation_columns if flat else columns)

    def append(self, chunk: dict[str, dict[str, TextColumn]]) -> None:
        for name, columns in chunk.items():
            self.tables[name].append(columns)

    def rows(self) -> dict[str, int]:
        return {name: writer.rows for name, writer in self.tables.items()}

    def close(self) -> None:
        for writer in self.tables.values():
            writer.close()

    def __enter__(self) -> SiteWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
