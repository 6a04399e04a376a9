"""The columnar layer written from values at hand instead of read back from the store.

After a load of flat files into a store without persons the store holds exactly what the
load wrote (:mod:`node.ingest.written` keeps it); :func:`write_layers` shapes each visit
from those values through :meth:`~node.data.frame_store.StoreFrameSource.frame_of`, as
:func:`~node.data.columnar.build_layer` shapes what it reads, and stamps the files with the
version the load committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Engine

from node.data.columnar import (
    _arrays,
    _codes,
    _drop_others,
    _to_table,
    _write,
    layer_path,
    store_version,
)
from node.data.frame_store import PERSON_COLUMNS, HeldRows, StoreFrameSource
from node.store.tables import PERSON_LEVEL
from schemas.dictionary import Dictionary

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreContent:
    """Everything the store holds, at hand (see :mod:`node.ingest.written`), at
    ``version``: what :func:`write_layers` builds the layer from instead of reading it."""

    version: str
    people: list[tuple[Any, ...]]
    """(visit label, person_id, row_id, *PERSON_COLUMNS) of every visit."""
    person_ids: npt.NDArray[np.object_]
    """The person id of each row id."""
    row_id: npt.NDArray[np.int32]
    """The observation rows: person (row id), visit and variable (codes into ``visits``
    and ``variables``), number (NaN: none), and the text of the rows ``text_at``."""
    visit: npt.NDArray[np.int16]
    visits: list[str]
    variable: npt.NDArray[np.int16]
    variables: list[str]
    num: npt.NDArray[np.float64]
    text_at: npt.NDArray[np.int64]
    text: npt.NDArray[np.object_]

    def texts(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
        """The text of each of ``rows`` (None where it has none)."""
        found = np.searchsorted(self.text_at, rows)
        inside = found < len(self.text_at)
        hit = np.zeros(len(rows), dtype=bool)
        hit[inside] = self.text_at[found[inside]] == rows[inside]
        texts = np.full(len(rows), None, dtype=object)
        texts[hit] = self.text[found[hit]]
        return texts

    def held(self, visit: str) -> HeldRows:
        """Each variable's rows at ``visit`` or person-level, as
        :meth:`StoreFrameSource.frame_of` takes them."""
        at = np.flatnonzero(
            np.isin(
                self.visit, [i for i, v in enumerate(self.visits) if v in (visit, PERSON_LEVEL)]
            )
        )
        order = at[np.argsort(self.variable[at], kind="stable")]
        codes = self.variable[order]
        index = {name: i for i, name in enumerate(self.variables)}

        def rows(code: str) -> tuple[np.ndarray, pd.Series | None, pd.Series | None]:
            if code not in index:
                return np.empty(0, dtype=object), None, None
            lo, hi = np.searchsorted(codes, [index[code], index[code] + 1])
            mine = order[lo:hi]
            ids = self.person_ids[self.row_id[mine]]
            return ids, pd.Series(self.num[mine]), pd.Series(self.texts(mine), dtype=object)

        return rows

    def found(self, visit: str) -> set[str]:
        """The variables with a row at ``visit`` or person-level."""
        wanted = [i for i, v in enumerate(self.visits) if v in (visit, PERSON_LEVEL)]
        at = np.isin(self.visit, wanted)
        return {self.variables[i] for i in np.unique(self.variable[at]).tolist()}


def write_layers(
    engine: Engine, site: str, dictionary: Dictionary, folder: Path, content: StoreContent
) -> list[str] | None:
    """Write the layer of every visit from ``content``, shaped as :func:`build_layer`
    shapes what it reads (through :class:`StoreFrameSource`); files of other visits go.
    None, and nothing written, when the store is no longer at ``content.version``."""
    with engine.connect() as conn:
        if store_version(conn) != content.version:
            return None
    reader = StoreFrameSource(engine, site, dictionary)
    labels = sorted({str(p[0]) for p in content.people})
    for visit in labels:
        codes = _codes(dictionary, content.found(visit))
        person_cols = [c for c in PERSON_COLUMNS if c in codes]
        at_cols = [3 + PERSON_COLUMNS.index(c) for c in person_cols]
        people = pd.DataFrame.from_records(
            [(p[1], p[2], *(p[i] for i in at_cols)) for p in content.people if p[0] == visit],
            columns=["person_id", "row_id", *person_cols],
        )
        wide = reader.frame_of(people, content.held(visit), codes, visit)
        row_ids = wide.index.to_numpy(dtype=np.int64)
        table = _to_table(row_ids, _arrays(wide), content.version, dictionary.hash, visit)
        _write(layer_path(folder, visit), table)
        logger.info("columnar layer built", extra={"visit": visit, "rows": table.num_rows})
    _drop_others(folder, labels)
    return labels


__all__ = ["StoreContent", "write_layers"]
