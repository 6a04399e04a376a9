"""What an ingest into a store without persons writes, kept to build the columnar layer.

When the store holds no person before an ingest of flat files, every value it holds after
the ingest is one the ingest wrote: the observation rows of each chunk, the derived rows,
the visits and the person columns. :class:`Written` keeps them compactly (row ids and
codes, 16 bytes a value; text only where there is no number) so that the columnar layer
(:func:`node.data.layer_at_hand.write_layers`) is built from them instead of being read back
from the store. Beyond :data:`LIMIT` values, or when the ingest loads a table file (a
person, visit, drug, MRS or event file), it gives up (:attr:`Written.complete` turns
false) and the layer is read back from the store as for any other ingest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from node.data.frame_store import PERSON_COLUMNS
from node.data.layer_at_hand import StoreContent
from node.ingest.upsert import column_values
from node.store import tables as t

LIMIT = 5_000_000
"""Values kept at most (about 80 MB); a larger load builds its layer from the store."""


@dataclass
class _Part:
    row_id: np.ndarray
    visit: np.ndarray
    variable: np.ndarray
    num: np.ndarray
    text_at: np.ndarray
    """Rows (of this part) without a number and their text, if any."""
    text: np.ndarray
    derived: bool

    def keep(self, rows: np.ndarray) -> None:
        self.text = self.text[rows[self.text_at]]
        self.text_at = (np.cumsum(rows) - 1)[self.text_at[rows[self.text_at]]]
        self.row_id, self.visit = self.row_id[rows], self.visit[rows]
        self.variable, self.num = self.variable[rows], self.num[rows]


@dataclass
class Written:
    """The rows an ingest wrote into a store that held no person before it."""

    complete: bool = True
    visits: list[tuple[str, str]] = field(default_factory=list)
    """(person_id, visit label) of every visit written."""
    persons: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Person columns written, per person (as stored)."""
    _parts: list[_Part] = field(default_factory=list)
    _codes: tuple[dict[str, int], dict[str, int]] = field(default_factory=lambda: ({}, {}))
    _size: int = 0

    def give_up(self) -> None:
        self.complete = False
        self._parts, self.visits, self.persons = [], [], {}

    def observations(
        self, rows: pd.DataFrame, row_ids: dict[str, int], derived: bool = False
    ) -> None:
        """Keep LONG rows written (``person_id``, ``visit``, ``variable``, ``value_num``,
        ``value_text``); ``derived``: rows of derived variables."""
        if not self.complete or rows.empty:
            return
        self._size += len(rows)
        if self._size > LIMIT:
            self.give_up()
            return
        local, persons = pd.factorize(rows["person_id"].to_numpy(dtype=object))
        ids = np.asarray([row_ids[p] for p in persons.tolist()], dtype=np.int32)[local]
        coded = []
        for known, column in zip(self._codes, ("visit", "variable"), strict=True):
            local, uniques = pd.factorize(rows[column].to_numpy(dtype=object))
            mapped = [known.setdefault(str(u), len(known)) for u in uniques.tolist()]
            coded.append(np.asarray(mapped, dtype=np.int16)[local])
        nums = pd.to_numeric(rows["value_num"], errors="coerce").to_numpy(dtype=np.float64)
        text_at = np.flatnonzero(np.isnan(nums))
        texts = rows["value_text"].to_numpy(dtype=object)[text_at]
        self._parts.append(_Part(ids, coded[0], coded[1], nums, text_at, texts, derived))

    def drop_derived(self, row_ids: Iterable[int] | None) -> None:
        """Forget the derived rows kept of the persons ``row_ids`` (of everyone: None),
        whose derived values the store replaced."""
        if not self.complete:
            return
        if row_ids is None:
            self._parts = [p for p in self._parts if not p.derived]
            return
        gone = np.fromiter(row_ids, dtype=np.int32)
        for part in self._parts:
            if part.derived:
                part.keep(~np.isin(part.row_id, gone))

    def visit_rows(self, rows: pd.DataFrame) -> None:
        """Keep visit rows written (``person_id``, ``label``)."""
        if self.complete:
            pairs = zip(rows["person_id"].tolist(), rows["label"].tolist(), strict=True)
            self.visits.extend(pairs)

    def person_rows(self, rows: pd.DataFrame) -> None:
        """Keep person columns written (``person_id`` and some of the person columns)."""
        if not self.complete or rows.empty:
            return
        columns = [c for c in rows.columns if c in PERSON_COLUMNS]
        stored = {c: column_values(t.person, c, rows[c]) for c in columns}
        for i, pid in enumerate(rows["person_id"].tolist()):
            self.persons.setdefault(pid, {}).update({c: stored[c][i] for c in columns})

    def content(self, version: str, row_ids: dict[str, int]) -> StoreContent:
        """The store's content as :func:`~node.data.layer_at_hand.write_layers` takes it."""
        people = []
        for pid, label in self.visits:
            given = self.persons.get(pid, {})
            people.append((label, pid, row_ids[pid], *(given.get(c) for c in PERSON_COLUMNS)))
        by_row = np.empty(max(row_ids.values(), default=0) + 1, dtype=object)
        for pid, rid in row_ids.items():
            by_row[rid] = pid
        parts, self._parts = self._parts, []
        starts = np.cumsum([0, *(len(p.num) for p in parts)])[:-1]
        text_at = [p.text_at + start for p, start in zip(parts, starts, strict=True)]
        columns = {}
        for name, dtype in _COLUMNS.items():  # one column at a time: parts freed as joined
            arrays = [getattr(p, name) for p in parts]
            for p in parts:
                setattr(p, name, None)
            columns[name] = np.concatenate(arrays) if arrays else np.empty(0, dtype=dtype)
        return StoreContent(
            version=version,
            people=people,
            person_ids=by_row,
            row_id=columns["row_id"],
            visit=columns["visit"],
            visits=list(self._codes[0]),
            variable=columns["variable"],
            variables=list(self._codes[1]),
            num=columns["num"],
            text_at=np.concatenate(text_at) if text_at else np.empty(0, dtype=np.int64),
            text=columns["text"],
        )


_COLUMNS = {
    "row_id": np.int32,
    "visit": np.int16,
    "variable": np.int16,
    "num": np.float64,
    "text": object,
}

__all__ = ["LIMIT", "Written"]
