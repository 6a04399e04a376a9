"""Memory of released histogram edges: no two histograms of one cohort differ by a person.

Two histograms of the same persons with nearby edges reveal the persons between them:
``[0, 40, 100]`` then ``[0, 41, 100]`` give counts that differ by whoever is aged 40. Every
released edge ``e`` is a cut of the variable's values — ``x < e`` for a lower or inner
edge, ``x ≤ e`` for the closed top edge — and each released cumulative count is a count
below one cut. So the node remembers, per variable and cohort (the exact rows counted, by
the digest of their bitset; at any visit, as a person-level variable is the same at
each), every cut it released, and refuses
(``differencing``) a histogram whose cuts together with the remembered ones split the
rows into a cell of 1 .. ``min_cell``-1 (cells between two cuts, below the lowest and
above the highest), or split a remembered cell into a piece of fewer than ``min_cell``
(an empty piece included: otherwise the refusal would be the answer). A histogram of
other persons starts its own memory; what several cohorts reveal together is the
residual the threat model names.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, insert, select, update

from node.steps.base import Intervals, Rows, to_bits
from node.store.locking import locked
from node.store.tables import released_interval
from schemas.errors import ErrorCode, Refused

logger = logging.getLogger(__name__)

Cut = tuple[float, int]  # (edge, 0 for "x < edge", 1 for "x ≤ edge")


def cuts_of(edges: tuple[float, ...]) -> set[Cut]:
    """The cuts a histogram's counts reveal: below each edge, and up to the closed top."""
    return {(float(e), 0) for e in edges[:-1]} | {(float(edges[-1]), 1)}


def cell_counts(values: npt.NDArray[np.float64], cuts: set[Cut]) -> npt.NDArray[np.int64]:
    """Values per cell of the partition the ``cuts`` make (a value's cell is the number of
    cuts it lies past, which is monotone in the value)."""
    strict = np.sort([e for e, closed in cuts if not closed])
    closed = np.sort([e for e, c in cuts if c])
    past = np.searchsorted(strict, values, side="right") + np.searchsorted(
        closed, values, side="left"
    )
    return np.bincount(past, minlength=len(cuts) + 1).astype(np.int64)


def _split_cells(known: set[Cut], cuts: set[Cut]) -> npt.NDArray[np.bool_]:
    """Per cell of ``cuts``: whether it is a piece of a remembered cell that the new cuts
    split. Such a piece must hold at least ``min_cell`` persons — an empty piece too, or
    "empty" and "refused" would tell apart cohorts with and without one person there."""
    order = sorted(cuts)
    parent = np.concatenate([[0], np.cumsum([cut in known for cut in order])])
    if not known:
        return np.zeros(len(parent), dtype=bool)
    pieces = np.bincount(parent)
    return np.asarray(pieces[parent] > 1, dtype=bool)


class IntervalMemory:
    """Released cuts per (dictionary, variable, cohort) and the rule on new ones."""

    def __init__(self, engine: Engine, min_cell: int) -> None:
        self._engine = engine
        self.min_cell = min_cell

    def admit(self, intervals: Intervals, rows: Rows, dictionary_hash: str) -> None:
        """Refuse a histogram that would split off 1 .. min_cell-1 of its rows against the
        remembered cuts; else remember its cuts (in one locked transaction)."""
        key = self._key(intervals.variable, rows, dictionary_hash)
        with locked(self._engine, released_interval) as conn:
            known = self._known(conn, key)
            cuts = known | cuts_of(intervals.edges)
            counts = cell_counts(intervals.values, cuts)
            split = _split_cells(known, cuts)
            small = (counts < self.min_cell) & ((counts > 0) | split)
            if np.any(small):
                logger.info("refused histogram edges close to released ones")
                raise Refused(
                    "its edges and the edges of earlier histograms of this variable on the "
                    f"same persons would set apart fewer than {self.min_cell} persons; reuse "
                    "the earlier edges or choose edges further from them",
                    code=ErrorCode.DIFFERENCING,
                )
            self._store(conn, key, known, cuts)

    def _key(self, variable: str, rows: Rows, dictionary_hash: str) -> dict[str, str]:
        digest = hashlib.sha256(to_bits(rows).tobytes()).hexdigest()
        return {"dictionary_hash": dictionary_hash, "variable": variable, "cohort": digest}

    def _known(self, conn: Connection, key: dict[str, str]) -> set[Cut]:
        c = released_interval.c
        stored = conn.execute(
            select(c.edges).where(*(c[name] == value for name, value in key.items()))
        ).scalar()
        return set() if stored is None else {(float(e), int(t)) for e, t in json.loads(stored)}

    def _store(
        self, conn: Connection, key: dict[str, str], known: set[Cut], cuts: set[Cut]
    ) -> None:
        if cuts == known:
            return
        text = json.dumps(sorted(cuts))
        c = released_interval.c
        if known:
            conn.execute(
                update(released_interval)
                .where(*(c[name] == value for name, value in key.items()))
                .values(edges=text)
            )
        else:
            conn.execute(insert(released_interval).values(**key, edges=text))


__all__ = ["IntervalMemory", "cell_counts", "cuts_of"]
